package hooks

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/oci"
)

// RuncName is the name under which the syscage binary acts as a runc wrapper: for
// runtimes that read no hooks.d (containerd's BinaryName, podman's and docker's
// --runtime), it adds the hook to the containers that ask for a recording and
// runs the real runc.
const RuncName = "syscage-runc"

// runc's global flags that take a value, so the subcommand can be found after them.
var runcValueFlags = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

// runcBundle returns the bundle of a `create` or `run`, and false for any other
// runc command.
func runcBundle(args []string) (string, bool) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			break
		}
		if runcValueFlags[a] {
			i++
		}
	}
	if i >= len(args) || (args[i] != "create" && args[i] != "run") {
		return "", false
	}
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		switch {
		case (a == "--bundle" || a == "-b") && j+1 < len(args):
			return args[j+1], true
		case strings.HasPrefix(a, "--bundle="):
			return strings.TrimPrefix(a, "--bundle="), true
		case a == "--":
			j = len(args)
		}
	}
	return ".", true // runc's default: the current directory
}

// WantsRecording reports whether a container's annotations ask for a recording.
func WantsRecording(annotations map[string]string) bool {
	_, ours := annotations[Annotation]
	_, compat := annotations[CompatAnnotation]
	return ours || compat
}

// WrapRunc adds the hook to a container being created that asks for a recording,
// then replaces this process with the real runc (SYSCAGE_RUNC, or runc on PATH).
// The hook's config is SYSCAGE_HOOK_CONFIG, or the default. It returns only on error.
func WrapRunc(args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	realRunc := os.Getenv("SYSCAGE_RUNC")
	if realRunc == "" {
		if realRunc, err = exec.LookPath("runc"); err != nil {
			return fmt.Errorf("finding the real runc (set SYSCAGE_RUNC): %w", err)
		}
	}
	if r, err := filepath.EvalSymlinks(realRunc); err == nil && r == self {
		return fmt.Errorf("%s is syscage itself: set SYSCAGE_RUNC to the real runc", realRunc)
	}
	if bundle, ok := runcBundle(args); ok {
		hook := specs.Hook{Path: self, Args: []string{"syscage", "hook"}}
		cfgPath, explicit := os.Getenv("SYSCAGE_HOOK_CONFIG"), true
		if cfgPath != "" {
			hook.Args = append(hook.Args, "--config", cfgPath)
		} else {
			cfgPath, explicit = DefaultConfigPath, false
		}
		// A config that does not load is the hook's to report, for the containers
		// that ask for a recording; the node's other containers must still start.
		runDir := DefaultConfig().RunDir
		if cfg, err := LoadConfig(cfgPath, explicit); err == nil {
			runDir = cfg.RunDir
		}
		want := func(annotations map[string]string) bool {
			return WantsRecording(annotations) || kubernetesSelected(annotations, KubernetesRunDir(runDir))
		}
		if _, err := oci.InjectHook(bundle, hook, want); err != nil {
			return fmt.Errorf("adding the syscage hook: %w", err)
		}
	}
	err = syscall.Exec(realRunc, append([]string{"runc"}, args...), os.Environ())
	return errors.Join(fmt.Errorf("running %s", realRunc), err)
}
