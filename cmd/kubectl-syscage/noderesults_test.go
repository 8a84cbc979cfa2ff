package main

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/syscage/syscage/hooks/kubeapi"
)

func nodeResultObject(t *testing.T, name, node, ownerUID, labelUID string, phase string) runtime.Object {
	t.Helper()
	u, err := toUnstructured(kubeapi.SyscallNodeResult{
		APIVersion: kubeapi.APIVersion, Kind: "SyscallNodeResult",
		Metadata: kubeapi.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{kubeapi.RecordingLabel: labelUID},
			OwnerReferences: []kubeapi.OwnerReference{{APIVersion: kubeapi.APIVersion, Kind: "SyscallRecording", Name: "rec", UID: ownerUID}}},
		Spec:   kubeapi.NodeResultSpec{Recording: "rec", Node: node},
		Result: kubeapi.NodeRecording{Phase: phase},
	})
	if err != nil {
		t.Fatal(err)
	}
	return (*unstructured.Unstructured)(u)
}

// Each node's part of a recording is an object of its own; the plugin gathers
// those of the recording (by label and owner), over what older agents wrote in
// the status.
func TestNodeResultsGathered(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{
		nodeResultObject(t, "rec-a", "node-a", "uid-1", "uid-1", kubeapi.PhaseDone),
		nodeResultObject(t, "rec-b", "node-b", "uid-1", "uid-1", kubeapi.PhaseRecording),
		nodeResultObject(t, "rec-x", "node-x", "uid-other", "uid-1", kubeapi.PhaseDone), // not its owner
		nodeResultObject(t, "other-c", "node-c", "uid-2", "uid-2", kubeapi.PhaseDone),   // another recording
	})
	c := &clients{dyn: fc.dyn, leases: fc.kube.CoordinationV1()}
	rec := kubeapi.SyscallRecording{Metadata: kubeapi.ObjectMeta{Name: "rec", Namespace: "shop", UID: "uid-1"},
		Status: kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{"node-old": {Phase: kubeapi.PhaseDone}}}}
	if err := c.nodeResults(context.Background(), &rec); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for n, r := range rec.Status.Nodes {
		got[n] = r.Phase
	}
	want := map[string]string{"node-a": kubeapi.PhaseDone, "node-b": kubeapi.PhaseRecording, "node-old": kubeapi.PhaseDone}
	if len(got) != len(want) {
		t.Fatalf("nodes %v, want %v", got, want)
	}
	for n, p := range want {
		if got[n] != p {
			t.Errorf("node %s: phase %q, want %q", n, got[n], p)
		}
	}
}

// A wait follows the node results with one list and a watch: results listed,
// results created and changed afterwards, none of another owner's.
func TestResultsWatched(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{
		nodeResultObject(t, "rec-a", "node-a", "uid-1", "uid-1", kubeapi.PhaseRecording),
		nodeResultObject(t, "rec-x", "node-x", "uid-other", "uid-1", kubeapi.PhaseDone), // not its owner
	})
	c := &clients{dyn: fc.dyn, leases: fc.kube.CoordinationV1()}
	ctx := context.Background()
	w := c.watchResults(ctx, "shop", "uid-1")
	defer w.stop()
	phases := func() map[string]string {
		rec := kubeapi.SyscallRecording{}
		if err := w.into(ctx, &rec); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for n, r := range rec.Status.Nodes {
			got[n] = r.Phase
		}
		return got
	}
	if got := phases(); len(got) != 1 || got["node-a"] != kubeapi.PhaseRecording {
		t.Fatalf("listed: %v, want node-a Recording", got)
	}
	ri := fc.dyn.Resource(nodeResultsGVR).Namespace("shop")
	if _, err := ri.Create(ctx, nodeResultObject(t, "rec-b", "node-b", "uid-1", "uid-1", kubeapi.PhaseDone).(*unstructured.Unstructured), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ri.Update(ctx, nodeResultObject(t, "rec-a", "node-a", "uid-1", "uid-1", kubeapi.PhaseDone).(*unstructured.Unstructured), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"node-a": kubeapi.PhaseDone, "node-b": kubeapi.PhaseDone}
	var got map[string]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = phases(); maps.Equal(got, want) {
			return
		}
	}
	t.Fatalf("watched: %v, want %v", got, want)
}

// The wait for every node's first answer follows the node results' metadata
// alone: a node has answered once the object of its name, owned by the
// recording, exists.
func TestNamesWatch(t *testing.T) {
	meta := func(name, ownerUID, labelUID string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{
			TypeMeta: metav1.TypeMeta{APIVersion: kubeapi.APIVersion, Kind: "SyscallNodeResult"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{kubeapi.RecordingLabel: labelUID},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: kubeapi.APIVersion, Kind: "SyscallRecording", Name: "rec", UID: types.UID(ownerUID)}}},
		}
	}
	scheme := metadatafake.NewTestScheme()
	metav1.AddMetaToScheme(scheme)
	fm := metadatafake.NewSimpleMetadataClient(scheme,
		meta(kubeapi.NodeResultName("rec", "node-a"), "uid-1", "uid-1"),
		meta(kubeapi.NodeResultName("rec", "node-x"), "uid-other", "uid-1"), // not its owner
	)
	c := &clients{meta: fm}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := c.watchNames(ctx, "shop", "rec", "uid-1")
	if err != nil || w == nil {
		t.Fatalf("watchNames: %v, %v", w, err)
	}
	defer w.stop()
	for !w.synced() {
		if ctx.Err() != nil {
			t.Fatal("the first list never came")
		}
		time.Sleep(time.Millisecond)
	}
	if !w.answered("node-a") || w.answered("node-x") || w.answered("node-b") {
		t.Errorf("answered: node-a %v, node-x %v, node-b %v; want true, false, false", w.answered("node-a"), w.answered("node-x"), w.answered("node-b"))
	}
	// node-b answers while the wait goes on.
	if _, err := fm.Resource(nodeResultsGVR).Namespace("shop").(metadatafake.MetadataClient).CreateFake(meta(kubeapi.NodeResultName("rec", "node-b"), "uid-1", "uid-1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for !w.answered("node-b") {
		if ctx.Err() != nil {
			t.Fatal("node-b's answer was not seen")
		}
		time.Sleep(time.Millisecond)
	}
	if w, err := (&clients{}).watchNames(ctx, "shop", "rec", "uid-1"); w != nil || err != nil {
		t.Errorf("without a metadata client: %v, %v; want nothing to follow", w, err)
	}
}

func leaseObject(name, holder, ownerUID string, a *kubeapi.FinalAnswer) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{kubeapi.RecordingLabel: "uid-1"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: kubeapi.APIVersion, Kind: "SyscallRecording", Name: "rec", UID: types.UID(ownerUID)}}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder},
	}
	if a != nil {
		data, _ := json.Marshal(a)
		l.Annotations = map[string]string{kubeapi.FinalAnnotation: string(data)}
	}
	return l
}

// A node's final answer (its Lease) completes its result when it names the
// version of the result read: phase, message and counters. An answer for
// another version, held by another node than the one it names, or owned by
// another recording, completes nothing.
func TestResultsCompletedByAnswers(t *testing.T) {
	result := func(name, node, version string, events uint64) runtime.Object {
		u := nodeResultObject(t, name, node, "uid-1", "uid-1", kubeapi.PhaseRecording).(*unstructured.Unstructured)
		u.SetResourceVersion(version)
		unstructured.SetNestedSlice(u.Object, []any{map[string]any{"pod": "web", "container": "app", "containerID": "c", "from": "start", "running": true, "events": int64(events)}}, "result", "containers")
		return u
	}
	done := func(node, version string) *kubeapi.FinalAnswer {
		a := kubeapi.NewFinalAnswer(node, version, kubeapi.NodeRecording{Phase: kubeapi.PhaseDone, Message: "bye " + node,
			Containers: []kubeapi.ContainerResult{{Events: 99}}})
		return &a
	}
	fc := newFakeCluster(t, []runtime.Object{
		result("rec-a", "node-a", "10", 1),
		result("rec-b", "node-b", "11", 1),
		result("rec-c", "node-c", "12", 1),
		result("rec-d", "node-d", "13", 1),
	},
		leaseObject("rec-a", "node-a", "uid-1", done("node-a", "10")),
		leaseObject("rec-b", "node-b", "uid-1", done("node-b", "9")),      // an older version
		leaseObject("rec-c", "node-x", "uid-1", done("node-c", "12")),     // held by another node
		leaseObject("rec-d", "node-d", "uid-other", done("node-d", "13")), // another recording's
		leaseObject("rec-e", "node-e", "uid-1", nil),                      // no answer
	)
	c := &clients{dyn: fc.dyn, leases: fc.kube.CoordinationV1()}
	ctx := context.Background()
	check := func(how string, nodes map[string]kubeapi.NodeRecording) {
		t.Helper()
		for node, want := range map[string]string{"node-a": kubeapi.PhaseDone, "node-b": kubeapi.PhaseRecording, "node-c": kubeapi.PhaseRecording, "node-d": kubeapi.PhaseRecording} {
			if got := nodes[node].Phase; got != want {
				t.Errorf("%s: %s is %q, want %q", how, node, got, want)
			}
		}
		if a := nodes["node-a"]; a.Message != "bye node-a" || len(a.Containers) != 1 || a.Containers[0].Events != 99 || a.Containers[0].Container != "app" {
			t.Errorf("%s: node-a completed as %+v, want its result with the answer's message and counters", how, a)
		}
		if b := nodes["node-b"]; b.Containers[0].Events != 1 {
			t.Errorf("%s: node-b took the counters of an answer for another version: %+v", how, b)
		}
	}
	rec := kubeapi.SyscallRecording{Metadata: kubeapi.ObjectMeta{Name: "rec", Namespace: "shop", UID: "uid-1"}}
	if err := c.nodeResults(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	check("listed", rec.Status.Nodes)

	w := c.watchResults(ctx, "shop", "uid-1")
	defer w.stop()
	rec = kubeapi.SyscallRecording{}
	if err := w.into(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	check("watched", rec.Status.Nodes)
	agents := map[string]string{"node-a": "", "node-b": "", "node-c": "", "node-d": "", "node-f": ""}
	if left, ok := w.unfinished(agents); !ok || !slices.Equal(left, []string{"node-b", "node-c", "node-d", "node-f"}) {
		t.Errorf("unfinished: %v (%v), want node-b, node-c, node-d (no answer for their result) and node-f (no result)", left, ok)
	}
	// node-b answers again for the version it wrote last.
	if _, err := fc.kube.CoordinationV1().Leases("shop").Update(ctx, leaseObject("rec-b", "node-b", "uid-1", done("node-b", "11")), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rec = kubeapi.SyscallRecording{}
		if err := w.into(ctx, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Status.Nodes["node-b"].Phase == kubeapi.PhaseDone {
			if left, _ := w.unfinished(agents); !slices.Equal(left, []string{"node-c", "node-d", "node-f"}) {
				t.Errorf("unfinished after node-b's answer: %v", left)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-b's new answer was not seen: %+v", rec.Status.Nodes["node-b"])
		}
	}
}

// A user who may not read the nodes' answers is told which permission record
// needs, where.
func TestAnswersForbidden(t *testing.T) {
	fc := newFakeCluster(t, nil)
	fc.kube.PrependReactor("list", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(leasesGVR.GroupResource(), "", errors.New("no"))
	})
	c := &clients{dyn: fc.dyn, leases: fc.kube.CoordinationV1()}
	w := c.watchResults(context.Background(), "shop", "uid-1")
	defer w.stop()
	err := w.into(context.Background(), &kubeapi.SyscallRecording{})
	if err == nil || !strings.Contains(err.Error(), "record needs get, list and watch on leases.coordination.k8s.io in namespace shop") {
		t.Errorf("got %v", err)
	}
}

// A watch the API server ends (as it ends those that take its events too
// slowly) is followed by another from the last version it delivered, without a
// new list of every node's answer; a watch whose version is gone (410) is
// followed by a new list.
func TestAnswersWatchResumed(t *testing.T) {
	fc := newFakeCluster(t, nil)
	var mu sync.Mutex
	var lists int
	var from []string // the version each watch started from
	watches := make(chan *watch.FakeWatcher, 4)
	fc.kube.PrependReactor("list", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		lists++
		mu.Unlock()
		return true, &coordinationv1.LeaseList{ListMeta: metav1.ListMeta{ResourceVersion: "10"}}, nil
	})
	fc.kube.PrependWatchReactor("leases", func(a clienttesting.Action) (bool, watch.Interface, error) {
		mu.Lock()
		from = append(from, a.(clienttesting.WatchActionImpl).WatchRestrictions.ResourceVersion)
		mu.Unlock()
		w := watch.NewFakeWithChanSize(4, false)
		watches <- w
		return true, w, nil
	})
	c := &clients{dyn: fc.dyn, leases: fc.kube.CoordinationV1()}
	w := c.watchResults(context.Background(), "shop", "uid-1")
	defer w.stop()
	next := func() *watch.FakeWatcher {
		t.Helper()
		select {
		case fw := <-watches:
			return fw
		case <-time.After(10 * time.Second):
			t.Fatal("no watch of the answers started")
			return nil
		}
	}
	counts := func() (int, []string) {
		mu.Lock()
		defer mu.Unlock()
		return lists, slices.Clone(from)
	}
	first := next()
	answer := kubeapi.NewFinalAnswer("node-a", "11", kubeapi.NodeRecording{Phase: kubeapi.PhaseDone})
	lease := leaseObject("rec-a", "node-a", "uid-1", &answer)
	lease.SetResourceVersion("12")
	first.Add(lease)
	first.Stop() // the API server ends the watch
	second := next()
	if n, versions := counts(); n != 1 || !slices.Equal(versions, []string{"10", "12"}) {
		t.Fatalf("after a watch ended: %d lists, watches from %q; want 1 list, watches from 10 then 12", n, versions)
	}
	w.mu.Lock()
	_, seen := w.answers.nodes["node-a"]
	w.mu.Unlock()
	if !seen {
		t.Error("node-a's answer, delivered before its watch ended, was lost")
	}
	gone := apierrors.NewResourceExpired("too old resource version: 12 (40)")
	second.Error(&gone.ErrStatus)
	next()
	if n, versions := counts(); n != 2 || !slices.Equal(versions, []string{"10", "12", "10"}) {
		t.Fatalf("after a watch's version was gone: %d lists, watches from %q; want 2 lists, watches from 10, 12, then the new list's 10", n, versions)
	}
}

// A recording stopped at spec.stopAt is not sent spec.stop when every node's
// agent says it stops by itself; one that predates it is. A node that has not
// stopped stopGrace after stopAt is sent spec.stop, and named.
func TestStopAtUnderstood(t *testing.T) {
	withFeature := func(o runtime.Object) *unstructured.Unstructured {
		u := o.(*unstructured.Unstructured)
		if err := unstructured.SetNestedStringSlice(u.Object, []string{kubeapi.FeatureStopAt}, "spec", "features"); err != nil {
			t.Fatal(err)
		}
		return u
	}
	rec, err := toUnstructured(kubeapi.SyscallRecording{APIVersion: kubeapi.APIVersion, Kind: kubeapi.KindRecording,
		Metadata: kubeapi.ObjectMeta{Name: "rec", Namespace: "shop", UID: "uid-1"}, Spec: kubeapi.RecordingSpec{Mode: kubeapi.ModeRecord}})
	if err != nil {
		t.Fatal(err)
	}
	fc := newFakeCluster(t, []runtime.Object{
		(*unstructured.Unstructured)(rec),
		withFeature(nodeResultObject(t, "rec-a", "node-a", "uid-1", "uid-1", kubeapi.PhaseRecording)),
		nodeResultObject(t, "rec-b", "node-b", "uid-1", "uid-1", kubeapi.PhaseRecording), // an older agent
	})
	var log strings.Builder
	ctx := context.Background()
	r := &recordingRun{c: &clients{dyn: fc.dyn, leases: fc.kube.CoordinationV1(), interval: 10 * time.Millisecond}, w: &workload{namespace: "shop"},
		agents: map[string]string{"node-a": "agent-a", "node-b": "agent-b"}, timeout: 10 * time.Second, log: &log, name: "rec", uid: "uid-1"}
	defer r.follow(ctx)()
	ri := fc.dyn.Resource(nodeResultsGVR).Namespace("shop")
	if r.results.stopAtUnderstood(r.agents) {
		t.Fatal("node-b's older agent is taken to stop at spec.stopAt")
	}
	if _, err := ri.Update(ctx, withFeature(nodeResultObject(t, "rec-b", "node-b", "uid-1", "uid-1", kubeapi.PhaseRecording)), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	understood := false
	for deadline := time.Now().Add(10 * time.Second); !understood && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		understood = r.results.stopAtUnderstood(r.agents)
	}
	if !understood {
		t.Fatal("every agent says it stops at spec.stopAt, and this is not seen")
	}

	// node-a stops on time; node-b does not, and is sent spec.stop once the
	// grace is over.
	if _, err := ri.Update(ctx, withFeature(nodeResultObject(t, "rec-a", "node-a", "uid-1", "uid-1", kubeapi.PhaseDone)), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.stopBy = time.Now().Add(200 * time.Millisecond)
	go func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			fc.mu.Lock()
			stopped := len(fc.stopped) > 0
			fc.mu.Unlock()
			if stopped {
				ri.Update(ctx, withFeature(nodeResultObject(t, "rec-b", "node-b", "uid-1", "uid-1", kubeapi.PhaseDone)), metav1.UpdateOptions{})
				return
			}
		}
	}()
	start := time.Now()
	if _, err := r.waitDone(ctx); err != nil {
		t.Fatal(err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if !slices.Equal(fc.stopped, []string{"rec"}) || time.Since(start) < 200*time.Millisecond {
		t.Errorf("spec.stop sent to %v after %s, want rec once, after the grace", fc.stopped, time.Since(start))
	}
	if !strings.Contains(log.String(), "node-b") || strings.Contains(log.String(), "node-a") {
		t.Errorf("the note on the stop names other nodes than node-b: %q", log.String())
	}
}
