package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Docker is a profile in the Docker (moby) format: the OCI fields, plus rules that
// apply only on some architectures, with some capabilities or from some kernel on.
// Docker resolves it for the host it runs on (ResolveDocker); an OCI profile is also
// a valid Docker profile. Fields are in the order moby writes them.
type Docker struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	// ArchMap lists, per native architecture, the compat architectures a host of
	// that architecture also runs.
	ArchMap  []DockerArch    `json:"archMap,omitempty"`
	Syscalls []DockerSyscall `json:"syscalls"`
}

// DockerArch is one archMap entry.
type DockerArch struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// DockerSyscall is a rule with the conditions under which it applies.
type DockerSyscall struct {
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	// Name is the older spelling of a single-name rule.
	Name     string        `json:"name,omitempty"`
	Comment  string        `json:"comment,omitempty"`
	Includes *DockerFilter `json:"includes,omitempty"`
	Excludes *DockerFilter `json:"excludes,omitempty"`
}

// DockerFilter is a condition on the host: all of Caps held and Arches naming it
// (in moby's GOARCH-like names: amd64, arm64, x86, s390x…), running at least
// MinKernel, for includes; any of them, for excludes.
type DockerFilter struct {
	Caps      []string       `json:"caps,omitempty"`
	Arches    []string       `json:"arches,omitempty"`
	MinKernel *KernelVersion `json:"minKernel,omitempty"`
}

// KernelVersion is a kernel release as "major.minor", as Docker profiles write it.
type KernelVersion struct {
	Major, Minor uint64
}

func (k KernelVersion) String() string {
	if k.Major == 0 && k.Minor == 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", k.Major, k.Minor)
}

// Less reports whether k is an older release than o.
func (k KernelVersion) Less(o KernelVersion) bool {
	return k.Major < o.Major || k.Major == o.Major && k.Minor < o.Minor
}

// ParseKernelVersion reads "6.1" or a full release such as "6.1.0-13-amd64".
func ParseKernelVersion(s string) (KernelVersion, error) {
	major, rest, _ := strings.Cut(s, ".")
	minor, _, _ := strings.Cut(rest, ".")
	minor, _, _ = strings.Cut(minor, "-")
	var k KernelVersion
	var err1, err2 error
	k.Major, err1 = strconv.ParseUint(major, 10, 8)
	k.Minor, err2 = strconv.ParseUint(minor, 10, 8)
	if err1 != nil || err2 != nil || k == (KernelVersion{}) {
		return KernelVersion{}, fmt.Errorf("kernel version %q: want <major>.<minor>, e.g. \"6.1\"", s)
	}
	return k, nil
}

func (k KernelVersion) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

func (k *KernelVersion) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("minKernel: want a string such as \"4.8\": %w", err)
	}
	if s == "" {
		*k = KernelVersion{}
		return nil
	}
	// moby accepts exactly two parts; so do we, so that both read a file alike.
	if strings.Count(s, ".") != 1 {
		return fmt.Errorf("minKernel %q: want <major>.<minor>, e.g. \"4.8\"", s)
	}
	v, err := ParseKernelVersion(s)
	if err != nil {
		return fmt.Errorf("minKernel %q: want <major>.<minor>, e.g. \"4.8\"", s)
	}
	*k = v
	return nil
}

// ParseDocker decodes a Docker (moby) seccomp profile. name is used in errors.
func ParseDocker(name string, data []byte) (*Docker, error) {
	var d Docker
	if err := decodeStrict(name, data, &d); err != nil {
		return nil, err
	}
	if d.DefaultAction == "" {
		return nil, fmt.Errorf("%s: defaultAction is missing: set it, e.g. \"SCMP_ACT_ERRNO\"", name)
	}
	if len(d.Architectures) > 0 && len(d.ArchMap) > 0 {
		return nil, fmt.Errorf("%s: both architectures and archMap are set: Docker uses one or the other, remove one", name)
	}
	for i, sc := range d.Syscalls {
		switch {
		case sc.Name != "" && len(sc.Names) > 0:
			return nil, fmt.Errorf("%s: syscalls[%d]: both name and names are set: move %q into names", name, i, sc.Name)
		case sc.Name == "" && len(sc.Names) == 0:
			return nil, fmt.Errorf("%s: syscalls[%d].names is empty: list at least one syscall or remove the rule", name, i)
		case sc.Action == "":
			return nil, fmt.Errorf("%s: syscalls[%d].action is missing: set it, e.g. \"SCMP_ACT_ALLOW\"", name, i)
		}
	}
	return &d, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown fields.
func decodeStrict(name string, data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%s: empty file: not a seccomp profile", name)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn):
			return fmt.Errorf("%s: invalid JSON at byte %d: %w", name, syn.Offset, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%s: truncated JSON (ends before the profile does)", name)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: trailing data after the profile", name)
	}
	return nil
}

// MarshalDocker encodes a Docker profile as Marshal does an OCI one.
func MarshalDocker(d *Docker) ([]byte, error) {
	if d.Syscalls == nil {
		// moby writes null for no rules; [] reads the same and says what it means.
		c := *d
		c.Syscalls = []DockerSyscall{}
		d = &c
	}
	return marshalIndent(d)
}

func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding profile: %w", err)
	}
	return buf.Bytes(), nil
}

// DockerFromOCI returns p as a Docker profile: unconditional rules, and the
// architectures as given (Docker uses an architectures list as is, on every host).
func DockerFromOCI(p *specs.LinuxSeccomp) *Docker {
	d := &Docker{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  p.DefaultErrnoRet,
		Architectures:    p.Architectures,
		Flags:            p.Flags,
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
		Syscalls:         []DockerSyscall{},
	}
	for _, sc := range p.Syscalls {
		d.Syscalls = append(d.Syscalls, DockerSyscall{Names: sc.Names, Action: sc.Action, ErrnoRet: sc.ErrnoRet, Args: sc.Args})
	}
	return d
}

// DefaultCaps is the capability bounding set Docker and containerd give a container
// by default.
var DefaultCaps = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP",
	"CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// Host is what a Docker profile is resolved for.
type Host struct {
	// Arch is the host's native architecture (SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64…).
	Arch specs.Arch
	// Caps is the container's capability bounding set.
	Caps []string
	// Kernel is the host's kernel; needed only by rules with a minKernel condition.
	Kernel KernelVersion
}

// dockerArchNames are moby's names for native architectures, used by the arches
// conditions (moby's goToNative and nativeToSeccomp, inverted).
var dockerArchNames = map[specs.Arch]string{
	specs.ArchX86:         "x86",
	specs.ArchX86_64:      "amd64",
	specs.ArchARM:         "arm",
	specs.ArchAARCH64:     "arm64",
	specs.ArchLOONGARCH64: "loongarch64",
	specs.ArchMIPS64:      "mips64",
	specs.ArchMIPS64N32:   "mips64n32",
	specs.ArchMIPSEL64:    "mipsel64",
	specs.ArchMIPSEL64N32: "mips3l64n32", // sic, as moby spells it
	specs.ArchMIPSEL:      "mipsel",
	specs.ArchPPC:         "ppc",
	specs.ArchPPC64:       "ppc64",
	specs.ArchPPC64LE:     "ppc64le",
	specs.ArchRISCV64:     "riscv64",
	specs.ArchS390:        "s390",
	specs.ArchS390X:       "s390x",
}

// ResolveDocker returns the OCI profile Docker would run a container with on host:
// the archMap entry of the host's architecture, and the rules whose conditions hold.
// It follows moby's profiles/seccomp exactly, including that an includes filter
// needs all its caps while an excludes filter needs any one. Rules and names keep
// their order; Normalize sorts them.
func ResolveDocker(name string, d *Docker, host Host) (*specs.LinuxSeccomp, error) {
	native, ok := dockerArchNames[host.Arch]
	if !ok {
		return nil, fmt.Errorf("%s: Docker has no native architecture %s: use one of %s", name, host.Arch, strings.Join(dockerNativeArches(), ", "))
	}
	p := &specs.LinuxSeccomp{
		DefaultAction:    d.DefaultAction,
		DefaultErrnoRet:  d.DefaultErrnoRet,
		Architectures:    slices.Clone(d.Architectures),
		Flags:            slices.Clone(d.Flags),
		ListenerPath:     d.ListenerPath,
		ListenerMetadata: d.ListenerMetadata,
	}
	for _, a := range d.ArchMap {
		if a.Arch == host.Arch {
			p.Architectures = append(append(p.Architectures, a.Arch), a.SubArches...)
			break
		}
	}
	for i, sc := range d.Syscalls {
		if ex := sc.Excludes; ex != nil {
			if slices.Contains(ex.Arches, native) || slices.ContainsFunc(ex.Caps, func(c string) bool { return slices.Contains(host.Caps, c) }) {
				continue
			}
			if ex.MinKernel != nil {
				newer, err := kernelAtLeast(name, i, "excludes", host.Kernel, *ex.MinKernel)
				if err != nil {
					return nil, err
				}
				if newer {
					continue
				}
			}
		}
		if in := sc.Includes; in != nil {
			if len(in.Arches) > 0 && !slices.Contains(in.Arches, native) {
				continue
			}
			if slices.ContainsFunc(in.Caps, func(c string) bool { return !slices.Contains(host.Caps, c) }) {
				continue
			}
			if in.MinKernel != nil {
				newer, err := kernelAtLeast(name, i, "includes", host.Kernel, *in.MinKernel)
				if err != nil {
					return nil, err
				}
				if !newer {
					continue
				}
			}
		}
		names := sc.Names
		if sc.Name != "" {
			names = []string{sc.Name}
		}
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names: slices.Clone(names), Action: sc.Action, ErrnoRet: sc.ErrnoRet, Args: slices.Clone(sc.Args),
		})
	}
	return p, nil
}

func kernelAtLeast(name string, i int, field string, host, min KernelVersion) (bool, error) {
	if host == (KernelVersion{}) {
		return false, fmt.Errorf("%s: syscalls[%d].%s.minKernel %s: name the kernel to resolve the profile for", name, i, field, min)
	}
	return !host.Less(min), nil
}

func dockerNativeArches() []string {
	var out []string
	for _, a := range sortArches(slices.Collect(maps.Keys(dockerArchNames))) {
		out = append(out, string(a))
	}
	return out
}

// DockerRules returns every rule of d, whatever its conditions, in order, and every
// architecture it names: the view in which d is validated, since its paths are the
// file's.
func DockerRules(d *Docker) *specs.LinuxSeccomp {
	p := &specs.LinuxSeccomp{
		DefaultAction:    d.DefaultAction,
		DefaultErrnoRet:  d.DefaultErrnoRet,
		Architectures:    slices.Clone(d.Architectures),
		Flags:            d.Flags,
		ListenerPath:     d.ListenerPath,
		ListenerMetadata: d.ListenerMetadata,
	}
	for _, a := range d.ArchMap {
		p.Architectures = append(append(p.Architectures, a.Arch), a.SubArches...)
	}
	p.Architectures = sortArches(p.Architectures)
	for _, sc := range d.Syscalls {
		names := sc.Names
		if sc.Name != "" {
			names = []string{sc.Name}
		}
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: names, Action: sc.Action, ErrnoRet: sc.ErrnoRet, Args: sc.Args})
	}
	return p
}
