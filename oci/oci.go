// Package oci reads what OCI runtimes hand to hooks: the container state on a
// hook's stdin, and the bundle's config.json.
package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxState bounds what is read from a hook's stdin: a state is a few kilobytes, and
// a runtime that never closes stdin must not hang the hook.
const maxState = 1 << 20

// ReadState decodes the OCI state a runtime writes to a hook's stdin.
func ReadState(r io.Reader) (*specs.State, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxState+1))
	if err != nil {
		return nil, fmt.Errorf("reading container state: %w", err)
	}
	if len(data) > maxState {
		return nil, fmt.Errorf("container state on stdin is larger than %d bytes", maxState)
	}
	return ParseState(data)
}

// ParseState decodes and checks an OCI state document.
func ParseState(data []byte) (*specs.State, error) {
	var st specs.State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("container state on stdin is not OCI state JSON (is syscage running as an OCI hook?): %w", err)
	}
	if st.ID == "" {
		return nil, errors.New("container state has no id")
	}
	if st.Pid < 0 {
		return nil, fmt.Errorf("container state has invalid pid %d", st.Pid)
	}
	if st.Bundle != "" && !filepath.IsAbs(st.Bundle) {
		return nil, fmt.Errorf("container state bundle %q is not an absolute path", st.Bundle)
	}
	return &st, nil
}

// LoadSpec reads the bundle's config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading bundle config: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &spec, nil
}

// BundleHasSeccomp reports whether the bundle's container runs under a seccomp
// filter, decoding only that of its config: a hook asks it on every container
// start, and a whole spec takes several times longer to decode.
func BundleHasSeccomp(bundle string) (bool, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading bundle config: %w", err)
	}
	var spec struct {
		Linux *struct {
			Seccomp json.RawMessage `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return spec.Linux != nil && len(spec.Linux.Seccomp) > 0 && string(spec.Linux.Seccomp) != "null", nil
}

// HasSeccomp reports whether the container runs under a seccomp filter.
func HasSeccomp(spec *specs.Spec) bool {
	return spec.Linux != nil && spec.Linux.Seccomp != nil
}
