package main

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
)

// loadProfile reads and parses the OCI profile at path, and returns apart the
// errors for which a runtime would refuse or misread it, each prefixed with name,
// so that each command can refuse it in its own words before anything runs.
// readContext prefixes an error reading the file.
func loadProfile(path, name, readContext string) (*specs.LinuxSeccomp, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", readContext, err)
	}
	p, err := profile.Parse(name, data)
	if err != nil {
		return nil, nil, err
	}
	var invalid []string
	for _, f := range profile.Validate(p) {
		if f.Severity == profile.Error {
			invalid = append(invalid, name+": "+f.String())
		}
	}
	return p, invalid, nil
}
