// Package record ties the kernel recorder to the profile model: it opens the
// recorder with this machine's syscall tables, runs a command born inside a cgroup
// of its own, and names what the command called.
package record

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/profile"
)

// Arches returns the seccomp architecture of each ABI the recorder keeps apart on
// this machine ("" for an ABI it does not have).
func Arches() ([bpf.NumABIs]specs.Arch, error) {
	native, compat, x32, err := profile.NativeArches(runtime.GOARCH)
	return [bpf.NumABIs]specs.Arch{bpf.Native: native, bpf.Compat: compat, bpf.X32: x32}, err
}

// Open loads the recorder, telling it the execve numbers of every ABI so that
// StartExec keeps the exec that starts a workload.
func Open() (*bpf.Recorder, error) { return OpenWith(bpf.Options{}) }

// OpenWith is Open with options; ExecSyscalls is filled in.
func OpenWith(opts bpf.Options) (*bpf.Recorder, error) {
	arches, err := Arches()
	if err != nil {
		return nil, err
	}
	for abi, arch := range arches {
		opts.ExecSyscalls[abi] = [2]int32{-1, -1}
		if arch == "" {
			continue
		}
		tab, err := profile.TableFor(arch)
		if err != nil {
			return nil, err
		}
		for i, name := range []string{"execve", "execveat"} {
			if nr, ok := tab.Number(name); ok {
				opts.ExecSyscalls[abi][i] = int32(nr)
			}
		}
		opts.ArgSyscalls[abi] = map[int]int{}
		for si, s := range profile.ArgSpecs {
			if nr, ok := tab.Number(s.Name); ok {
				opts.ArgSyscalls[abi][nr] = si
			}
		}
	}
	opts.ArgSpecs = nil
	for _, s := range profile.ArgSpecs {
		opts.ArgSpecs = append(opts.ArgSpecs, bpf.ArgSpec{
			Kind: bpf.ArgKind(s.Kind), Index0: uint8(s.Index0), Index1: uint8(s.Index1), Mask0: s.Mask0, Mask1: s.Mask1,
		})
	}
	return bpf.Open(opts)
}

// Named returns the recording's numbers keyed by seccomp architecture.
func Named(rec *bpf.Recording) (profile.Recorded, error) {
	arches, err := Arches()
	if err != nil {
		return nil, err
	}
	out := profile.Recorded{}
	for abi, nrs := range rec.Syscalls {
		if len(nrs) == 0 {
			continue
		}
		if arches[abi] == "" {
			return nil, fmt.Errorf("recorded %s syscalls, which %s does not have", bpf.ABI(abi), runtime.GOARCH)
		}
		out[arches[abi]] = nrs
	}
	return out, nil
}

// NamedArgs returns the recording's argument values keyed by seccomp architecture
// and syscall name.
func NamedArgs(rec *bpf.Recording) (profile.Args, error) {
	arches, err := Arches()
	if err != nil {
		return nil, err
	}
	out := profile.Args{}
	for abi, bySpec := range rec.Args {
		if len(bySpec) == 0 || arches[abi] == "" {
			continue
		}
		out[arches[abi]] = map[string]profile.ArgValues{}
		for si, av := range bySpec {
			if si >= len(profile.ArgSpecs) {
				return nil, fmt.Errorf("recorded argument spec %d, of which syscage has %d", si, len(profile.ArgSpecs))
			}
			out[arches[abi]][profile.ArgSpecs[si].Name] = profile.ArgValues{Values: av.Values, Any: av.Any}
		}
	}
	return out, nil
}

// Profile turns a recording into a profile that allows what it recorded within
// opts' baseline: with the argument values recorded, or (withArgs false) by
// syscall name alone.
func Profile(rec *bpf.Recording, opts profile.Options, withArgs bool) (*profile.Built, error) {
	named, err := Named(rec)
	if err != nil {
		return nil, err
	}
	if withArgs {
		if opts.Args, err = NamedArgs(rec); err != nil {
			return nil, err
		}
	} else {
		opts.Args = nil
	}
	return profile.FromRecorded(named, opts)
}

// Distinct counts the distinct syscalls of a recording over all ABIs.
func Distinct(rec *bpf.Recording) int {
	n := 0
	for _, nrs := range rec.Syscalls {
		n += len(nrs)
	}
	return n
}

// Command is a command to record.
type Command struct {
	Cmd   *exec.Cmd // not started; the caller sets Stdin, Stdout, Stderr
	Track bpf.TrackOptions
	// Progress, if set, is called about every ProgressEvery with the distinct
	// syscalls seen so far.
	Progress      func(distinct int)
	ProgressEvery time.Duration
	// Signals are forwarded to the command while it runs.
	Signals <-chan os.Signal
	// Forward decides whether a received signal is forwarded (nil: all are).
	Forward func(os.Signal) bool
}

// Result is what a recorded command did.
type Result struct {
	Recording *bpf.Recording
	ExitCode  int           // the command's, shell style: 128+N when killed by signal N
	Signaled  []os.Signal   // signals received while the command ran
	Leftover  int           // processes still in the cgroup after the command exited, killed
	Armed     time.Duration // from the call to the recorder being armed for the command
	Elapsed   time.Duration
}

// Run starts c.Cmd directly inside a fresh cgroup2 child of this process's own
// (clone3 CLONE_INTO_CGROUP: not one of its syscalls is missed), records it and all
// its descendants until it exits, then kills whatever it left running in the
// cgroup, reads the recording and removes the cgroup.
func Run(r *bpf.Recorder, c Command) (res *Result, err error) {
	start := time.Now()
	self, err := cgroups.Self()
	if err != nil {
		return nil, err
	}
	g, err := cgroups.Create(self, "syscage")
	if err != nil {
		return nil, err
	}
	res = &Result{}
	defer func() {
		// Normally empty by now; this covers the error paths.
		_, kerr := g.Kill(5 * time.Second)
		err = errors.Join(err, kerr, g.Remove())
		if err != nil {
			res = nil
		}
	}()
	if err := r.TrackWith(g.ID, c.Track); err != nil {
		return res, err
	}
	defer func() {
		if uerr := r.Untrack(g.ID); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	res.Armed = time.Since(start)

	dir, err := g.Open()
	if err != nil {
		return res, err
	}
	if c.Cmd.SysProcAttr == nil {
		c.Cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	c.Cmd.SysProcAttr.UseCgroupFD = true
	c.Cmd.SysProcAttr.CgroupFD = int(dir.Fd())
	err = c.Cmd.Start()
	dir.Close()
	if err != nil {
		return res, fmt.Errorf("starting %s: %w", c.Cmd.Path, err)
	}

	done := make(chan error, 1)
	go func() { done <- c.Cmd.Wait() }()
	var tick <-chan time.Time
	if c.Progress != nil {
		every := c.ProgressEvery
		if every == 0 {
			every = 200 * time.Millisecond
		}
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	var waitErr error
wait:
	for {
		select {
		case waitErr = <-done:
			break wait
		case <-tick:
			if rec, err := r.Read(g.ID); err == nil {
				c.Progress(Distinct(rec))
			}
		case sig := <-c.Signals:
			res.Signaled = append(res.Signaled, sig)
			if c.Forward == nil || c.Forward(sig) {
				c.Cmd.Process.Signal(sig)
			}
		}
	}
	res.Elapsed = time.Since(start)
	res.ExitCode = exitCode(c.Cmd.ProcessState, waitErr)

	// The recording is read after the command's descendants are gone, so that
	// what they did on the way out is in it too.
	if n, err := g.Kill(5 * time.Second); err != nil {
		return res, err
	} else {
		res.Leftover = n
	}
	res.Recording, err = r.Read(g.ID)
	return res, err
}

func exitCode(ps *os.ProcessState, waitErr error) int {
	if ps == nil {
		if waitErr != nil {
			return 1
		}
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// Denial is a syscall a seccomp filter refused while the cgroup was recorded.
type Denial struct {
	Arch  specs.Arch `json:"arch"`
	Name  string     `json:"name,omitempty"` // "" when the table has none
	Nr    int        `json:"nr"`
	Count uint64     `json:"count"`
}

// Denials names the refused calls of a recording, sorted by arch order and name.
func Denials(rec *bpf.Recording) ([]Denial, error) {
	arches, err := Arches()
	if err != nil {
		return nil, err
	}
	var out []Denial
	for abi, m := range rec.Noted {
		if len(m) == 0 || arches[abi] == "" {
			continue
		}
		tab, err := profile.TableFor(arches[abi])
		if err != nil {
			return nil, err
		}
		for nr, n := range m {
			if n.Refused == 0 {
				continue
			}
			name, _ := tab.Name(nr)
			out = append(out, Denial{Arch: arches[abi], Name: name, Nr: nr, Count: n.Refused})
		}
	}
	slices.SortFunc(out, func(a, b Denial) int {
		return cmp.Or(profile.CompareArches(a.Arch, b.Arch), strings.Compare(a.Name, b.Name), a.Nr-b.Nr)
	})
	return out, nil
}
