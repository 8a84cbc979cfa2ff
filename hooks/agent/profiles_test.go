package agent

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// apiServer answers what the agent asks of profiles: it records patches, and
// lists the profiles it is given.
type apiServer struct {
	mu      sync.Mutex
	patches []string
	list    []kubeapi.SyscallProfile
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodPatch:
		b, _ := io.ReadAll(r.Body)
		s.patches = append(s.patches, r.URL.Path+" "+string(b))
		json.NewEncoder(w).Encode(map[string]any{"apiVersion": kubeapi.APIVersion, "kind": kubeapi.KindProfile, "metadata": map[string]any{"name": path.Base(r.URL.Path)}})
	case http.MethodGet:
		json.NewEncoder(w).Encode(map[string]any{"apiVersion": kubeapi.APIVersion, "kind": kubeapi.KindProfile + "List", "metadata": map[string]any{}, "items": s.list})
	default:
		http.Error(w, "no", http.StatusMethodNotAllowed)
	}
}

func testAgent(t *testing.T) (*Agent, *apiServer) {
	t.Helper()
	s := &apiServer{}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := newAPI(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return &Agent{opts: Options{Node: "n1", SeccompDir: t.TempDir()}, api: c, log: slog.New(slog.DiscardHandler)}, s
}

func testProfile(finalizers ...string) kubeapi.SyscallProfile {
	return kubeapi.SyscallProfile{
		Metadata: kubeapi.ObjectMeta{Name: "web", Namespace: "shop", Finalizers: finalizers},
		Spec: kubeapi.ProfileSpec{Profile: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}},
	}
}

// Profiles carry no finalizers: writing one adds none, and the finalizer an
// earlier agent left is taken off, so that no node, gone or not, keeps a
// deletion waiting.
func TestProfilesWithoutFinalizers(t *testing.T) {
	a, s := testAgent(t)
	a.syncProfile(testProfile())
	file := filepath.Join(a.opts.SeccompDir, kubeapi.LocalhostProfile("shop", "web"))
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the profile was not written: %v", err)
	}
	for _, p := range s.patches {
		if strings.Contains(p, "finalizers") {
			t.Errorf("a finalizer was set: %s", p)
		}
	}
	s.patches = nil
	a.syncProfile(testProfile(kubeapi.NodeFinalizer("n1"), "example.com/keep"))
	var dropped bool
	for _, p := range s.patches {
		if strings.Contains(p, `"finalizers":["example.com/keep"]`) {
			dropped = true
		}
	}
	if !dropped {
		t.Errorf("the earlier agent's finalizer was not taken off (and the other kept): %q", s.patches)
	}
}

// As the agent stops, the files of profiles deleted since its last list go:
// an uninstall deletes the profiles, then the agents.
func TestFinalSweep(t *testing.T) {
	a, s := testAgent(t)
	keep := testProfile()
	gone := testProfile()
	gone.Metadata.Name = "old"
	a.syncProfile(keep)
	a.syncProfile(gone)
	s.list = []kubeapi.SyscallProfile{keep}
	a.finalSweep()
	if _, err := os.Stat(filepath.Join(a.opts.SeccompDir, kubeapi.LocalhostProfile("shop", "web"))); err != nil {
		t.Errorf("a profile that still exists lost its file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.opts.SeccompDir, kubeapi.LocalhostProfile("shop", "old"))); err == nil {
		t.Error("the file of a deleted profile stayed")
	}
	s.list = nil
	a.finalSweep()
	if entries, _ := os.ReadDir(filepath.Join(a.opts.SeccompDir, kubeapi.ProfileDir)); len(entries) > 0 {
		t.Errorf("files left after every profile went: %v", entries)
	}
}

// A node reports its copy of a profile in its own SyscallNodeStatus of the
// profile's namespace, once per change: an event that brings nothing new writes
// nothing, and a deletion takes the entry out. The profile itself is never
// written to, so it does not grow with the nodes.
func TestReportInNodeStatus(t *testing.T) {
	a, s := testAgent(t)
	p := testProfile()
	a.syncProfile(p)
	data, err := profileBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	status := "/apis/" + kubeapi.APIVersion + "/namespaces/shop/" + kubeapi.NodeStatuses + "/n1 "
	if len(s.patches) != 1 || !strings.HasPrefix(s.patches[0], status+`{"profiles":{"web":{"digest":"`+kubeapi.Digest(data)+`","error":""`) {
		t.Fatalf("patches %q, want one of %s with the digest", s.patches, status)
	}
	a.syncProfile(p) // the same profile again (a resync, another field changed)
	if len(s.patches) != 1 {
		t.Errorf("nothing new was reported again: %q", s.patches[1:])
	}
	p.APIVersion, p.Kind = kubeapi.APIVersion, kubeapi.KindProfile
	u, err := toUnstructuredForTest(p)
	if err != nil {
		t.Fatal(err)
	}
	a.profileChanged(u, true)
	if len(s.patches) != 2 || s.patches[1] != status+`{"profiles":{"web":null}}` {
		t.Errorf("after the deletion, patches %q, want the entry taken out", s.patches)
	}
	for _, p := range s.patches {
		if strings.Contains(p, "/"+kubeapi.Profiles+"/") {
			t.Errorf("the profile itself was written: %s", p)
		}
	}
}

func toUnstructuredForTest(o any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	return u, u.UnmarshalJSON(b)
}
