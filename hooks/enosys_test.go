package hooks

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/internal/record"
)

func TestENOSYSRule(t *testing.T) {
	u := func(v uint) *uint { return &v }
	docker := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: u(1),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: u(38)},
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: u(38), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
		},
	}
	podman := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(38),
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: u(1)}}}
	denials := []record.Denial{
		{Arch: specs.ArchX86_64, Name: "clone3"}, {Arch: specs.ArchX86, Name: "clone3"},
		{Arch: specs.ArchX86_64, Name: "mount"}, {Arch: specs.ArchX86_64, Name: "personality"},
		{Arch: specs.ArchX86_64, Name: "kexec_load"}, {Arch: specs.ArchX86_64, Nr: 999},
	}
	tests := []struct {
		name   string
		filter *specs.LinuxSeccomp
		want   *specs.LinuxSyscall
	}{
		{"no filter", nil, nil},
		{"an ENOSYS rule", docker, &specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: u(38)}},
		{"an ENOSYS default", podman, &specs.LinuxSyscall{Names: []string{"clone3", "kexec_load", "personality"}, Action: specs.ActErrno, ErrnoRet: u(38)}},
		{"EPERM only", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, enosysRule(tt.filter, denials)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
