package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/syscage/syscage/internal/kubeapi"
	"github.com/syscage/syscage/profile"
)

type recordOptions struct {
	runOptions
	output string
	keep   bool
	name   string
}

func newRecordCmd(o *rootOptions) *cobra.Command {
	opts := &recordOptions{}
	cmd := &cobra.Command{
		Use:   "record WORKLOAD [-o FILE]",
		Short: "Record the system calls of a workload's pods on every node into one profile",
		Long: `Record the system calls of every container of a workload's pods, on every node
that runs the syscage agent, for --duration, and merge them into one OCI seccomp
profile, written to -o FILE or stdout. A summary goes to stderr.

WORKLOAD is deployment/NAME, statefulset/NAME, daemonset/NAME or replicaset/NAME
(or deploy, sts, ds, rs). Its pods are those its selector matches.

Pods that are already running are attached to: the calls they made before then,
their start-up above all, are missing from the profile. --restart restarts the
workload once every agent records, so that every replica is recorded from its
first syscall. Ctrl-C ends the recording early; what was recorded is still
collected and written.`,
		Example: `  kubectl syscage record deployment/web --restart --duration 2m -o web.json
  kubectl syscage record sts/db -n prod --containers postgres -o db.json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeWorkload(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecord(cmd.Context(), o, opts, args[0])
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.duration, "duration", time.Minute, "how long to record")
	f.DurationVar(&opts.timeout, "timeout", 2*time.Minute, "how long each wait for the cluster may take (agents, rollout, results)")
	f.StringVarP(&opts.output, "output", "o", "", "write the profile to `FILE` (default: stdout)")
	f.BoolVar(&opts.restart, "restart", false, "restart the workload once recording, to record every replica from its first syscall")
	f.BoolVar(&opts.keep, "keep", false, "keep the SyscallRecording afterwards (it holds every container's profile)")
	f.StringSliceVar(&opts.containers, "containers", nil, "record only these `NAMES` of containers (default: all)")
	f.StringVar(&opts.name, "name", "", "name of the SyscallRecording (default: generated from the workload)")
	return cmd
}

func runRecord(ctx context.Context, o *rootOptions, opts *recordOptions, arg string) error {
	log := o.streams.ErrOut
	ref, err := parseWorkload(arg)
	if err != nil {
		return err
	}
	if err := opts.runOptions.check(); err != nil {
		return err
	}
	toStdout := opts.output == "" || opts.output == "-"
	if !toStdout {
		// Refused now, not after a long recording.
		if err := profile.CheckWritable(opts.output); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
	}
	s, err := prepare(ctx, o, ref, opts.runOptions)
	if err != nil {
		return err
	}
	defer s.stopSig()
	w, run, sel, agents := s.w, s.run, s.sel, s.run.agents
	spec := kubeapi.RecordingSpec{Mode: kubeapi.ModeRecord, Selector: w.selector, Containers: opts.containers}
	if err := run.create(s.sig, opts.name, spec); err != nil {
		return err
	}
	if opts.keep {
		defer fmt.Fprintf(log, "kept SyscallRecording %s/%s: kubectl -n %s get %s %s -o yaml\n", w.namespace, run.name, w.namespace, kubeapi.Recordings, run.name)
	} else {
		defer run.delete(ctx)
	}
	fmt.Fprintf(log, "recording %s (pods %s in %s) on %s: SyscallRecording %s\n", w.ref, sel, w.namespace, plural(len(agents), "node"), run.name)
	rec, err := s.collect(ctx, opts.runOptions, phrases{
		verb: "record", result: "the profile",
		waiting:     "recording for %s (Ctrl-C to stop early and keep what was recorded)",
		interrupted: "interrupted: stopping the recording and collecting what it has (Ctrl-C again to abandon it)",
	})
	if err != nil {
		return err
	}
	res, err := mergeRecording(rec.Status)
	if err != nil {
		return err
	}
	if res.Profile == nil {
		return nothingRecorded(w, sel, agents, res)
	}
	data, err := profile.Marshal(res.Profile)
	if err != nil {
		return err
	}
	dest := "stdout"
	if toStdout {
		if _, err := o.streams.Out.Write(data); err != nil {
			return err
		}
	} else {
		if err := profile.WriteFile(opts.output, data); err != nil {
			return err
		}
		dest = opts.output
	}
	printRecordSummary(log, res, dest, opts.restart)
	return nil
}

// armAndRestart waits until every agent records, then restarts the workload
// (--restart) or warns what attaching misses. It reports whether a signal cut it
// short, which ends the recording early rather than failing it.
// verb and result name the command and what it makes, for the note.
func armAndRestart(ctx, sig context.Context, log io.Writer, run *recordingRun, restart bool, verb, result string) (early bool, err error) {
	c, w := run.c, run.w
	if err := run.waitArmed(sig); err != nil {
		return interrupted(ctx, sig), ignoreIf(interrupted(ctx, sig), err)
	}
	if !restart {
		fmt.Fprintf(log, "note: the running pods of %s are attached to, not restarted: the calls they made before now, their start-up above all, "+
			"will be missing from %s; use --restart to %s every replica from its first syscall\n", w.ref, result, verb)
		return false, nil
	}
	fmt.Fprintf(log, "every agent is ready; restarting %s so that every replica is seen from its first syscall\n", w.ref)
	if err := c.restart(sig, w, time.Now()); err != nil {
		return interrupted(ctx, sig), ignoreIf(interrupted(ctx, sig), err)
	}
	if err := c.waitRollout(sig, w, run.timeout); err != nil {
		return interrupted(ctx, sig), ignoreIf(interrupted(ctx, sig), err)
	}
	fmt.Fprintf(log, "%s restarted\n", w.ref)
	return false, nil
}

func ignoreIf(cond bool, err error) error {
	if cond {
		return nil
	}
	return err
}
