package profile

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SPO API version and kind of the security-profiles-operator's SeccompProfile.
const (
	SPOAPIVersion = "security-profiles-operator.x-k8s.io/v1beta1"
	SPOKind       = "SeccompProfile"
)

// SPOProfile is a security-profiles-operator SeccompProfile custom resource. The
// operator installs it on every node as <kubelet seccomp dir>/operator/<namespace>/<name>.json.
type SPOProfile struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   SPOMetadata `json:"metadata"`
	Spec       SPOSpec     `json:"spec"`
}

// SPOMetadata is the part of the object metadata a profile author sets. What the
// API server adds (uid, resourceVersion, managedFields…) is dropped on reading.
type SPOMetadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// UnmarshalJSON reads metadata leniently: a resource exported from a cluster
// carries server-set fields that are no part of the profile.
func (m *SPOMetadata) UnmarshalJSON(data []byte) error {
	type plain SPOMetadata
	return json.Unmarshal(data, (*plain)(m))
}

// SPOSpec is the SeccompProfile spec, fields in the operator's order.
type SPOSpec struct {
	Disabled bool `json:"disabled,omitempty"`
	// BaseProfileName names a profile (in the cluster, or oci://…) the operator
	// unions into this one.
	BaseProfileName  string                   `json:"baseProfileName,omitempty"`
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []SPOSyscall             `json:"syscalls,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
}

// SPOSyscall is a rule. The operator's types cannot say errnoRet 0, nor values of
// 2^63 and more.
type SPOSyscall struct {
	Names    []string                 `json:"names"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet uint                     `json:"errnoRet,omitempty"`
	Args     []SPOArg                 `json:"args,omitempty"`
}

// SPOArg is an argument condition.
type SPOArg struct {
	Index    uint                       `json:"index"`
	Value    uint64                     `json:"value,omitempty"`
	ValueTwo uint64                     `json:"valueTwo,omitempty"`
	Op       specs.LinuxSeccompOperator `json:"op"`
}

// ParseSPO decodes a SeccompProfile resource from JSON (YAML is converted to JSON
// by the caller). The status a cluster adds is ignored.
func ParseSPO(name string, data []byte) (*SPOProfile, error) {
	var in struct {
		SPOProfile
		Status json.RawMessage `json:"status,omitempty"`
	}
	if err := decodeStrict(name, data, &in); err != nil {
		return nil, err
	}
	s := &in.SPOProfile
	if s.Kind != SPOKind || !strings.HasPrefix(s.APIVersion, "security-profiles-operator.x-k8s.io/") {
		return nil, fmt.Errorf("%s: kind %q, apiVersion %q: not a SeccompProfile of %s", name, s.Kind, s.APIVersion, SPOAPIVersion)
	}
	if s.Spec.DefaultAction == "" {
		return nil, fmt.Errorf("%s: spec.defaultAction is missing: set it, e.g. \"SCMP_ACT_ERRNO\"", name)
	}
	for i, sc := range s.Spec.Syscalls {
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("%s: spec.syscalls[%d].names is empty: list at least one syscall or remove the rule", name, i)
		}
		if sc.Action == "" {
			return nil, fmt.Errorf("%s: spec.syscalls[%d].action is missing: set it, e.g. \"SCMP_ACT_ALLOW\"", name, i)
		}
	}
	return s, nil
}

// MarshalSPO encodes a SeccompProfile as JSON, as Marshal does a profile.
func MarshalSPO(s *SPOProfile) ([]byte, error) { return marshalIndent(s) }

// SPOFromOCI wraps p in a SeccompProfile called name (in namespace, if set). The
// operator's spec has no defaultErrnoRet: a default errno other than EPERM cannot
// be carried over and is an error, as are an errnoRet of 0 and argument values of
// 2^63 and more, which its types cannot hold.
func SPOFromOCI(p *specs.LinuxSeccomp, name, namespace string) (*SPOProfile, error) {
	if name == "" {
		return nil, fmt.Errorf("a SeccompProfile needs a name: set one")
	}
	if e := effectiveErrno(p.DefaultAction, p.DefaultErrnoRet); hasErrno(p.DefaultAction) && e != eperm {
		return nil, fmt.Errorf("defaultErrnoRet %d: a SeccompProfile has no defaultErrnoRet (it returns EPERM): use errno 1 or keep the OCI format", e)
	}
	s := &SPOProfile{
		APIVersion: SPOAPIVersion,
		Kind:       SPOKind,
		Metadata:   SPOMetadata{Name: name, Namespace: namespace},
		Spec: SPOSpec{
			DefaultAction:    p.DefaultAction,
			Architectures:    p.Architectures,
			ListenerPath:     p.ListenerPath,
			ListenerMetadata: p.ListenerMetadata,
			Flags:            p.Flags,
		},
	}
	for i, sc := range p.Syscalls {
		r := SPOSyscall{Names: sc.Names, Action: sc.Action}
		if sc.ErrnoRet != nil {
			if *sc.ErrnoRet == 0 {
				return nil, fmt.Errorf("syscalls[%d].errnoRet 0: a SeccompProfile cannot say errno 0: use SCMP_ACT_ALLOW or another errno", i)
			}
			r.ErrnoRet = *sc.ErrnoRet
		}
		for j, a := range sc.Args {
			if a.Value > math.MaxInt64 || a.ValueTwo > math.MaxInt64 {
				return nil, fmt.Errorf("syscalls[%d].args[%d]: value %#x: a SeccompProfile holds values below 2^63 only", i, j, max(a.Value, a.ValueTwo))
			}
			r.Args = append(r.Args, SPOArg{Index: a.Index, Value: a.Value, ValueTwo: a.ValueTwo, Op: a.Op})
		}
		s.Spec.Syscalls = append(s.Spec.Syscalls, r)
	}
	return s, nil
}

// OCI returns the profile s describes. It fails when s names a base profile, which
// only the operator can fetch: merge it in with the base given as a file instead
// (MergeBase). An ERRNO default gets defaultErrnoRet 1, which is what the
// operator's runtime returns.
func (s *SPOProfile) OCI(name string) (*specs.LinuxSeccomp, error) {
	if s.Spec.BaseProfileName != "" {
		return nil, fmt.Errorf("%s: spec.baseProfileName %q: the base profile is in the cluster: pass it as a file with --base, or remove baseProfileName", name, s.Spec.BaseProfileName)
	}
	return s.Rules(), nil
}

// Rules returns the profile s describes without its base profile, if it names one.
func (s *SPOProfile) Rules() *specs.LinuxSeccomp {
	p := &specs.LinuxSeccomp{
		DefaultAction:    s.Spec.DefaultAction,
		Architectures:    s.Spec.Architectures,
		ListenerPath:     s.Spec.ListenerPath,
		ListenerMetadata: s.Spec.ListenerMetadata,
		Flags:            s.Spec.Flags,
	}
	if hasErrno(p.DefaultAction) {
		p.DefaultErrnoRet = ptrIf(true, eperm)
	}
	for _, sc := range s.Spec.Syscalls {
		r := specs.LinuxSyscall{Names: sc.Names, Action: sc.Action, ErrnoRet: ptrIf(sc.ErrnoRet != 0, sc.ErrnoRet)}
		for _, a := range sc.Args {
			r.Args = append(r.Args, specs.LinuxSeccompArg{Index: a.Index, Value: a.Value, ValueTwo: a.ValueTwo, Op: a.Op})
		}
		p.Syscalls = append(p.Syscalls, r)
	}
	return p
}

// MergeBase returns s with its base profile, read by the caller, merged in: what
// the operator installs on the nodes.
func (s *SPOProfile) MergeBase(name string, base Named) (*specs.LinuxSeccomp, error) {
	if s.Spec.BaseProfileName == "" {
		return nil, fmt.Errorf("%s: spec.baseProfileName is not set: there is no base to merge", name)
	}
	return Merge(Named{Name: name, Profile: s.Rules()}, base)
}

// KubeletSeccompDir is where the kubelet looks for Localhost profiles by default
// (<kubelet root dir>/seccomp).
const KubeletSeccompDir = "/var/lib/kubelet/seccomp"

// SeccompProfileRef is a pod or container securityContext.seccompProfile.
type SeccompProfileRef struct {
	Type             string `json:"type"`
	LocalhostProfile string `json:"localhostProfile,omitempty"`
}

// Localhost returns the seccompProfile that makes a pod use the profile file at
// file, which must lie under dir, the kubelet's seccomp directory. The kubelet
// wants the path relative to dir, without "..".
func Localhost(dir, file string) (SeccompProfileRef, error) {
	dir, file = path.Clean(dir), path.Clean(file)
	rel, ok := strings.CutPrefix(file, strings.TrimSuffix(dir, "/")+"/")
	if !ok || rel == "" || strings.HasPrefix(rel, "../") {
		return SeccompProfileRef{}, fmt.Errorf("%s is not under the kubelet's seccomp directory %s: write it there (e.g. %s/profiles/%s), or name the directory with --kubelet-dir", file, dir, dir, path.Base(file))
	}
	return SeccompProfileRef{Type: "Localhost", LocalhostProfile: rel}, nil
}

// SPOLocalhost is where the operator installs s on a node, as a seccompProfile.
func SPOLocalhost(s *SPOProfile) SeccompProfileRef {
	file := s.Metadata.Name
	if !strings.HasSuffix(file, ".json") {
		file += ".json"
	}
	return SeccompProfileRef{Type: "Localhost", LocalhostProfile: path.Join("operator", path.Base(s.Metadata.Namespace), path.Base(file))}
}
