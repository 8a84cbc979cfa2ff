package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InjectHook adds hook at the prestart and poststop stages of the bundle's
// config.json when want says the container asks for it, and returns whether it did.
// A config that already runs the same program at prestart (installed through
// hooks.d, say) is left alone. Fields other than "hooks" keep their values; the file
// is replaced atomically.
func InjectHook(bundle string, hook specs.Hook, want func(annotations map[string]string) bool) (bool, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading bundle config: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	var annotations map[string]string
	if raw, ok := top["annotations"]; ok {
		if err := json.Unmarshal(raw, &annotations); err != nil {
			return false, fmt.Errorf("%s: annotations: %w", path, err)
		}
	}
	if !want(annotations) {
		return false, nil
	}
	var hooks specs.Hooks
	if raw, ok := top["hooks"]; ok {
		if err := json.Unmarshal(raw, &hooks); err != nil {
			return false, fmt.Errorf("%s: hooks: %w", path, err)
		}
	}
	if slices.ContainsFunc(hooks.Prestart, func(h specs.Hook) bool { return h.Path == hook.Path }) {
		return false, nil
	}
	hooks.Prestart = append(hooks.Prestart, hook)
	hooks.Poststop = append(hooks.Poststop, hook)
	if top["hooks"], err = json.Marshal(hooks); err != nil {
		return false, err
	}
	out, err := json.Marshal(top)
	if err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(bundle, ".config.json.tmp-*")
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	return true, nil
}
