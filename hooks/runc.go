package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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

// EnvRecord in a container's environment asks for a recording as the
// io.syscage.record annotation does, for runtimes that pass no annotations into
// config.json (Docker before 24: docker run -e SYSCAGE_RECORD=NAME). The runc
// wrapper reads it from process.env and adds the annotation the hook reads.
// Kubernetes containers ignore it: there the node agent decides, not a pod author.
const EnvRecord = "SYSCAGE_RECORD"

// selectContainer returns the annotation a container's environment adds, or nil.
// An annotation and a variable that disagree are refused rather than one chosen.
func selectContainer(c oci.Container) (map[string]string, error) {
	if _, ok := KubernetesContainer(c.Annotations); ok {
		return nil, nil
	}
	v, ok := c.Getenv(EnvRecord)
	if !ok {
		return nil, nil
	}
	if a, ok := c.Annotations[Annotation]; ok {
		if a != v {
			return nil, fmt.Errorf("the annotation %s=%q and the environment variable %s=%q disagree: set one of them, or both to the same name", Annotation, a, EnvRecord, v)
		}
		return nil, nil
	}
	if a, ok := c.Annotations[CompatAnnotation]; ok {
		return nil, fmt.Errorf("both %s=%q and the environment variable %s=%q are set: use one", CompatAnnotation, a, EnvRecord, v)
	}
	return map[string]string{Annotation: v}, nil
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
		// A config that does not load refuses the containers that ask for a
		// recording; the node's other containers must still start.
		cfg, cfgErr := LoadConfig(cfgPath, explicit)
		runDir := DefaultConfig().RunDir
		if cfgErr == nil {
			runDir = cfg.RunDir
		}
		var refused error
		decide := func(c oci.Container) (map[string]string, bool, error) {
			if kubernetesSelected(c.Annotations, KubernetesRunDir(runDir)) {
				return nil, true, nil
			}
			add, err := selectContainer(c)
			if err != nil || !WantsRecording(c.Annotations) && add == nil {
				refused = err
				return nil, false, err
			}
			if cfgErr != nil {
				refused = cfgErr
				return nil, false, cfgErr
			}
			// Refused here, a bad name fails the create with the wrapper's message,
			// before anything of the container exists.
			ann := maps.Clone(c.Annotations)
			if ann == nil {
				ann = map[string]string{}
			}
			maps.Copy(ann, add)
			if _, err := ParseAnnotations(ann, cfg); err != nil {
				refused = err
				return nil, false, err
			}
			return add, true, nil
		}
		if _, err := oci.InjectHookFor(bundle, hook, decide); err != nil {
			if refused != nil {
				return fmt.Errorf("refusing container: %w", refused)
			}
			return fmt.Errorf("adding the syscage hook: %w", err)
		}
	}
	err = syscall.Exec(realRunc, append([]string{"runc"}, args...), os.Environ())
	return errors.Join(fmt.Errorf("running %s", realRunc), err)
}

// ReportRuncError writes the wrapper's error where runc's caller reads runc's own:
// the --log file in --log-format (containerd's shim, and so Docker and nerdctl,
// take the last error-level entry of the JSON log as the reason a create failed).
// Without --log there is only stderr, which the caller writes to as well.
func ReportRuncError(args []string, err error) error {
	var logPath, format string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			break
		}
		k, v, hasValue := strings.Cut(a, "=")
		if !hasValue && runcValueFlags[k] && i+1 < len(args) {
			i++
			v = args[i]
		}
		switch k {
		case "--log":
			logPath = v
		case "--log-format":
			format = v
		}
	}
	if logPath == "" {
		return nil
	}
	msg := "syscage-runc: " + err.Error()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var line []byte
	if format == "json" {
		line, _ = json.Marshal(map[string]string{"level": "error", "msg": msg, "time": now})
	} else {
		line = fmt.Appendf(nil, "time=%q level=error msg=%q", now, msg)
	}
	f, ferr := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return fmt.Errorf("writing runc's log %s: %w", logPath, ferr)
	}
	_, werr := f.Write(append(line, '\n'))
	return errors.Join(werr, f.Close())
}
