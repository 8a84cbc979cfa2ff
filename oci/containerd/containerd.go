// Package containerd is syscage's glue for containerd's Go client: a SpecOpts
// that puts a profile on a container. It is a package of its own so that the hook
// and syscage-runc, which run on every container start, link no containerd client.
package containerd

import (
	"context"
	"errors"

	"github.com/containerd/containerd/v2/core/containers"
	coci "github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithProfile is a containerd SpecOpts that enforces p on the container:
//
//	client.NewContainer(ctx, id, containerd.WithNewSpec(containerd.WithProfile(p), ...))
//
// It replaces the spec's seccomp profile (containerd's own default included), so it
// belongs after any option that sets one.
func WithProfile(p *specs.LinuxSeccomp) coci.SpecOpts {
	return func(_ context.Context, _ coci.Client, _ *containers.Container, s *coci.Spec) error {
		if p == nil {
			return errors.New("containerd.WithProfile: nil profile")
		}
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		cp := *p // the caller's profile stays the caller's
		s.Linux.Seccomp = &cp
		return nil
	}
}
