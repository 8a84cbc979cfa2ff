package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/hooks/verify"
	"github.com/syscage/syscage/profile"
)

type verifyOptions struct {
	profile string
	mode    string
	bundle  string
	podman  bool
	format  string
}

func newVerifyCmd() *cobra.Command {
	opts := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify --profile P [flags] -- CMD [ARGS...]",
		Short: "Run a workload against a profile and report every syscall it does not allow",
		Long: `Run a workload and report every system call the profile does not allow: its
name, architecture, count and the first process that made it. Exit 1 if there is
any; otherwise exit with the workload's status.

The workload is a host command, an OCI bundle run with runc (--bundle DIR), or a
container run with podman (--podman: the arguments are podman run's, e.g.
-- --ulimit nofile=1024:1024 IMAGE CMD). Containers are recorded through the OCI
hook, from the moment their filter is in, so the runtime's own calls after that
count too.

--mode complain (the default) runs the workload unharmed and lists everything
missing in one run. --mode enforce runs it under the profile and catches every
refusal, also of a call refused for its arguments.`,
		Example: `  syscage verify --profile app.json -- ./run-tests.sh
  syscage verify --profile app.json --mode enforce --format json -- ./run-tests.sh
  syscage verify --profile web.json --podman -- localhost/web:1
  syscage verify --profile web.json --bundle ./bundle`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, args)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVar(&opts.profile, "profile", "", "the OCI seccomp profile `FILE` to verify (required)")
	f.StringVar(&opts.mode, "mode", "complain", "complain (run unharmed, list everything missing) or enforce (run under the profile)")
	f.StringVar(&opts.bundle, "bundle", "", "run the OCI bundle `DIR` with runc")
	f.BoolVar(&opts.podman, "podman", false, "run the arguments with podman run")
	f.StringVar(&opts.format, "format", "text", "report format: text or json (json: the workload's stdout goes to stderr)")
	cmd.MarkFlagRequired("profile")
	cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"complain", "enforce"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runVerify(ctx context.Context, stdout, stderr io.Writer, opts *verifyOptions, args []string) error {
	mode := verify.Mode(opts.mode)
	if mode != verify.Complain && mode != verify.Enforce {
		return fmt.Errorf("--mode %q: use complain or enforce", opts.mode)
	}
	if opts.format != "text" && opts.format != "json" {
		return fmt.Errorf("--format %q: use text or json", opts.format)
	}
	workloads := 0
	for _, set := range []bool{opts.bundle != "", opts.podman, len(args) > 0 && !opts.podman} {
		if set {
			workloads++
		}
	}
	if workloads != 1 {
		return errors.New("name one workload: a command after --, --bundle DIR, or --podman -- [podman run args] IMAGE [CMD]")
	}
	path, err := filepath.Abs(opts.profile)
	if err != nil {
		return err
	}
	// A profile a runtime would refuse or misread is refused before anything runs.
	p, bad, err := loadProfile(path, opts.profile, "--profile")
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s\n(run 'syscage check %s' for details)", strings.Join(bad, "\n"), opts.profile)
	}
	if err := bpf.Check(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	vo := verify.Options{Profile: p, ProfilePath: path, Mode: mode, Executable: exe, Stdout: os.Stdout, Stderr: os.Stderr}
	if opts.format == "json" {
		vo.Stdout = os.Stderr
	}
	switch {
	case opts.bundle != "":
		if vo.Bundle, err = filepath.Abs(opts.bundle); err != nil {
			return err
		}
	case opts.podman:
		vo.Podman = args
	default:
		vo.Command = args
	}
	rep, err := verify.Run(ctx, vo)
	if err != nil {
		return err
	}
	if opts.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if len(rep.Missing) > 0 {
		return exitCodeError(1)
	}
	if rep.ExitCode != 0 {
		return exitCodeError(rep.ExitCode)
	}
	return nil
}

func printReport(w io.Writer, rep *verify.Report) {
	name := filepath.Base(rep.Profile)
	if len(rep.Missing) == 0 {
		fmt.Fprintf(w, "syscage verify: %s allows every syscall the workload made (%s mode, workload exit %d)\n", name, rep.Mode, rep.ExitCode)
	} else {
		how := "refused them"
		if rep.Mode == verify.Complain {
			how = "would refuse them; the workload ran unharmed"
		}
		noun := "syscalls"
		if len(rep.Missing) == 1 {
			noun = "syscall"
		}
		fmt.Fprintf(w, "syscage verify: %s does not allow %d %s the workload made (%s mode: the profile %s; workload exit %d)\n",
			name, len(rep.Missing), noun, rep.Mode, how, rep.ExitCode)
		printFindings(w, rep.Missing)
	}
	if len(rep.Conditional) > 0 {
		fmt.Fprintf(w, "allowed for some arguments only, not checked in complain mode (use --mode enforce):\n")
		printFindings(w, rep.Conditional)
	}
}

func printFindings(w io.Writer, fs []verify.Finding) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ARCH\tSYSCALL\tCOUNT\tFIRST BY")
	for _, f := range fs {
		name := f.Name
		if name == "" {
			name = fmt.Sprintf("#%d", f.Nr)
		}
		if len(f.Calls) > 0 {
			name = strings.Join(f.Calls, " ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s (pid %d)\n", profile.ShortArch(f.Arch), name, f.Count, f.Comm, f.Pid)
	}
	tw.Flush()
}
