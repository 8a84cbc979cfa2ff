package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/tests/testenv"
)

// resultServer plays the API server for a node's result and its final answer:
// it finds no earlier result, records each write as "METHOD PATH", answers a result's write with the
// next resourceVersion, and refuses the result's writes while failing is set.
type resultServer struct {
	mu      sync.Mutex
	writes  []string
	bodies  []string
	version int
	failing bool // results refused (429)
	refuse  bool // answers refused (429)
}

func (s *resultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodGet { // no earlier result
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
		return
	}
	b, _ := io.ReadAll(r.Body)
	s.writes = append(s.writes, r.Method+" "+r.URL.Path)
	s.bodies = append(s.bodies, string(b))
	w.Header().Set("Content-Type", "application/json")
	if strings.Contains(r.URL.Path, "/leases") && s.refuse {
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}`)
		return
	}
	if strings.Contains(r.URL.Path, "/leases") {
		json.NewEncoder(w).Encode(map[string]any{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": map[string]any{"name": path.Base(r.URL.Path)}})
		return
	}
	if s.failing {
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}`)
		return
	}
	s.version++
	json.NewEncoder(w).Encode(map[string]any{"apiVersion": kubeapi.APIVersion, "kind": "SyscallNodeResult",
		"metadata": map[string]any{"name": path.Base(r.URL.Path), "resourceVersion": string(rune('0' + s.version))}})
}

// serveResults starts a resultServer for the test, and an agent's client of it.
func serveResults(t *testing.T) (*resultServer, *api) {
	s := &resultServer{}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := newAPI(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func (s *resultServer) take() (writes, bodies []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writes, bodies = s.writes, s.bodies
	s.writes, s.bodies = nil, nil
	return writes, bodies
}

// A node answers a stop with a Lease alone when its result already holds every
// call it saw, naming the result's version; a node whose result lacks calls
// writes it, final, instead.
func TestFinalAnswer(t *testing.T) {
	s, c := serveResults(t)
	ctx := context.Background()
	newAgent := func() *Agent {
		return &Agent{opts: Options{Node: "n1"}, api: c, log: slog.New(slog.DiscardHandler), dir: t.TempDir(),
			recordings: map[string]*recording{}, containers: map[string]*container{}, pods: map[string]*pod{},
			synced: map[string]bool{"pods": true, "recordings": true}}
	}
	rec := kubeapi.SyscallRecording{
		Metadata: kubeapi.ObjectMeta{Name: "r1", Namespace: "ns", UID: "u1"},
		Spec:     kubeapi.RecordingSpec{Mode: kubeapi.ModeRecord, Selector: kubeapi.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	stopped := rec
	stopped.Spec.Stop = true
	resultPath := "/apis/syscage.io/v1alpha1/namespaces/ns/syscallnoderesults/" + kubeapi.NodeResultName("r1", "n1")
	leasesPath := "/apis/coordination.k8s.io/v1/namespaces/ns/leases"

	// Published while recording, then stopped: the answer alone.
	a := newAgent()
	a.upsertRecording(rec)
	a.reconcile(ctx, false)
	if w, _ := s.take(); len(w) != 1 || w[0] != "PATCH "+resultPath {
		t.Fatalf("the first publication: %q, want the result patched", w)
	}
	a.upsertRecording(stopped)
	a.reconcile(ctx, false)
	w, b := s.take()
	if len(w) != 1 || w[0] != "POST "+leasesPath {
		t.Fatalf("the stop: %q, want a Lease created and nothing else", w)
	}
	if !strings.Contains(b[0], `"result":"1"`) || !strings.Contains(b[0], `"phase":"Done"`) || !strings.Contains(b[0], kubeapi.FinalAnnotation) {
		t.Errorf("the answer %q does not say Done for the result's version 1", b[0])
	}
	a.reconcile(ctx, false)
	if w, _ := s.take(); len(w) != 0 {
		t.Errorf("answered again: %q", w)
	}

	// The result's write was refused while recording: at the stop it is
	// written, saying Done, and needs no answer.
	a = newAgent()
	a.upsertRecording(rec)
	s.failing = true
	a.reconcile(ctx, false)
	s.take()
	s.failing = false
	a.upsertRecording(stopped)
	a.reconcile(ctx, false)
	w, b = s.take()
	if len(w) != 1 || w[0] != "PATCH "+resultPath {
		t.Fatalf("the stop after a refused write: %q, want the result alone", w)
	}
	if !strings.Contains(b[0], `"phase":"Done"`) {
		t.Errorf("the result written at the stop says %s, want the phase Done", b[0])
	}

	// The answer refused: tried again a second later, not an interval on.
	a = newAgent()
	a.upsertRecording(rec)
	a.reconcile(ctx, false)
	s.take()
	a.upsertRecording(stopped)
	s.refuse = true
	a.reconcile(ctx, false)
	s.refuse = false
	if w, _ := s.take(); len(w) == 0 || w[len(w)-1] != "POST "+leasesPath {
		t.Fatalf("the refused answer: %q, want a Lease's creation", w)
	}
	r := a.recordings["u1"]
	if r.final || r.retries != 1 {
		t.Fatalf("after a refused answer: final %v, %d retries; want not final, 1", r.final, r.retries)
	}
	r.lastSent = r.lastSent.Add(-time.Second)
	a.reconcile(ctx, false)
	if w, _ := s.take(); len(w) != 1 || w[0] != "POST "+leasesPath || !r.final || r.retries != 0 {
		t.Errorf("a second after the refusal: %q (final %v, %d retries), want the answer again, taken", w, r.final, r.retries)
	}
}

// untracked counts what a test agent's recorder is asked.
type untracked struct {
	mu  sync.Mutex
	ids []uint64
}

func (u *untracked) TrackWith(uint64, bpf.TrackOptions) error { return nil }
func (u *untracked) Read(uint64) (*bpf.Recording, error)      { return &bpf.Recording{}, nil }
func (u *untracked) Untrack(id uint64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ids = append(u.ids, id)
	return nil
}

// A container whose cgroup empties is untracked at the next reconcile, told by
// inotify (the agent is woken) rather than found by reading every container's
// cgroup.events; one that keeps running stays tracked.
func TestExitTold(t *testing.T) {
	e, err := cgroups.WatchEmptied()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rec := &untracked{}
	a := &Agent{opts: Options{Node: "n1"}, log: slog.New(slog.DiscardHandler), rec: rec, emptied: e, dir: t.TempDir(), wake: make(chan struct{}, 1),
		recordings: map[string]*recording{}, containers: map[string]*container{}, pods: map[string]*pod{},
		synced: map[string]bool{"pods": true, "recordings": true}}
	events := func(dir, populated string) { testenv.SetPopulated(t, dir, populated == "1") }
	exits, runs := t.TempDir(), t.TempDir()
	events(exits, "1")
	events(runs, "1")
	a.mu.Lock()
	for i, dir := range []string{exits, runs} {
		c := &container{id: dir, cgroupID: uint64(i + 1), dir: dir, live: true}
		a.containers[dir] = c
		a.watchExit(c)
		if !c.watched || c.gone {
			t.Fatalf("container %d: watched %v, gone %v", i, c.watched, c.gone)
		}
	}
	a.mu.Unlock()
	events(exits, "0")
	select {
	case <-a.wake:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent was not woken when the cgroup emptied")
	}
	a.reconcile(context.Background(), false)
	if !slices.Equal(rec.ids, []uint64{1}) {
		t.Errorf("untracked %v, want the container that exited (1) alone", rec.ids)
	}
	// The stop untracks the other; the final status says which ran then from
	// what inotify told, without reading their cgroups again (at a stop, a
	// fleet's every node builds one).
	a.mu.Lock()
	a.untrack(a.containers[runs])
	a.mu.Unlock()
	if err := os.Remove(filepath.Join(runs, "cgroup.events")); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	st := a.nodeStatus("", &recording{stopped: true}, false)
	a.mu.Unlock()
	running := map[string]bool{}
	for _, c := range st.Containers {
		running[c.ContainerID] = c.Running
	}
	if ran, ok := running[runs]; !ok || !ran || running[exits] {
		t.Errorf("running in the final status: %v, want %s running (and %s, if there, not)", running, runs, exits)
	}
}

// A recording with spec.stopAt ends on the node's own timer: the agent is woken
// then, reads and untracks its containers and answers Done, with no spec.stop
// sent; its results say it understands stopAt, and a stopAt that is not a time
// fails the recording on the node.
func TestStopAt(t *testing.T) {
	s, c := serveResults(t)
	ctx := context.Background()
	recorder := &untracked{}
	a := &Agent{opts: Options{Node: "n1"}, api: c, rec: recorder, log: slog.New(slog.DiscardHandler), dir: t.TempDir(), wake: make(chan struct{}, 1),
		recordings: map[string]*recording{}, containers: map[string]*container{}, pods: map[string]*pod{},
		synced: map[string]bool{"pods": true, "recordings": true}}
	cg := t.TempDir()
	testenv.SetPopulated(t, cg, true)
	rec := kubeapi.SyscallRecording{
		Metadata: kubeapi.ObjectMeta{Name: "r1", Namespace: "ns", UID: "u1"},
		Spec: kubeapi.RecordingSpec{Mode: kubeapi.ModeRecord, Selector: kubeapi.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			StopAt: time.Now().Add(300 * time.Millisecond).UTC().Format(time.RFC3339Nano)},
	}
	a.upsertRecording(rec)
	a.mu.Lock()
	a.containers["u1/c1"] = &container{id: "c1", name: "web", ns: "ns", pod: "web-0", uid: "p1", recording: "u1", cgroupID: 7, dir: cg, live: true}
	a.mu.Unlock()
	a.reconcile(ctx, false)
	w, b := s.take()
	if len(w) != 1 || !strings.HasPrefix(w[0], "PATCH ") || !strings.Contains(b[0], `"features":["stopAt"]`) || !strings.Contains(b[0], `"phase":"Recording"`) {
		t.Fatalf("before stopAt: %q %q, want the result published, recording, saying it understands stopAt", w, b)
	}
	if got := a.selecting("ns", map[string]string{"app": "web"}, "web"); got == nil {
		t.Fatal("before stopAt the recording selects nothing")
	}
	select {
	case <-a.wake:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent was not woken at stopAt")
	}
	a.reconcile(ctx, false)
	w, b = s.take()
	if len(w) != 1 || w[0] != "POST /apis/coordination.k8s.io/v1/namespaces/ns/leases" || !strings.Contains(b[0], `"phase":"Done"`) {
		t.Fatalf("at stopAt: %q %q, want the final answer alone, Done", w, b)
	}
	if !slices.Equal(recorder.ids, []uint64{7}) {
		t.Errorf("untracked %v at stopAt, want the container (7)", recorder.ids)
	}
	if got := a.selecting("ns", map[string]string{"app": "web"}, "web"); got != nil {
		t.Error("after stopAt the recording still selects containers")
	}

	bad := rec
	bad.Metadata.UID, bad.Metadata.Name = "u2", "r2"
	bad.Spec.StopAt = "tomorrow"
	a.upsertRecording(bad)
	a.reconcile(ctx, false)
	w, b = s.take()
	if len(w) != 1 || !strings.Contains(b[0], `"phase":"Failed"`) || !strings.Contains(b[0], `spec.stopAt \"tomorrow\"`) {
		t.Errorf("a stopAt that is no time: %q %q, want the result Failed, naming spec.stopAt", w, b)
	}
}
