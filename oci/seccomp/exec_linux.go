package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExecError is a failure of Exec after the filter was installed: the calling
// thread is then confined and only fit to report and exit.
type ExecError struct {
	Path string
	Err  syscall.Errno
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("executing %s under the filter: %v", e.Path, e.Err)
}

func (e *ExecError) Unwrap() error { return e.Err }

// Exec installs f and replaces the process with path (argv, envv). It returns only
// on failure.
//
// The filter goes on the calling thread alone, which then calls execve at once:
// nothing runs between the two but the execve itself, so the profile must allow
// execve (Compile's caller can check with Filter.Call). execve ends every other
// thread before CMD's first instruction, so the whole of CMD, and every thread and
// child it makes, runs under the filter. SECCOMP_FILTER_FLAG_TSYNC is not used on
// purpose: it would also confine the Go runtime's own threads (sysmon sleeping,
// idle threads waking) for the time execve takes, and a strict profile (say
// SCMP_ACT_KILL_PROCESS without nanosleep or futex) would then kill syscage at
// random before CMD starts. runc makes the same choice (it ignores TSYNC: "other
// threads will be terminated after exec anyway").
//
// noNewPrivs sets PR_SET_NO_NEW_PRIVS first, as runc does unless the container's
// process.noNewPrivileges is false; without it the kernel asks for CAP_SYS_ADMIN.
func Exec(f *Filter, path string, argv, envv []string, noNewPrivs bool) error {
	if len(f.Program) == 0 {
		return errors.New("empty filter")
	}
	// Everything that allocates or may make a syscall happens before the filter.
	pathp, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envvp, err := syscall.SlicePtrFromStrings(envv)
	if err != nil {
		return err
	}
	restoreNofile()
	prog := unix.SockFprog{Len: uint16(len(f.Program)), Filter: &f.Program[0]}

	// Never unlocked: a goroutine that exits locked takes its thread with it, so a
	// confined thread is never handed back to the scheduler.
	runtime.LockOSThread()
	if noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	// A goroutine that has run for 10ms is preempted with a signal, whose return
	// (rt_sigreturn) the filter would see; yielding first restarts that clock for the
	// few microseconds until execve.
	runtime.Gosched()
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.Flags), uintptr(unsafe.Pointer(&prog))); e != 0 {
		if e == unix.EACCES && !noNewPrivs {
			return fmt.Errorf("installing the filter without no_new_privs needs CAP_SYS_ADMIN: %w", e)
		}
		return fmt.Errorf("installing the filter: %w", e)
	}
	_, _, e := unix.RawSyscall(unix.SYS_EXECVE,
		uintptr(unsafe.Pointer(pathp)),
		uintptr(unsafe.Pointer(&argvp[0])),
		uintptr(unsafe.Pointer(&envvp[0])))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(f)
	return &ExecError{Path: path, Err: e}
}

// restoreNofile gives RLIMIT_NOFILE back the soft limit syscage started with. Go
// raises it at start-up and lowers it again in syscall.Exec and os/exec, but keeps
// the original to itself; a syscall.Exec of "" restores it (prlimit64) and then
// fails with ENOENT without executing anything. CMD thus gets the limit it would
// have had without syscage, and the filter never sees the prlimit64.
func restoreNofile() {
	_ = syscall.Exec("", []string{""}, nil)
}
