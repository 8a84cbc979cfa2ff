package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/profile"
)

// hostOptions say which host a Docker profile is resolved for.
type hostOptions struct {
	arch   string
	caps   []string
	kernel string
}

func (h *hostOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&h.arch, "arch", runtime.GOARCH, "resolve Docker profiles for this native `ARCH` (amd64, arm64, SCMP_ARCH_…)")
	f.StringSliceVar(&h.caps, "cap", nil, "resolve Docker profiles for a container that also has `CAP` (repeatable; the default set is Docker's)")
	f.StringVar(&h.kernel, "kernel", "", "resolve Docker profiles for this kernel `VERSION` (default: the running kernel)")
	cmd.RegisterFlagCompletionFunc("arch", cobra.FixedCompletions([]string{"amd64", "arm64", "riscv64", "s390x", "ppc64le"}, cobra.ShellCompDirectiveNoFileComp))
}

func (h *hostOptions) host() (profile.Host, error) {
	arch, err := parseArch(h.arch)
	if err != nil {
		return profile.Host{}, err
	}
	caps := slices.Clone(profile.DefaultCaps)
	for _, c := range h.caps {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		caps = append(caps, c)
	}
	release := h.kernel
	if release == "" {
		var uts unix.Utsname
		if err := unix.Uname(&uts); err != nil {
			return profile.Host{}, fmt.Errorf("reading the kernel version: %w", err)
		}
		release = unix.ByteSliceToString(uts.Release[:])
	}
	k, err := profile.ParseKernelVersion(release)
	if err != nil {
		return profile.Host{}, fmt.Errorf("--kernel: %w", err)
	}
	return profile.Host{Arch: arch, Caps: caps, Kernel: k}, nil
}

// parseArch reads a Go architecture (amd64), a kernel one (x86_64) or a seccomp one.
func parseArch(s string) (specs.Arch, error) {
	if native, _, _, err := profile.NativeArches(s); err == nil {
		return native, nil
	}
	up := strings.ToUpper(s)
	if !strings.HasPrefix(up, "SCMP_ARCH_") {
		up = "SCMP_ARCH_" + up
	}
	if _, err := profile.TableFor(specs.Arch(up)); err == nil {
		return specs.Arch(up), nil
	}
	return "", fmt.Errorf("--arch %q: unknown architecture: use amd64, arm64, riscv64, s390x, ppc64le or an SCMP_ARCH_ name", s)
}

// input is a profile file as read, in whichever format.
type input struct {
	name   string
	format profile.Format
	oci    *specs.LinuxSeccomp
	docker *profile.Docker
	spo    *profile.SPOProfile
}

// readInput reads a profile in any format, from path or stdin ("-"). YAML is
// accepted wherever JSON is.
func readInput(path string) (*input, error) {
	var data []byte
	var err error
	name := path
	if path == "-" {
		name = "stdin"
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' && t[0] != '[' {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: neither JSON nor YAML: %w", name, err)
		}
		data = j
	}
	in := &input{name: name, format: profile.DetectFormat(data)}
	switch in.format {
	case profile.FormatDocker:
		in.docker, err = profile.ParseDocker(name, data)
	case profile.FormatSPO:
		in.spo, err = profile.ParseSPO(name, data)
	default:
		in.oci, err = profile.Parse(name, data)
	}
	return in, err
}

// profile returns the input as an OCI profile: a Docker profile resolved for host,
// a SeccompProfile without a base. withBase allows a SeccompProfile with one, whose
// base the caller merges in.
func (in *input) profile(host *hostOptions, withBase bool) (*specs.LinuxSeccomp, error) {
	switch {
	case in.docker != nil:
		h, err := host.host()
		if err != nil {
			return nil, err
		}
		return profile.ResolveDocker(in.name, in.docker, h)
	case in.spo != nil && withBase:
		return in.spo.Rules(), nil
	case in.spo != nil:
		return in.spo.OCI(in.name)
	}
	return in.oci, nil
}

// readProfile reads path as an OCI profile (see input.profile).
func readProfile(path string, host *hostOptions) (profile.Named, error) {
	in, err := readInput(path)
	if err != nil {
		return profile.Named{}, err
	}
	p, err := in.profile(host, false)
	return profile.Named{Name: in.name, Profile: p}, err
}

// writeOutput writes data to path atomically, or to stdout if path is "".
func writeOutput(stdout io.Writer, path string, data []byte) error {
	if path == "" {
		_, err := stdout.Write(data)
		return err
	}
	return profile.WriteFile(path, data)
}

type convertOptions struct {
	output     string
	to         string
	format     string
	name       string
	namespace  string
	kubeletDir string
	host       hostOptions
}

func newConvertCmd() *cobra.Command {
	opts := &convertOptions{}
	cmd := &cobra.Command{
		Use:   "convert IN [-o OUT] [--to oci|docker|spo|localhost]",
		Short: "Convert a seccomp profile between the OCI, Docker and Kubernetes formats",
		Long: `Read a seccomp profile in any format syscage knows and write it in another.

IN is an OCI profile (runc, crun, containerd, CRI-O, podman), a Docker profile
(archMap, includes/excludes), or a security-profiles-operator SeccompProfile, in
JSON or YAML; "-" reads stdin. The format is recognised by its content.

  --to oci        runtime-spec LinuxSeccomp JSON. A Docker profile is resolved as
                  Docker would on a host of --arch, for a container with Docker's
                  default capabilities plus --cap, on kernel --kernel.
  --to docker     a Docker profile. A Docker profile is kept as it is, conditions
                  and all; any other input becomes rules without conditions.
  --to spo        a SeccompProfile resource named --name (default: from OUT or IN),
                  YAML unless --format json. A SeccompProfile is kept as it is.
  --to localhost  the OCI profile, written to OUT under the kubelet's seccomp
                  directory, and the pod securityContext that uses it on stdout.

The output is in syscage's normal form: rules grouped by action, names sorted, so
converting it again gives the same bytes.`,
		Example: `  syscage convert docker.json --arch arm64 -o oci-arm64.json
  syscage convert app.json --to spo --name app --namespace shop -o app.yaml
  syscage convert app.json --to localhost -o /var/lib/kubelet/seccomp/profiles/app.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConvert(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "write to `FILE` (atomically) instead of stdout")
	f.StringVar(&opts.to, "to", "oci", "output format: oci, docker, spo or localhost")
	f.StringVar(&opts.format, "format", "", "json or yaml (yaml only for --to spo, where it is the default)")
	f.StringVar(&opts.name, "name", "", "metadata.name of a SeccompProfile (default: OUT's or IN's file name)")
	f.StringVar(&opts.namespace, "namespace", "", "metadata.namespace of a SeccompProfile")
	f.StringVar(&opts.kubeletDir, "kubelet-dir", profile.KubeletSeccompDir, "the kubelet's seccomp `DIR`, for --to localhost")
	opts.host.register(cmd)
	cmd.RegisterFlagCompletionFunc("to", cobra.FixedCompletions([]string{"oci", "docker", "spo", "localhost"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runConvert(_ context.Context, stdout, stderr io.Writer, opts *convertOptions, args []string) error {
	format := opts.format
	switch {
	case format == "" && opts.to == "spo":
		format = "yaml"
	case format == "":
		format = "json"
	case format != "json" && format != "yaml":
		return fmt.Errorf("--format %q: use json or yaml", format)
	case format == "yaml" && opts.to != "spo":
		return fmt.Errorf("--format yaml: runtimes read %s profiles as JSON only: drop --format, or use --to spo", opts.to)
	}
	var ref profile.SeccompProfileRef
	switch opts.to {
	case "oci", "docker", "spo":
	case "localhost":
		if opts.output == "" {
			return fmt.Errorf("--to localhost: name the file under %s with -o", opts.kubeletDir)
		}
		abs, err := filepath.Abs(opts.output)
		if err != nil {
			return err
		}
		if ref, err = profile.Localhost(opts.kubeletDir, abs); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--to %q: use oci, docker, spo or localhost", opts.to)
	}
	if opts.output != "" {
		if err := profile.CheckWritable(opts.output); err != nil {
			return err
		}
	}
	in, err := readInput(args[0])
	if err != nil {
		return err
	}
	var data []byte
	switch {
	case opts.to == "docker" && in.docker != nil:
		data, err = profile.MarshalDocker(in.docker)
	case opts.to == "spo" && in.spo != nil:
		s := *in.spo
		s.Metadata.Name = cmp.Or(opts.name, s.Metadata.Name)
		s.Metadata.Namespace = cmp.Or(opts.namespace, s.Metadata.Namespace)
		data, err = profile.MarshalSPO(&s)
	default:
		p, err := in.profile(&opts.host, false)
		if err != nil {
			return err
		}
		if p, err = profile.Normalize(in.name, p); err != nil {
			return err
		}
		switch opts.to {
		case "docker":
			data, err = profile.MarshalDocker(profile.DockerFromOCI(p))
		case "spo":
			var s *profile.SPOProfile
			if s, err = profile.SPOFromOCI(p, cmp.Or(opts.name, resourceName(cmp.Or(opts.output, in.name))), opts.namespace); err != nil {
				return fmt.Errorf("%s: %w", in.name, err)
			}
			data, err = profile.MarshalSPO(s)
			if err == nil && opts.output != "" {
				r := profile.SPOLocalhost(s)
				fmt.Fprintf(stderr, "syscage: once the operator installs it, pods use it with securityContext.seccompProfile: {type: %s, localhostProfile: %s}\n", r.Type, r.LocalhostProfile)
			}
		default:
			data, err = profile.Marshal(p)
		}
	}
	if err != nil {
		return err
	}
	if format == "yaml" {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return err
		}
	}
	if err := writeOutput(stdout, opts.output, data); err != nil {
		return err
	}
	if opts.to == "localhost" {
		snippet, err := yaml.Marshal(map[string]any{"securityContext": map[string]any{"seccompProfile": ref}})
		if err != nil {
			return err
		}
		_, err = stdout.Write(snippet)
		return err
	}
	return nil
}

var notName = regexp.MustCompile(`[^a-z0-9.-]+`)

// resourceName makes a Kubernetes object name from a file name: app.json → app.
func resourceName(file string) string {
	base := filepath.Base(file)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	return strings.Trim(notName.ReplaceAllString(strings.ToLower(base), "-"), "-.")
}
