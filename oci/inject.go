package oci

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InjectHook adds hook at the prestart and poststop stages of the bundle's
// config.json when want says the container asks for it, and returns whether it did.
// A config that already runs the same program at prestart (installed through
// hooks.d, say) is left alone. Fields other than "hooks" keep their values; the file
// is replaced atomically.
func InjectHook(bundle string, hook specs.Hook, want func(annotations map[string]string) bool) (bool, error) {
	return InjectHookFor(bundle, hook, func(c Container) (map[string]string, bool, error) {
		return nil, want(c.Annotations), nil
	})
}

// Container is what a bundle's config.json says that decides whether a container
// is recorded: its annotations and its environment (process.env, KEY=VALUE).
type Container struct {
	Annotations map[string]string
	Env         []string
}

// Getenv returns the last value of key in the container's environment, as the
// container's process would see it.
func (c Container) Getenv(key string) (string, bool) {
	for i := len(c.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(c.Env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// InjectHookFor is InjectHook for a decision that may also add annotations (the
// hook reads its instructions from them, through the OCI state) or refuse the
// container: decide's error is returned and the config is left as it was.
func InjectHookFor(bundle string, hook specs.Hook, decide func(Container) (add map[string]string, want bool, err error)) (bool, error) {
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
	var process struct {
		Env []string `json:"env"`
	}
	if raw, ok := top["process"]; ok {
		if err := json.Unmarshal(raw, &process); err != nil {
			return false, fmt.Errorf("%s: process.env: %w", path, err)
		}
	}
	add, want, err := decide(Container{Annotations: annotations, Env: process.Env})
	if err != nil {
		return false, err
	}
	if !want {
		return false, nil
	}
	var hooks specs.Hooks
	if raw, ok := top["hooks"]; ok {
		if err := json.Unmarshal(raw, &hooks); err != nil {
			return false, fmt.Errorf("%s: hooks: %w", path, err)
		}
	}
	// The annotations are added even where the hook already is: it reads them.
	changed := false
	for k, v := range add {
		if old, ok := annotations[k]; !ok || old != v {
			changed = true
		}
	}
	if changed {
		if annotations == nil {
			annotations = map[string]string{}
		}
		maps.Copy(annotations, add)
		if top["annotations"], err = json.Marshal(annotations); err != nil {
			return false, err
		}
	}
	has := slices.ContainsFunc(hooks.Prestart, func(h specs.Hook) bool { return h.Path == hook.Path })
	if has && !changed {
		return false, nil
	}
	if !has {
		hooks.Prestart = append(hooks.Prestart, hook)
		hooks.Poststop = append(hooks.Poststop, hook)
		if top["hooks"], err = json.Marshal(hooks); err != nil {
			return false, err
		}
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
