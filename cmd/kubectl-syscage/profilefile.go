package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/profile"
)

// readProfile reads an OCI seccomp profile (JSON, or YAML) for apply and verify,
// and refuses one a runtime would refuse or misread, with every reason.
func readProfile(path string) (*specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--profile: %w", err)
	}
	if !json.Valid(data) {
		// YAML is converted only when needed: it would read large argument values
		// as floats.
		if data, err = yaml.YAMLToJSON(data); err != nil {
			return nil, fmt.Errorf("--profile %s: neither JSON nor YAML: %w", path, err)
		}
	}
	if f := profile.DetectFormat(data); f != profile.FormatOCI {
		return nil, fmt.Errorf("--profile %s is a %s profile, not an OCI one: convert it first with 'syscage convert %s --to oci -o %s.oci.json'",
			path, f, path, strings.TrimSuffix(path, ".json"))
	}
	p, err := profile.Parse(path, data)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, f := range profile.Validate(p) {
		if f.Severity == profile.Error {
			bad = append(bad, path+": "+f.String())
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s\n(a runtime would refuse or misread this profile; 'syscage check %s' says more)", strings.Join(bad, "\n"), path)
	}
	return p, nil
}

// storable fails when a profile would not survive a custom resource: the API
// server and the dynamic client read integers beyond int64 as floats, so an
// argument value of 2^63 or more would reach the agents changed.
func storable(p *specs.LinuxSeccomp) error {
	want, err := profile.Marshal(p)
	if err != nil {
		return err
	}
	// As the dynamic client decodes objects.
	var obj map[string]any
	if err := utiljson.Unmarshal(want, &obj); err != nil {
		return err
	}
	var back specs.LinuxSeccomp
	if err := remarshal(obj, &back); err != nil {
		return err
	}
	if got, err := profile.Marshal(&back); err != nil || string(got) != string(want) {
		return errors.New("argument values of 2^63 and more cannot be carried in a Kubernetes object: use smaller values (with SCMP_CMP_MASKED_EQ, a smaller mask)")
	}
	return nil
}
