package seccomp

import (
	"encoding/binary"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/profile"
)

// Data is struct seccomp_data, what a filter sees of a syscall.
type Data struct {
	Nr                 uint32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// Run interprets the filter on d as the kernel would and returns its SECCOMP_RET_*
// value. It lets the compiler's output be checked without installing it, and lets
// syscage tell before it runs a command whether the profile allows execve.
func (f *Filter) Run(d Data) (uint32, error) {
	var buf [64]byte
	order := binary.ByteOrder(binary.LittleEndian)
	if f.bigEndian {
		order = binary.BigEndian
	}
	order.PutUint32(buf[0:], d.Nr)
	order.PutUint32(buf[4:], d.Arch)
	order.PutUint64(buf[8:], d.InstructionPointer)
	for i, a := range d.Args {
		order.PutUint64(buf[16+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(f.Program); pc++ {
		in := f.Program[pc]
		switch in.Code {
		case opLdAbsW:
			if in.K+4 > uint32(len(buf)) || in.K%4 != 0 {
				return 0, fmt.Errorf("instruction %d: load at offset %d", pc, in.K)
			}
			acc = order.Uint32(buf[in.K:])
		case opAndK:
			acc &= in.K
		case opJa:
			pc += int(in.K)
		case opJeqK, opJgtK, opJgeK, opJsetK:
			var taken bool
			switch in.Code {
			case opJeqK:
				taken = acc == in.K
			case opJgtK:
				taken = acc > in.K
			case opJgeK:
				taken = acc >= in.K
			case opJsetK:
				taken = acc&in.K != 0
			}
			if taken {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case opRetK:
			return in.K, nil
		default:
			return 0, fmt.Errorf("instruction %d: opcode %#x not interpreted", pc, in.Code)
		}
	}
	return 0, fmt.Errorf("the program ends without returning")
}

// Action names a SECCOMP_RET_* value, for messages: "errno 1", "kill-process".
func Action(ret uint32) string {
	data := ret & unix.SECCOMP_RET_DATA
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "kill-process"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "kill-thread"
	case unix.SECCOMP_RET_TRAP:
		return "trap"
	case unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("errno %d (%s)", data, unix.ErrnoName(unix.Errno(data)))
	case unix.SECCOMP_RET_USER_NOTIF:
		return "notify"
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("trace %d", data)
	case unix.SECCOMP_RET_LOG:
		return "log"
	case unix.SECCOMP_RET_ALLOW:
		return "allow"
	}
	return fmt.Sprintf("%#x", ret)
}

// Call returns what the filter does with syscall name made through arch with args.
func (f *Filter) Call(arch specs.Arch, name string, args ...uint64) (uint32, error) {
	for _, ab := range f.abis {
		if ab.arch != arch {
			continue
		}
		t, err := profile.TableFor(arch)
		if err != nil {
			return 0, err
		}
		nr, ok := t.Number(name)
		if !ok {
			return 0, fmt.Errorf("%s has no syscall %q", arch, name)
		}
		d := Data{Nr: uint32(nr) + ab.base, Arch: ab.audit}
		copy(d.Args[:], args)
		return f.Run(d)
	}
	return 0, fmt.Errorf("the filter has no architecture %s", arch)
}
