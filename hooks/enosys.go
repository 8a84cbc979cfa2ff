package hooks

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/internal/record"
)

// enosysRule keeps, for the calls the filter in force refused while a container
// was recorded, the answer ENOSYS where that filter gave it. Docker's and
// podman's default profiles answer clone3 with ENOSYS so that glibc falls back to
// clone; the workload ran fine with that answer, and needs it again under its own
// profile. Under the profile's default errno (EPERM) glibc's pthread_create would
// fail, and runc's own ENOSYS covers only calls newer than any the profile names
// (a recorded profile names faccessat2, newer than clone3). Calls the filter
// refused otherwise, or only under argument conditions, are left to the default.
// It returns nil when there are none.
func enosysRule(filter *specs.LinuxSeccomp, denials []record.Denial) *specs.LinuxSyscall {
	if filter == nil {
		return nil
	}
	var names []string
	for _, d := range denials {
		if d.Name != "" && answersENOSYS(filter, d.Name) && !slices.Contains(names, d.Name) {
			names = append(names, d.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	errno := uint(unix.ENOSYS)
	return &specs.LinuxSyscall{Names: names, Action: specs.ActErrno, ErrnoRet: &errno}
}

// answersENOSYS reports whether the filter's verdict on name, whatever its
// arguments, is ERRNO(ENOSYS): the first rule that names it, else the default.
func answersENOSYS(filter *specs.LinuxSeccomp, name string) bool {
	isENOSYS := func(a specs.LinuxSeccompAction, errno *uint) bool {
		return a == specs.ActErrno && errno != nil && *errno == uint(unix.ENOSYS)
	}
	for _, r := range filter.Syscalls {
		if !slices.Contains(r.Names, name) {
			continue
		}
		if len(r.Args) > 0 {
			return false
		}
		return isENOSYS(r.Action, r.ErrnoRet)
	}
	return isENOSYS(filter.DefaultAction, filter.DefaultErrnoRet)
}
