package rules

import (
	"embed"
	"fmt"
	"strings"
)

// The built-in presets, each a policy file a user can copy and edit
// (rules/presets/NAME.yaml). example.yaml, the commented reference of every
// key, is not a preset.
//
//go:embed presets/monitor.yaml presets/disable-all.yaml presets/offer-only.yaml presets/encrypted-invitations-only.yaml
var presetFiles embed.FS

// DefaultPreset is the preset that runs when no policy is configured.
const DefaultPreset = "monitor"

var presetNames = []string{"monitor", "disable-all", "offer-only", "encrypted-invitations-only"}

// PresetNames returns the names --preset accepts, the default first.
func PresetNames() []string { return append([]string(nil), presetNames...) }

// PresetYAML returns the policy file of a preset.
func PresetYAML(name string) ([]byte, error) {
	data, err := presetFiles.ReadFile("presets/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("unknown preset %q (want %s)", name, strings.Join(presetNames, ", "))
	}
	return data, nil
}

// Preset loads a built-in preset: monitor (the default: log every label,
// alert on Remote Assistance crossing the perimeter, never block),
// disable-all, offer-only or encrypted-invitations-only.
func Preset(name string) (*Policy, error) {
	data, err := PresetYAML(name)
	if err != nil {
		return nil, err
	}
	p, err := LoadBytes("presets/"+name+".yaml", data)
	if err != nil {
		return nil, err
	}
	p.Source = "preset:" + name
	return p, nil
}
