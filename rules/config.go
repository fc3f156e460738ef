package rules

import (
	"github.com/spf13/viper"
)

// Configuration keys that choose the policy, merged by viper from the
// configuration file, RASENTRY_* environment variables (RASENTRY_POLICY_FILE,
// RASENTRY_POLICY_PRESET) and flags.
const (
	ConfigFile   = "policy.file"
	ConfigPreset = "policy.preset"
)

// LoadConfigured loads the policy the configuration names: the file at
// policy.file when set, else the preset policy.preset, else the monitor
// preset. It reads the keys anew on every call, so it is the loader to hand
// Engine.Reload: a SIGHUP picks up an edited file.
func LoadConfigured(v *viper.Viper) (*Policy, error) {
	if path := v.GetString(ConfigFile); path != "" {
		return Load(path)
	}
	name := v.GetString(ConfigPreset)
	if name == "" {
		name = DefaultPreset
	}
	return Preset(name)
}
