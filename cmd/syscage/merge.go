package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/syscage/syscage/profile"
)

type mergeOptions struct {
	output string
	base   string
	check  bool
	color  string
	host   hostOptions
	limits baselineOptions
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
exactly when merging B... into A would not change A.

Inputs may be in any format convert reads.`,
		Example: `  syscage merge -o app.json run1.json run2.json
  syscage merge --check app.json new-run.json   # in CI: fails when the tests need more`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMerge(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "write the merged profile to `FILE` (atomically) instead of stdout")
	f.StringVar(&opts.base, "base", "", "start from the profile in `FILE`")
	f.BoolVar(&opts.check, "check", false, "exit 1 if A does not allow everything B... allow, and say what is missing")
	f.StringVar(&opts.color, "color", "auto", "colour the --check report: auto (on a terminal), always or never")
	opts.host.register(cmd)
	opts.limits.register(cmd, false)
	return cmd
}

func runMerge(_ context.Context, stdout, stderr io.Writer, opts *mergeOptions, args []string) error {
	if opts.check && opts.output != "" {
		return errors.New("--check writes nothing: drop -o")
	}
	if opts.check && len(args) < 2 {
		return errors.New("--check needs the profile to check and at least one to check it against: merge --check A B...")
	}
	color, err := useColor(opts.color, stdout)
	if err != nil {
		return err
	}
	baselineName, baseline, _, err := opts.limits.resolve()
	if err != nil {
		return err
	}
	if opts.output != "" {
		if err := profile.CheckWritable(opts.output); err != nil {
			return err
		}
	}
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
	return writeOutput(stdout, opts.output, data)
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
