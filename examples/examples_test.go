// Package examples holds example configuration; its test keeps the
// examples valid as the code changes.
package examples

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/viper"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/rules"
)

// rasentry.yaml decodes as the CLI reads it, and names every sink type.
func TestExampleConfig(t *testing.T) {
	v := viper.New()
	v.SetConfigFile("rasentry.yaml")
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	cfg, err := alert.DecodeOutputConfig(v.GetStringMap("output"))
	if err != nil {
		t.Fatalf("rasentry.yaml output: %v", err)
	}
	types := map[string]bool{}
	for _, s := range cfg.Sinks {
		types[s.Type] = true
	}
	for _, want := range []string{alert.SinkStdout, alert.SinkFile, alert.SinkSyslog, alert.SinkKafka} {
		if !types[want] {
			t.Errorf("rasentry.yaml has no %s sink: every setting is to be shown", want)
		}
	}
	if _, err := alert.ParseFormat(v.GetString("output.format")); err != nil {
		t.Error(err)
	}
	for _, key := range []string{"log.level", "live.iface", "policy.preset", "flow.max", "sensor.workers", "metrics.addr", "stats.interval", "enforce.mode"} {
		if !v.IsSet(key) {
			t.Errorf("rasentry.yaml does not show %s", key)
		}
	}
}

// Every example policy loads without a problem.
func TestExamplePolicies(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("policies", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no policies/*.yaml")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rules.LoadBytes(f, b); err != nil {
			t.Errorf("%v", err)
		}
	}
}
