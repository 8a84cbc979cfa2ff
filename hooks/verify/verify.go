// Package verify runs a workload against a seccomp profile and reports every call
// the profile does not allow: name, arch, count and the first process that made it.
//
// In complain mode the workload runs unharmed -- unconfined on the host, under an
// allow-all filter in a container -- and the recorder watches the calls the profile
// would refuse, so one run lists everything missing. In enforce mode the profile is
// in force and the recorder catches each refusal at sys_exit, exactly per task, so
// a call refused for its arguments (socket(AF_INET) under an AF_UNIX-only rule) is
// caught too. Nothing is read from the kernel log or audit.
package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/hooks/recorder"
	"github.com/syscage/syscage/oci"
	"github.com/syscage/syscage/oci/seccomp"
	"github.com/syscage/syscage/profile"
)

// Mode is how the profile is applied while the workload runs.
type Mode string

const (
	Complain Mode = "complain"
	Enforce  Mode = "enforce"
)

// Finding is one syscall the profile does not allow that the workload made.
type Finding struct {
	Arch  specs.Arch `json:"arch"`
	Name  string     `json:"name"`
	Nr    int        `json:"nr"`
	Count uint64     `json:"count"`
	Pid   uint32     `json:"pid"`  // the first process that made it
	Comm  string     `json:"comm"` // and its name
	// Calls are, for a syscall whose arguments the recorder keeps, the refused
	// calls in words: "socket(AF_INET6, SOCK_STREAM)".
	Calls []string `json:"calls,omitempty"`
}

// Report is the outcome of a verification.
type Report struct {
	Profile  string    `json:"profile"`
	Mode     Mode      `json:"mode"`
	Workload string    `json:"workload"`
	ExitCode int       `json:"exitCode"` // the workload's
	Missing  []Finding `json:"missing"`
	// Conditional calls were made and the profile allows them for some arguments
	// only; complain mode cannot judge the arguments: verify them in enforce mode.
	Conditional []Finding `json:"conditional,omitempty"`
}

// Options say what to verify.
type Options struct {
	Profile     *specs.LinuxSeccomp
	ProfilePath string // absolute
	Mode        Mode
	// Exactly one of these is the workload.
	Command []string // a host command
	Bundle  string   // an OCI bundle run with runc
	Podman  []string // `podman run` arguments: [flags…] IMAGE [CMD…]
	// Executable is the syscage binary (for the OCI hook and exec).
	Executable     string
	Stdout, Stderr io.Writer
}

// Plan is what the recorder watches for, per ABI.
type Plan struct {
	arches      [bpf.NumABIs]specs.Arch
	watch       [bpf.NumABIs][]int
	conditional [bpf.NumABIs]map[int]bool
	// filter judges recorded argument values as the profile would.
	filter *seccomp.Filter
	// clone3ENOSYS: the profile answers clone3 with ENOSYS, as the runtimes'
	// defaults do, so that libc falls back to clone: a refusal by design.
	clone3ENOSYS bool
}

// MakePlan lists, for each ABI of this machine, the numbers p does not allow for
// every argument: on an architecture p does not cover, that is every number.
func MakePlan(p *specs.LinuxSeccomp) (*Plan, error) {
	arches, err := record.Arches()
	if err != nil {
		return nil, err
	}
	pl := &Plan{arches: arches}
	// A profile syscage cannot compile (SCMP_ACT_NOTIFY) leaves its argument
	// rules to enforce mode.
	if f, err := seccomp.Compile(p, seccomp.Options{}); err == nil {
		pl.filter = f
		if ret, err := f.Call(arches[bpf.Native], "clone3"); err == nil && ret == unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS) {
			pl.clone3ENOSYS = true
		}
	}
	for abi, arch := range arches {
		if arch == "" {
			continue
		}
		tab, err := profile.TableFor(arch)
		if err != nil {
			return nil, err
		}
		var always, conditional []string
		if abi == int(bpf.Native) || len(p.Architectures) == 0 || slices.Contains(p.Architectures, arch) {
			if always, conditional, err = profile.Allowed(p, arch); err != nil {
				return nil, err
			}
		}
		pl.conditional[abi] = map[int]bool{}
		for _, name := range tab.Names() {
			nr, _ := tab.Number(name)
			if slices.Contains(always, name) {
				continue
			}
			if slices.Contains(conditional, name) {
				pl.conditional[abi][nr] = true
			}
			pl.watch[abi] = append(pl.watch[abi], nr)
		}
	}
	return pl, nil
}

// Track is how to track a workload verified in mode.
func (pl *Plan) Track(mode Mode, start bpf.StartAt) bpf.TrackOptions {
	t := bpf.TrackOptions{Start: start}
	if mode == Complain {
		t.Watch = pl.watch
	} else {
		t.ExactRefusals = true
	}
	return t
}

// Findings are the calls of a recording the profile does not allow, and those it
// allows for some arguments only.
func (pl *Plan) Findings(rec *bpf.Recording) (missing, conditional []Finding) {
	for abi, m := range rec.Noted {
		arch := pl.arches[abi]
		if arch == "" {
			continue
		}
		tab, _ := profile.TableFor(arch)
		for nr, n := range m {
			name, _ := tab.Name(nr)
			f := Finding{Arch: arch, Name: name, Nr: nr, Pid: n.Pid, Comm: n.Comm}
			if name == "clone3" && pl.clone3ENOSYS {
				continue // libc falls back to clone, whose flags are judged
			}
			switch {
			case n.Refused > 0:
				f.Count = n.Refused
				missing = append(missing, f)
			case n.Watched > 0 && pl.conditional[abi][nr]:
				f.Count = n.Watched
				refused, judged := pl.judge(rec, abi, arch, name)
				switch {
				case !judged:
					conditional = append(conditional, f)
				case len(refused) > 0:
					f.Calls = refused
					missing = append(missing, f)
				}
			case n.Watched > 0:
				f.Count = n.Watched
				missing = append(missing, f)
			}
		}
	}
	sortFindings(missing)
	sortFindings(conditional)
	return missing, conditional
}

// judge reads the argument values recorded for a syscall whose arguments the
// recorder keeps, and returns the calls the profile refuses; judged is false when
// nothing was kept (another syscall, or too many values).
func (pl *Plan) judge(rec *bpf.Recording, abi int, arch specs.Arch, name string) (refused []string, judged bool) {
	si := slices.IndexFunc(profile.ArgSpecs, func(s profile.ArgSpec) bool { return s.Name == name })
	if si < 0 || pl.filter == nil {
		return nil, false
	}
	av, ok := rec.Args[abi][si]
	if !ok || av.Any {
		return nil, false
	}
	s := profile.ArgSpecs[si]
	for _, v := range av.Values {
		var args [6]uint64
		conds := s.Conds(v)
		for _, c := range conds {
			if c.Op == specs.OpMaskedEqual {
				args[c.Index] = c.ValueTwo
			} else {
				args[c.Index] = c.Value
			}
		}
		ret, err := pl.filter.Call(arch, name, args[:]...)
		if err != nil {
			return nil, false
		}
		if ret != unix.SECCOMP_RET_ALLOW && ret != unix.SECCOMP_RET_LOG {
			refused = append(refused, profile.DescribeCall(name, conds))
		}
	}
	return refused, true
}

func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(profile.CompareArches(a.Arch, b.Arch), strings.Compare(a.Name, b.Name), a.Nr-b.Nr)
	})
}

// Run runs the workload as opts say and reports what the profile does not allow.
func Run(ctx context.Context, opts Options) (*Report, error) {
	pl, err := MakePlan(opts.Profile)
	if err != nil {
		return nil, err
	}
	r, err := record.OpenWith(bpf.Options{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep := &Report{Profile: opts.ProfilePath, Mode: opts.Mode}
	var rec *bpf.Recording
	switch {
	case len(opts.Command) > 0:
		rep.Workload = fmt.Sprint(opts.Command)
		rec, rep.ExitCode, err = runHost(r, pl, opts)
	case opts.Bundle != "":
		rep.Workload = "runc bundle " + opts.Bundle
		rec, rep.ExitCode, err = runContainer(ctx, r, pl, opts)
	case len(opts.Podman) > 0:
		rep.Workload = "podman run " + fmt.Sprint(opts.Podman)
		rec, rep.ExitCode, err = runContainer(ctx, r, pl, opts)
	default:
		return nil, errors.New("nothing to verify: give a command, --bundle DIR or --podman")
	}
	if err != nil {
		return nil, err
	}
	rep.Missing, rep.Conditional = pl.Findings(rec)
	if rep.Missing == nil {
		rep.Missing = []Finding{}
	}
	return rep, nil
}

func runHost(r *bpf.Recorder, pl *Plan, opts Options) (*bpf.Recording, int, error) {
	args := opts.Command
	start := bpf.StartExec
	if opts.Mode == Enforce {
		// syscage exec installs the profile right before CMD's execve; from then on
		// its tasks run under the filter, which is where recording starts.
		args = append([]string{opts.Executable, "exec", "--profile", opts.ProfilePath, "--"}, args...)
		start = bpf.StartSeccomp
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return nil, 0, fmt.Errorf("command %q not found: %w", args[0], errors.Unwrap(err))
	}
	cmd := exec.Command(path, args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, opts.Stdout, opts.Stderr
	res, err := record.Run(r, record.Command{Cmd: cmd, Track: pl.Track(opts.Mode, start)})
	if err != nil {
		return nil, 0, err
	}
	return res.Recording, res.ExitCode, nil
}

// permissive is the filter a container runs under in complain mode: it puts every
// task under seccomp, where recording starts, and refuses nothing (LOG allows).
func permissive(arches [bpf.NumABIs]specs.Arch) *specs.LinuxSeccomp {
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActLog}},
	}
	for _, a := range arches {
		if a != "" {
			p.Architectures = append(p.Architectures, a)
		}
	}
	return p
}

// runContainer runs the container with the OCI hook pointed at a recorder served
// by this process, so the container is tracked before its filter goes in and its
// recording comes back here before the runtime returns.
func runContainer(ctx context.Context, r *bpf.Recorder, pl *Plan, opts Options) (*bpf.Recording, int, error) {
	tmp, err := os.MkdirTemp("", "syscage-verify-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(tmp)
	cfg := hooks.DefaultConfig()
	cfg.ProfilesDir = filepath.Join(tmp, "profiles")
	cfg.CompatDirs = nil
	cfg.RunDir = filepath.Join(tmp, "run")
	cfg.LogFile = filepath.Join(tmp, "hook.log")
	cfg.Timeout = hooks.Duration(10 * time.Second)
	cfgPath := filepath.Join(tmp, "hook.json")
	if err := writeJSON(cfgPath, cfg); err != nil {
		return nil, 0, err
	}
	seccomp := opts.Profile
	if opts.Mode == Complain {
		seccomp = permissive(pl.arches)
	}

	var mu sync.Mutex
	var got *bpf.Recording
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- recorder.ServeWith(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), recorder.ServeOptions{
			Recorder: r,
			Track: func(t *bpf.TrackOptions) {
				*t = pl.Track(opts.Mode, t.Start)
			},
			Finish: func(_ string, rec *bpf.Recording) error {
				mu.Lock()
				got = rec
				mu.Unlock()
				return nil
			},
			Ready: ready,
		})
	}()
	defer func() { cancel(); <-served }()
	select {
	case <-ready:
	case err := <-served:
		return nil, 0, fmt.Errorf("serving the hook: %v", err)
	}

	hook := specs.Hook{Path: opts.Executable, Args: []string{"syscage", "hook", "--config", cfgPath}}
	var cmd *exec.Cmd
	if opts.Bundle != "" {
		dir, err := bundleCopy(opts.Bundle, tmp, seccomp, hook)
		if err != nil {
			return nil, 0, err
		}
		cmd = exec.Command("runc", "run", "--bundle", dir, "syscage-verify-"+strconv.Itoa(os.Getpid()))
	} else {
		hooksDir := filepath.Join(tmp, "hooks.d")
		if err := os.Mkdir(hooksDir, 0o755); err != nil {
			return nil, 0, err
		}
		if err := writeJSON(filepath.Join(hooksDir, "syscage.json"), map[string]any{
			"version": "1.0.0", "hook": hook, "stages": []string{"prestart", "poststop"},
			"when": map[string]any{"annotations": map[string]string{`^io\.syscage\.record$`: ".+"}},
		}); err != nil {
			return nil, 0, err
		}
		sp := filepath.Join(tmp, "seccomp.json")
		if err := writeJSON(sp, seccomp); err != nil {
			return nil, 0, err
		}
		args := append([]string{"run", "--rm", "--hooks-dir", hooksDir, "--annotation", hooks.Annotation + "=verify",
			"--security-opt", "seccomp=" + sp}, opts.Podman...)
		cmd = exec.Command("podman", args...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, opts.Stdout, opts.Stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, 0, fmt.Errorf("running %s: %w", cmd.Args[0], err)
		}
		code = ee.ExitCode()
	}
	mu.Lock()
	defer mu.Unlock()
	if got == nil {
		log, _ := os.ReadFile(cfg.LogFile)
		return nil, code, fmt.Errorf("%s exited %d without the container being recorded: did it start? hook log: %s", cmd.Args[0], code, log)
	}
	return got, code, nil
}

// bundleCopy makes a bundle beside tmp that runs the user's rootfs with seccomp in
// force and the hook installed; the user's bundle is not touched.
func bundleCopy(bundle, tmp string, seccomp *specs.LinuxSeccomp, hook specs.Hook) (string, error) {
	spec, err := oci.LoadSpec(bundle)
	if err != nil {
		return "", err
	}
	if spec.Root == nil {
		return "", fmt.Errorf("%s/config.json has no root", bundle)
	}
	if !filepath.IsAbs(spec.Root.Path) {
		spec.Root.Path = filepath.Join(bundle, spec.Root.Path)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	spec.Linux.Seccomp = seccomp
	if spec.Hooks == nil {
		spec.Hooks = &specs.Hooks{}
	}
	spec.Hooks.Prestart = append(spec.Hooks.Prestart, hook)
	spec.Hooks.Poststop = append(spec.Hooks.Poststop, hook)
	if spec.Annotations == nil {
		spec.Annotations = map[string]string{}
	}
	spec.Annotations[hooks.Annotation] = "verify"
	dir := filepath.Join(tmp, "bundle")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	return dir, writeJSON(filepath.Join(dir, "config.json"), spec)
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}
