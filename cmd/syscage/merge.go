package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/syscage/syscage/profile"
)

type mergeOptions struct {
	output   string
	coverage string
	base     string
	check    bool
	format   string
	color    string
	host     hostOptions
	limits   baselineOptions
}

func newMergeCmd() *cobra.Command {
	opts := &mergeOptions{}
	cmd := &cobra.Command{
		Use:   "merge A B... [-o OUT] [--base FILE] | merge --check A B...",
		Short: "Merge seccomp profiles into one that allows what any of them allows",
		Long: `Write the profile that allows everything any input allows: plain rules are
unioned name by name, rules with argument conditions are kept as they are. Inputs
that disagree (different default actions, one syscall given two actions) are an
error that names both files. --base FILE starts from a base profile, such as the
one a SeccompProfile's baseProfileName names.

The merged profile never allows what --baseline refuses (containerd's default
unless told otherwise): calls the inputs allow beyond it are reported and left out.

With --check, write nothing: exit 1 when A does not allow everything B... allow,
and list what is missing per architecture. This is the CI drift gate: it passes
exactly when merging B... into A would not change A. --format github reports each
missing syscall as a workflow command (::error file=A,line=…::…) on the rule of A
that would allow it; --format sarif writes SARIF 2.1.0.

--coverage FILE also writes how many of the inputs made each call that not all
of them made (JSON, as kubectl syscage record writes CONTAINER.json.coverage),
and lists on stderr the calls few of them made (at most one in ten, or a single
one of three or more). An input counts as one run, or, with a coverage file
beside it (INPUT.coverage), as the runs that file counts.

Inputs may be in any format convert reads.`,
		Example: `  syscage merge -o app.json run1.json run2.json
  syscage merge --check app.json new-run.json   # in CI: fails when the tests need more
  syscage merge -o app.json --coverage app.json.coverage run-*.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMerge(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "write the merged profile to `FILE` (atomically) instead of stdout")
	f.StringVar(&opts.base, "base", "", "start from the profile in `FILE`")
	f.StringVar(&opts.coverage, "coverage", "", "also write to `FILE` how many of the inputs made each call not all of them made")
	f.BoolVar(&opts.check, "check", false, "exit 1 if A does not allow everything B... allow, and say what is missing")
	f.StringVar(&opts.color, "color", "auto", "colour the --check report: auto (on a terminal), always or never")
	f.StringVar(&opts.format, "format", "text", "the --check report: text, github (workflow commands) or sarif")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", formatGitHub, formatSARIF}, cobra.ShellCompDirectiveNoFileComp))
	opts.host.register(cmd)
	opts.limits.register(cmd, false)
	return cmd
}

func runMerge(_ context.Context, stdout, stderr io.Writer, opts *mergeOptions, args []string) error {
	if opts.check && opts.output != "" {
		return errors.New("--check writes nothing: drop -o")
	}
	if opts.check && opts.coverage != "" {
		return errors.New("--check writes nothing: drop --coverage")
	}
	if opts.check && len(args) < 2 {
		return errors.New("--check needs the profile to check and at least one to check it against: merge --check A B...")
	}
	if err := reportFormat(opts.format, "text"); err != nil {
		return err
	}
	if opts.format != "text" && !opts.check {
		return fmt.Errorf("--format %s is for the --check report: add --check, or drop --format", opts.format)
	}
	color, err := useColor(opts.color, stdout)
	if err != nil {
		return err
	}
	baselineName, baseline, _, err := opts.limits.resolve()
	if err != nil {
		return err
	}
	for _, f := range []string{opts.output, opts.coverage} {
		if f == "" {
			continue
		}
		if err := profile.CheckWritable(f); err != nil {
			return err
		}
	}
	if opts.coverage != "" && opts.coverage == opts.output {
		return fmt.Errorf("--coverage %s is the -o file: name another, e.g. %s.coverage", opts.coverage, opts.output)
	}
	var tally profile.Tally
	var in []profile.Named
	if opts.base != "" {
		b, err := readProfile(opts.base, &opts.host)
		if err != nil {
			return fmt.Errorf("--base: %w", err)
		}
		in = append(in, b)
	}
	for _, a := range args {
		i, err := readInput(a)
		if err != nil {
			return err
		}
		// A SeccompProfile's base is what --base gives.
		p, err := i.profile(&opts.host, opts.base != "")
		if err != nil {
			return err
		}
		in = append(in, profile.Named{Name: i.name, Profile: p})
		if opts.coverage != "" {
			if err := addCoverage(&tally, a, p); err != nil {
				return err
			}
		}
	}
	if opts.check {
		// A is what --base and the first file make.
		split := 1
		if opts.base != "" {
			split = 2
		}
		a := in[0]
		if split == 2 {
			m, err := profile.Merge(in[:2]...)
			if err != nil {
				return err
			}
			a = profile.Named{Name: in[1].Name, Profile: m}
		}
		missing, err := profile.Missing(nativeFallback(), a, in[split:]...)
		if err != nil {
			return err
		}
		if opts.format != "text" {
			others := names(in[split:])
			findings := diffFindings(missing, newReportFile(a.Name), &reportFile{name: others}, others, true)
			if err := writeReport(stdout, opts.format, findings); err != nil {
				return err
			}
			if missing.Empty() {
				return nil
			}
			fmt.Fprintf(stderr, "to accept: syscage merge -o %s %s %s\n", a.Name, a.Name, others)
			return exitCodeError(1)
		}
		if missing.Empty() {
			fmt.Fprintf(stdout, "%s allows everything %s %s\n", a.Name, names(in[split:]), verb(len(in)-split))
			return nil
		}
		fmt.Fprintf(stdout, "%s does not allow everything %s %s; merging would change it:\n", a.Name, names(in[split:]), verb(len(in)-split))
		printDiff(stdout, missing, color)
		fmt.Fprintf(stdout, "to accept: syscage merge -o %s %s %s\n", a.Name, a.Name, names(in[split:]))
		return exitCodeError(1)
	}
	p, err := profile.Merge(in...)
	if err != nil {
		return err
	}
	if baseline != nil {
		var dropped []profile.Dropped
		if p, dropped, err = profile.Clip("the merged profile", p, baselineName, baseline); err != nil {
			return err
		}
		reportDropped(stderr, baselineName, dropped)
	}
	data, err := profile.Marshal(p)
	if err != nil {
		return err
	}
	if opts.coverage != "" {
		cov := tally.Coverage().For(p)
		cdata, err := profile.MarshalCoverage(cov)
		if err != nil {
			return err
		}
		if err := writeOutput(stdout, opts.output, data); err != nil {
			return err
		}
		if err := profile.WriteFile(opts.coverage, cdata); err != nil {
			return err
		}
		cov.WriteRare(stderr, "check that the workload needs them")
		return nil
	}
	return writeOutput(stdout, opts.output, data)
}

// addCoverage counts an input: one run, or the runs of the coverage file
// beside it.
func addCoverage(t *profile.Tally, file string, p *specs.LinuxSeccomp) error {
	data, err := os.ReadFile(file + ".coverage")
	if errors.Is(err, os.ErrNotExist) {
		t.Add(p, 1, nil)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the coverage of %s: %w", file, err)
	}
	c, err := profile.ParseCoverage(file+".coverage", data)
	if err != nil {
		return fmt.Errorf("%w: fix or remove it", err)
	}
	t.Add(p, c.Runs, c.Calls)
	return nil
}

func verb(n int) string {
	if n == 1 {
		return "allows"
	}
	return "allow"
}

func names(in []profile.Named) string {
	s := ""
	for i, n := range in {
		if i > 0 {
			s += " "
		}
		s += n.Name
	}
	return s
}

// nativeFallback is the architecture a profile that lists none runs on: the host's.
func nativeFallback() []specs.Arch {
	native, _, _, err := profile.NativeArches(runtime.GOARCH)
	if err != nil {
		return nil
	}
	return []specs.Arch{native}
}
