// Package host is what asking for a recording needs of package bpf, without
// loading anything or linking cilium/ebpf: whether this host can record at all
// (Check) and from when a tracked cgroup's calls count (StartAt). The OCI hook,
// which runs twice per container and as syscage-runc on every runc call, links
// this package and not package bpf, which re-exports it.
package host

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// StartAt says from which moment the syscalls of a tracked cgroup count.
type StartAt uint32

const (
	// StartNow records from the moment the cgroup is tracked.
	StartNow StartAt = iota
	// StartExec records from the first successful execve in the cgroup, keeping that
	// execve: what a command started with `syscage record -- CMD` needs.
	StartExec
	// StartSeccomp records only tasks already running under a seccomp filter: in a
	// container, exactly the calls its profile will have to allow, without the
	// runtime's own setup.
	StartSeccomp
)

// ErrNotSupported is returned when the kernel lacks something the recorder needs.
var ErrNotSupported = errors.New("not supported by this kernel")

// ErrPermission is returned when the process may not load BPF programs.
var ErrPermission = errors.New("permission denied")

// BTFPath is where the kernel exposes its BTF.
const BTFPath = "/sys/kernel/btf/vmlinux"

// Check reports, without loading anything, why this host cannot record: missing
// privileges or missing kernel BTF.
func Check() error { return CheckBTF(BTFPath) }

// CheckBTF is Check with the kernel's BTF looked for at btf.
func CheckBTF(btf string) error {
	if err := checkCaps(); err != nil {
		return err
	}
	if _, err := os.Stat(btf); err != nil {
		return fmt.Errorf("kernel lacks BTF (%s): rebuild it with CONFIG_DEBUG_INFO_BTF=y: %w", btf, ErrNotSupported)
	}
	return nil
}

// checkCaps reads the effective capabilities: loading needs CAP_SYS_ADMIN, or
// CAP_BPF with CAP_PERFMON for tracing programs.
func checkCaps() error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil // let the load itself say what is wrong
	}
	for _, line := range strings.Split(string(b), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil
		}
		const sysAdmin, perfmon, bpf = 21, 38, 39
		has := func(c uint) bool { return caps&(1<<c) != 0 }
		if has(sysAdmin) || (has(bpf) && has(perfmon)) {
			return nil
		}
		return fmt.Errorf("recording syscalls needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN): run syscage with sudo: %w", ErrPermission)
	}
	return nil
}
