package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// Labels and annotations on the recordings this plugin creates.
const (
	managedByLabel     = "app.kubernetes.io/managed-by"
	workloadAnnotation = "syscage.io/workload"
)

// recordingRun is one SyscallRecording of a workload, from creation to deletion:
// what record and verify share.
type recordingRun struct {
	c       *clients
	w       *workload
	agents  map[string]string // node → agent pod, the nodes that must answer
	timeout time.Duration
	log     io.Writer
	name    string // set once created
	uid     string // and its uid
	// results, while a wait runs, follows the recording's node results.
	results *resultsWatch
	// skew is the API server's clock less this machine's, as far as the
	// recording's creation tells it (0 when they agree to within that).
	skew time.Duration
	// stopBy, once set, is when waitDone stops with spec.stop the nodes that
	// have not stopped at spec.stopAt by themselves.
	stopBy time.Time
}

// recordingPrefix is the generateName of a workload's recordings.
func recordingPrefix(ref workloadRef) string {
	p := strings.ToLower(ref.Short) + "-" + ref.Name
	// generateName adds 5 characters; a name has at most 253.
	if limit := validation.DNS1123SubdomainMaxLength - 6; len(p) > limit {
		p = strings.TrimRight(p[:limit], "-.")
	}
	return p + "-"
}

// create makes the SyscallRecording, named name or generated from the workload.
func (r *recordingRun) create(ctx context.Context, name string, spec kubeapi.RecordingSpec) error {
	rec := kubeapi.SyscallRecording{
		APIVersion: kubeapi.APIVersion,
		Kind:       kubeapi.KindRecording,
		Metadata: kubeapi.ObjectMeta{
			Name:        name,
			Namespace:   r.w.namespace,
			Labels:      map[string]string{managedByLabel: fieldManager},
			Annotations: map[string]string{workloadAnnotation: r.w.ref.String()},
		},
		Spec: spec,
	}
	u, err := toUnstructured(rec)
	if err != nil {
		return err
	}
	delete(u.Object, "status")
	if name == "" {
		u.SetGenerateName(recordingPrefix(r.w.ref))
	}
	sent := time.Now()
	out, err := r.c.dyn.Resource(recordingsGVR).Namespace(r.w.namespace).Create(ctx, u, metav1.CreateOptions{FieldManager: fieldManager})
	if err == nil {
		r.skew = clockSkew(out.GetCreationTimestamp().Time, sent, time.Now())
	}
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("--name %s: a SyscallRecording of that name exists in namespace %q: choose another name, or delete it (kubectl -n %s delete %s %s)",
			name, r.w.namespace, r.w.namespace, kubeapi.Recordings, name)
	}
	if err != nil {
		return fmt.Errorf("creating a SyscallRecording: %w", notInstalled(err))
	}
	r.name, r.uid = out.GetName(), string(out.GetUID())
	return nil
}

// clockSkew is the API server's clock less this machine's, from an object the
// server created (created, to the second) between sent and received by this
// machine's clock; 0 if the two agree to within what that can tell.
func clockSkew(created, sent, received time.Time) time.Duration {
	if created.IsZero() {
		return 0
	}
	// The server's clock read created+[0,1s) at some moment in [sent, received].
	rtt := received.Sub(sent)
	skew := created.Add(time.Second / 2).Sub(sent.Add(rtt / 2))
	if skew.Abs() <= time.Second/2+rtt/2 {
		return 0
	}
	return skew
}

// setStopAt has the agents end the recording d from now by their own clocks
// (spec.stopAt, in the API server's time), and returns that moment by this
// machine's clock.
func (r *recordingRun) setStopAt(ctx context.Context, d time.Duration) (time.Time, error) {
	local := time.Now().Add(d)
	at := local.Add(r.skew).UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
	_, err := r.c.dyn.Resource(recordingsGVR).Namespace(r.w.namespace).Patch(ctx, r.name, types.MergePatchType,
		[]byte(`{"spec":{"stopAt":"`+at+`"}}`), metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil {
		return time.Time{}, fmt.Errorf("setting spec.stopAt of SyscallRecording %s/%s: %w", r.w.namespace, r.name, err)
	}
	return local, nil
}

// stopGrace is how long after spec.stopAt the nodes that have not stopped by
// themselves (a clock behind the API server's) are sent spec.stop.
const stopGrace = 30 * time.Second

// get reads the recording.
func (r *recordingRun) get(ctx context.Context) (*kubeapi.SyscallRecording, error) {
	u, err := r.c.dyn.Resource(recordingsGVR).Namespace(r.w.namespace).Get(ctx, r.name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading SyscallRecording %s/%s: %w", r.w.namespace, r.name, err)
	}
	var rec kubeapi.SyscallRecording
	if err := fromUnstructured(u, &rec); err != nil {
		return nil, fmt.Errorf("reading SyscallRecording %s/%s: %w", r.w.namespace, r.name, err)
	}
	if r.results != nil && rec.Metadata.UID == r.uid {
		if err := r.results.into(ctx, &rec); err != nil {
			return nil, err
		}
	} else if err := r.c.nodeResults(ctx, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// follow has the waits that poll the recording read its node results from a
// watch rather than a list each time; the returned function ends it.
// One that is followed already goes on being followed, and its function ends
// nothing.
func (r *recordingRun) follow(ctx context.Context) func() {
	if r.uid == "" || r.results != nil {
		return func() {}
	}
	r.results = r.c.watchResults(ctx, r.w.namespace, r.uid)
	return func() {
		r.results.stop()
		r.results = nil
	}
}

// nodeResults gathers each node's part of a recording, one SyscallNodeResult a
// node completed by its final answer (a Lease), into its status (where agents
// before node results wrote theirs). Only a result whose node is the one its
// agent may write, and whose owner is this recording, counts.
func (c *clients) nodeResults(ctx context.Context, rec *kubeapi.SyscallRecording) error {
	sel := metav1.ListOptions{LabelSelector: kubeapi.RecordingLabel + "=" + rec.Metadata.UID}
	list, err := c.dyn.Resource(nodeResultsGVR).Namespace(rec.Metadata.Namespace).List(ctx, sel)
	if apierrors.IsNotFound(err) {
		return nil // an older installation: the results are in the status
	}
	if err != nil {
		return fmt.Errorf("reading the node results of SyscallRecording %s/%s: %w", rec.Metadata.Namespace, rec.Metadata.Name, err)
	}
	results := map[string]versioned{}
	for i := range list.Items {
		nr, ok, err := recordingResult(&list.Items[i], rec.Metadata.UID, c.unpack)
		if err != nil {
			return err
		}
		if ok {
			results[nr.Spec.Node] = versioned{st: nr.Result, version: list.Items[i].GetResourceVersion()}
		}
	}
	if len(results) == 0 {
		return nil
	}
	leases, err := c.leases.Leases(rec.Metadata.Namespace).List(ctx, sel)
	if err != nil {
		return fmt.Errorf("reading the final answers (Leases) of SyscallRecording %s/%s: %w", rec.Metadata.Namespace, rec.Metadata.Name, err)
	}
	answers := map[string]kubeapi.FinalAnswer{}
	for i := range leases.Items {
		node, a, ok, err := finalAnswer(&leases.Items[i], rec.Metadata.UID)
		if err != nil {
			return err
		}
		if ok {
			answers[node] = a
		}
	}
	if rec.Status.Nodes == nil {
		rec.Status.Nodes = map[string]kubeapi.NodeRecording{}
	}
	for node, r := range results {
		rec.Status.Nodes[node] = completed(node, r, answers)
	}
	return nil
}

// recordingResult reads a node result, its profiles unpacked through up, and
// says whether it is one of the recording uid's: only a result whose node is
// named, and whose owner is the recording, counts.
func recordingResult(u *unstructured.Unstructured, uid string, up *kubeapi.Unpacker) (kubeapi.SyscallNodeResult, bool, error) {
	var nr kubeapi.SyscallNodeResult
	data, err := u.MarshalJSON()
	if err == nil {
		err = up.UnmarshalNodeResult(data, &nr)
	}
	if err != nil {
		return nr, false, fmt.Errorf("reading SyscallNodeResult %s: %w", u.GetName(), err)
	}
	ok := nr.Spec.Node != "" && slices.ContainsFunc(nr.Metadata.OwnerReferences, func(o kubeapi.OwnerReference) bool { return o.UID == uid })
	return nr, ok, nil
}

// waitArmed waits until every node with a Ready agent has published its entry:
// from then on it records the selected containers there.
func (r *recordingRun) waitArmed(ctx context.Context) error {
	names, err := r.c.watchNames(ctx, r.w.namespace, r.name, r.uid)
	if err != nil {
		return err
	}
	if names != nil {
		defer names.stop()
		return r.c.poll(ctx, r.timeout, "every agent to take up the recording", func(ctx context.Context) (pending, error) {
			// Gone (deleted by someone else) is an error, not a wait.
			if _, err := r.c.dyn.Resource(recordingsGVR).Namespace(r.w.namespace).Get(ctx, r.name, metav1.GetOptions{}); err != nil {
				return "", fmt.Errorf("reading SyscallRecording %s/%s: %w", r.w.namespace, r.name, err)
			}
			if !names.synced() {
				return "listing the node results", nil
			}
			var missing []string
			for node := range r.agents {
				if !names.answered(node) {
					missing = append(missing, node)
				}
			}
			slices.Sort(missing)
			if len(missing) > 0 {
				return "no answer yet from " + describeNodes(missing, r.agents), nil
			}
			return "", nil
		})
	}
	// No metadata client, or an older installation (answers in the status).
	defer r.follow(ctx)()
	return r.c.poll(ctx, r.timeout, "every agent to take up the recording", func(ctx context.Context) (pending, error) {
		rec, err := r.get(ctx)
		if err != nil {
			return "", err
		}
		if missing := unreported(r.agents, rec.Status.Nodes); len(missing) > 0 {
			return "no answer yet from " + describeNodes(missing, r.agents), nil
		}
		return "", nil
	})
}

// stop sets spec.stop: the agents publish their final results.
func (r *recordingRun) stop(ctx context.Context) error {
	_, err := r.c.dyn.Resource(recordingsGVR).Namespace(r.w.namespace).Patch(ctx, r.name, types.MergePatchType,
		[]byte(`{"spec":{"stop":true}}`), metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil {
		return fmt.Errorf("stopping SyscallRecording %s/%s: %w", r.w.namespace, r.name, err)
	}
	return nil
}

// waitDone waits until every node has published its final results, and returns
// the recording then.
func (r *recordingRun) waitDone(ctx context.Context) (*kubeapi.SyscallRecording, error) {
	var rec *kubeapi.SyscallRecording
	defer r.follow(ctx)()
	// The agents answer a stop at once: look more often than other waits do,
	// for the few seconds this takes.
	fast := *r.c
	fast.interval = min(r.c.interval, 200*time.Millisecond)
	err := fast.poll(ctx, r.timeout, "every agent's final results", func(ctx context.Context) (pending, error) {
		// While nodes are left, the followed results and answers say which,
		// without a copy of every node's result at each poll.
		left, ok := r.results.unfinished(r.agents)
		if !r.stopBy.IsZero() && time.Now().After(r.stopBy) && (!ok || len(left) > 0) {
			if ok {
				fmt.Fprintf(r.log, "%s not stopped %s after spec.stopAt (a clock behind the API server's?): sending spec.stop\n", describeNodes(left, r.agents), stopGrace)
			}
			if err := r.stop(ctx); err != nil {
				return "", err
			}
			r.stopBy = time.Time{}
		}
		if ok && len(left) > 0 {
			if _, err := r.c.dyn.Resource(recordingsGVR).Namespace(r.w.namespace).Get(ctx, r.name, metav1.GetOptions{}); err != nil {
				return "", fmt.Errorf("reading SyscallRecording %s/%s: %w", r.w.namespace, r.name, err)
			}
			return "still recording or not answering: " + describeNodes(left, r.agents), nil
		}
		var err error
		if rec, err = r.get(ctx); err != nil {
			return "", err
		}
		if left := unfinished(rec.Status, r.agents); len(left) > 0 {
			return "still recording or not answering: " + describeNodes(left, r.agents), nil
		}
		return "", nil
	})
	return rec, err
}

// unfinished returns, sorted, the nodes that owe final results: the ones that
// must answer and have not, and the ones that answered and are still recording.
func unfinished(st kubeapi.RecordingStatus, agents map[string]string) []string {
	left := unreported(agents, st.Nodes)
	for node, n := range st.Nodes {
		if !final(n.Phase) {
			left = append(left, node)
		}
	}
	slices.Sort(left)
	return slices.Compact(left)
}

// final says whether a node's part of a recording in phase is final.
func final(phase string) bool { return phase == kubeapi.PhaseDone || phase == kubeapi.PhaseFailed }

// delete removes the recording, even when ctx was cancelled.
func (r *recordingRun) delete(ctx context.Context) {
	if r.name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := r.c.dyn.Resource(recordingsGVR).Namespace(r.w.namespace).Delete(ctx, r.name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		fmt.Fprintf(r.log, "warning: deleting SyscallRecording %s/%s: %v: delete it with 'kubectl -n %s delete %s %s'\n",
			r.w.namespace, r.name, err, r.w.namespace, kubeapi.Recordings, r.name)
	}
}

// warnUnwatched warns about selected pods on nodes without a Ready agent: no
// one records them.
func (c *clients) warnUnwatched(ctx context.Context, log io.Writer, w *workload, agents map[string]string) error {
	pods, err := c.pods(ctx, w)
	if err != nil {
		return err
	}
	var lost []string
	for _, p := range pods {
		if _, ok := agents[p.Spec.NodeName]; p.Spec.NodeName != "" && !ok && p.DeletionTimestamp == nil {
			lost = append(lost, fmt.Sprintf("%s (node %s)", p.Name, p.Spec.NodeName))
		}
	}
	if len(lost) > 0 {
		fmt.Fprintf(log, "warning: no Ready syscage agent runs where these pods of %s are, so they are not recorded: %s\n", w.ref, strings.Join(lost, ", "))
	}
	return nil
}

// signals returns a context the next SIGINT or SIGTERM cancels.
func signals(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// interrupted reports whether sig was cancelled by a signal rather than with its
// parent ctx.
func interrupted(ctx, sig context.Context) bool { return sig.Err() != nil && ctx.Err() == nil }

// sleep waits for d or until sig is cancelled, and reports whether it was.
func sleep(sig context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-sig.Done():
		return true
	}
}

// runOptions are the flags record and verify share.
type runOptions struct {
	duration   time.Duration
	timeout    time.Duration
	restart    bool
	containers []string
}

func (o runOptions) check() error {
	if o.duration <= 0 {
		return fmt.Errorf("--duration %s: give a positive duration, e.g. 30s or 2m", o.duration)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %s: give a positive duration, e.g. 2m", o.timeout)
	}
	return nil
}

// session is a record or verify run, from the workload to the agents' results.
type session struct {
	w       *workload
	sel     string // the workload's selector, for messages
	run     *recordingRun
	sig     context.Context // cancelled by the first SIGINT or SIGTERM
	stopSig context.CancelFunc
	// armed, if set, runs once every agent records: it labels or creates what
	// is to be recorded.
	armed func(ctx context.Context) error
	// until, if set, is what the recording waits for rather than a time (a
	// Job's completion, a CronJob's runs); limited says --duration bounds it.
	until   func(ctx context.Context) (pending, error)
	limited bool
	// waiting describes what until waits for.
	waiting string
	// stopped is when the recording was told to stop.
	stopped time.Time
	// verify: the session checks a profile rather than records one.
	verify bool
}

// prepare resolves the workload and checks what record and verify ask of it
// before anything is created; check, if set, checks more of the workload.
func prepare(ctx context.Context, o *rootOptions, ref workloadRef, opts runOptions, check func(*workload) error) (*session, error) {
	return prepareWith(ctx, o, func(c *clients) (*workload, error) { return c.getWorkload(ctx, ref) }, opts, check)
}

// prepareWith is prepare for a workload resolve finds (or makes from a file).
func prepareWith(ctx context.Context, o *rootOptions, resolve func(*clients) (*workload, error), opts runOptions, check func(*workload) error) (*session, error) {
	log := o.streams.ErrOut
	c, err := o.connect()
	if err != nil {
		return nil, err
	}
	w, err := resolve(c)
	if err != nil {
		return nil, err
	}
	if err := w.checkContainers(opts.containers); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(w); err != nil {
			return nil, err
		}
	}
	if opts.restart {
		if err := w.canRestart(); err != nil {
			return nil, fmt.Errorf("--restart: %w", err)
		}
	}
	sel, err := selectorString(w.selector)
	if err != nil {
		return nil, fmt.Errorf("%s: selector: %w", w.ref, err)
	}
	agents, err := c.agentNodes(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.warnUnwatched(ctx, log, w, agents); err != nil {
		return nil, err
	}
	// The first SIGINT or SIGTERM ends the run early; the next abandons it.
	sig, stopSig := signals(ctx)
	run := &recordingRun{c: c, w: w, agents: agents, timeout: opts.timeout, log: log}
	return &session{w: w, sel: sel, run: run, sig: sig, stopSig: stopSig}, nil
}

// phrases are what a session says while it runs.
type phrases struct {
	verb, result string // for armAndRestart's note
	waiting      string // with the duration
	interrupted  string
}

// collect arms the created recording (restarting the workload with --restart),
// waits opts.duration or until interrupted, stops the recording and returns it
// with every agent's final results.
func (s *session) collect(ctx context.Context, opts runOptions, say phrases) (*kubeapi.SyscallRecording, error) {
	log := s.run.log
	var early, onTime bool
	var stopAt time.Time // by this machine's clock
	var err error
	if s.armed != nil {
		// What is recorded is labelled or made once every agent records.
		if err = s.run.waitArmed(s.sig); err != nil {
			if early = interrupted(ctx, s.sig); !early {
				return nil, err
			}
		}
	} else if early, err = armAndRestart(ctx, s.sig, log, s.run, opts.restart, say.verb, say.result); err != nil {
		return nil, err
	}
	if !early && s.armed != nil {
		if err := s.armed(s.sig); err != nil {
			if !interrupted(ctx, s.sig) {
				s.stopSig()
				late, stopLate := signals(ctx)
				defer stopLate()
				s.run.stop(late) // the agents let go of what they track
				return nil, err
			}
			early = true
		}
	}
	// From now on the node results are followed as they come, so that after
	// the stop only the nodes' answers and their last calls are left to read,
	// not every node's result: at 5,000 nodes some 50 MB.
	if !early {
		defer s.run.follow(ctx)()
	}
	switch {
	case early:
	case s.until != nil:
		early, err = s.waitUntil(ctx, log, opts)
		if err != nil {
			return nil, err
		}
	default:
		fmt.Fprintf(log, say.waiting+"\n", opts.duration)
		// The agents stop by their own clocks at spec.stopAt: at a fleet's
		// scale, a spec.stop sent to every node at the end costs the API
		// server and the nodes seconds of CPU just when they answer.
		stopAt, err = s.run.setStopAt(s.sig, opts.duration)
		if err != nil {
			if early = interrupted(ctx, s.sig); !early {
				fmt.Fprintf(log, "warning: %v: the recording is stopped with spec.stop instead\n", err)
				early = sleep(s.sig, opts.duration)
			}
			break
		}
		if early = sleep(s.sig, time.Until(stopAt)); !early {
			onTime = s.run.results.stopAtUnderstood(s.run.agents)
		}
	}
	if early {
		fmt.Fprintln(log, say.interrupted)
	}
	late, stopLate := signals(ctx)
	defer stopLate()
	s.stopSig()
	if onTime {
		// The agents' moment, however late this process woke; the nodes not
		// stopped stopGrace on are sent spec.stop then.
		s.stopped = stopAt
		s.run.stopBy = stopAt.Add(stopGrace)
	} else {
		// Agents that predate spec.stopAt are stopped with spec.stop, as is a
		// recording ended early.
		s.stopped = time.Now()
		if err := s.run.stop(late); err != nil {
			return nil, err
		}
	}
	return s.run.waitDone(late)
}

// waitUntil waits for s.until, or --duration when it bounds the wait. It
// reports whether a signal cut it short.
func (s *session) waitUntil(ctx context.Context, log io.Writer, opts runOptions) (bool, error) {
	start := time.Now()
	verb, early := "recording", "keep what was recorded"
	if s.verify {
		verb, early = "watching", "report what was seen"
	}
	if s.limited {
		fmt.Fprintf(log, "%s until %s, for at most %s (Ctrl-C to stop early and %s)\n", verb, s.waiting, opts.duration, early)
	} else {
		fmt.Fprintf(log, "%s until %s (Ctrl-C to stop early and %s)\n", verb, s.waiting, early)
	}
	last := ""
	for {
		left, err := s.until(s.sig)
		switch {
		case err != nil && interrupted(ctx, s.sig):
			return true, nil
		case err != nil && !transient(err):
			return false, err
		case err == nil && left == "":
			return false, nil
		}
		if left != last && left != "" {
			fmt.Fprintf(log, "waiting: %s\n", left)
			last = left
		}
		if s.limited && time.Since(start) >= opts.duration {
			fmt.Fprintf(log, "--duration %s is over before %s: stopping with what was recorded\n", opts.duration, s.waiting)
			return false, nil
		}
		if sleep(s.sig, s.run.c.interval) {
			return true, nil
		}
	}
}
