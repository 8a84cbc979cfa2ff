package profiles

import (
	"fmt"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
)

// DefaultBaseline is the baseline recorded profiles stay within unless told
// otherwise: containerd's default, what a container gets without a profile of its
// own under containerd, CRI-O's and Kubernetes' RuntimeDefault alike.
const DefaultBaseline = "containerd"

// BaselineNames are the values Baseline takes besides a file.
var BaselineNames = []string{"containerd", "docker", "none"}

// Baseline returns the profile named by a --baseline value: "containerd" or
// "docker" (their defaults for this machine's architecture, as shipped), "none"
// (nil: no baseline), or the path of an OCI profile. The name returned is how
// messages call it.
func Baseline(value string) (string, *specs.LinuxSeccomp, error) {
	return BaselineFor(value, runtime.GOARCH)
}

// BaselineFor is Baseline for the machine goarch names ("amd64", "arm64").
func BaselineFor(value, goarch string) (string, *specs.LinuxSeccomp, error) {
	switch value {
	case "", "none":
		return "none", nil, nil
	case "containerd", "docker":
		arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[goarch]
		if arch == "" {
			return "", nil, fmt.Errorf("--baseline %s: syscage ships no %s default for %s: give the profile's file instead, or --baseline none", value, value, goarch)
		}
		file := value + "-default-" + arch + ".json"
		data, err := FS.ReadFile(file)
		if err != nil {
			return "", nil, fmt.Errorf("--baseline %s: %w", value, err)
		}
		p, err := profile.Parse(file, data)
		if err != nil {
			return "", nil, err
		}
		return value + "'s default profile", p, nil
	}
	data, err := os.ReadFile(value)
	if err != nil {
		return "", nil, fmt.Errorf("--baseline %s: %w (use containerd, docker, none or the path of an OCI profile)", value, err)
	}
	p, err := profile.Parse(value, data)
	if err != nil {
		return "", nil, fmt.Errorf("--baseline: %w", err)
	}
	return value, p, nil
}
