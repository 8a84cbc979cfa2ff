package profile

import (
	"encoding/json"
)

// Format is a way of writing a seccomp profile.
type Format string

const (
	// FormatOCI is runtime-spec LinuxSeccomp: what runc, crun, containerd and CRI-O
	// read, and the kubelet's Localhost profiles.
	FormatOCI Format = "oci"
	// FormatDocker is the moby format, with per-architecture, capability and
	// kernel conditions.
	FormatDocker Format = "docker"
	// FormatSPO is the security-profiles-operator SeccompProfile resource.
	FormatSPO Format = "spo"
)

// DetectFormat tells the formats apart by what only each has: kind and apiVersion
// for SPO, archMap or conditional rules for Docker. Anything else is read as OCI,
// which then reports what is wrong with it.
func DetectFormat(data []byte) Format {
	var top struct {
		Kind       *string           `json:"kind"`
		APIVersion *string           `json:"apiVersion"`
		ArchMap    json.RawMessage   `json:"archMap"`
		Syscalls   []json.RawMessage `json:"syscalls"`
	}
	if json.Unmarshal(data, &top) != nil {
		return FormatOCI
	}
	if top.Kind != nil || top.APIVersion != nil {
		return FormatSPO
	}
	if top.ArchMap != nil {
		return FormatDocker
	}
	for _, raw := range top.Syscalls {
		var rule map[string]json.RawMessage
		if json.Unmarshal(raw, &rule) != nil {
			continue
		}
		for _, k := range []string{"includes", "excludes", "name", "comment"} {
			if _, ok := rule[k]; ok {
				return FormatDocker
			}
		}
	}
	return FormatOCI
}
