package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/oci/seccomp"
	"github.com/syscage/syscage/profile"
)

type execOptions struct {
	profile    string
	noNewPrivs bool
	runcENOSYS bool
}

func newExecCmd() *cobra.Command {
	opts := &execOptions{}
	cmd := &cobra.Command{
		Use:   "exec --profile FILE [flags] -- CMD [ARGS...]",
		Short: "Run a command under a seccomp profile, as a container runtime would enforce it",
		Long: `Run CMD under the OCI seccomp profile FILE, without a container runtime. syscage
compiles the profile into a seccomp filter with the semantics of runc and
libseccomp, installs it and executes CMD in its own place: CMD keeps syscage's
pid, and its exit status is syscage's.

The profile is checked before anything runs. Since syscage executes CMD under the
filter, the profile must allow execve.`,
		Example: `  syscage exec --profile app.json -- ./run-tests.sh
  syscage exec --profile app.json --no-new-privs=false -- sudo -u app ./server`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, args)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&opts.profile, "profile", "p", "", "the OCI seccomp profile to enforce (`FILE`)")
	f.BoolVar(&opts.noNewPrivs, "no-new-privs", true, "set no_new_privs, so that setuid binaries do not gain privileges (false needs CAP_SYS_ADMIN, like a container with noNewPrivileges false)")
	f.BoolVar(&opts.runcENOSYS, "runc-enosys", true, "like runc, fail syscalls numbered above every one the profile names with ENOSYS instead of the default action")
	cmd.MarkFlagRequired("profile")
	return cmd
}

func runExec(_ context.Context, _, stderr io.Writer, opts *execOptions, args []string) error {
	f, err := loadFilter(opts.profile, seccomp.Options{RuncENOSYS: opts.runcENOSYS})
	if err != nil {
		return err
	}
	if err := checkExecve(opts.profile, f); err != nil {
		return err
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return fmt.Errorf("command %q not found: %w", args[0], errors.Unwrap(err))
	}
	err = seccomp.Exec(f, path, args, os.Environ(), opts.noNewPrivs)
	var ee *seccomp.ExecError
	if errors.As(err, &ee) {
		// The filter is in place: report as a shell would, with what the filter allows.
		fmt.Fprintf(stderr, "syscage: %s: %v\n", args[0], ee.Err)
		if ee.Err == unix.ENOENT {
			return exitCodeError(127)
		}
		return exitCodeError(126)
	}
	return err
}

// loadFilter reads, checks and compiles a profile. Every problem the profile has is
// reported at once, each with its JSON path and how to fix it.
func loadFilter(path string, opts seccomp.Options) (*seccomp.Filter, error) {
	if path == "" {
		return nil, errors.New("--profile is required")
	}
	p, errs, err := loadProfile(path, path, "reading the profile")
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("the profile cannot be enforced as written:\n  %s", strings.Join(errs, "\n  "))
	}
	f, err := seccomp.Compile(p, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// checkExecve refuses a profile under which CMD could not even be started.
func checkExecve(path string, f *seccomp.Filter) error {
	native, _, _, err := profile.NativeArches(runtime.GOARCH)
	if err != nil {
		return err
	}
	ret, err := f.Call(native, "execve")
	if err != nil {
		return err
	}
	if a := seccomp.Action(ret); a != "allow" && a != "log" {
		return fmt.Errorf("%s: execve gets %s, so CMD cannot start under the profile (syscage installs the filter, then executes CMD): allow execve, e.g. add it to an SCMP_ACT_ALLOW rule", path, a)
	}
	return nil
}
