package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/profiles"
)

type checkOptions struct {
	format string
	host   hostOptions
}

func newCheckCmd() *cobra.Command {
	opts := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate seccomp profiles and warn about what they allow",
		Long: `Validate each profile as runc and libseccomp would read it: known actions,
operators, architectures and flags; every syscall name known on the architectures
the profile lists; no syscall given two actions; argument indexes 0 to 5; errnoRet
only with SCMP_ACT_ERRNO and SCMP_ACT_TRACE. Each problem is reported with its JSON
path and how to fix it.

Then lint it: dangerous syscalls it allows (bpf, ptrace, mount, unshare, keyctl,
io_uring_*, …), what it allows that containerd's default profile forbids, and
calls no working profile may forbid (exit, exit_group, rt_sigreturn,
restart_syscall).

Exit status: 0 clean (notes only), 1 invalid, 2 valid with warnings.
--format github writes GitHub Actions workflow commands (::error file=…,line=…::…),
which show on the lines of a pull request; --format sarif writes SARIF 2.1.0 for
code scanning.
A Docker profile is validated as written and linted as resolved for --arch and
--cap.`,
		Example: `  syscage check app.json
  syscage check --format json app.json
  syscage check --format github app.json   # in a GitHub Actions step`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, args)
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", "text", "text, json, github (workflow commands) or sarif")
	opts.host.register(cmd)
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "json", formatGitHub, formatSARIF}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// fileFindings are the findings of one file, for --format json.
type fileFindings struct {
	File     string            `json:"file"`
	Findings []profile.Finding `json:"findings"`
}

func runCheck(_ context.Context, stdout, _ io.Writer, opts *checkOptions, args []string) error {
	if err := reportFormat(opts.format, "text", "json"); err != nil {
		return err
	}
	worst := profile.Note
	var all []fileFindings
	var report []finding
	for _, path := range args {
		in, err := readInput(path)
		if err != nil {
			return err
		}
		findings, err := checkInput(in, &opts.host)
		if err != nil {
			return err
		}
		all = append(all, fileFindings{File: in.name, Findings: findings})
		if opts.format == formatGitHub || opts.format == formatSARIF {
			rf := newReportFile(in.name)
			for _, f := range findings {
				rule, lvl := level(f.Severity)
				report = append(report, finding{rule: rule, level: lvl, file: rf.file, line: rf.index.line(f.Path), message: f.String()})
			}
		}
		counts := map[profile.Severity]int{}
		for _, f := range findings {
			counts[f.Severity]++
			worst = max(worst, f.Severity)
			if opts.format == "text" {
				sev := ""
				if f.Severity != profile.Error {
					sev = f.Severity.String() + ": "
				}
				fmt.Fprintf(stdout, "%s: %s%s\n", in.name, sev, f)
			}
		}
		if opts.format == "text" {
			fmt.Fprintf(stdout, "%s: %s\n", in.name, summarize(counts))
		}
	}
	switch opts.format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			return err
		}
	case formatGitHub, formatSARIF:
		if err := writeReport(stdout, opts.format, report); err != nil {
			return err
		}
	}
	switch worst {
	case profile.Error:
		return exitCodeError(1)
	case profile.Warning:
		return exitCodeError(2)
	}
	return nil
}

func summarize(counts map[profile.Severity]int) string {
	if counts[profile.Error]+counts[profile.Warning] == 0 {
		return "valid, no warnings"
	}
	plural := func(n int, s string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s", s)
		}
		return fmt.Sprintf("%d %ss", n, s)
	}
	return plural(counts[profile.Error], "error") + ", " + plural(counts[profile.Warning], "warning")
}

// checkInput validates the file as written and lints what a runtime would load.
func checkInput(in *input, host *hostOptions) ([]profile.Finding, error) {
	opts := profile.CheckOptions{
		Reference:     containerdDefault,
		ReferenceName: "containerd's default profile",
		Fallback:      nativeFallback(),
	}
	switch {
	case in.docker != nil:
		written := profile.DockerRules(in.docker)
		resolved, err := in.profile(host, false)
		if err != nil {
			return nil, err
		}
		opts.PathsFrom = written
		return append(profile.Validate(written), profile.Lint(resolved, opts)...), nil
	case in.spo != nil:
		findings := profile.Check(in.spo.Rules(), opts)
		for i := range findings {
			findings[i].Path = strings.TrimSuffix("spec."+findings[i].Path, ".")
		}
		return findings, nil
	}
	return profile.Check(in.oci, opts), nil
}

var loadReferences = sync.OnceValues(func() (map[specs.Arch]*specs.LinuxSeccomp, error) {
	out := map[specs.Arch]*specs.LinuxSeccomp{}
	for _, file := range []string{"containerd-default-x86_64.json", "containerd-default-aarch64.json"} {
		data, err := profiles.FS.ReadFile(file)
		if err != nil {
			return nil, err
		}
		p, err := profile.Parse(file, data)
		if err != nil {
			return nil, err
		}
		for _, a := range p.Architectures {
			out[a] = p
		}
	}
	return out, nil
})

// containerdDefault is containerd's default profile on a host that runs arch, or
// nil when syscage does not ship it.
func containerdDefault(arch specs.Arch) *specs.LinuxSeccomp {
	refs, err := loadReferences()
	if err != nil {
		panic(err) // the profiles are embedded: a test catches this
	}
	return refs[arch]
}
