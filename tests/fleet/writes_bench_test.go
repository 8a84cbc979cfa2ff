package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	coordv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/syscage/syscage/hooks/kubeapi"
)

var (
	recordingsGVR  = schema.GroupVersionResource{Group: kubeapi.Group, Version: kubeapi.Version, Resource: kubeapi.Recordings}
	nodeResultsGVR = schema.GroupVersionResource{Group: kubeapi.Group, Version: kubeapi.Version, Resource: kubeapi.NodeResults}
)

// BenchmarkAPIWrites measures what one write costs the API server and etcd in
// CPU, by kind of write, beside a Lease's update run with them (a merge patch of
// its renewTime, as protobuf: a small built-in object, what a kubelet's
// heartbeat costs): 1,000 writes of each kind, 32 at a time, syscage's by 1,000
// agents' tokens (so that the admission policy runs). It is the floor under
// collecting a fleet's results: `record` waits for one write per node after
// the stop.
func BenchmarkAPIWrites(b *testing.B) {
	const n = 1000
	binDir := filepath.Join(cmpOr(os.Getenv("K8SE2E_DIR"), "/var/tmp/k8s-e2e"), "bin")
	if _, err := os.Stat(filepath.Join(binDir, "kube-apiserver")); err != nil {
		b.Skipf("the cluster harness's kube-apiserver is not built (make k8s-build): %v", err)
	}
	ctx := context.Background()
	c, err := startCluster(ctx, binDir, filepath.Join(b.TempDir(), "cluster"), false, benchWriter{b})
	if err != nil {
		b.Fatal(err)
	}
	defer c.stop()
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		b.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.admin)
	if err != nil {
		b.Fatal(err)
	}
	if err := install(ctx, cs, dyn); err != nil {
		b.Fatal(err)
	}
	agentPods, err := populate(ctx, cs, n, 1)
	if err != nil {
		b.Fatal(err)
	}
	agents := make([]dynamic.Interface, n)
	if err := parallel(ctx, n, 16, func(i int) error {
		token, err := agentToken(ctx, cs, agentPods[i])
		if err != nil {
			return err
		}
		agents[i], err = dynamic.NewForConfig(&rest.Config{Host: c.apiURL, BearerToken: token, QPS: 1000, Burst: 1000,
			TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.caCert}})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	rec, err := dyn.Resource(recordingsGVR).Namespace(Namespace).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": kubeapi.APIVersion, "kind": kubeapi.KindRecording, "metadata": map[string]any{"name": "bench", "namespace": Namespace},
		"spec": map[string]any{"mode": kubeapi.ModeRecord, "selector": map[string]any{"matchLabels": map[string]any{"app": Workload}}},
	}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var profs []*specs.LinuxSeccomp
	for _, f := range []string{"demo-sh.json", "demo-tar.json"} {
		p, err := readProfile(filepath.Join("..", "..", "profiles", f))
		if err != nil {
			b.Fatal(err)
		}
		profs = append(profs, p)
	}
	// A node's result as an agent publishes it: ten containers, each with a
	// recorded profile.
	result := func(i int, suffix string, containers int, phase string, round int) []byte {
		node := nodeName(i)
		nr := kubeapi.SyscallNodeResult{APIVersion: kubeapi.APIVersion, Kind: "SyscallNodeResult",
			Metadata: kubeapi.ObjectMeta{Name: "bench-" + node + suffix, Namespace: Namespace, Labels: map[string]string{kubeapi.RecordingLabel: string(rec.GetUID())},
				OwnerReferences: []kubeapi.OwnerReference{{APIVersion: kubeapi.APIVersion, Kind: kubeapi.KindRecording, Name: "bench", UID: string(rec.GetUID())}}},
			Spec:   kubeapi.NodeResultSpec{Recording: "bench", Node: node},
			Result: kubeapi.NodeRecording{Phase: phase, Updated: time.Now().UTC().Format(time.RFC3339)},
		}
		for j := range containers {
			nr.Result.Containers = append(nr.Result.Containers, kubeapi.ContainerResult{Pod: Workload + "-" + node, PodUID: fmt.Sprint(i), Container: fmt.Sprintf("c%d", j),
				ContainerID: strings.Repeat(fmt.Sprintf("%02x", j), 32), From: kubeapi.FromStart, Running: true, Events: uint64(1000 + round), Profile: profs[j%len(profs)]})
		}
		data, err := json.Marshal(nr)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	nodeResults := func(i int) dynamic.ResourceInterface { return agents[i].Resource(nodeResultsGVR).Namespace(Namespace) }
	leases := cs.CoordinationV1().Leases(Namespace)
	pcfg := rest.CopyConfig(c.admin)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcs, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := parallel(ctx, n, 32, func(i int) error {
		_, err := leases.Create(ctx, &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: nodeName(i)}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	// The results the patches below change, as the agents' first publication
	// made them.
	for _, o := range []struct {
		suffix     string
		containers int
	}{{"-0", 10}, {"-empty", 0}} {
		if err := parallel(ctx, n, 32, func(i int) error {
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(result(i, o.suffix, o.containers, kubeapi.PhaseRecording, 0)); err != nil {
				return err
			}
			_, err := nodeResults(i).Create(ctx, u, metav1.CreateOptions{})
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	round := 0
	writes := []struct {
		name  string
		write func(i int) error
	}{
		{"lease-update", func(i int) error {
			renew := metav1.MicroTime{Time: time.Now()}
			body, err := json.Marshal(map[string]any{"spec": map[string]any{"renewTime": renew}})
			if err != nil {
				return err
			}
			_, err = pcs.CoordinationV1().Leases(Namespace).Patch(ctx, nodeName(i), types.MergePatchType, body, metav1.PatchOptions{})
			return err
		}},
		{"result-create", func(i int) error {
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(result(i, fmt.Sprintf("-c%d", round), 10, kubeapi.PhaseRecording, round)); err != nil {
				return err
			}
			_, err := nodeResults(i).Create(ctx, u, metav1.CreateOptions{})
			return err
		}},
		// What an agent sends at each publication: its whole result.
		{"result-patch", func(i int) error {
			_, err := nodeResults(i).Patch(ctx, fmt.Sprintf("bench-%s-0", nodeName(i)), types.MergePatchType, result(i, "-0", 10, kubeapi.PhaseRecording, round), metav1.PatchOptions{})
			return err
		}},
		// The phase alone, the rest of the object as it was.
		{"result-phase-patch", func(i int) error {
			phase := map[bool]string{true: kubeapi.PhaseDone, false: kubeapi.PhaseRecording}[round%2 == 0]
			_, err := nodeResults(i).Patch(ctx, fmt.Sprintf("bench-%s-0", nodeName(i)), types.MergePatchType, []byte(`{"result":{"phase":"`+phase+`"}}`), metav1.PatchOptions{})
			return err
		}},
		// The same on a result with no containers: the fixed cost of a write
		// of one of syscage's objects.
		{"empty-result-patch", func(i int) error {
			_, err := nodeResults(i).Patch(ctx, fmt.Sprintf("bench-%s-empty", nodeName(i)), types.MergePatchType, result(i, "-empty", 0, kubeapi.PhaseRecording, round), metav1.PatchOptions{})
			return err
		}},
	}
	cpu := map[string][]float64{}
	// Each kind in turn, three rounds, the order rotated: the machine's other
	// work weighs on each alike.
	for r := range 3 {
		for k := range writes {
			w := writes[(k+r)%len(writes)]
			round++
			a0, e0 := c.apiCPU(), c.etcdCPU()
			if err := parallel(ctx, n, 32, w.write); err != nil {
				b.Fatalf("%s: %v", w.name, err)
			}
			a1, e1 := c.apiCPU(), c.etcdCPU()
			cpu[w.name] = append(cpu[w.name], float64((a1-a0)+(e1-e0))/float64(time.Millisecond)/n)
			cpu[w.name+"-api"] = append(cpu[w.name+"-api"], float64(a1-a0)/float64(time.Millisecond)/n)
		}
	}
	base := median(cpu["lease-update"])
	for _, w := range writes {
		b.ReportMetric(median(cpu[w.name+"-api"]), "ms-api/"+w.name)
		b.ReportMetric(median(cpu[w.name]), "ms-api+etcd/"+w.name)
		b.ReportMetric(median(cpu[w.name])/base, "x-lease/"+w.name)
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}

// benchWriter logs each write as a line of the benchmark's output.
type benchWriter struct{ b *testing.B }

func (w benchWriter) Write(p []byte) (int, error) {
	w.b.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
