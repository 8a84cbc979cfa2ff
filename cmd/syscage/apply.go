package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/syscage/syscage/oci"
)

type applyOptions struct {
	profile   string
	bundle    string
	printFlag bool
}

func newApplyCmd() *cobra.Command {
	opts := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply --profile FILE (--bundle DIR | --print-flag)",
		Short: "Put a seccomp profile into an OCI bundle, or print the podman/docker flag that enforces it",
		Long: `Enforce a profile in a container.

--bundle DIR sets linux.seccomp in DIR/config.json to the profile, for runc run
--bundle DIR (or crun). The file is replaced atomically and every other byte of it
is kept: unknown fields, their order, formatting.

--print-flag prints the flag podman and docker take, with the profile's absolute
path: podman run $(syscage apply --profile app.json --print-flag) IMAGE.

The profile is checked first; one a runtime would refuse or misread is not applied.`,
		Example: `  syscage apply --profile app.json --bundle ./bundle && runc run --bundle ./bundle app
  podman run $(syscage apply --profile app.json --print-flag) localhost/app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.profile, "profile", "p", "", "the OCI seccomp profile (`FILE`)")
	f.StringVar(&opts.bundle, "bundle", "", "the OCI bundle (`DIR` holding config.json) to put the profile in")
	f.BoolVar(&opts.printFlag, "print-flag", false, "print the podman/docker --security-opt flag that enforces the profile")
	cmd.MarkFlagRequired("profile")
	cmd.MarkFlagDirname("bundle")
	return cmd
}

func runApply(_ context.Context, stdout, stderr io.Writer, opts *applyOptions) error {
	if opts.bundle == "" && !opts.printFlag {
		return errors.New("nothing to do: give --bundle DIR, --print-flag, or both")
	}
	p, errs, err := loadProfile(opts.profile, opts.profile, "reading the profile")
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("the profile is not applied, a runtime would refuse or misread it:\n  %s", strings.Join(errs, "\n  "))
	}
	if opts.bundle != "" {
		if err := oci.ApplyProfile(opts.bundle, p); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "syscage: %s now enforces %s\n", filepath.Join(opts.bundle, "config.json"), opts.profile)
	}
	if opts.printFlag {
		flag, err := oci.SecurityOpt(opts.profile)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, flag)
	}
	return nil
}
