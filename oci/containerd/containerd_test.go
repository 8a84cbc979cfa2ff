package containerd

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	coci "github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var testProfile = &specs.LinuxSeccomp{
	DefaultAction: specs.ActErrno,
	Syscalls:      []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}},
}

func TestWithProfile(t *testing.T) {
	spec := &coci.Spec{}
	if err := coci.ApplyOpts(context.Background(), nil, &containers.Container{ID: "c"}, spec, WithProfile(testProfile)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testProfile, spec.Linux.Seccomp); diff != "" {
		t.Errorf("seccomp (-want +got):\n%s", diff)
	}
	spec.Linux.Seccomp.DefaultAction = specs.ActAllow
	if testProfile.DefaultAction != specs.ActErrno {
		t.Error("the spec shares the caller's profile")
	}
	// Over containerd's own defaults, as a client would build it.
	spec, err := coci.GenerateSpec(namespaces.WithNamespace(context.Background(), "test"), nil, &containers.Container{ID: "c"}, WithProfile(testProfile))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Linux == nil || spec.Linux.Seccomp == nil || spec.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("GenerateSpec: seccomp %+v", spec.Linux)
	}
}
