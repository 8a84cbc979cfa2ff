// Package agent is the node agent of syscage on Kubernetes (`syscage-agent`, one
// per node in a privileged DaemonSet). It records the containers that the
// SyscallRecordings in the API server select, with the same recorder as the OCI
// hook, and publishes each node's results in the recording's status; and it writes
// the SyscallProfiles into the kubelet's seccomp directory, below its own
// subdirectory only.
//
// Containers created while a recording selects their namespace are recorded from
// their first instruction: the runc wrapper (or a hook in containerd's base
// runtime spec) runs the syscage hook at prestart, and the hook asks this agent,
// which decides from the pod's labels and tracks the container before the runtime
// goes on. Containers already running are attached to, and say so.
package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/hooks/recorder"
	"github.com/syscage/syscage/hooks/verify"
	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/profiles"
)

// Tracker is what the agent records with: the BPF recorder, or in the fleet
// simulation (tests/fleet) a recorder that serves recordings it is given.
type Tracker interface {
	TrackWith(cgroupID uint64, opts bpf.TrackOptions) error
	Read(cgroupID uint64) (*bpf.Recording, error)
	Untrack(cgroupID uint64) error
}

// Options configure an agent.
type Options struct {
	Node string // this node's name (the downward API's spec.nodeName)
	// SeccompDir is the kubelet's seccomp directory as the agent sees it; the agent
	// writes only below its kubeapi.ProfileDir subdirectory.
	SeccompDir string
	// RunDir is the host's /run/syscage as the agent sees it. The agent keeps its
	// recorder's socket and the node's selection, which the hook and the runc
	// wrapper read, in its hooks.KubernetesDir below it.
	RunDir string
	// Config says how to reach the API server (rest.InClusterConfig in the
	// DaemonSet's pod).
	Config        *rest.Config
	Log           *slog.Logger
	ReportRefused bool
	// Recorder, if nil, is the BPF recorder the agent opens, and serves the hooks
	// with. A *bpf.Recorder is used instead (tests). Any other Tracker serves no
	// hooks: containers come only through Admit (the fleet simulation).
	Recorder Tracker
	// Ready, if set, is closed once the agent serves hooks and has listed pods,
	// recordings and profiles.
	Ready chan<- struct{}
	// Emptied, if set, tells the agent when a container's cgroup empties; nil:
	// the agent watches with one of its own (and polls where inotify fails).
	// The fleet simulation shares one among thousands of agents in a process,
	// as a user has only 128 inotify instances.
	Emptied *cgroups.Emptied
	// ProbeAddr, if set, serves /readyz there: 200 once ready (the DaemonSet's
	// readiness probe, so that a Ready agent is one that records).
	ProbeAddr string
}

// Agent is one node's agent.
type Agent struct {
	opts Options
	log  *slog.Logger
	rec  Tracker
	api  *api
	dir  string // hooks.KubernetesRunDir(opts.RunDir)
	wake chan struct{}

	mu         sync.Mutex
	pods       map[string]*pod       // by UID: the pods bound to this node
	recordings map[string]*recording // by UID
	containers map[string]*container // by recording UID + "/" + container ID
	selection  []string              // the namespaces last written to the selection file
	synced     map[string]bool       // which lists have been received
	// every is how often, at most, a recording whose containers merely made
	// new calls is published: publishInterval, longer while the API server is
	// slow to take writes (see adapt). Only reconcile uses it.
	every time.Duration
	// emptied tells when a container's cgroup empties (nil: polled).
	emptied *cgroups.Emptied
	// sums are the digests and sizes of the profiles published (reconcile).
	sums profileSums

	// What this node last reported of each profile, by namespace and name
	// (without its time), and the owner of its statuses: its Node.
	statusMu sync.Mutex
	reported map[string]map[string]kubeapi.NodeProfile
	owner    []kubeapi.OwnerReference
}

type pod struct {
	ns, name, uid string
	labels        map[string]string
	running       map[string]runningContainer // by container ID
}

type runningContainer struct {
	name    string
	started time.Time // to the second
}

type recording struct {
	obj  kubeapi.SyscallRecording
	plan *verify.Plan // verify mode: spec.profile
	// plans (verify mode) are spec.profiles, per container name: a container
	// named there is checked against its own profile.
	plans   map[string]*verify.Plan
	err     error // why it cannot be served
	stopped bool  // spec.stop seen, or spec.stopAt passed: containers read and untracked
	// stopAt is spec.stopAt (zero if none); timer wakes the agent then.
	stopAt    time.Time
	timer     *time.Timer
	published []byte // the node status last published, without its time
	// content is published without its phase and message: what a final
	// answer (a Lease) cannot say; version is the result's resourceVersion
	// then.
	content  []byte
	version  string
	shape    string // what changes publish at once, as last published
	lastSent time.Time
	// lastBuilt is when the node status was last built and found to hold
	// nothing new: the calls are read again an interval on, not at every tick.
	lastBuilt time.Time
	final     bool // a Done or Failed status has been answered
	// retries counts the publications of a Done or Failed status the API
	// server has refused in a row: each is tried again within seconds.
	retries int
	// armed is when the selection file first named the recording's namespace.
	armed time.Time
	// carried are the results an earlier run of the agent published for this
	// node: kept, so that an agent's restart loses nothing published.
	carried []kubeapi.ContainerResult
}

type container struct {
	id, name     string
	ns, pod, uid string
	recording    string // its recording's UID
	cgroupID     uint64
	dir          string
	from         string
	attached     time.Time
	live         bool           // still tracked
	watched      bool           // its cgroup's emptying is told (Agent.emptied)
	gone         bool           // its cgroup emptied
	running      bool           // untracked: whether it ran then (its cgroup is not read again)
	noHook       bool           // started during the recording, yet attached to
	final        *bpf.Recording // read when it stopped being tracked
	built        builtProfile   // its profile, as last built
}

// Run is New and Agent.Run.
func Run(ctx context.Context, opts Options) error {
	a, err := New(opts)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// New checks an agent's options and makes its API client.
func New(opts Options) (*Agent, error) {
	if opts.Node == "" {
		return nil, errors.New("the node name is unknown: set NODE_NAME (the downward API's spec.nodeName) or --node")
	}
	if opts.Config == nil {
		return nil, errors.New("no API server configured for the agent")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c, err := newAPI(opts.Config)
	if err != nil {
		return nil, err
	}
	return &Agent{
		opts: opts, log: opts.Log, api: c, wake: make(chan struct{}, 1),
		pods: map[string]*pod{}, recordings: map[string]*recording{}, containers: map[string]*container{},
		synced: map[string]bool{},
	}, nil
}

// Run serves until ctx is done, then stops tracking, publishes what it has and
// removes what it created on the node.
func (a *Agent) Run(ctx context.Context) error {
	opts := a.opts
	a.rec = opts.Recorder
	hookRecorder, _ := a.rec.(*bpf.Recorder)
	if a.rec == nil {
		r, err := record.OpenWith(bpf.Options{ReportRefused: opts.ReportRefused})
		if err != nil {
			return err
		}
		defer r.Close()
		a.rec, hookRecorder = r, r
	}
	a.emptied = opts.Emptied
	if a.emptied == nil {
		e, err := cgroups.WatchEmptied()
		if err != nil {
			a.log.Info("not watching containers' cgroups with inotify: they are polled", "err", err)
		} else {
			defer e.Close()
			a.emptied = e
		}
	}
	a.dir = hooks.KubernetesRunDir(opts.RunDir)
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	defer a.cleanRunDir()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	if hookRecorder != nil {
		cfg := hooks.DefaultConfig()
		cfg.RunDir, cfg.IdleExit, cfg.LogFile = a.dir, 0, ""
		served := make(chan struct{})
		go func() {
			serveErr <- recorder.ServeWith(ctx, cfg, a.log, recorder.ServeOptions{Recorder: hookRecorder, Admit: a.Admit, Ready: served})
		}()
		select {
		case <-served:
		case err := <-serveErr:
			return fmt.Errorf("serving hooks: %w", errors.Join(err, errors.New("another agent holds "+filepath.Join(a.dir, "recorder.lock"))))
		}
		a.log.Info("agent started", "node", opts.Node, "programs", hookRecorder.ProgramIDs())
	} else {
		serveErr <- nil
		a.log.Info("agent started", "node", opts.Node)
	}

	a.loadStatuses(ctx)
	if err := a.watch(ctx); err != nil {
		return err
	}

	var isReady atomic.Bool
	if opts.ProbeAddr != "" {
		ln, err := net.Listen("tcp", opts.ProbeAddr)
		if err != nil {
			return fmt.Errorf("probe address: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !isReady.Load() {
				http.Error(w, "listing pods, recordings and profiles", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ready := opts.Ready
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		case <-a.wake:
		}
		a.reconcile(ctx, done)
		if !isReady.Load() && a.allSynced() {
			isReady.Store(true)
			if ready != nil {
				close(ready)
			}
		}
	}
	cancel()
	<-serveErr
	a.finalSweep()
	a.log.Info("agent stopped", "node", opts.Node)
	return nil
}

// watch starts the informers: the pods bound to this node (by a field
// selector, so a node's agent never caches the cluster's pods), the recordings
// and the profiles. Each list counts as received once the informer has handed
// its first list to the agent's handlers.
func (a *Agent) watch(ctx context.Context) error {
	set := a.api.informers(a.opts.Node)
	podInf := set.pods.Core().V1().Pods().Informer()
	if err := podInf.SetTransform(slimPod); err != nil {
		return err
	}
	lists := []struct {
		name     string
		informer cache.SharedIndexInformer
		h        cache.ResourceEventHandlerFuncs
	}{
		{"pods", podInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { a.podChanged(o, false) },
			UpdateFunc: func(_, o any) { a.podChanged(o, false) },
			DeleteFunc: func(o any) { a.podChanged(o, true) },
		}},
		{"recordings", set.syscage.ForResource(recordingsGVR).Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { a.recordingChanged(o, false) },
			UpdateFunc: func(_, o any) { a.recordingChanged(o, false) },
			DeleteFunc: func(o any) { a.recordingChanged(o, true) },
		}},
		{"profiles", set.syscage.ForResource(profilesGVR).Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { a.profileChanged(o, false) },
			UpdateFunc: func(_, o any) { a.profileChanged(o, false) },
			DeleteFunc: func(o any) { a.profileChanged(o, true) },
		}},
	}
	for _, l := range lists[1:] {
		if err := l.informer.SetTransform(withoutManagedFields); err != nil {
			return err
		}
	}
	for _, l := range lists {
		reg, err := l.informer.AddEventHandler(l.h)
		if err != nil {
			return err
		}
		inf := l.informer
		go func() {
			if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
				return
			}
			if l.name == "profiles" {
				// Files of profiles deleted while no agent ran.
				var all []kubeapi.SyscallProfile
				for _, o := range inf.GetStore().List() {
					if p, ok := decode[kubeapi.SyscallProfile](o); ok {
						all = append(all, p)
					}
				}
				a.sweepProfiles(all)
			}
			a.mu.Lock()
			a.synced[l.name] = true
			a.mu.Unlock()
			a.poke()
		}()
	}
	set.pods.Start(ctx.Done())
	set.syscage.Start(ctx.Done())
	return nil
}

func (a *Agent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Agent) allSynced() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.synced["pods"] && a.synced["recordings"] && a.synced["profiles"]
}

// cleanRunDir removes what the agent leaves in the run directory, and the
// directories once empty: the hook and the wrapper then find no selection.
func (a *Agent) cleanRunDir() {
	hooks.WriteSelection(a.dir, &hooks.Selection{})
	os.Remove(filepath.Join(a.dir, "recorder.lock"))
	os.Remove(a.dir)
	os.Remove(a.opts.RunDir) // only if empty: the host's recorder may use it
}

// --- pods ---

func parsePod(o *corev1.Pod) *pod {
	p := &pod{ns: o.Namespace, name: o.Name, uid: string(o.UID), labels: o.Labels, running: map[string]runningContainer{}}
	// Init containers (sidecars, restartPolicy Always, among them) are recorded
	// as the others are, each under its own name.
	for _, cs := range append(slices.Clone(o.Status.InitContainerStatuses), o.Status.ContainerStatuses...) {
		// containerd://ID, cri-o://ID
		if _, id, ok := strings.Cut(cs.ContainerID, "://"); ok && cs.State.Running != nil {
			p.running[id] = runningContainer{cs.Name, cs.State.Running.StartedAt.Time}
		}
	}
	return p
}

func (a *Agent) podChanged(obj any, deleted bool) {
	o, ok := objectOf(obj).(*corev1.Pod)
	if !ok {
		return
	}
	p := parsePod(o)
	a.mu.Lock()
	if deleted {
		delete(a.pods, p.uid)
	} else {
		a.pods[p.uid] = p
	}
	a.mu.Unlock()
	a.poke()
}

// --- admission of containers from the hook ---

// Admit is called by the hook's request, before the container's first
// instruction: it records the container if an active recording selects its pod.
func (a *Agent) Admit(req recorder.AdmitRequest) (bool, error) {
	start := time.Now()
	pc, ok := hooks.KubernetesContainer(req.Annotations)
	if !ok {
		return false, nil
	}
	ns, name, uid, cname := pc.Namespace, pc.Pod, pc.PodUID, pc.Container
	labels, err := a.podLabels(ns, name, uid)
	if err != nil {
		// The container starts unrecorded rather than not at all.
		a.log.Warn("cannot tell whether to record a container", "pod", ns+"/"+name, "container", cname, "err", err)
		return false, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.selecting(ns, labels, cname)
	if r == nil {
		return false, nil
	}
	if a.liveContainer(req.Container) {
		return false, nil
	}
	opts := bpf.TrackOptions{Start: req.Start}
	if plan := r.planFor(cname); plan != nil {
		opts = plan.Track(verify.Complain, req.Start)
	}
	if err := a.rec.TrackWith(req.CgroupID, opts); err != nil {
		return false, err
	}
	c := &container{
		id: req.Container, name: cname, ns: ns, pod: name, uid: uid, recording: r.obj.Metadata.UID,
		cgroupID: req.CgroupID, dir: req.CgroupDir, from: kubeapi.FromStart, live: true,
	}
	a.containers[r.obj.Metadata.UID+"/"+req.Container] = c
	a.watchExit(c)
	a.log.Info("recording from the start", "pod", ns+"/"+name, "container", cname, "id", req.Container, "recording", r.obj.Metadata.Name, "took", time.Since(start))
	a.poke()
	return true, nil
}

// podLabels finds a pod's labels in the cache or, when the kubelet is quicker
// than the watch, in the API server.
func (a *Agent) podLabels(ns, name, uid string) (map[string]string, error) {
	a.mu.Lock()
	if p, ok := a.pods[uid]; ok && uid != "" {
		a.mu.Unlock()
		return p.labels, nil
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	o, err := a.api.getPod(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if uid != "" && string(o.UID) != uid {
		return nil, fmt.Errorf("pod %s/%s is now another pod (uid %s, not %s)", ns, name, o.UID, uid)
	}
	return o.Labels, nil
}

// selecting returns the active recording that selects a pod's container, if any.
func (a *Agent) selecting(ns string, labels map[string]string, cname string) *recording {
	var found *recording
	for _, r := range a.recordings {
		s := r.obj.Spec
		if r.obj.Metadata.Namespace != ns || !r.active() || !s.Selector.Matches(labels) {
			continue
		}
		if len(s.Containers) > 0 && !slices.Contains(s.Containers, cname) {
			continue
		}
		// The oldest recording wins when several select the same container; a
		// cgroup is tracked once.
		if found == nil || r.obj.Metadata.Name < found.obj.Metadata.Name {
			found = r
		}
	}
	return found
}

// selectsPod reports whether an active recording selects a pod in namespace
// ns with these labels, whatever its containers' names.
func (a *Agent) selectsPod(ns string, labels map[string]string) bool {
	for _, r := range a.recordings {
		if r.obj.Metadata.Namespace == ns && r.active() && r.obj.Spec.Selector.Matches(labels) {
			return true
		}
	}
	return false
}

// liveContainer reports whether a container is being recorded: a cgroup is
// tracked once.
func (a *Agent) liveContainer(id string) bool {
	for _, c := range a.containers {
		if c.id == id && c.live {
			return true
		}
	}
	return false
}

// makePlans prepares verify mode: spec.profile for every container, or
// spec.profiles per container name, or both (spec.profiles first).
func (r *recording) makePlans(spec kubeapi.RecordingSpec) error {
	if spec.Profile == nil && len(spec.Profiles) == 0 {
		return errors.New("verify mode needs spec.profile or spec.profiles")
	}
	if spec.Profile != nil {
		var err error
		if r.plan, err = verify.MakePlan(spec.Profile); err != nil {
			return fmt.Errorf("spec.profile: %w", err)
		}
	}
	for name, p := range spec.Profiles {
		if p == nil {
			return fmt.Errorf("spec.profiles[%s]: no profile", name)
		}
		plan, err := verify.MakePlan(p)
		if err != nil {
			return fmt.Errorf("spec.profiles[%s]: %w", name, err)
		}
		if r.plans == nil {
			r.plans = map[string]*verify.Plan{}
		}
		r.plans[name] = plan
	}
	return nil
}

// planFor is what verify mode checks a container against; nil in record mode.
func (r *recording) planFor(container string) *verify.Plan {
	if p, ok := r.plans[container]; ok {
		return p
	}
	return r.plan
}

func (r *recording) active() bool {
	return r.err == nil && !r.obj.Spec.Stop && r.obj.Metadata.DeletionTimestamp == nil && !r.over(time.Now())
}

// over says whether spec.stopAt has come by this node's clock (which, as for
// every Lease and token, is taken to agree with the API server's).
func (r *recording) over(now time.Time) bool {
	return !r.stopAt.IsZero() && !now.Before(r.stopAt)
}

// --- recordings ---

func (a *Agent) recordingChanged(obj any, deleted bool) {
	o, ok := decode[kubeapi.SyscallRecording](obj)
	if !ok {
		return
	}
	if deleted {
		a.mu.Lock()
		a.dropRecording(o.Metadata.UID)
		a.mu.Unlock()
	} else {
		a.upsertRecording(o)
	}
	a.poke()
}

func (a *Agent) upsertRecording(o kubeapi.SyscallRecording) {
	a.mu.Lock()
	_, known := a.recordings[o.Metadata.UID]
	a.mu.Unlock()
	var earlier *kubeapi.NodeRecording
	if !known {
		earlier = a.earlierResult(o)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.recordings[o.Metadata.UID]
	if !ok {
		r = &recording{}
		a.recordings[o.Metadata.UID] = r
		if earlier != nil {
			for _, c := range earlier.Containers {
				c.Running = false
				r.carried = append(r.carried, c)
			}
		}
		switch o.Spec.Mode {
		case kubeapi.ModeRecord:
		case kubeapi.ModeVerify:
			r.err = r.makePlans(o.Spec)
		default:
			r.err = fmt.Errorf("spec.mode %q: want %q or %q", o.Spec.Mode, kubeapi.ModeRecord, kubeapi.ModeVerify)
		}
	}
	r.obj = o
	if r.err == nil {
		a.setStopAt(r)
	}
	if !ok && earlier != nil {
		// Finished before this run of the agent: its results stand. An earlier
		// run that stopped in the middle said Done too, so that nothing waits
		// on it; while the recording goes on, this run takes over.
		r.final = earlier.Phase != kubeapi.PhaseRecording && (o.Spec.Stop || o.Metadata.DeletionTimestamp != nil || r.over(time.Now()))
	}
	a.stopIfOver(r)
}

// setStopAt reads spec.stopAt and has the agent woken then: each node stops
// on its own timer, and the recording's end is not a write every node must
// be sent.
func (a *Agent) setStopAt(r *recording) {
	var at time.Time
	if s := r.obj.Spec.StopAt; s != "" {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, s); err != nil {
			r.err = fmt.Errorf("spec.stopAt %q is not a time in RFC 3339 (such as 2026-01-02T15:04:05Z)", s)
			return
		}
	}
	if at.Equal(r.stopAt) {
		return
	}
	r.stopAt = at
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if d := time.Until(at); !at.IsZero() && d > 0 {
		r.timer = time.AfterFunc(d, a.poke)
	}
}

// stopIfOver ends the recording of r's containers once it is stopped, deleted,
// past its stopAt, or cannot be served: each is read a last time and untracked.
func (a *Agent) stopIfOver(r *recording) {
	if r.active() || r.stopped {
		return
	}
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	for _, c := range a.containers {
		if c.recording == r.obj.Metadata.UID {
			a.untrack(c)
		}
	}
}

// dropRecording forgets a deleted recording and its containers.
func (a *Agent) dropRecording(uid string) {
	for key, c := range a.containers {
		if c.recording == uid {
			a.untrack(c)
			delete(a.containers, key)
		}
	}
	if r := a.recordings[uid]; r != nil && r.timer != nil {
		r.timer.Stop()
	}
	delete(a.recordings, uid)
}

// watchExit has the agent told when a tracked container's cgroup empties, so
// that reconcile need not read every container's cgroup.events every second.
// Called with a.mu held.
func (a *Agent) watchExit(c *container) {
	if a.emptied == nil {
		return
	}
	if err := a.emptied.Add(c.dir, func() {
		a.mu.Lock()
		c.gone = true
		a.mu.Unlock()
		a.poke()
	}); err != nil {
		a.log.Debug("not watching a container's cgroup: it is polled", "container", c.id, "err", err)
		return
	}
	c.watched = true
	// Emptied before the watch began: no change will be told.
	c.gone = !cgroups.Populated(c.dir)
}

// untrack reads a container's recording for the last time and stops tracking it.
func (a *Agent) untrack(c *container) {
	if !c.live {
		return
	}
	c.live = false
	if c.watched {
		// Its emptying would have been told: no need to read its cgroup.
		c.running = !c.gone
		a.emptied.Remove(c.dir)
		c.watched = false
	} else {
		c.running = !c.gone && cgroups.Populated(c.dir)
	}
	rec, err := a.rec.Read(c.cgroupID)
	if err != nil {
		a.log.Warn("reading a recording", "container", c.id, "err", err)
	}
	c.final = rec
	if err := a.rec.Untrack(c.cgroupID); err != nil {
		a.log.Warn("untracking", "container", c.id, "err", err)
	}
}

// --- the periodic work ---

func (a *Agent) reconcile(ctx context.Context, stopping bool) {
	a.mu.Lock()
	if !a.synced["pods"] || !a.synced["recordings"] {
		a.mu.Unlock()
		return
	}
	// Recordings whose stopAt has come end here, each node on its own timer.
	for _, r := range a.recordings {
		a.stopIfOver(r)
	}
	// Containers that have exited: their recording is complete.
	for _, c := range a.containers {
		if c.live && (c.gone || !c.watched && !cgroups.Populated(c.dir)) {
			a.untrack(c)
		}
	}
	if stopping {
		for _, c := range a.containers {
			a.untrack(c)
		}
	}
	a.keepSums()
	a.writeSelection(stopping)
	if !stopping {
		a.attach()
	}
	type patch struct {
		ns, name string
		body     []byte // the result to write, or nil: it stands (version)
		st       kubeapi.NodeRecording
		version  string
		r        *recording
		final    bool // the status says Done or Failed
	}
	var patches []patch
	for uid, r := range a.recordings {
		if r.final {
			continue
		}
		// A new container, one that exits, a phase or a message is published at
		// once; what the running containers call, every publishInterval at most:
		// each publication rewrites the node's whole entry in the API server.
		shape := a.shape(uid, r, stopping)
		if !a.due(r, shape, time.Now()) {
			continue
		}
		st := a.nodeStatus(uid, r, stopping)
		st.Updated = time.Now().UTC().Format(time.RFC3339)
		final := st.Phase != kubeapi.PhaseRecording
		key := publishKey(st, a.sums)
		r.shape = shape
		if !final && bytes.Equal(key, r.published) {
			r.lastBuilt = time.Now()
			continue
		}
		content := contentKey(st, a.sums)
		p := patch{ns: r.obj.Metadata.Namespace, name: kubeapi.NodeResultName(r.obj.Metadata.Name, a.opts.Node), st: st, version: r.version, r: r, final: final}
		if !final || r.version == "" || !bytes.Equal(content, r.content) {
			// Calls not yet published: the result is written, final or not
			// (a result that says Done or Failed needs no answer).
			body, err := json.Marshal(a.nodeResult(r.obj, st))
			if err != nil {
				continue
			}
			p.body = body
			r.published, r.content = key, content
		}
		// Else the result holds every call: the final answer alone (see
		// kubeapi.FinalAnswer), a Lease's write rather than the result's.
		r.final = final
		patches = append(patches, p)
	}
	a.mu.Unlock()

	pctx := ctx
	if stopping {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
	}
	for _, p := range patches {
		start := time.Now()
		version, wrote, err := p.version, false, error(nil)
		if p.body != nil {
			version, err = a.api.writeResult(pctx, p.ns, p.name, p.body, false)
			if apierrors.IsNotFound(err) {
				// The first publication: create it (a recording deleted meanwhile
				// refuses it as its owner is gone, and that is the end of it).
				version, err = a.api.writeResult(pctx, p.ns, p.name, p.body, true)
			}
			wrote = err == nil
		}
		if err == nil && p.body == nil {
			err = a.api.answer(pctx, p.r.obj, p.name, a.opts.Node, kubeapi.NewFinalAnswer(a.opts.Node, version, p.st))
		}
		a.adapt(time.Since(start), err)
		failed := err != nil && !apierrors.IsNotFound(err)
		if failed {
			a.log.Warn("publishing a recording's status", "recording", p.ns+"/"+p.name, "err", err)
		}
		a.mu.Lock()
		p.r.lastSent = time.Now() // the interval runs from the write's end
		if wrote || p.body == nil {
			p.r.version = version
		}
		if failed {
			// Try again in the interval, or at once if the shape changes: an
			// API server that refuses writes (429, overloaded) is not sent more.
			// A result that went in stands; its answer is tried again.
			if !wrote && p.body != nil {
				p.r.published, p.r.content = nil, nil
			}
			p.r.final = false
			if p.final {
				p.r.retries++
			}
		} else {
			p.r.retries = 0
		}
		a.mu.Unlock()
	}
}

// due says whether r's node status is to be built again: at once when its shape
// changed, else once per publication interval, counted from the last write or
// from the last build that found nothing new to publish, whichever came later.
// A final status the API server refused is tried again after 1, 2, 4, then 5 s:
// the recording's collection waits for it, and the interval, stretched while
// the API server was slow, can be a minute (at 5,000 nodes, a tenth of the
// answers to a stop refused in an overloaded API server's queue came 35 s late).
// (Counted from the last write alone, a recording whose calls had stopped
// changing had its status built again at every tick, each second: 0.3–0.5 ms
// of a node's CPU each time, and in the fleet simulation, more than a core.)
func (a *Agent) due(r *recording, shape string, now time.Time) bool {
	if shape != r.shape {
		return true
	}
	last := r.lastSent
	if r.lastBuilt.After(last) {
		last = r.lastBuilt
	}
	wait := max(a.every, publishInterval)
	if r.retries > 0 {
		wait = min(wait, time.Second<<min(r.retries-1, 3), publishInterval)
	}
	return now.Sub(last) >= wait
}

// features are what this agent understands of a recording beyond its first
// version, said in each node result.
var features = []string{kubeapi.FeatureStopAt}

// nodeResult is this node's part of a recording, as the object it is published in:
// owned by the recording, so that it goes with it.
func (a *Agent) nodeResult(rec kubeapi.SyscallRecording, st kubeapi.NodeRecording) kubeapi.SyscallNodeResult {
	return kubeapi.SyscallNodeResult{
		APIVersion: kubeapi.APIVersion,
		Kind:       "SyscallNodeResult",
		Metadata: kubeapi.ObjectMeta{
			Name:      kubeapi.NodeResultName(rec.Metadata.Name, a.opts.Node),
			Namespace: rec.Metadata.Namespace,
			Labels:    map[string]string{kubeapi.RecordingLabel: rec.Metadata.UID},
			OwnerReferences: []kubeapi.OwnerReference{{
				APIVersion: kubeapi.APIVersion, Kind: kubeapi.KindRecording, Name: rec.Metadata.Name, UID: rec.Metadata.UID,
			}},
		},
		Spec:   kubeapi.NodeResultSpec{Recording: rec.Metadata.Name, Node: a.opts.Node, Features: features},
		Result: st,
	}
}

// earlierResult is what an earlier run of this node's agent published for a
// recording: its node result, or the entry in the recording's status that agents
// before node results wrote.
func (a *Agent) earlierResult(o kubeapi.SyscallRecording) *kubeapi.NodeRecording {
	if prev, ok := o.Status.Nodes[a.opts.Node]; ok || a.api == nil {
		if ok {
			return &prev
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	var nr kubeapi.SyscallNodeResult
	err := a.api.get(ctx, nodeResultsGVR, o.Metadata.Namespace, kubeapi.NodeResultName(o.Metadata.Name, a.opts.Node), &nr)
	switch {
	case err == nil && nr.Spec.Node == a.opts.Node && slices.ContainsFunc(nr.Metadata.OwnerReferences, func(r kubeapi.OwnerReference) bool { return r.UID == o.Metadata.UID }):
		return &nr.Result
	case err != nil && !apierrors.IsNotFound(err):
		a.log.Warn("reading this node's earlier result", "recording", o.Metadata.Namespace+"/"+o.Metadata.Name, "err", err)
	}
	return nil
}

// publishKey is what of a node's status is worth a write while the recording
// goes on: everything but the counters (events, and how often each denied or
// missing call was made), which change with every call a container makes. At
// fleet scale each write costs the API server ~10–17 ms of CPU, so a node whose
// containers make no new call writes nothing; the counters go out with the next
// change, and with the final result. Each profile stands in the key as its
// digest, from sums.
func publishKey(st kubeapi.NodeRecording, sums profileSums) []byte {
	st.Updated = ""
	st.Containers = slices.Clone(st.Containers)
	zero := func(calls []kubeapi.Call) []kubeapi.Call {
		calls = slices.Clone(calls)
		for i := range calls {
			calls[i].Count = 0
		}
		return calls
	}
	for i := range st.Containers {
		c := &st.Containers[i]
		c.Events = 0
		c.Denied, c.Missing, c.Conditional = zero(c.Denied), zero(c.Missing), zero(c.Conditional)
		if c.Profile != nil {
			c.Profile, c.ProfileData = nil, sums.of(c.Profile).digest
		}
	}
	key, _ := json.Marshal(st)
	return key
}

// contentKey is publishKey without the phase and message: what a node's final
// answer says without a write of its result.
func contentKey(st kubeapi.NodeRecording, sums profileSums) []byte {
	st.Phase, st.Message = "", ""
	return publishKey(st, sums)
}

// profileSums keep what the agent needs of each profile's JSON: a digest, for
// the keys that say whether a node's status changed, and its size, for the
// node result's budget. A node's status is built again every publication
// interval, and its ten profiles' JSON was most of an agent's work: the
// profiles a container's memo holds (builtProfile, the same object while its
// calls stay the same) are kept from one reconcile to the next. A profile is
// never changed once built; the map's keys keep the ones it holds alive.
type profileSums map[*specs.LinuxSeccomp]profileSum

type profileSum struct {
	digest string
	size   int
}

// of returns p's sum, computing it if it is not kept (and keeping it, but in
// a nil map).
func (m profileSums) of(p *specs.LinuxSeccomp) profileSum {
	if s, ok := m[p]; ok {
		return s
	}
	b, _ := json.Marshal(p)
	h := sha256.Sum256(b)
	s := profileSum{digest: "sha256:" + hex.EncodeToString(h[:]), size: len(b)}
	if m != nil {
		m[p] = s
	}
	return s
}

// keepSums starts a reconcile's profile sums: those of the profiles the
// containers' memos still hold.
func (a *Agent) keepSums() {
	if a.sums == nil {
		a.sums = profileSums{}
	}
	var buf [16]*specs.LinuxSeccomp
	held := buf[:0]
	for _, c := range a.containers {
		if c.built.profile != nil {
			held = append(held, c.built.profile)
		}
	}
	for p := range a.sums {
		if !slices.Contains(held, p) {
			delete(a.sums, p)
		}
	}
}

// publishInterval bounds how often a node publishes a recording whose containers
// merely made new calls.
const publishInterval = 5 * time.Second

// A write that took longer than slowWrite waited in the API server's queue
// behind others': the API server is behind. Each node of a fleet then publishes
// the calls it sees half as often, up to once per maxPublishInterval, and twice
// as often again after writes that went through at once. Left at 5 s, 5,000
// nodes asked some 1,000 writes a second of an API server that took 150 on two
// cores: every write waited behind the whole fleet's, and so did the answers a
// recording waits for (each node's first, and its last after the stop). What a
// node must say at once (a container that starts or exits, a phase) is
// published at once whatever the interval.
const (
	slowWrite          = time.Second
	maxPublishInterval = time.Minute
)

// adapt sets the publication interval after a write that took took.
func (a *Agent) adapt(took time.Duration, err error) {
	switch {
	case took > slowWrite || apierrors.IsTooManyRequests(err):
		a.every = min(2*max(a.every, publishInterval), maxPublishInterval)
	case took < slowWrite/4:
		a.every = max(a.every/2, publishInterval)
	}
}

// shape is what of a recording's node status is published without delay: its
// phase and message inputs and its containers, with whether each runs.
func (a *Agent) shape(uid string, r *recording, stopping bool) string {
	// Built at every reconcile of every recording, each second: no fmt.
	type entry struct {
		key          string
		live, noHook bool
	}
	var buf [16]entry
	ids := buf[:0]
	for key, c := range a.containers {
		if c.recording == uid {
			ids = append(ids, entry{key, c.live, c.noHook})
		}
	}
	slices.SortFunc(ids, func(x, y entry) int { return strings.Compare(x.key, y.key) })
	b := make([]byte, 0, 64+len(ids)*80)
	if r.err != nil {
		b = append(b, r.err.Error()...)
	}
	b = strconv.AppendBool(append(b, ' '), r.stopped)
	b = strconv.AppendBool(append(b, ' '), stopping)
	b = strconv.AppendInt(append(b, ' '), int64(len(r.carried)), 10)
	b = strconv.AppendInt(append(b, ' '), int64(len(a.heldElsewhere(uid, r))), 10)
	b = append(b, '|')
	for i, e := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendBool(append(append(b, e.key...), ':'), e.live)
		b = strconv.AppendBool(append(b, ':'), e.noHook)
	}
	return string(b)
}

// writeSelection tells the hook and the runc wrapper which namespaces to send.
func (a *Agent) writeSelection(stopping bool) {
	var nss []string
	if !stopping {
		for _, r := range a.recordings {
			if r.active() && !slices.Contains(nss, r.obj.Metadata.Namespace) {
				nss = append(nss, r.obj.Metadata.Namespace)
			}
		}
	}
	slices.Sort(nss)
	if slices.Equal(nss, a.selection) && (len(nss) > 0 || a.selection != nil) {
		a.markArmed(nss) // a recording in a namespace already selected
		return
	}
	if err := hooks.WriteSelection(a.dir, &hooks.Selection{Namespaces: nss}); err != nil {
		a.log.Error("writing the node's selection", "err", err)
		return
	}
	a.markArmed(nss)
	if nss == nil {
		nss = []string{}
	}
	a.selection = nss
}

// markArmed notes when each active recording's namespace is first in the
// selection the hook reads.
func (a *Agent) markArmed(nss []string) {
	now := time.Now()
	for _, r := range a.recordings {
		if r.armed.IsZero() && r.active() && slices.Contains(nss, r.obj.Metadata.Namespace) {
			r.armed = now
		}
	}
}

// attach tracks the selected containers that are running but not recorded: they
// started before the recording, or on a node whose runtime runs no hook.
func (a *Agent) attach() {
	// Run at every reconcile, each second: the containers recorded already
	// are skipped before any selector is matched.
	var buf [16]string
	live := buf[:0]
	for _, c := range a.containers {
		if c.live {
			live = append(live, c.id)
		}
	}
	for _, p := range a.pods {
		if len(p.running) == 0 || !a.selectsPod(p.ns, p.labels) {
			continue
		}
		for id, rc := range p.running {
			if slices.Contains(live, id) {
				continue
			}
			cname := rc.name
			r := a.selecting(p.ns, p.labels, cname)
			if r == nil {
				continue
			}
			if _, ok := a.containers[r.obj.Metadata.UID+"/"+id]; ok {
				continue
			}
			dir, err := findCgroup(p.uid, id)
			if err != nil {
				a.log.Warn("cannot attach to a container", "pod", p.ns+"/"+p.name, "container", cname, "err", err)
				continue
			}
			cgid, err := cgroups.ID(dir)
			if err != nil {
				continue
			}
			opts := bpf.TrackOptions{Start: bpf.StartNow}
			if plan := r.planFor(cname); plan != nil {
				opts = plan.Track(verify.Complain, bpf.StartNow)
			}
			if err := a.rec.TrackWith(cgid, opts); err != nil {
				a.log.Warn("cannot attach to a container", "pod", p.ns+"/"+p.name, "container", cname, "err", err)
				continue
			}
			// Started well after the selection named its namespace, yet not sent
			// by a hook: this node's runtime does not run syscage-runc (or the hook).
			noHook := !r.armed.IsZero() && rc.started.After(r.armed.Add(time.Second))
			c := &container{
				id: id, name: cname, ns: p.ns, pod: p.name, uid: p.uid, recording: r.obj.Metadata.UID,
				cgroupID: cgid, dir: dir, from: kubeapi.FromAttach, attached: time.Now(), live: true, noHook: noHook,
			}
			a.containers[r.obj.Metadata.UID+"/"+id] = c
			a.watchExit(c)
			a.log.Info("attached to a running container", "pod", p.ns+"/"+p.name, "container", cname, "id", id)
		}
	}
}

// nodeStatus is this node's part of a recording, as it stands.
func (a *Agent) nodeStatus(uid string, r *recording, stopping bool) kubeapi.NodeRecording {
	st := kubeapi.NodeRecording{Phase: kubeapi.PhaseRecording}
	switch {
	case r.err != nil:
		st.Phase, st.Message = kubeapi.PhaseFailed, r.err.Error()
		return st
	case r.stopped:
		st.Phase = kubeapi.PhaseDone
	case stopping:
		st.Phase, st.Message = kubeapi.PhaseDone, "the agent stopped before the recording did: results up to then"
	}
	var ids []string
	for key, c := range a.containers {
		if c.recording == uid {
			ids = append(ids, key)
		}
	}
	slices.SortFunc(ids, func(x, y string) int {
		cx, cy := a.containers[x], a.containers[y]
		return strings.Compare(cx.pod+"/"+cx.name+"/"+cx.id, cy.pod+"/"+cy.name+"/"+cy.id)
	})
	st.Containers = append(st.Containers, r.carried...)
	var notes []string
	if busy := a.heldElsewhere(uid, r); len(busy) > 0 {
		notes = append(notes, "not recorded, being recorded by another SyscallRecording (a container is recorded by one at a time): "+strings.Join(busy, ", "))
	}
	var unhooked []string
	for _, key := range ids {
		if c := a.containers[key]; c.noHook {
			unhooked = append(unhooked, c.pod+"/"+c.name)
		}
	}
	if len(unhooked) > 0 {
		notes = append(notes, "started during the recording but attached to, not recorded from their start, as no syscage hook ran for them: "+
			"run containerd's runc through syscage-runc on this node (or the hook through hooks.d with CRI-O): "+strings.Join(unhooked, ", "))
	}
	if st.Message != "" {
		notes = append([]string{st.Message}, notes...)
	}
	st.Message = strings.Join(notes, "; ")
	for _, key := range ids {
		c := a.containers[key]
		// A container still tracked was seen populated at the start of this
		// reconcile (or it would have been untracked); one no longer tracked
		// ran or not when it stopped being tracked.
		res := kubeapi.ContainerResult{Pod: c.pod, PodUID: c.uid, Container: c.name, ContainerID: c.id, From: c.from, Running: c.live || c.running}
		if c.from == kubeapi.FromAttach {
			res.Attached = c.attached.UTC().Format(time.RFC3339)
		}
		rec := c.final
		if c.live {
			var err error
			if rec, err = a.rec.Read(c.cgroupID); err != nil {
				a.log.Warn("reading a recording", "container", c.id, "err", err)
			}
		}
		if rec != nil {
			if err := fillResult(&res, rec, r.planFor(c.name), &c.built); err != nil {
				st.Message = fmt.Sprintf("container %s of %s: %v", c.name, c.pod, err)
			}
		}
		st.Containers = append(st.Containers, res)
	}
	if err := fit(&st, a.sums); err != nil {
		st.Message = strings.TrimPrefix(st.Message+"; ", "; ") + err.Error()
	}
	return st
}

// heldElsewhere lists the running containers r selects that another recording
// is recording, as "pod/container (by NAME)".
func (a *Agent) heldElsewhere(uid string, r *recording) []string {
	if !r.active() {
		return nil
	}
	var out []string
	for _, c := range a.containers {
		if !c.live || c.recording == uid || c.ns != r.obj.Metadata.Namespace {
			continue
		}
		p := a.pods[c.uid]
		if p == nil || !r.obj.Spec.Selector.Matches(p.labels) {
			continue
		}
		if len(r.obj.Spec.Containers) > 0 && !slices.Contains(r.obj.Spec.Containers, c.name) {
			continue
		}
		by := "?"
		if o := a.recordings[c.recording]; o != nil {
			by = o.obj.Metadata.Name
		}
		out = append(out, fmt.Sprintf("%s/%s (by %s)", c.pod, c.name, by))
	}
	slices.Sort(out)
	return out
}

// fillResult puts a container's recording into its result: a profile, or in
// verify mode the calls the profile does not allow.
func fillResult(res *kubeapi.ContainerResult, rec *bpf.Recording, plan *verify.Plan, memo *builtProfile) error {
	res.Events = rec.Stats.Events
	if plan != nil {
		missing, conditional := plan.Findings(rec)
		res.Missing, res.Conditional = calls(missing), calls(conditional)
		return nil
	}
	if !memo.of(rec) {
		base, err := runtimeDefault()
		if err != nil {
			return err
		}
		built, err := record.Profile(rec, profile.Options{Baseline: base}, true)
		if err != nil {
			return err
		}
		b := builtProfile{syscalls: rec.Syscalls, args: rec.Args, profile: built.Profile}
		for _, u := range built.Unnamed {
			b.unnamed = append(b.unnamed, u.String())
		}
		for _, d := range built.Dropped {
			b.dropped = append(b.dropped, d.String())
		}
		*memo = b
	}
	res.Profile, res.Unnamed, res.Dropped = memo.profile, memo.unnamed, memo.dropped
	denials, err := record.Denials(rec)
	if err != nil {
		return err
	}
	for _, d := range denials {
		res.Denied = append(res.Denied, kubeapi.Call{Arch: d.Arch, Name: callName(d.Name, d.Nr), Count: d.Count})
	}
	return nil
}

// builtProfile is the profile last built from a container's recording, with the
// calls it was built from: the calls of a running container soon settle, and
// building its profile again from the same calls at each publication cost
// an agent more CPU than anything else it does (clipping to the baseline above
// all). Results share the profile: it is only read.
type builtProfile struct {
	syscalls         [bpf.NumABIs][]int
	args             [bpf.NumABIs]map[int]bpf.ArgValues
	profile          *specs.LinuxSeccomp
	unnamed, dropped []string
}

// of reports whether b was built from rec's calls and arguments.
func (b *builtProfile) of(rec *bpf.Recording) bool {
	if b.profile == nil {
		return false
	}
	for abi := range rec.Syscalls {
		if !slices.Equal(b.syscalls[abi], rec.Syscalls[abi]) || !maps.EqualFunc(b.args[abi], rec.Args[abi], func(x, y bpf.ArgValues) bool {
			return x.Any == y.Any && slices.Equal(x.Values, y.Values)
		}) {
			return false
		}
	}
	return true
}

// runtimeDefault is the baseline every profile the agent builds stays within:
// containerd's default, what RuntimeDefault gives. Parsed and indexed once, not
// at every change of a container's calls.
var runtimeDefault = sync.OnceValues(func() (*profile.Baseline, error) {
	name, p, err := profiles.Baseline(profiles.DefaultBaseline)
	if err != nil {
		return nil, err
	}
	return profile.NewBaseline(name, p)
})

// callName is a syscall's name, or its number where the table has none.
func callName(name string, nr int) string {
	if name == "" {
		return fmt.Sprint(nr)
	}
	return name
}

func calls(fs []verify.Finding) []kubeapi.Call {
	var out []kubeapi.Call
	for _, f := range fs {
		out = append(out, kubeapi.Call{Arch: f.Arch, Name: callName(f.Name, f.Nr), Count: f.Count, Pid: f.Pid, Comm: f.Comm})
	}
	return out
}
