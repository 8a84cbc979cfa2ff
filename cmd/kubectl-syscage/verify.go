package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/hooks/kubeapi"
)

type verifyOptions struct {
	runOptions
	profiles []string
	output   string
}

func newVerifyCmd(o *rootOptions) *cobra.Command {
	opts := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify WORKLOAD --profile DIR|FILE|NAME=FILE",
		Short: "Report the system calls a workload's live pods make that a profile does not allow",
		Long: `Watch the containers of a workload's pods on every node for --duration, in
complain mode: the pods run unharmed, and every system call the profile would
deny is reported per pod and container, with its architecture, count and the
first process that made it. Exit 1 if any container made such a call.

--profile DIR checks each container against its own profile, DIR/CONTAINER.json
(as record -o DIR/ writes them), and --profile NAME=FILE, repeated, the
containers named; --profile FILE checks every container against one profile.

Running containers are attached to: what they called before then, their
start-up above all, is not checked. --restart restarts the workload once every
agent watches, so that every replica is checked from its first syscall.`,
		Example: `  kubectl syscage verify deployment/web --profile web/
  kubectl syscage verify deployment/web --profile app=app.json --containers app
  kubectl syscage verify deploy/web --profile web.json --restart -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeWorkload(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), o, opts, args[0])
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.profiles, "profile", nil, "the profiles to verify: a `DIR` of CONTAINER.json, NAME=FILE per container (repeated), or one FILE for every container (required)")
	f.DurationVar(&opts.duration, "duration", 30*time.Second, "how long to watch")
	f.DurationVar(&opts.timeout, "timeout", 2*time.Minute, "how long each wait for the cluster may take (agents, rollout, results)")
	f.StringVarP(&opts.output, "output", "o", "", "report format: json or yaml (default: text)")
	f.BoolVar(&opts.restart, "restart", false, "restart the workload once watching, to check every replica from its first syscall")
	f.StringSliceVar(&opts.containers, "containers", nil, "check only these `NAMES` of containers (default: all)")
	cmd.MarkFlagRequired("profile")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runVerify(ctx context.Context, o *rootOptions, opts *verifyOptions, arg string) error {
	log := o.streams.ErrOut
	ref, err := parseWorkload(arg)
	if err != nil {
		return err
	}
	if opts.output != "" && opts.output != "json" && opts.output != "yaml" {
		return fmt.Errorf("-o %s: use json or yaml (or leave it out for text)", opts.output)
	}
	if err := opts.runOptions.check(); err != nil {
		return err
	}
	var set *profileSet
	if podProfile(opts.profiles) {
		// Checked before the cluster is asked anything.
		if set, err = readProfiles(opts.profiles, nil, nil); err != nil {
			return err
		}
	}
	token := newToken()
	s, err := prepare(ctx, o, ref, opts.runOptions, func(w *workload) (err error) {
		if w.ref.Kind == "Pod" || w.ref.Kind == "CronJob" {
			// Only the pods labelled for this check.
			w.selector = tokenSelector(token)
		}
		if set == nil {
			set, err = readProfiles(opts.profiles, w, opts.containers)
		}
		return err
	})
	if err != nil {
		return err
	}
	defer s.stopSig()
	s.verify = true
	cleanup, _ := setTarget(ctx, log, s, token, targetOptions{durationSet: true})
	defer cleanup()
	w, run, sel, agents := s.w, s.run, s.sel, s.run.agents
	spec := kubeapi.RecordingSpec{Mode: kubeapi.ModeVerify, Selector: w.selector, Containers: opts.containers, Profile: set.pod}
	if set.perContainer() {
		// Each container against its own; those without one are not watched.
		spec.Profiles = set.containers
		spec.Containers = nil
		for _, c := range set.names() {
			if len(opts.containers) == 0 || slices.Contains(opts.containers, c) {
				spec.Containers = append(spec.Containers, c)
			}
		}
		if len(spec.Containers) == 0 {
			return fmt.Errorf("--containers %s: none of them has a profile in --profile %s", strings.Join(opts.containers, ","), set.what)
		}
	}
	if err := run.create(s.sig, "", spec); err != nil {
		return err
	}
	defer run.delete(ctx)
	fmt.Fprintf(log, "verifying %s (pods %s in %s) against %s on %s: SyscallRecording %s\n", w.ref, sel, w.namespace, set.what, plural(len(agents), "node"), run.name)
	rec, err := s.collect(ctx, opts.runOptions, phrases{
		verb: "verify", result: "the check",
		waiting:     "watching for %s (Ctrl-C to stop early and report what was seen)",
		interrupted: "interrupted: stopping and reporting what was seen (Ctrl-C again to abandon)",
	})
	if err != nil {
		return err
	}
	rep := newVerifyReport(w, set.what, rec.Status)
	for i, c := range rep.Containers {
		rep.Containers[i].Profile = set.files[c.Container]
	}
	if len(rep.Containers) == 0 {
		return nothingRecorded(w, sel, agents, &recordResult{Failed: rep.Failed})
	}
	if err := writeReport(o.streams.Out, opts.output, rep); err != nil {
		return err
	}
	if rep.missing() > 0 {
		return exitCodeError(1)
	}
	if len(rep.Failed) > 0 {
		var nodes []string
		for _, f := range rep.Failed {
			nodes = append(nodes, f.Node)
		}
		return errors.New("not every node checked its containers: " + strings.Join(nodes, ", ") + " failed (see above)")
	}
	return nil
}

// writeReport writes a report as text, JSON or YAML.
func writeReport(w io.Writer, format string, rep *verifyReport) error {
	switch format {
	case "json":
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(data, '\n'))
		return err
	case "yaml":
		data, err := yaml.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	printVerifyReport(w, rep)
	return nil
}
