package main

import (
	"fmt"
	"io"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/profiles"
)

// baselineOptions are the flags that say how far a written profile may reach.
type baselineOptions struct {
	baseline string
	args     string
}

func (o *baselineOptions) register(cmd *cobra.Command, withArgs bool) {
	cmd.Flags().StringVar(&o.baseline, "baseline", profiles.DefaultBaseline,
		"never allow what this profile refuses: containerd, docker, none, or an OCI profile `FILE`; recorded calls it refuses are reported and left out")
	cmd.RegisterFlagCompletionFunc("baseline", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return profiles.BaselineNames, cobra.ShellCompDirectiveDefault
	})
	if withArgs {
		cmd.Flags().StringVar(&o.args, "args", "record", "argument values of clone, socket, ioctl, personality, prctl, mprotect, …: record (allow only the values seen) or none (allow by syscall name)")
		cmd.RegisterFlagCompletionFunc("args", cobra.FixedCompletions([]string{"record", "none"}, cobra.ShellCompDirectiveNoFileComp))
	}
}

// resolve loads the baseline and says whether argument values are to be kept.
func (o *baselineOptions) resolve() (name string, base *specs.LinuxSeccomp, withArgs bool, err error) {
	if withArgs, err = profile.ParseArgsMode(o.args); err != nil {
		return "", nil, false, fmt.Errorf("--args %w", err)
	}
	name, base, err = profiles.Baseline(o.baseline)
	return name, base, withArgs, err
}

// reportDropped says which recorded calls the baseline refused, and how to keep
// them: a recorded call is never left out silently.
func reportDropped(w io.Writer, baseline string, dropped []profile.Dropped) {
	if len(dropped) == 0 {
		return
	}
	calls := make([]string, len(dropped))
	for i, d := range dropped {
		calls[i] = d.String()
	}
	noun, them := "calls", "them"
	if len(dropped) == 1 {
		noun, them = "call", "it"
	}
	fmt.Fprintf(w, "syscage: warning: %s refuses %d recorded %s, left out of the profile: %s (to keep %s, use --baseline none)\n",
		baseline, len(dropped), noun, strings.Join(calls, ", "), them)
}
