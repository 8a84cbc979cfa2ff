package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/syscage/syscage/profile"
)

type diffOptions struct {
	format   string
	color    string
	exitCode bool
	host     hostOptions
}

func newDiffCmd() *cobra.Command {
	opts := &diffOptions{}
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Show how two seccomp profiles differ: syscalls added and removed per architecture, changed rules",
		Long: `Compare what two profiles do, not how they are written: rule order, name order
and format make no difference. For each architecture either lists, diff shows the
syscalls B allows and A does not (+) and the reverse (-); then syscalls whose
action changed otherwise (another errno, KILL instead of ERRNO), and rules with
argument conditions only one side has.

Colour is used on a terminal. --format json is for programs. With --exit-code,
exit 1 when the profiles differ.`,
		Example: `  syscage diff app.json new.json
  syscage diff --format json app.json new.json | jq .arches`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.format, "format", "text", "text or json")
	f.StringVar(&opts.color, "color", "auto", "auto (on a terminal), always or never")
	f.BoolVar(&opts.exitCode, "exit-code", false, "exit 1 when the profiles differ")
	opts.host.register(cmd)
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runDiff(_ context.Context, stdout, _ io.Writer, opts *diffOptions, args []string) error {
	if opts.format != "text" && opts.format != "json" {
		return fmt.Errorf("--format %q: use text or json", opts.format)
	}
	color, err := useColor(opts.color, stdout)
	if err != nil {
		return err
	}
	a, err := readProfile(args[0], &opts.host)
	if err != nil {
		return err
	}
	b, err := readProfile(args[1], &opts.host)
	if err != nil {
		return err
	}
	d, err := profile.Compare(a, b, nativeFallback()...)
	if err != nil {
		return err
	}
	if opts.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return err
		}
	} else if d.Empty() {
		fmt.Fprintf(stdout, "%s and %s allow the same\n", a.Name, b.Name)
	} else {
		fmt.Fprintf(stdout, "--- %s\n+++ %s\n", a.Name, b.Name)
		printDiff(stdout, d, color)
	}
	if opts.exitCode && !d.Empty() {
		return exitCodeError(1)
	}
	return nil
}

func useColor(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "auto":
		return isTerminal(w), nil
	case "always":
		return true, nil
	case "never":
		return false, nil
	}
	return false, fmt.Errorf("--color %q: use auto, always or never", mode)
}

// printDiff writes d for people: one line per change, + for what B adds.
func printDiff(w io.Writer, d *profile.Diff, color bool) {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\033[" + code + "m" + s + "\033[0m"
	}
	add := func(s string) string { return paint("32", "+ "+s) }
	del := func(s string) string { return paint("31", "- "+s) }
	if c := d.DefaultAction; c != nil {
		fmt.Fprintf(w, "default action: %s → %s\n", c.From, c.To)
	}
	if c := d.Listener; c != nil {
		fmt.Fprintf(w, "listener: %s → %s\n", c.From, c.To)
	}
	set := func(title string, s *profile.SetDelta) {
		if s == nil {
			return
		}
		fmt.Fprintf(w, "%s:\n", title)
		for _, x := range s.Added {
			fmt.Fprintf(w, "  %s\n", add(x))
		}
		for _, x := range s.Removed {
			fmt.Fprintf(w, "  %s\n", del(x))
		}
	}
	set("architectures", d.Architectures)
	set("flags", d.Flags)
	for _, a := range d.Arches {
		fmt.Fprintf(w, "%s: %d allowed, %d no longer allowed\n", a.Arch, len(a.Added), len(a.Removed))
		for _, n := range a.Added {
			fmt.Fprintf(w, "  %s\n", add(n))
		}
		for _, n := range a.Removed {
			fmt.Fprintf(w, "  %s\n", del(n))
		}
	}
	if len(d.Changed) > 0 {
		fmt.Fprintln(w, "changed:")
		for _, c := range d.Changed {
			var on []string
			for _, a := range c.On {
				on = append(on, string(a))
			}
			fmt.Fprintf(w, "  %s: %s → %s (on %s)\n", paint("33", c.Name), c.From, c.To, strings.Join(on, ", "))
		}
	}
	if r := d.Rules; r != nil {
		fmt.Fprintln(w, "rules with argument conditions:")
		for _, sc := range r.Added {
			fmt.Fprintf(w, "  %s\n", add(describeRule(sc)))
		}
		for _, sc := range r.Removed {
			fmt.Fprintf(w, "  %s\n", del(describeRule(sc)))
		}
	}
}

// describeRule writes a conditional rule in words: "socket(AF_INET6, SOCK_STREAM)",
// with its action when it is not an allow.
func describeRule(sc specs.LinuxSyscall) string {
	var calls []string
	for _, n := range sc.Names {
		calls = append(calls, profile.DescribeCall(n, sc.Args))
	}
	s := strings.Join(calls, ", ")
	if sc.Action != specs.ActAllow {
		s += ": " + string(sc.Action)
		if sc.ErrnoRet != nil {
			s += fmt.Sprintf(" errno %d", *sc.ErrnoRet)
		}
	}
	return s
}
