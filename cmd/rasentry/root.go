package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// app holds what every subcommand shares: merged configuration and the logger.
type app struct {
	v   *viper.Viper
	log *zap.Logger
}

func newRootCommand() *cobra.Command {
	a := &app{v: viper.New()}
	root := &cobra.Command{
		Use:   "rasentry",
		Short: "Recognise Windows Remote Assistance traffic and enforce policy on it",
		Long: `rasentry labels Windows Remote Assistance traffic (Offer RA over DCOM, RDP-based
invitation and Easy Connect sessions, Teredo, UPnP port mappings, PNRP) in packet
captures, live interfaces or an inline queue, and writes EVE-compatible JSON records.

Configuration is merged from --config (rasentry.yaml), RASENTRY_* environment
variables and flags; flags win.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "configuration file (YAML); default: ./rasentry.yaml if present")
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.String("log-format", "console", "log format on stderr: console or json")
	bind(a.v, pf, "log.level", "log-level")
	bind(a.v, pf, "log.format", "log-format")
	root.AddCommand(newReplayCommand(a), newLiveCommand(a), newInlineCommand(a), newVersionCommand(), newPolicyCommand(a), newHealthCommand(a))
	return root
}

// setup reads the configuration file and environment, then builds the logger.
func (a *app) setup(cmd *cobra.Command) error {
	if err := bindRunning(a.v, cmd); err != nil {
		return err
	}
	a.v.SetEnvPrefix("RASENTRY")
	a.v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	a.v.AutomaticEnv()
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv("RASENTRY_CONFIG")
	}
	if path != "" {
		a.v.SetConfigFile(path)
		if err := a.v.ReadInConfig(); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	} else if _, err := os.Stat("rasentry.yaml"); err == nil {
		a.v.SetConfigFile("rasentry.yaml")
		if err := a.v.ReadInConfig(); err != nil {
			return fmt.Errorf("config rasentry.yaml: %w", err)
		}
	}
	log, err := newLogger(a.v.GetString("log.level"), a.v.GetString("log.format"))
	if err != nil {
		return err
	}
	a.log = log
	return nil
}

func newLogger(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	default:
		return nil, fmt.Errorf("--log-format %q: want console or json", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.OutputPaths = []string{"stderr"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	cfg.DisableCaller = true
	return cfg.Build()
}

// bind ties a viper key to a flag, so the flag wins over file and
// environment. Several commands bind the same key (--eve, --policy), so the
// binding is recorded on the flag and made when its command runs (setup).
func bind(_ *viper.Viper, fs *pflag.FlagSet, key, flag string) {
	if err := fs.SetAnnotation(flag, viperKey, []string{key}); err != nil {
		panic(err) // a programming error: the flag is defined right above
	}
}

const viperKey = "rasentry/viper-key"

// bindRunning binds the annotated flags of the command that runs.
func bindRunning(v *viper.Viper, cmd *cobra.Command) error {
	var err error
	visit := func(f *pflag.Flag) {
		if keys := f.Annotations[viperKey]; len(keys) == 1 && err == nil {
			err = v.BindPFlag(keys[0], f)
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	return err
}
