package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/tests/testenv"
)

// steadyRecorder serves every container the same recording, as a node's
// containers that make no new call do.
type steadyRecorder struct{ rec bpf.Recording }

func (s *steadyRecorder) TrackWith(uint64, bpf.TrackOptions) error { return nil }
func (s *steadyRecorder) Untrack(uint64) error                     { return nil }
func (s *steadyRecorder) Read(uint64) (*bpf.Recording, error) {
	r := s.rec
	return &r, nil
}

// BenchmarkIdleReconcile is an agent's periodic work while it records ten
// containers that make no new call: what each node of a fleet does every
// second of a recording, and 5,000 simulated nodes beside the API server.
func BenchmarkIdleReconcile(b *testing.B) {
	e, err := cgroups.WatchEmptied()
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	srv := httptest.NewServer(&resultServer{})
	defer srv.Close()
	c, err := newAPI(&rest.Config{Host: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	rec := &steadyRecorder{}
	for nr := range 60 {
		rec.rec.Syscalls[bpf.Native] = append(rec.rec.Syscalls[bpf.Native], nr)
	}
	a := &Agent{opts: Options{Node: "n1"}, api: c, rec: rec, emptied: e, log: slog.New(slog.DiscardHandler), dir: b.TempDir(), wake: make(chan struct{}, 1),
		recordings: map[string]*recording{}, containers: map[string]*container{}, pods: map[string]*pod{},
		synced: map[string]bool{"pods": true, "recordings": true}}
	a.upsertRecording(kubeapi.SyscallRecording{
		Metadata: kubeapi.ObjectMeta{Name: "r1", Namespace: "ns", UID: "u1"},
		Spec:     kubeapi.RecordingSpec{Mode: kubeapi.ModeRecord, Selector: kubeapi.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	})
	p := &pod{ns: "ns", name: "web-1", uid: "p1", labels: map[string]string{"app": "web"}, running: map[string]runningContainer{}}
	a.pods[p.uid] = p
	a.mu.Lock()
	for j := range 10 {
		id, dir := fmt.Sprintf("c%d", j), b.TempDir()
		testenv.SetPopulated(b, dir, true)
		p.running[id] = runningContainer{name: id, started: time.Now()}
		ctr := &container{id: id, name: id, ns: "ns", pod: p.name, uid: p.uid, recording: "u1", cgroupID: uint64(j + 1), dir: dir, from: kubeapi.FromStart, live: true}
		a.containers["u1/"+id] = ctr
		a.watchExit(ctr)
	}
	a.mu.Unlock()
	ctx := context.Background()
	a.reconcile(ctx, false) // the first publication
	b.ReportAllocs()
	for b.Loop() {
		a.reconcile(ctx, false)
	}
}
