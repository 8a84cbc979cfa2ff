package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

func TestFindCgroup(t *testing.T) {
	mnt := t.TempDir()
	uid, id := "0a1b-2c3d", "5f6e7d"
	for _, d := range []string{
		"system.slice/containerd.service",
		"kubepods/besteffort/pod0a1b-2c3d/aaaa", // the pod's sandbox
		"kubepods/besteffort/pod0a1b-2c3d/" + id,
		"kubepods/burstable/podffff/" + id + "0", // another pod, a longer ID
		"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b_2c3d.slice/cri-containerd-" + id + ".scope",
	} {
		if err := os.MkdirAll(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := findCgroupIn(mnt, uid, id)
	if err != nil {
		t.Fatal(err)
	}
	// cgroupfs's layout is walked first (lexical order); either is the container.
	if want := filepath.Join(mnt, "kubepods/besteffort/pod0a1b-2c3d", id); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	os.RemoveAll(filepath.Join(mnt, "kubepods"))
	got, err = findCgroupIn(mnt, uid, id)
	if err != nil || filepath.Base(got) != "cri-containerd-"+id+".scope" {
		t.Errorf("systemd layout: %s, %v", got, err)
	}
	if _, err := findCgroupIn(mnt, "nope", id); err == nil {
		t.Error("found a container in a pod it is not in")
	}
}

func TestParsePod(t *testing.T) {
	var o corev1.Pod
	err := json.Unmarshal([]byte(`{"metadata":{"name":"web-1","namespace":"ns","uid":"u1","labels":{"app":"web"}},
	 "status":{"initContainerStatuses":[
	  {"name":"init","containerID":"containerd://111","state":{"terminated":{"exitCode":0}}},
	  {"name":"proxy","containerID":"containerd://222","state":{"running":{"startedAt":"2026-11-25T09:59:59Z"}}}],
	 "containerStatuses":[
	  {"name":"app","containerID":"containerd://abc","state":{"running":{"startedAt":"2026-11-25T10:00:00Z"}}},
	  {"name":"side","containerID":"containerd://def","state":{"terminated":{"exitCode":0}}},
	  {"name":"new","state":{"waiting":{}}}]}}`), &o)
	if err != nil {
		t.Fatal(err)
	}
	p := parsePod(&o)
	if p.ns != "ns" || p.name != "web-1" || p.uid != "u1" || p.labels["app"] != "web" {
		t.Errorf("pod %+v", p)
	}
	if len(p.running) != 2 || p.running["abc"].name != "app" || p.running["abc"].started.Format(time.RFC3339) != "2026-11-25T10:00:00Z" ||
		p.running["222"].name != "proxy" {
		t.Errorf("running containers %v, want abc (app) and the running init container 222 (proxy)", p.running)
	}
}

// Verify mode with a profile per container: each container is checked against
// its own, the others against spec.profile.
func TestPlanPerContainer(t *testing.T) {
	allow := func(names ...string) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}}
	}
	r := &recording{}
	if err := r.makePlans(kubeapi.RecordingSpec{Mode: kubeapi.ModeVerify}); err == nil {
		t.Error("verify mode without a profile was accepted")
	}
	r = &recording{}
	if err := r.makePlans(kubeapi.RecordingSpec{Mode: kubeapi.ModeVerify, Profiles: map[string]*specs.LinuxSeccomp{"app": allow("read"), "side": allow("write")}}); err != nil {
		t.Fatal(err)
	}
	if r.planFor("app") == nil || r.planFor("side") == nil || r.planFor("app") == r.planFor("side") || r.planFor("other") != nil {
		t.Errorf("plans: app %p, side %p, other %p", r.planFor("app"), r.planFor("side"), r.planFor("other"))
	}
	r = &recording{}
	if err := r.makePlans(kubeapi.RecordingSpec{Mode: kubeapi.ModeVerify, Profile: allow("read"), Profiles: map[string]*specs.LinuxSeccomp{"side": allow("write")}}); err != nil {
		t.Fatal(err)
	}
	if r.planFor("other") != r.plan || r.planFor("side") == r.plan {
		t.Error("spec.profile is not the plan of containers without their own")
	}
	if err := (&recording{}).makePlans(kubeapi.RecordingSpec{Profiles: map[string]*specs.LinuxSeccomp{"app": nil}}); err == nil || !strings.Contains(err.Error(), "spec.profiles[app]") {
		t.Errorf("a nil profile: %v", err)
	}
}

// A restarted agent keeps what its earlier run published, and leaves a finished
// recording's results alone.
func TestRecordingCarriedOverRestart(t *testing.T) {
	a := &Agent{opts: Options{Node: "n1"}, recordings: map[string]*recording{}, containers: map[string]*container{}, pods: map[string]*pod{}}
	prev := kubeapi.NodeRecording{Phase: kubeapi.PhaseRecording, Containers: []kubeapi.ContainerResult{
		{Pod: "web-1", Container: "app", ContainerID: "c1", From: kubeapi.FromStart, Running: true, Events: 7},
	}}
	active := kubeapi.SyscallRecording{
		Metadata: kubeapi.ObjectMeta{Name: "r1", Namespace: "ns", UID: "u1"},
		Spec:     kubeapi.RecordingSpec{Mode: kubeapi.ModeRecord, Selector: kubeapi.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status:   kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{"n1": prev, "n2": {Phase: kubeapi.PhaseDone}}},
	}
	a.upsertRecording(active)
	r := a.recordings["u1"]
	if r.final {
		t.Fatal("an active recording is taken for finished")
	}
	st := a.nodeStatus("u1", r, false)
	if st.Phase != kubeapi.PhaseRecording || len(st.Containers) != 1 || st.Containers[0].ContainerID != "c1" || st.Containers[0].Running {
		t.Errorf("status after a restart: %+v, want the earlier container, not running", st)
	}

	done := active
	done.Metadata.UID, done.Spec.Stop = "u2", true
	done.Status.Nodes = map[string]kubeapi.NodeRecording{"n1": {Phase: kubeapi.PhaseDone, Containers: prev.Containers}}
	a.upsertRecording(done)
	if !a.recordings["u2"].final {
		t.Error("a recording finished before the restart would be published again, over its results")
	}

	// The earlier run said Done as it stopped, but the recording goes on.
	interrupted := active
	interrupted.Metadata.UID = "u4"
	interrupted.Status.Nodes = map[string]kubeapi.NodeRecording{"n1": {Phase: kubeapi.PhaseDone, Message: "the agent stopped", Containers: prev.Containers}}
	a.upsertRecording(interrupted)
	if r4 := a.recordings["u4"]; r4.final || a.nodeStatus("u4", r4, false).Phase != kubeapi.PhaseRecording {
		t.Error("a recording still going on is left to an agent that has stopped")
	}

	// Stopped while no agent ran on the node: it reports Done, with what it had.
	stopped := done
	stopped.Metadata.UID = "u3"
	stopped.Status.Nodes = map[string]kubeapi.NodeRecording{"n1": prev}
	a.upsertRecording(stopped)
	r3 := a.recordings["u3"]
	if st := a.nodeStatus("u3", r3, false); r3.final || st.Phase != kubeapi.PhaseDone || len(st.Containers) != 1 {
		t.Errorf("a recording stopped during the restart: final %v, status %+v", r3.final, st)
	}
}

// The agent writes below the kubelet's seccomp directory only: a symbolic link
// placed on the node does not lead its writes elsewhere.
func TestWriteProfileConfined(t *testing.T) {
	seccomp, elsewhere := t.TempDir(), t.TempDir()
	a := &Agent{opts: Options{SeccompDir: seccomp}}
	name := kubeapi.LocalhostProfile("ns", "web")
	if err := a.writeProfile(name, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if !a.fileIs(name, []byte("{}\n")) {
		t.Fatal("the profile was not written")
	}
	os.RemoveAll(filepath.Join(seccomp, kubeapi.ProfileDir))
	if err := os.Symlink(elsewhere, filepath.Join(seccomp, kubeapi.ProfileDir)); err != nil {
		t.Fatal(err)
	}
	if err := a.writeProfile(name, []byte("{}\n")); err == nil {
		t.Error("wrote through a symbolic link out of the seccomp directory")
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) > 0 {
		t.Errorf("the link's target got %v", entries)
	}
}

// A container that started during a recording but reached the agent without
// the hook is called out: the node runs no syscage-runc.
func TestNodeStatusSaysNoHook(t *testing.T) {
	a := &Agent{opts: Options{Node: "n1"}, recordings: map[string]*recording{}, containers: map[string]*container{}, pods: map[string]*pod{}}
	r := &recording{obj: kubeapi.SyscallRecording{Metadata: kubeapi.ObjectMeta{Name: "r1", UID: "u1"}, Spec: kubeapi.RecordingSpec{Mode: kubeapi.ModeRecord}}}
	a.recordings["u1"] = r
	a.containers["u1/c1"] = &container{id: "c1", name: "app", pod: "web-1", recording: "u1", from: kubeapi.FromAttach, attached: time.Now()}
	if st := a.nodeStatus("u1", r, false); st.Message != "" {
		t.Errorf("a container running before the recording: message %q", st.Message)
	}
	a.containers["u1/c1"].noHook = true
	if st := a.nodeStatus("u1", r, false); !strings.Contains(st.Message, "syscage-runc") || !strings.Contains(st.Message, "web-1/app") {
		t.Errorf("message %q does not say the runtime ran no hook for web-1/app", st.Message)
	}
}

// What is published at once: containers arriving and leaving, not their calls.
func TestShape(t *testing.T) {
	a := &Agent{opts: Options{Node: "n1"}, recordings: map[string]*recording{}, containers: map[string]*container{}, pods: map[string]*pod{}}
	r := &recording{obj: kubeapi.SyscallRecording{Metadata: kubeapi.ObjectMeta{Name: "r1", UID: "u1"}, Spec: kubeapi.RecordingSpec{Mode: kubeapi.ModeRecord}}}
	a.recordings["u1"] = r
	empty := a.shape("u1", r, false)
	a.containers["u1/c1"] = &container{id: "c1", recording: "u1", live: true}
	one := a.shape("u1", r, false)
	if one == empty {
		t.Error("a new container does not change the shape")
	}
	a.containers["u2/c9"] = &container{id: "c9", recording: "u2", live: true}
	if a.shape("u1", r, false) != one {
		t.Error("another recording's container changes the shape")
	}
	a.containers["u1/c1"].live = false
	if a.shape("u1", r, false) == one {
		t.Error("a container that stopped being tracked does not change the shape")
	}
	if a.shape("u1", r, true) == a.shape("u1", r, false) {
		t.Error("the agent stopping does not change the shape")
	}
}

// A node writes its status again for a new call, a container's state or a
// phase, not for counters that change with every call a container makes.
func TestPublishKey(t *testing.T) {
	st := func(events uint64, count uint64, calls ...string) kubeapi.NodeRecording {
		return kubeapi.NodeRecording{Phase: kubeapi.PhaseRecording, Containers: []kubeapi.ContainerResult{{
			Pod: "web-1", Container: "app", Running: true, Events: events,
			Profile: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: calls, Action: specs.ActAllow}}},
			Denied:  []kubeapi.Call{{Arch: specs.ArchX86_64, Name: "mkdir", Count: count}},
		}}}
	}
	base := publishKey(st(10, 1, "read"), nil)
	if string(publishKey(st(5000, 40, "read"), nil)) != string(base) {
		t.Error("counters alone make a write")
	}
	if string(publishKey(st(10, 1, "read", "write"), nil)) == string(base) {
		t.Error("a new call makes no write")
	}
	done := st(10, 1, "read")
	done.Phase = kubeapi.PhaseDone
	if string(publishKey(done, nil)) == string(base) {
		t.Error("the final phase makes no write")
	}
	stopped := st(10, 1, "read")
	stopped.Containers[0].Running = false
	if string(publishKey(stopped, nil)) == string(base) {
		t.Error("a container that exits makes no write")
	}
	// The key leaves the status itself as it was.
	s := st(10, 3, "read")
	publishKey(s, nil)
	if s.Containers[0].Events != 10 || s.Containers[0].Denied[0].Count != 3 {
		t.Errorf("publishKey changed the status: %+v", s.Containers[0])
	}
}

// A container's profile is built again only when its calls change: the same
// calls at the next publication reuse it.
func TestFillResultReusesProfile(t *testing.T) {
	arches, err := record.Arches()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := profile.TableFor(arches[bpf.Native])
	if err != nil {
		t.Fatal(err)
	}
	nrs := func(names ...string) []int {
		var out []int
		for _, n := range names {
			nr, ok := tab.Number(n)
			if !ok {
				t.Fatalf("no %s on %s", n, arches[bpf.Native])
			}
			out = append(out, nr)
		}
		slices.Sort(out)
		return out
	}
	rec := func(names ...string) *bpf.Recording {
		r := &bpf.Recording{Stats: bpf.Stats{Events: 10}}
		r.Syscalls[bpf.Native] = nrs(names...)
		return r
	}
	var memo builtProfile
	var first, again, grown kubeapi.ContainerResult
	if err := fillResult(&first, rec("read", "write"), nil, &memo); err != nil {
		t.Fatal(err)
	}
	if err := fillResult(&again, rec("read", "write"), nil, &memo); err != nil {
		t.Fatal(err)
	}
	if first.Profile == nil || again.Profile != first.Profile {
		t.Error("the same calls built the profile again")
	}
	if err := fillResult(&grown, rec("read", "write", "mkdirat"), nil, &memo); err != nil {
		t.Fatal(err)
	}
	if grown.Profile == first.Profile || !slices.ContainsFunc(grown.Profile.Syscalls, func(s specs.LinuxSyscall) bool { return slices.Contains(s.Names, "mkdirat") }) {
		t.Errorf("a new call did not rebuild the profile: %+v", grown.Profile)
	}
	withArg := rec("read", "write", "mkdirat")
	withArg.Args[bpf.Native] = map[int]bpf.ArgValues{0: {Values: []uint64{1}}}
	var argRes kubeapi.ContainerResult
	if err := fillResult(&argRes, withArg, nil, &memo); err != nil {
		t.Fatal(err)
	}
	if argRes.Profile == grown.Profile {
		t.Error("a new argument value did not rebuild the profile")
	}
}

// A node publishes new calls less often while the API server is slow to take
// its writes, never more often than publishInterval, and again as often once
// writes go through at once.
func TestAdaptPublication(t *testing.T) {
	a := &Agent{}
	tooMany := apierrors.NewTooManyRequests("queue full", 1)
	for i, step := range []struct {
		took time.Duration
		err  error
		want time.Duration
	}{
		{10 * time.Millisecond, nil, publishInterval},
		{2 * time.Second, nil, 2 * publishInterval},
		{2 * time.Second, nil, 4 * publishInterval},
		{500 * time.Millisecond, nil, 4 * publishInterval}, // neither slow nor fast
		{10 * time.Millisecond, tooMany, 8 * publishInterval},
		{5 * time.Second, nil, maxPublishInterval}, // 80 s, capped
		{5 * time.Second, nil, maxPublishInterval},
		{10 * time.Millisecond, nil, maxPublishInterval / 2},
		{10 * time.Millisecond, nil, maxPublishInterval / 4},
		{10 * time.Millisecond, nil, maxPublishInterval / 8},
		{10 * time.Millisecond, nil, publishInterval},
	} {
		a.adapt(step.took, step.err)
		if max(a.every, publishInterval) != step.want {
			t.Errorf("step %d (%s, %v): every %s, want %s", i, step.took, step.err, a.every, step.want)
		}
	}
}

// A recording's node status is built again once per publication interval when
// its shape stays the same, counted from its last write or from the last build
// that found nothing new; a change of shape is built at once.
func TestDueOncePerInterval(t *testing.T) {
	a := &Agent{}
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	r := &recording{shape: "s", lastSent: t0}
	for i, step := range []struct {
		at    time.Duration
		shape string
		built bool // a build at this step found nothing new
		want  bool
	}{
		{time.Second, "s", false, false},
		{publishInterval, "s", true, true},
		{publishInterval + time.Second, "s", false, false}, // not again at the next tick
		{publishInterval + time.Second, "t", false, true},  // but at once for a new shape
		{2*publishInterval - time.Second, "s", false, false},
		{2 * publishInterval, "s", false, true},
	} {
		now := t0.Add(step.at)
		if got := a.due(r, step.shape, now); got != step.want {
			t.Errorf("step %d (%s, shape %q): due %v, want %v", i, step.at, step.shape, got, step.want)
		}
		if step.built {
			r.lastBuilt = now
		}
	}
	a.every = 4 * publishInterval // the API server was slow
	if a.due(r, "s", t0.Add(3*publishInterval)) {
		t.Error("due before the adapted interval")
	}
	// A final status refused: tried again after 1, 2, 4, then 5 s, whatever
	// the interval.
	for retries, wait := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: publishInterval, 9: publishInterval} {
		r := &recording{shape: "s", lastSent: t0, retries: retries}
		if a.due(r, "s", t0.Add(wait-time.Millisecond)) || !a.due(r, "s", t0.Add(wait)) {
			t.Errorf("after %d refusals: not due %s after the last", retries, wait)
		}
	}
}
