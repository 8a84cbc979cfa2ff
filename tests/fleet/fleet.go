package fleet

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/hooks/kubeapi"
)

// Config is one simulation.
type Config struct {
	Nodes, Containers int
	// Duration is the recording's --duration.
	Duration time.Duration
	// BinDir holds the cluster harness's kube-apiserver (make k8s-build).
	BinDir string
	// Plugin is a kubectl-syscage binary; Root is the repository (for the
	// recorded profiles).
	Plugin, Root string
	// Dir is a scratch directory, removed afterwards. MemDir, if set, is one
	// in memory (tmpfs), where each node's run directory and cgroups go, as
	// on a real node (/run and the cgroup file system): a file's creation or
	// removal on a disk costs a journal's write, 5,000 times over at a stop.
	Dir, MemDir string
	Log         io.Writer
	// APIProfile, if set, is where a CPU profile of the API server during
	// the steady part of the recording goes (go tool pprof FILE).
	APIProfile string
	// StopProfile, if set, is where a CPU profile of this process (every
	// agent) is written, from 2 s before the recording's end to the plugin's
	// exit: what the agents do when they answer a stop. The API server's, for
	// 16 s from the same moment, goes beside it (NAME-apiserver.pprof).
	StopProfile string
}

// Result is what a simulation measured.
type Result struct {
	Nodes, Containers int
	Setup             time.Duration // cluster, objects, agents synced
	// Admitted counts the containers the agents admitted before the recording
	// stopped (of Nodes × Containers).
	Admitted int
	// Window is the recording, from its creation to its stop; Writes are the
	// API server's write requests in it, by resource.
	Window time.Duration
	Writes map[string]float64
	// StopWrites are the writes from the stop seen to the plugin's exit, by
	// resource: the nodes' answers (Leases), and the results written for calls
	// not published before the stop. This process sees the stop late, so some
	// answers fall in Writes.
	StopWrites map[string]float64
	// Rejected counts the API server's 429 answers in the window (its
	// priority and fairness queues full).
	Rejected float64
	// RejectedBy are the API server's refusals over the whole run, by
	// "priority level/reason"; AgentLevel the requests it served at the
	// agents' own priority level (install's FlowSchema).
	RejectedBy map[string]float64
	AgentLevel float64
	// Terminated are the watches the API server closed as too slow to take
	// their events, by resource, over the whole run.
	Terminated map[string]float64
	// Steady is the part of Window after every container was admitted and
	// its first publication made; SteadyWrites its writes.
	Steady       time.Duration
	SteadyWrites float64
	// SteadyAPICPU is the CPU time the API server used in Steady.
	SteadyAPICPU time.Duration
	Largest      objectSize
	LargestBy    map[string]objectSize
	Objects      map[string]int
	EtcdBefore   float64 // etcd's database size before the recording
	EtcdTotal    float64 // and after
	EtcdInUse    float64
	// Collect is what the plugin says it took from stopping the recording to
	// writing the profiles; CollectSeen is the same from outside: from the
	// moment the stop was seen (spec.stop, or spec.stopAt come) to the plugin's exit.
	Collect, CollectSeen time.Duration
	// Answers are when the nodes answered the stop (their Leases' renewTime),
	// after the plugin's stop (tExit less Collect): the first, the median, the
	// 90th percentile and the last; Stored the same for when the API server
	// stored them (to the second).
	Answers, Stored [4]time.Duration
	// Merged is from the stop seen to the plugin's first profile written:
	// its wait for every node's final result, and the merge of them all.
	Merged time.Duration
	// CollectCPU is the CPU time each process used from the stop (the
	// plugin's Collect before its exit) to the plugin's exit: the API server,
	// etcd, this process with every simulated agent, and the plugin;
	// PluginCPU the plugin's over its whole run.
	CollectCPU struct{ API, Etcd, Agents, Plugin time.Duration }
	// BeforeCPU is the same over the 10 s before the stop: what the
	// recording's own publications cost, beside which the stop is answered.
	BeforeCPU     struct{ API, Etcd, Agents, Plugin time.Duration }
	PluginCPU     time.Duration
	PluginOut     string // its stderr
	Profiles      int    // profile files written
	Warnings      int    // the agents' warnings and errors
	FirstWarnings []string
}

// TotalWrites sums the writes in the window.
func (r *Result) TotalWrites() float64 {
	var n float64
	for _, v := range r.Writes {
		n += v
	}
	return n
}

// PerNodePer5s is the writes per node per 5 s over the recording.
func (r *Result) PerNodePer5s() float64 {
	return r.TotalWrites() / float64(r.Nodes) / r.Window.Seconds() * 5
}

// SteadyPerNodePer5s is the same after the start-up publications.
func (r *Result) SteadyPerNodePer5s() float64 {
	if r.Steady <= 0 {
		return 0
	}
	return r.SteadyWrites / float64(r.Nodes) / r.Steady.Seconds() * 5
}

// Summary is the result as a few lines.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fleet: %d nodes × %d containers (setup %s); %d of the %d containers admitted before the recording stopped\n",
		r.Nodes, r.Containers, r.Setup.Round(time.Second), r.Admitted, r.Nodes*r.Containers)
	fmt.Fprintf(&b, "  writes during the recording (%s): %.0f = %.1f/s = %.2f per node per 5 s", r.Window.Round(100*time.Millisecond), r.TotalWrites(),
		r.TotalWrites()/r.Window.Seconds(), r.PerNodePer5s())
	var by []string
	for _, k := range sortedKeys(r.Writes) {
		if r.Writes[k] > 0 {
			by = append(by, fmt.Sprintf("%s %.0f", k, r.Writes[k]))
		}
	}
	var after []string
	for _, k := range sortedKeys(r.StopWrites) {
		after = append(after, fmt.Sprintf("%s %.0f", k, r.StopWrites[k]))
	}
	var refused []string
	for _, k := range sortedKeys(r.RejectedBy) {
		refused = append(refused, fmt.Sprintf("%s %.0f", k, r.RejectedBy[k]))
	}
	fmt.Fprintf(&b, " (%s); %.0f requests refused with 429 (over the whole run, by priority level and reason: %s); %.0f served at the agents' priority level over the whole run\n",
		strings.Join(by, ", "), r.Rejected, cmp.Or(strings.Join(refused, ", "), "none"), r.AgentLevel)
	if len(r.Terminated) > 0 {
		var closed []string
		for _, k := range sortedKeys(r.Terminated) {
			closed = append(closed, fmt.Sprintf("%s %.0f", k, r.Terminated[k]))
		}
		fmt.Fprintf(&b, "  watches the API server closed as too slow to read them: %s\n", strings.Join(closed, ", "))
	}
	fmt.Fprintf(&b, "  writes from the stop seen to the plugin's exit: %s\n", cmp.Or(strings.Join(after, ", "), "none"))
	fmt.Fprintf(&b, "  steady state (last %s): %.0f writes = %.1f/s = %.2f per node per 5 s\n", r.Steady.Round(100*time.Millisecond), r.SteadyWrites,
		r.SteadyWrites/max(r.Steady.Seconds(), 1e-9), r.SteadyPerNodePer5s())
	if r.SteadyWrites > 0 {
		fmt.Fprintf(&b, "  API server CPU in the steady state: %s, %.1f ms per write\n", r.SteadyAPICPU.Round(10*time.Millisecond),
			float64(r.SteadyAPICPU.Microseconds())/1000/r.SteadyWrites)
	}
	fmt.Fprintf(&b, "  largest object: %s %s, %.1f KiB", r.Largest.Kind, r.Largest.Name, float64(r.Largest.Bytes)/1024)
	for _, k := range sortedKeys(r.LargestBy) {
		fmt.Fprintf(&b, "; %s: %d, largest %.1f KiB", k, r.Objects[k], float64(r.LargestBy[k].Bytes)/1024)
	}
	fmt.Fprintf(&b, "\n  etcd: %.1f MiB (%.1f MiB in use; %.1f MiB before the recording)\n", r.EtcdTotal/(1<<20), r.EtcdInUse/(1<<20), r.EtcdBefore/(1<<20))
	fmt.Fprintf(&b, "  collection + merge: %s (the plugin's own figure), %s from the stop seen to its exit, %s to its first profile written; %d profiles written\n",
		r.Collect.Round(time.Millisecond), r.CollectSeen.Round(time.Millisecond), r.Merged.Round(time.Millisecond), r.Profiles)
	if r.Answers[3] > 0 {
		fmt.Fprintf(&b, "  the nodes' final answers after the plugin's stop: made at first %s, median %s, 90%% %s, last %s; stored (to the second) at %s, %s, %s, %s\n",
			r.Answers[0].Round(10*time.Millisecond), r.Answers[1].Round(10*time.Millisecond), r.Answers[2].Round(10*time.Millisecond), r.Answers[3].Round(10*time.Millisecond),
			r.Stored[0].Round(100*time.Millisecond), r.Stored[1].Round(100*time.Millisecond), r.Stored[2].Round(100*time.Millisecond), r.Stored[3].Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "  CPU from the stop to the profiles written: API server %s, etcd %s, the simulated agents %s, the plugin %s (%s over its whole run)\n",
		r.CollectCPU.API.Round(10*time.Millisecond), r.CollectCPU.Etcd.Round(10*time.Millisecond), r.CollectCPU.Agents.Round(10*time.Millisecond),
		r.CollectCPU.Plugin.Round(10*time.Millisecond), r.PluginCPU.Round(10*time.Millisecond))
	fmt.Fprintf(&b, "  CPU in the 10 s before the stop: API server %s, etcd %s, the simulated agents %s, the plugin %s\n",
		r.BeforeCPU.API.Round(10*time.Millisecond), r.BeforeCPU.Etcd.Round(10*time.Millisecond), r.BeforeCPU.Agents.Round(10*time.Millisecond),
		r.BeforeCPU.Plugin.Round(10*time.Millisecond))
	fmt.Fprintf(&b, "  agents' warnings: %d", r.Warnings)
	for _, w := range r.FirstWarnings {
		fmt.Fprintf(&b, "\n    %s", w)
	}
	b.WriteString("\n")
	return b.String()
}

// fleet is a simulation under way.
type fleet struct {
	cfg           Config
	dir, memDir   string
	cluster       *cluster
	demos, others []source
	podUIDs       map[string]string // the workload's pods by node
	nodes         []*node
	agentCtx      context.Context
	stopAgentCtx  context.CancelFunc
	warnings      *warnings
	// emptied tells every agent when a container's cgroup empties, as each
	// agent's own would on its node (a user has 128 inotify instances).
	emptied *cgroups.Emptied
}

// Run brings up etcd and the API server, the fleet's objects and agents,
// records the workload with `kubectl syscage record`, and measures.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	// Every agent of the fleet shares this process's heap (a real one has a
	// process of its own, and a heap of a few MB), and at Go's default pace the
	// collection of that heap of thousands of agents weighed on the machine's
	// two cores as much as their work did, at the API server's expense. It is
	// collected four times more rarely, within a bound the machine has room
	// for.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(8 << 30))
	f := &fleet{cfg: cfg, dir: cfg.Dir, memDir: cmp.Or(cfg.MemDir, cfg.Dir), warnings: &warnings{}}
	f.agentCtx, f.stopAgentCtx = context.WithCancel(context.WithoutCancel(ctx))
	if f.demos, f.others, err = loadSources(cfg.Root); err != nil {
		return nil, err
	}
	if f.cluster, err = startCluster(ctx, cfg.BinDir, filepath.Join(cfg.Dir, "cluster"), cfg.APIProfile != "" || cfg.StopProfile != "", cfg.Log); err != nil {
		return nil, err
	}
	defer f.cluster.stop()
	defer f.stopAgents()
	cs, err := kubernetes.NewForConfig(f.cluster.admin)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(f.cluster.admin)
	if err != nil {
		return nil, err
	}
	if err := install(ctx, cs, dyn); err != nil {
		return nil, fmt.Errorf("installing syscage's manifests: %w", err)
	}
	logf("API server up, syscage installed; creating %d nodes with their pods", cfg.Nodes)
	agentPods, err := populate(ctx, cs, cfg.Nodes, cfg.Containers)
	if err != nil {
		return nil, err
	}
	pods, err := cs.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	f.podUIDs = map[string]string{}
	for _, p := range pods.Items {
		f.podUIDs[p.Spec.NodeName] = string(p.UID)
	}
	logf("starting %d agents", cfg.Nodes)
	if err := f.startAgents(ctx, cs, agentPods); err != nil {
		return nil, err
	}
	res = &Result{Nodes: cfg.Nodes, Containers: cfg.Containers, Setup: time.Since(start)}
	logf("every agent is ready (%s)", res.Setup.Round(time.Second))
	if res.EtcdBefore, _, err = f.cluster.etcdSize(ctx); err != nil {
		return nil, err
	}

	// The plugin, as a user runs it.
	out := filepath.Join(cfg.Dir, "profiles") + "/"
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, cfg.Plugin, "--kubeconfig", f.cluster.kubeconfig, "record", "daemonset/"+Workload, "-n", Namespace,
		"--duration", cfg.Duration.String(), "--timeout", "60m", "--keep", "-o", out)
	var firstWrote atomic.Value
	armed := make(chan time.Time, 1) // when the plugin says it records, every node armed
	cmd.Stdout, cmd.Stderr = io.Discard, io.MultiWriter(&stderr, prefixed(cfg.Log, "  kubectl-syscage: ", func(line []byte) {
		if bytes.HasPrefix(line, []byte("wrote ")) && firstWrote.Load() == nil {
			firstWrote.Store(time.Now())
		}
		if bytes.HasPrefix(line, []byte("recording for ")) {
			select {
			case armed <- time.Now():
			default:
			}
		}
	}))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cfg.Plugin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()

	// The recording's start: the containers start, and the count begins.
	err = poll(ctx, 2*time.Minute, func() (bool, error) {
		select {
		case err := <-exited:
			return false, fmt.Errorf("kubectl syscage record exited before recording: %v\n%s", err, stderr.String())
		default:
		}
		name, _, _, err := recordingState(ctx, dyn)
		return name != "", err
	})
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	// This process (every agent) is starved on a small machine: what it sees
	// (spec.stop above all) it sees late. CPU is sampled all along, and the
	// collection's share is taken from the samples at the plugin's own times.
	stopSampling := f.sampleCPU(cmd.Process.Pid)
	defer stopSampling()
	w0, err := f.cluster.apiWrites(ctx)
	if err != nil {
		return nil, err
	}
	logf("SyscallRecording created: admitting %d containers", cfg.Nodes*cfg.Containers)
	// The agents admit the containers once they have seen the recording. On an
	// API server that falls behind (thousands of nodes on two cores) that can
	// take longer than the recording: what is admitted by its end is counted.
	admitCtx, stopAdmitting := context.WithCancel(ctx)
	defer stopAdmitting()
	admitting := make(chan error, 1)
	go func() { admitting <- f.admitAll(admitCtx) }()
	admitDone := false
	select {
	case err := <-admitting:
		if err != nil {
			return nil, err
		}
		admitDone = true
		logf("every container admitted (%s)", time.Since(t0).Round(100*time.Millisecond))
	case <-time.After(cfg.Duration / 2):
		logf("containers still being admitted after %s: the recording goes on", cfg.Duration/2)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The first publication of the containers is at most a publication
	// interval away; from then on, only new calls and exits publish.
	time.Sleep(6 * time.Second)
	ts := time.Now()
	ws, err := f.cluster.apiWrites(ctx)
	if err != nil {
		return nil, err
	}
	cpuS := f.cluster.apiCPU()
	// Half-way, the last container of every pod exits: published at once.
	exitAt := time.AfterFunc(max(0, cfg.Duration/2-time.Since(t0)), func() {
		if err := f.exit(cfg.Containers - 1); err != nil {
			logf("ending containers: %v", err)
		}
	})
	defer exitAt.Stop()
	if cfg.APIProfile != "" {
		go func() {
			secs := max(5, int((cfg.Duration/2 - time.Since(t0)).Seconds()))
			if err := f.cluster.profile(ctx, cfg.APIProfile, secs); err != nil {
				logf("profiling the API server: %v", err)
			}
		}()
	}
	endStopProfile := func() {}
	// apiProfiled is closed once the API server's profile of the stop is
	// written: the objects are listed after it, so that it holds the stop alone.
	apiProfiled := make(chan struct{})
	if cfg.StopProfile == "" {
		close(apiProfiled)
	} else {
		out, err := os.Create(cfg.StopProfile)
		if err != nil {
			return nil, err
		}
		defer out.Close()
		// From 2 s before the plugin's --duration ends: it counts from when it has
		// armed every node, which at thousands of nodes is minutes after t0.
		// It ends at the plugin's exit (endStopProfile), not with this function,
		// which measures the objects after it.
		var mu sync.Mutex
		profiling, ended := false, false
		stopProfiling := make(chan struct{})
		endStopProfile = func() {
			mu.Lock()
			defer mu.Unlock()
			if !ended {
				ended = true
				close(stopProfiling)
				if profiling {
					pprof.StopCPUProfile()
				}
			}
		}
		defer endStopProfile()
		go func() {
			apiStarted := false
			defer func() {
				if !apiStarted {
					close(apiProfiled)
				}
			}()
			var at time.Time
			select {
			case at = <-armed:
			case <-stopProfiling:
				return
			}
			select {
			case <-time.After(time.Until(at.Add(cfg.Duration - 2*time.Second))):
			case <-stopProfiling:
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ended {
				return
			}
			if err := pprof.StartCPUProfile(out); err != nil {
				logf("profiling the agents at the stop: %v", err)
			} else {
				profiling = true
			}
			// The API server's, for as long as a slow collection takes.
			apiStarted = true
			go func() {
				defer close(apiProfiled)
				if err := f.cluster.profile(ctx, strings.TrimSuffix(cfg.StopProfile, ".pprof")+"-apiserver.pprof", 16); err != nil {
					logf("profiling the API server at the stop: %v", err)
				}
			}()
		}()
	}
	var t1 time.Time
	err = poll(ctx, cfg.Duration+90*time.Minute, func() (bool, error) {
		_, _, stop, err := recordingState(ctx, dyn)
		return stop, err
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the recording to stop: %w", err)
	}
	t1 = time.Now()
	if !admitDone {
		stopAdmitting()
		if err := <-admitting; err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	for _, n := range f.nodes {
		for _, c := range n.ctrs {
			if c.admitted {
				res.Admitted++
			}
		}
	}
	w1, err := f.cluster.apiWrites(ctx)
	if err != nil {
		return nil, err
	}
	res.SteadyAPICPU = f.cluster.apiCPU() - cpuS
	logf("the recording stopped (spec.stop, or spec.stopAt come): the plugin collects")
	select {
	case err = <-exited:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	tExit := time.Now()
	endStopProfile()
	if w2, err := f.cluster.apiWrites(ctx); err == nil {
		res.StopWrites = map[string]float64{}
		for k, v := range w2 {
			if k != rejectedKey && v > w1[k] {
				res.StopWrites[k] = v - w1[k]
			}
		}
	}
	res.CollectSeen = time.Since(t1)
	res.PluginOut = stderr.String()
	res.PluginCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if err != nil {
		return res, fmt.Errorf("kubectl syscage record: %w", err)
	}
	res.Window, res.Steady = t1.Sub(t0), t1.Sub(ts)
	res.Writes = map[string]float64{}
	for k, v := range w1 {
		if k == rejectedKey {
			res.Rejected = v - w0[k]
			continue
		}
		res.Writes[k] = v - w0[k]
		res.SteadyWrites += v - ws[k]
	}
	if wrote := firstWrote.Load(); wrote != nil {
		res.Merged = wrote.(time.Time).Sub(t1)
	}
	m := regexp.MustCompile(`the profiles were written (\S+) after the recording was stopped`).FindStringSubmatch(res.PluginOut)
	if m == nil {
		return res, fmt.Errorf("kubectl syscage record did not say how long it took to collect:\n%s", res.PluginOut)
	}
	if res.Collect, err = time.ParseDuration(m[1]); err != nil {
		return res, err
	}
	if res.RejectedBy, err = f.cluster.sumBy(ctx, "apiserver_flowcontrol_rejected_requests_total", "priority_level", "reason"); err != nil {
		return res, err
	}
	levels, err := f.cluster.sumBy(ctx, "apiserver_flowcontrol_dispatched_requests_total", "priority_level")
	if err != nil {
		return res, err
	}
	res.AgentLevel = levels[kubeapi.AgentName]
	if res.Terminated, err = f.cluster.sumBy(ctx, "apiserver_terminated_watchers_total", "resource"); err != nil {
		return res, err
	}
	samples := stopSampling()
	stopped := tExit.Add(-res.Collect) // the plugin's stop, by its own figure
	from, to := cpuAt(samples, stopped), cpuAt(samples, tExit)
	res.CollectCPU.API, res.CollectCPU.Etcd, res.CollectCPU.Agents = to.api-from.api, to.etcd-from.etcd, to.agents-from.agents
	res.CollectCPU.Plugin = res.PluginCPU - from.plugin
	before := cpuAt(samples, stopped.Add(-10*time.Second))
	res.BeforeCPU.API, res.BeforeCPU.Etcd, res.BeforeCPU.Agents = from.api-before.api, from.etcd-before.etcd, from.agents-before.agents
	res.BeforeCPU.Plugin = from.plugin - before.plugin
	files, _ := filepath.Glob(filepath.Join(out, "*.json"))
	res.Profiles = len(files)
	if err := f.checkProfiles(out); err != nil {
		return res, err
	}
	select {
	case <-apiProfiled:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	made, stored, err := answerTimes(ctx, cs)
	if err != nil {
		return res, err
	}
	for _, d := range []struct {
		at  []time.Time
		out *[4]time.Duration
	}{{made, &res.Answers}, {stored, &res.Stored}} {
		if n := len(d.at); n > 0 {
			for i, q := range []int{0, n / 2, n * 9 / 10, n - 1} {
				d.out[i] = d.at[q].Sub(stopped)
			}
		}
	}
	if res.Largest, res.LargestBy, res.Objects, err = syscageObjects(ctx, dyn); err != nil {
		return res, err
	}
	if res.EtcdTotal, res.EtcdInUse, err = f.cluster.etcdSize(ctx); err != nil {
		return res, err
	}
	res.Warnings, res.FirstWarnings = f.warnings.get()
	return res, nil
}

// cpuSample is the CPU time each process had used at a moment.
type cpuSample struct {
	at                        time.Time
	api, etcd, agents, plugin time.Duration // the plugin's is 0 once it has exited
}

// sampleCPU samples the CPU time of the API server, etcd, this process and the
// plugin (process plugin) every 100 ms until the returned function is called,
// which returns the samples.
func (f *fleet) sampleCPU(plugin int) func() []cpuSample {
	var (
		mu      sync.Mutex
		samples []cpuSample
		once    sync.Once
	)
	done := make(chan struct{})
	take := func() {
		s := cpuSample{time.Now(), f.cluster.apiCPU(), f.cluster.etcdCPU(), procCPU(os.Getpid()), procCPU(plugin)}
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}
	take()
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				take()
			}
		}
	}()
	return func() []cpuSample {
		once.Do(func() { close(done); take() })
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(samples)
	}
}

// cpuAt is the last sample at or before t (the first, if none is).
func cpuAt(samples []cpuSample, t time.Time) cpuSample {
	i, _ := slices.BinarySearchFunc(samples, t, func(s cpuSample, t time.Time) int { return s.at.Compare(t) })
	if i < len(samples) && samples[i].at.Equal(t) {
		return samples[i]
	}
	return samples[max(0, i-1)]
}

// warnings counts what the agents log at Warn and above, and keeps the first few.
type warnings struct {
	mu    sync.Mutex
	n     int
	first []string
	attrs []slog.Attr
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if len(w.first) < 5 {
		var b strings.Builder
		b.WriteString(r.Message)
		for _, a := range w.attrs {
			fmt.Fprintf(&b, " %s", a)
		}
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
		w.first = append(w.first, b.String())
	}
	return nil
}

func (w *warnings) WithAttrs(attrs []slog.Attr) slog.Handler {
	// The same count for every agent; the node's name goes with its messages.
	return &warningsWith{w, attrs}
}

func (w *warnings) WithGroup(string) slog.Handler { return w }

func (w *warnings) get() (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, w.first
}

type warningsWith struct {
	*warnings
	attrs []slog.Attr
}

func (w *warningsWith) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(w.attrs...)
	return w.warnings.Handle(ctx, r)
}

// prefixed writes each line to w with the time and a prefix, and passes it
// to seen. Of the profiles the plugin wrote, only the first line is shown.
func prefixed(w io.Writer, prefix string, seen func([]byte)) io.Writer {
	wrote := 0
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 4096)
		for {
			n, err := pr.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				line := buf[:i]
				seen(line)
				if bytes.HasPrefix(line, []byte("wrote ")) {
					if wrote++; wrote > 1 {
						buf = buf[i+1:]
						continue
					}
					if len(line) > 300 {
						line = append(line[:300:300], "…"...)
					}
				}
				fmt.Fprintf(w, "[%s] %s%s\n", time.Now().Format("15:04:05.000"), prefix, line)
				buf = buf[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	return pw
}
