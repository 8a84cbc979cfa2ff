package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

type recordOptions struct {
	runOptions
	output string
	keep   bool
	name   string
	merge  bool
	// file and create: record --create -f FILE; runs: a CronJob's next runs.
	file        string
	create      bool
	runs        int
	durationSet bool
}

func newRecordCmd(o *rootOptions) *cobra.Command {
	opts := &recordOptions{}
	cmd := &cobra.Command{
		Use:   "record WORKLOAD [-o DIR|FILE]",
		Short: "Record the system calls of a workload's pods on every node into a profile per container",
		Long: `Record the system calls of every container of a workload's pods, init containers
included, on every node that runs the syscage agent, for --duration, and write an
OCI seccomp profile per container: -o DIR writes DIR/CONTAINER.json, merging what
every replica of that container did on every node. -o FILE (or stdout) takes one
profile: that of the one container selected (--containers NAME, or a pod with a
single container), or with --merge-containers every container's in one. A
summary, per profile, of the containers, pods and nodes it came from goes to
stderr.

Beside each profile file, FILE.coverage (JSON) counts how many of the runs
recorded (containers, and their restarts) made each call that not all of them
made; the summary lists the calls few runs made (at most one in ten, or a single
one of three or more), to be reviewed before they are allowed for good. apply
carries the counts into the SyscallProfile (spec.coverage).

WORKLOAD is deployment/NAME, statefulset/NAME, daemonset/NAME, replicaset/NAME,
job/NAME, cronjob/NAME or pod/NAME (or deploy, sts, ds, rs, cj, po). The pods of
the first five are those their selector matches; a pod is labelled
syscage.io/record while it is recorded, and so is a CronJob's pod template.

record --create -f FILE creates the workload of FILE once every agent records,
so that every call of its pods is recorded from the first syscall, and records
a Job or a Pod until it ends (a CronJob for --runs runs, anything else for
--duration; a --duration given bounds any of these). record cronjob/NAME --runs N
records the next N runs of a CronJob.

Pods that are already running are attached to: the calls they made before then,
their start-up above all, are missing from the profile. --restart restarts the
workload once every agent records, so that every replica is recorded from its
first syscall. Ctrl-C ends the recording early; what was recorded is still
collected and written.`,
		Example: `  kubectl syscage record deployment/web --restart --duration 2m -o web/
  kubectl syscage record sts/db -n prod --containers postgres -o db.json
  kubectl syscage record deploy/web --merge-containers -o web-pod.json
  kubectl syscage record --create -f job.yaml -o job/
  kubectl syscage record cronjob/nightly --runs 2 -o nightly/`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeWorkload(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.durationSet = cmd.Flags().Changed("duration")
			return runRecord(cmd.Context(), o, opts, args)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.duration, "duration", time.Minute, "how long to record")
	f.DurationVar(&opts.timeout, "timeout", 2*time.Minute, "how long each wait for the cluster may take (agents, rollout, results)")
	f.StringVarP(&opts.output, "output", "o", "", "write a profile per container to `DIR`/CONTAINER.json, or one container's (or with --merge-containers, the merged profile) to a FILE (default: stdout)")
	f.StringVarP(&opts.file, "filename", "f", "", "with --create, the manifest `FILE` of the workload to create and record")
	f.BoolVar(&opts.create, "create", false, "create the workload of -f FILE once every agent records, and record it from its first syscall until it completes (a Job, a Pod) or for --duration")
	f.IntVar(&opts.runs, "runs", 0, "for a CronJob, record its next `N` runs, each from its first syscall")
	f.BoolVar(&opts.merge, "merge-containers", false, "merge every container's calls into one profile (for the whole pod)")
	f.BoolVar(&opts.restart, "restart", false, "restart the workload once recording, to record every replica from its first syscall")
	f.BoolVar(&opts.keep, "keep", false, "keep the SyscallRecording afterwards (it holds every container's profile)")
	f.StringSliceVar(&opts.containers, "containers", nil, "record only these `NAMES` of containers (default: all)")
	f.StringVar(&opts.name, "name", "", "name of the SyscallRecording (default: generated from the workload)")
	return cmd
}

func runRecord(ctx context.Context, o *rootOptions, opts *recordOptions, args []string) error {
	log := o.streams.ErrOut
	var ref workloadRef
	var err error
	switch {
	case opts.create != (opts.file != ""):
		return fmt.Errorf("--create and -f go together: record --create -f FILE creates the workload in FILE and records it from its first syscall")
	case opts.create && len(args) > 0:
		return fmt.Errorf("--create -f %s records the workload of the file: name no WORKLOAD (%s)", opts.file, args[0])
	case !opts.create && len(args) != 1:
		return fmt.Errorf("name the WORKLOAD to record (e.g. deployment/web), or record one you create with --create -f FILE")
	case !opts.create:
		if ref, err = parseWorkload(args[0]); err != nil {
			return err
		}
	}
	if opts.runs < 0 {
		return fmt.Errorf("--runs %d: give a positive number of runs", opts.runs)
	}
	if err := opts.runOptions.check(); err != nil {
		return err
	}
	if opts.create && opts.restart {
		return fmt.Errorf("--restart: --create records the new workload from its first syscall already")
	}
	if out := opts.output; out != "" && out != "-" && !strings.HasSuffix(out, "/") {
		if st, err := os.Stat(out); err != nil || !st.IsDir() {
			// A file: refused now, before the cluster is asked anything.
			if err := profile.CheckWritable(out); err != nil {
				return fmt.Errorf("-o: %w", err)
			}
		}
	}
	// Refused now, not after a long recording.
	var dest recordOutput
	token := newToken()
	resolve := func(c *clients) (*workload, error) {
		if !opts.create {
			return c.getWorkload(ctx, ref)
		}
		r, u, err := readManifest(opts.file, c.namespace)
		if err != nil {
			return nil, err
		}
		return newWorkload(r, u)
	}
	s, err := prepareWith(ctx, o, resolve, opts.runOptions, func(w *workload) (err error) {
		if opts.runs > 0 && w.ref.Kind != "CronJob" {
			return fmt.Errorf("--runs %d: %s is not a CronJob: only a CronJob's runs are counted", opts.runs, w.ref)
		}
		if opts.create || w.ref.Kind == "Pod" || w.ref.Kind == "CronJob" {
			// Only the pods labelled for this recording.
			w.selector = tokenSelector(token)
		}
		dest, err = planOutput(opts, w)
		return err
	})
	if err != nil {
		return err
	}
	defer s.stopSig()
	w, run, sel := s.w, s.run, s.sel
	cleanup, outcome := setTarget(ctx, log, s, token, targetOptions{create: opts.create, runs: opts.runs, durationSet: opts.durationSet})
	defer cleanup()
	spec := kubeapi.RecordingSpec{Mode: kubeapi.ModeRecord, Selector: w.selector, Containers: opts.containers}
	if err := run.create(s.sig, opts.name, spec); err != nil {
		return err
	}
	if opts.keep {
		defer fmt.Fprintf(log, "kept SyscallRecording %s/%s: kubectl -n %s get %s %s -o yaml\n", w.namespace, run.name, w.namespace, kubeapi.Recordings, run.name)
	} else {
		defer run.delete(ctx)
	}
	fmt.Fprintf(log, "recording %s (pods %s in %s) on %s: SyscallRecording %s\n", w.ref, sel, w.namespace, plural(len(run.agents), "node"), run.name)
	rec, err := s.collect(ctx, opts.runOptions, phrases{
		verb: "record", result: "the profile",
		waiting:     "recording for %s (Ctrl-C to stop early and keep what was recorded)",
		interrupted: "interrupted: stopping the recording and collecting what it has (Ctrl-C again to abandon it)",
	})
	if err != nil {
		return err
	}
	if *outcome != "" {
		fmt.Fprintln(log, *outcome)
	}
	// Which recorded pods failed is asked while the profiles are written.
	failed, recorded := make(chan []string, 1), recordedPods(rec.Status)
	go func() {
		pods, _ := run.c.failedPodsOf(ctx, w) // none if they cannot be listed
		failed <- failedPods(pods, recorded)
	}()
	if err := writeRecording(o.streams.Out, log, s, dest, rec.Status, opts.restart || opts.create); err != nil {
		<-failed
		return err
	}
	took := time.Since(s.stopped)
	for _, msg := range <-failed {
		fmt.Fprintln(log, msg)
	}
	fmt.Fprintf(log, "the profiles were written %s after the recording was stopped (results from %s)\n", took.Round(time.Millisecond), plural(len(run.agents), "node"))
	return nil
}

// listed joins names, the first n of them: a fleet's thousands of nodes
// would fill the terminal.
func listed(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// recordOutput is where record writes: one merged profile (merge), one
// container's (single), or one per container in dir.
type recordOutput struct {
	merge    bool
	single   string   // the one container selected, with merge unset and dir empty
	dir      string   // DIR/CONTAINER.json
	file     string   // the merged or single profile's file; "" for stdout
	selected []string // the containers recorded
}

// planOutput reads -o against the workload's containers: a directory gets a
// profile per container; a file, or stdout, takes one container's, or all of
// them merged with --merge-containers.
func planOutput(opts *recordOptions, w *workload) (recordOutput, error) {
	out := recordOutput{merge: opts.merge, selected: opts.containers}
	if len(out.selected) == 0 {
		out.selected = w.containerNames()
	}
	toStdout := opts.output == "" || opts.output == "-"
	isDir := false
	if !toStdout {
		st, err := os.Stat(opts.output)
		isDir = strings.HasSuffix(opts.output, "/") || (err == nil && st.IsDir())
	}
	switch {
	case isDir && opts.merge:
		return out, fmt.Errorf("-o %s is a directory, and --merge-containers writes one profile: name a file", opts.output)
	case isDir:
		out.dir = filepath.Clean(opts.output)
		if err := os.MkdirAll(out.dir, 0o755); err != nil {
			return out, fmt.Errorf("-o: creating the directory for the profiles: %w", err)
		}
		for _, c := range out.selected {
			for _, f := range []string{filepath.Join(out.dir, c+".json"), coverageFile(filepath.Join(out.dir, c+".json"))} {
				if err := profile.CheckWritable(f); err != nil {
					return out, fmt.Errorf("-o: %w", err)
				}
			}
		}
		return out, nil
	case !opts.merge && len(out.selected) != 1:
		where := "-o " + opts.output
		if toStdout {
			where = "stdout"
		}
		return out, fmt.Errorf("%s takes one profile, and %s has %d containers (%s), each with its own: name a directory (-o DIR/) for a profile per container, "+
			"select one with --containers NAME, or merge them into one with --merge-containers", where, w.ref, len(out.selected), strings.Join(out.selected, ", "))
	case !opts.merge:
		out.single = out.selected[0]
	}
	if !toStdout {
		for _, f := range []string{opts.output, coverageFile(opts.output)} {
			if err := profile.CheckWritable(f); err != nil {
				return out, fmt.Errorf("-o: %w", err)
			}
		}
		out.file = opts.output
	}
	return out, nil
}

// coverageFile is where record writes a profile's coverage, and apply reads it.
func coverageFile(profileFile string) string { return profileFile + ".coverage" }

// writeRecording writes the profiles of a finished recording where dest says,
// and the summary to log.
func writeRecording(stdout, log io.Writer, s *session, dest recordOutput, st kubeapi.RecordingStatus, restarted bool) error {
	w, sel, agents := s.w, s.sel, s.run.agents
	write := func(file string, res *recordResult) (string, error) {
		data, err := profile.Marshal(res.Profile)
		if err != nil {
			return "", err
		}
		if file == "" {
			_, err := stdout.Write(data)
			return "stdout", err
		}
		if err := profile.WriteFile(file, data); err != nil {
			return "", err
		}
		// Beside the profile, how many runs made each call, for apply to carry.
		cov, err := profile.MarshalCoverage(res.Coverage)
		if err != nil {
			return "", err
		}
		return file, profile.WriteFile(coverageFile(file), cov)
	}
	if dest.merge {
		res, err := mergeRecording(st)
		if err != nil {
			return err
		}
		if res.Profile == nil {
			return nothingRecorded(w, sel, agents, res)
		}
		name, err := write(dest.file, res)
		if err != nil {
			return err
		}
		printRecordSummary(log, res, name, restarted)
		return nil
	}
	groups := byContainer(st)
	// What is said once: the nodes' notes and failures (not a merge of every
	// container's profile, which a fleet would pay for twice).
	all := &recordResult{}
	all.Failed, all.Notes = nodeMessages(st)
	names := dest.selected
	if dest.single != "" {
		names = []string{dest.single}
	}
	var wrote int
	var unrecorded []string
	merged, err := mergeEach(groups, names)
	if err != nil {
		return err
	}
	for i, c := range names {
		res := merged[i]
		if res.Profile == nil {
			unrecorded = append(unrecorded, c)
			continue
		}
		file := dest.file
		if dest.dir != "" {
			file = filepath.Join(dest.dir, c+".json")
		}
		name, err := write(file, res)
		if err != nil {
			return err
		}
		wrote++
		runs := ""
		if res.Runs > res.Pods {
			runs = fmt.Sprintf(", %d runs (it restarted in its pods)", res.Runs)
		}
		fmt.Fprintf(log, "wrote %s: container %s of %s on %s (%s)%s: %s\n", name, c, plural(res.Pods, "pod"), plural(res.Nodes, "node"),
			listed(res.NodeNames, 10), runs, how(res))
		printRecordDetails(log, res, restarted)
		// A profile merged over different containers has no such list: each
		// container's own calls are few there.
		res.Coverage.WriteRare(log, "check that the workload needs them (or record longer, or more replicas)")
	}
	if wrote == 0 {
		return nothingRecorded(w, sel, agents, all)
	}
	if len(unrecorded) > 0 {
		fmt.Fprintf(log, "warning: no profile for container %s: no selected pod ran it while it was recorded\n", strings.Join(unrecorded, ", "))
	}
	printNodeMessages(log, all)
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
