package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/oci/artifact"
	"github.com/syscage/syscage/profile"
)

var deploymentsGVR = appsv1.SchemeGroupVersion.WithResource("deployments")

// webCluster has the web deployment of the tests in namespace shop, with pods on
// node-a (an agent runs there) and node-d (none does), and agents on node-a,
// node-b and node-c, which answer with the results of input.
func webCluster(t *testing.T, input string) *fakeCluster {
	t.Helper()
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)},
		agentPod("node-a"), agentPod("node-b"), agentPod("node-c"), agentDaemonSet(),
		appPod("web-6f9c-a", "node-a"), appPod("web-6f9c-d", "node-d"),
		node("node-a"), node("node-b"), node("node-c"), node("node-d"))
	for node, n := range readRecording(t, input).Status.Nodes {
		fc.results[node] = n
	}
	fc.runAgents("node-a", "node-b", "node-c")
	return fc
}

func TestRecord(t *testing.T) {
	fc := webCluster(t, "recording.input.json")
	out := filepath.Join(t.TempDir(), "web.json")
	code, stdout, stderr := fc.run("record", "deploy/web", "-n", "shop", "--duration", "1ms", "--timeout", "10s", "-o", out, "--merge-containers")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout: %q", stdout)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/recording.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
	for _, s := range []string{
		"warning: no Ready syscage agent runs where these pods of deployment/web are, so they are not recorded: web-6f9c-d (node node-d)\n",
		"recording deployment/web (pods app=web,!canary,tier in (edge,front) in shop) on 3 nodes: SyscallRecording deploy-web-x0000\n",
		"note: the running pods of deployment/web are attached to, not restarted: the calls they made before now, their start-up above all, will be missing from the profile; use --restart to record every replica from its first syscall\n",
		"wrote " + out + ": the merged profile of 3 containers of 2 pods on 2 nodes: 1 pod recorded from the start, 1 pod with containers attached to while running\n",
		"these calls never ran and are NOT in the profile",
		"node node-c failed, its containers are missing: attaching: cgroup of container ccc not found\n",
	} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
	if diff := cmp.Diff([]string{"deploy-web-x0000"}, fc.stopped); diff != "" {
		t.Errorf("recordings stopped (-want +got):\n%s", diff)
	}
	// The recording asked for what the workload selects, and is gone.
	if _, err := fc.get(recordingsGVR, "shop", "deploy-web-x0000"); !apierrors.IsNotFound(err) {
		t.Errorf("the recording was not deleted: %v", err)
	}
	var rec kubeapi.SyscallRecording
	for _, a := range fc.dyn.Actions() {
		if a.GetVerb() == "create" && a.GetResource() == recordingsGVR {
			if err := fromUnstructured(a.(interface{ GetObject() runtime.Object }).GetObject().(*unstructured.Unstructured), &rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rec.Spec.Mode != kubeapi.ModeRecord || rec.Spec.Selector.MatchLabels["app"] != "web" || len(rec.Spec.Selector.MatchExpressions) != 2 ||
		rec.Metadata.Annotations[workloadAnnotation] != "deployment/web" {
		t.Errorf("recording created: %+v", rec)
	}
}

func TestRecordToStdoutKeepRestart(t *testing.T) {
	fc := webCluster(t, "recording.input.json")
	code, stdout, stderr := fc.run("record", "deployment.apps/web", "-n", "shop", "--duration", "1ms", "--restart", "--keep", "--name", "web-rec", "--containers", "app,sidecar", "--merge-containers")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if want, _ := os.ReadFile("testdata/recording.golden.json"); stdout != string(want) {
		t.Errorf("stdout is not the profile:\n%s", stdout)
	}
	for _, s := range []string{
		"every agent is ready; restarting deployment/web so that every replica is seen from its first syscall\n",
		"deployment/web restarted\n",
		"wrote stdout: the merged profile",
		"kept SyscallRecording shop/web-rec: kubectl -n shop get syscallrecordings web-rec -o yaml\n",
	} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
	if strings.Contains(stderr, "note: the running pods") || strings.Contains(stderr, "record with --restart") {
		t.Errorf("--restart still suggests --restart:\n%s", stderr)
	}
	u, err := fc.get(deploymentsGVR, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	if at, _, _ := unstructured.NestedString(u.Object, "spec", "template", "metadata", "annotations", restartAnnotation); at == "" {
		t.Error("the pod template was not annotated to restart")
	}
	u, err = fc.get(recordingsGVR, "shop", "web-rec")
	if err != nil {
		t.Fatalf("--keep: %v", err)
	}
	var rec kubeapi.SyscallRecording
	if err := fromUnstructured(u, &rec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"app", "sidecar"}, rec.Spec.Containers); diff != "" {
		t.Errorf("spec.containers (-want +got):\n%s", diff)
	}
}

// By default, a profile per container: the app's two replicas on two nodes
// merge into app.json, the sidecar's into sidecar.json; the init container ran
// nowhere while recorded, and the summary says so.
func TestRecordPerContainer(t *testing.T) {
	fc := webCluster(t, "recording.input.json")
	dir := filepath.Join(t.TempDir(), "web") + "/"
	code, stdout, stderr := fc.run("record", "deploy/web", "-n", "shop", "--duration", "1ms", "--timeout", "10s", "-o", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout: %q", stdout)
	}
	entries, _ := os.ReadDir(dir)
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	if diff := cmp.Diff([]string{"app.json", "app.json.coverage", "sidecar.json", "sidecar.json.coverage"}, files); diff != "" {
		t.Errorf("files written (-want +got):\n%s", diff)
	}
	rec := readRecording(t, "recording.input.json")
	for _, c := range []string{"app", "sidecar"} {
		want, err := mergeRecording(byContainer(rec.Status)[c])
		if err != nil {
			t.Fatal(err)
		}
		wantData, _ := profile.Marshal(want.Profile)
		if got, _ := os.ReadFile(filepath.Join(dir, c+".json")); string(got) != string(wantData) {
			t.Errorf("%s.json:\n%s\nwant\n%s", c, got, wantData)
		}
	}
	// The app's two replicas: one of them closed and opened; the sidecar ran once.
	for c, want := range map[string]string{
		"app":     "{\n  \"runs\": 2,\n  \"calls\": {\n    \"close\": 1,\n    \"openat\": 1\n  }\n}\n",
		"sidecar": "{\n  \"runs\": 1\n}\n",
	} {
		if got, _ := os.ReadFile(filepath.Join(dir, c+".json.coverage")); string(got) != want {
			t.Errorf("%s.json.coverage:\n%s\nwant\n%s", c, got, want)
		}
	}
	app, _ := os.ReadFile(filepath.Join(dir, "app.json"))
	if names := allowedNames(t, app); names["nanosleep"] || !names["openat"] || !names["close"] {
		t.Errorf("app.json holds the sidecar's calls, or lacks its own replicas': %v", names)
	}
	// The summary, without the lines that name the temporary directory.
	summary := strings.ReplaceAll(stderr, dir, "OUT/")
	summary = regexp.MustCompile(`written \S+ after`).ReplaceAllString(summary, "written DURATION after")
	golden(t, "record-per-container.golden.txt", []byte(summary[strings.Index(summary, "wrote "):]))

	// One container selected: its profile alone, to stdout.
	code, stdout, stderr = fc.run("record", "deploy/web", "-n", "shop", "--duration", "1ms", "--containers", "sidecar")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if side, _ := os.ReadFile(filepath.Join(dir, "sidecar.json")); stdout != string(side) {
		t.Errorf("stdout is not the sidecar's profile:\n%s", stdout)
	}
	if !strings.Contains(stderr, "wrote stdout: container sidecar of 1 pod on 1 node (node-a): all attached to while running\n") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// A pod evicted while recorded keeps what it recorded, and the summary says so.
func TestRecordEvictedPod(t *testing.T) {
	fc := webCluster(t, "recording.input.json")
	p := appPod("web-6f9c-a", "node-a")
	p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
	if _, err := fc.kube.CoreV1().Pods("shop").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := fc.run("record", "deploy/web", "-n", "shop", "--duration", "1ms", "-o", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "pod web-6f9c-a failed while recorded (Evicted: The node was low on resource: memory.): what it did until then is in the profiles\n") {
		t.Errorf("stderr:\n%s", stderr)
	}
	// Only the failed pods are asked for: a fleet's thousands of others are
	// not sent at the end of its recording.
	asked := false
	for _, a := range fc.kube.Actions() {
		if l, ok := a.(clienttesting.ListAction); ok && a.GetResource().Resource == "pods" {
			asked = asked || l.GetListRestrictions().Fields.String() == "status.phase=Failed"
		}
	}
	if !asked {
		t.Error("the failed pods were not listed with the field selector status.phase=Failed")
	}
}

func allowedNames(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	p, err := profile.Parse("profile", data)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, sc := range p.Syscalls {
		for _, n := range sc.Names {
			names[n] = true
		}
	}
	return names
}

// jobResults is what the agents publish for the Job of the tests: one pod, one
// container, recorded from its start.
func jobResults(fc *fakeCluster) {
	fc.results["node-a"] = kubeapi.NodeRecording{Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{{
		Pod: "build-x1", PodUID: "p1", Container: "test", ContainerID: "c1", From: kubeapi.FromStart, Events: 10,
		Profile: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: ptr(uint(1)), Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"execve", "exit_group", "write"}, Action: specs.ActAllow}}},
	}}}
}

func ptr[T any](v T) *T { return &v }

// record --create -f job.yaml: the Job is created only once every agent
// records, its pods carry the label the recording selects, and record waits
// for it to complete.
func TestRecordCreateJob(t *testing.T) {
	fc := newFakeCluster(t, nil, agentPod("node-a"), agentDaemonSet())
	jobResults(fc)
	fc.runAgents("node-a")
	manifest := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: batch/v1
kind: Job
metadata: {name: build}
spec:
  template:
    metadata: {labels: {app: build}}
    spec:
      restartPolicy: Never
      containers: [{name: test, image: busybox, command: [make, test]}]
`), 0o644)
	var armedAtCreate bool
	var label string
	polls := 0
	fc.dyn.PrependReactor("create", "jobs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		u := a.(clienttesting.CreateAction).GetObject().(*unstructured.Unstructured)
		label, _, _ = unstructured.NestedString(u.Object, "spec", "template", "metadata", "labels", recordLabel)
		list, _ := fc.dyn.Tracker().List(recordingsGVR, recordingsGVR.GroupVersion().WithKind(kubeapi.KindRecording), "shop")
		items, _ := meta.ExtractList(list)
		for _, it := range items {
			var rec kubeapi.SyscallRecording
			fromUnstructured(it.(*unstructured.Unstructured), &rec)
			armedAtCreate = rec.Status.Nodes["node-a"].Phase == kubeapi.PhaseRecording && rec.Spec.Selector.MatchLabels[recordLabel] == label && label != ""
		}
		return false, nil, nil
	})
	// The Job completes on the third look.
	fc.dyn.PrependReactor("get", "jobs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if polls++; polls < 3 {
			return false, nil, nil
		}
		obj, err := fc.dyn.Tracker().Get(jobsGVR, "shop", "build")
		if err != nil {
			return true, nil, err
		}
		u := obj.(*unstructured.Unstructured).DeepCopy()
		unstructured.SetNestedField(u.Object, int64(1), "status", "succeeded")
		unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Complete", "status": "True"}}, "status", "conditions")
		return true, u, nil
	})
	out := filepath.Join(t.TempDir(), "build.json")
	code, _, stderr := fc.run("record", "--create", "-f", manifest, "-n", "shop", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !armedAtCreate {
		t.Errorf("the Job was created before every agent recorded, or without the label the recording selects (%q)", label)
	}
	if _, err := fc.get(jobsGVR, "shop", "build"); err != nil {
		t.Errorf("the Job was not created: %v", err)
	}
	for _, s := range []string{
		"every agent is ready; created job/build, recorded from its first syscall\n",
		"recording until job/build completes (Ctrl-C",
		"job/build completed: 1 pod succeeded\n",
		"wrote " + out + ": container test of 1 pod on 1 node (node-a): all recorded from the start\n",
	} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
	if polls < 3 {
		t.Errorf("record stopped before the Job completed (%d looks)", polls)
	}
	if names := allowedNames(t, readAll(t, out)); !names["execve"] {
		t.Errorf("profile: %v", names)
	}
	// Again: the Job exists, and record says so before recording anything.
	code, _, stderr = fc.run("record", "--create", "-f", manifest, "-n", "shop", "-o", out)
	if code != 1 || !strings.Contains(stderr, "--create: job/build exists in namespace \"shop\": delete it first") {
		t.Errorf("second --create: exit %d\n%s", code, stderr)
	}
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// record cronjob/NAME --runs 2: the CronJob's pod template is labelled while
// recorded, and record waits for two labelled runs to finish.
func TestRecordCronJobRuns(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, `{apiVersion: batch/v1, kind: CronJob, metadata: {name: nightly, namespace: shop, uid: cj1},
		spec: {schedule: "* * * * *", jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: test, image: busybox}]}}}}}}`)},
		agentPod("node-a"), agentDaemonSet())
	jobResults(fc)
	fc.runAgents("node-a")
	// The CronJob's controller: a run from the template as it is, each look.
	runs := 0
	fc.dyn.PrependReactor("list", "jobs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		cj, err := fc.dyn.Tracker().Get(schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, "shop", "nightly")
		if err != nil {
			return true, nil, err
		}
		labels, _, _ := unstructured.NestedStringMap(cj.(*unstructured.Unstructured).Object, "spec", "jobTemplate", "spec", "template", "metadata", "labels")
		runs++
		job := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{
			"name": fmt.Sprintf("nightly-%d", runs), "namespace": "shop",
			"ownerReferences": []any{map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": "cj1", "controller": true}}},
			"spec":   map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": toAny(labels)}}},
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Complete", "status": "True"}}}}}
		fc.dyn.Tracker().Create(jobsGVR, job, "shop")
		return false, nil, nil
	})
	dir := t.TempDir()
	code, _, stderr := fc.run("record", "cronjob/nightly", "-n", "shop", "--runs", "2", "-o", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, s := range []string{
		"every agent is ready; the next runs of cronjob/nightly are recorded from their first syscall\n",
		"recording until 2 runs of cronjob/nightly finish",
		"cronjob/nightly: 2 runs recorded\n",
		"wrote " + filepath.Join(dir, "test.json") + ": container test of 1 pod",
	} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
	// The label is gone again.
	u, _ := fc.get(schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, "shop", "nightly")
	if labels, _, _ := unstructured.NestedStringMap(u.Object, "spec", "jobTemplate", "spec", "template", "metadata", "labels"); labels[recordLabel] != "" {
		t.Errorf("the CronJob keeps the label: %v", labels)
	}
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// record pod/NAME labels the pod while it is recorded, and stops when it ends
// or after --duration.
func TestRecordPod(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, `{apiVersion: v1, kind: Pod, metadata: {name: build-x1, namespace: shop, uid: p1, labels: {app: build}},
		spec: {containers: [{name: test, image: busybox}]}, status: {phase: Running}}`)},
		agentPod("node-a"), agentDaemonSet())
	jobResults(fc)
	fc.runAgents("node-a")
	var labelled string
	fc.dyn.PrependReactor("get", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		obj, err := fc.dyn.Tracker().Get(a.GetResource(), "shop", "build-x1")
		if err == nil {
			if l := obj.(*unstructured.Unstructured).GetLabels()[recordLabel]; l != "" {
				labelled = l
			}
		}
		return false, nil, nil
	})
	code, stdout, stderr := fc.run("record", "pod/build-x1", "-n", "shop", "--duration", "5ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if labelled == "" {
		t.Error("the pod was never labelled for the recording")
	}
	if !strings.Contains(stderr, "note: pod/build-x1 is attached to while running") || !strings.Contains(stderr, "--duration 5ms is over before pod/build-x1 ends") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if names := allowedNames(t, []byte(stdout)); !names["write"] {
		t.Errorf("stdout is not the profile:\n%s", stdout)
	}
	u, _ := fc.get(corev1.SchemeGroupVersion.WithResource("pods"), "shop", "build-x1")
	if l := u.GetLabels(); l[recordLabel] != "" || l["app"] != "build" {
		t.Errorf("labels after recording: %v", l)
	}

	// verify selects the pod the same way.
	labelled = ""
	code, stdout, stderr = fc.run("verify", "pod/build-x1", "-n", "shop", "--duration", "5ms", "--profile", "testdata/recording.golden.json")
	if code != 0 || labelled == "" || !strings.Contains(stdout, "pod build-x1, container test") || !strings.Contains(stderr, "watching until pod/build-x1 ends, for at most 5ms (Ctrl-C to stop early and report what was seen)") {
		t.Errorf("verify: exit %d, labelled %q\n%s%s", code, labelled, stdout, stderr)
	}
	u, _ = fc.get(corev1.SchemeGroupVersion.WithResource("pods"), "shop", "build-x1")
	if l := u.GetLabels(); l[recordLabel] != "" {
		t.Errorf("labels after verify: %v", l)
	}
}

func TestRecordNothing(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)}, agentPod("node-a"), agentDaemonSet())
	fc.results["node-a"] = kubeapi.NodeRecording{Phase: kubeapi.PhaseDone}
	fc.runAgents("node-a")
	out := filepath.Join(t.TempDir(), "web.json")
	code, _, stderr := fc.run("record", "deploy/web", "-n", "shop", "--duration", "1ms", "-o", out, "--merge-containers")
	if code != 1 || !strings.Contains(stderr, "Error: no container was recorded: the selector of deployment/web") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a profile was written: %v", err)
	}
	if _, err := fc.get(recordingsGVR, "shop", "deploy-web-x0000"); !apierrors.IsNotFound(err) {
		t.Errorf("the recording was not deleted after the error: %v", err)
	}
}

func TestRecordTimeout(t *testing.T) {
	// node-b's agent is Ready but never answers.
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)}, agentPod("node-a"), agentPod("node-b"), agentDaemonSet())
	fc.runAgents("node-a")
	code, _, stderr := fc.run("record", "deploy/web", "-n", "shop", "--duration", "1ms", "--timeout", "20ms", "--containers", "app")
	want := "Error: timed out after 20ms waiting for every agent to take up the recording: no answer yet from node-b (agent pod syscage-agent-node-b) (raise --timeout to wait longer)\n"
	if code != 1 || !strings.HasSuffix(stderr, want) {
		t.Errorf("exit %d\n%s\nwant %s", code, stderr, want)
	}
	if len(fc.stopped) != 0 {
		t.Errorf("stopped %v after failing to start", fc.stopped)
	}
	if _, err := fc.get(recordingsGVR, "shop", "deploy-web-x0000"); !apierrors.IsNotFound(err) {
		t.Errorf("the recording was not deleted after the error: %v", err)
	}
}

func TestRecordRefusals(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML),
		object(t, `{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: db, namespace: shop}, spec: {selector: {matchLabels: {app: db}}, updateStrategy: {type: OnDelete}, template: {spec: {containers: [{name: db}]}}}}`),
		object(t, `{apiVersion: batch/v1, kind: Job, metadata: {name: x, namespace: shop, uid: j1}, spec: {selector: {matchLabels: {batch.kubernetes.io/controller-uid: j1}}, template: {spec: {containers: [{name: x}]}}}}`),
	})
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"no workload", []string{"record"}, "name the WORKLOAD to record (e.g. deployment/web), or record one you create with --create -f FILE"},
		{"create without file", []string{"record", "--create"}, "--create and -f go together"},
		{"create and a workload", []string{"record", "--create", "-f", "job.yaml", "job/x"}, "--create -f job.yaml records the workload of the file: name no WORKLOAD (job/x)"},
		{"runs of a deployment", []string{"record", "deploy/web", "-n", "shop", "--runs", "2", "--containers", "app"}, "--runs 2: deployment/web is not a CronJob"},
		{"restart a job", []string{"record", "job/x", "-n", "shop", "--restart"}, "--restart: a Job is not restarted: record a new one from its first syscall with 'record --create -f FILE'"},
		{"bad workload", []string{"record", "web"}, `workload "web": name a workload as KIND/NAME`},
		{"unwritable output", []string{"record", "deploy/web", "-o", "/nonexistent/web.json"}, "-o: /nonexistent/web.json: directory /nonexistent does not exist: create it first"},
		{"bad duration", []string{"record", "deploy/web", "--duration", "0s"}, "--duration 0s: give a positive duration"},
		{"missing workload", []string{"record", "deploy/api", "-n", "shop"}, `deployment/api not found in namespace "shop": check the name, or choose the namespace with -n`},
		{"wrong namespace", []string{"record", "deploy/web"}, `deployment/web not found in namespace "default"`},
		{"unknown container", []string{"record", "deploy/web", "-n", "shop", "--containers", "db"}, `--containers db: deployment/web has no container "db"; its containers are migrate, app, sidecar`},
		{"restart on delete", []string{"record", "sts/db", "-n", "shop", "--restart"}, "--restart: statefulset/db has updateStrategy OnDelete"},
		{"one file, several containers", []string{"record", "deploy/web", "-n", "shop", "--containers", "app,sidecar", "-o", filepath.Join(t.TempDir(), "web.json")},
			"takes one profile, and deployment/web has 2 containers (app, sidecar), each with its own: name a directory (-o DIR/) for a profile per container, select one with --containers NAME, or merge them into one with --merge-containers"},
		{"a directory, merged", []string{"record", "deploy/web", "-n", "shop", "--merge-containers", "-o", t.TempDir()}, "is a directory, and --merge-containers writes one profile: name a file"},
		{"not installed", []string{"record", "deploy/web", "-n", "shop", "--containers", "app"}, "syscage is not installed in this cluster: run 'kubectl syscage install'"},
		{"verify without profile", []string{"verify", "deploy/web"}, `required flag(s) "profile" not set`},
		{"verify bad format", []string{"verify", "deploy/web", "--profile", "testdata/recording.golden.json", "-o", "xml"}, "-o xml: use json or yaml"},
		{"apply missing file", []string{"apply", "deploy/web", "--profile", "/nonexistent.json"}, "--profile: open /nonexistent.json: no such file or directory"},
		{"apply bad name", []string{"apply", "deploy/web", "--profile", "testdata/recording.golden.json", "--name", "Web"}, `--name "Web": a lowercase RFC 1123 subdomain`},
		{"install bad pull policy", []string{"install", "--pull-policy", "Sometimes"}, `--pull-policy "Sometimes": use Always, IfNotPresent or Never`},
		{"install relative dir", []string{"install", "--seccomp-dir", "seccomp"}, `--seccomp-dir "seccomp": give the absolute path on the nodes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := fc.run(tc.args...)
			if code != 1 || !strings.Contains(stderr, tc.err) {
				t.Errorf("exit %d, stderr:\n%s\nwant it to contain %q", code, stderr, tc.err)
			}
		})
	}
	if n := len(fc.dyn.Actions()); n > 10 {
		t.Errorf("%d API calls for commands that were all refused", n)
	}
}

func TestVerify(t *testing.T) {
	fc := webCluster(t, "verify.input.json")
	code, stdout, stderr := fc.run("verify", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json", "--duration", "1ms", "--timeout", "10s")
	if code != 1 {
		t.Fatalf("exit %d, want 1 for missing calls\n%s", code, stderr)
	}
	if strings.Contains(stderr, "Error:") {
		t.Errorf("an error besides the missing calls:\n%s", stderr)
	}
	golden(t, "verify-command.golden.txt", []byte(stdout))
	var rec kubeapi.SyscallRecording
	for _, a := range fc.dyn.Actions() {
		if a.GetVerb() == "create" && a.GetResource() == recordingsGVR {
			if err := fromUnstructured(a.(interface{ GetObject() runtime.Object }).GetObject().(*unstructured.Unstructured), &rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	want, err := readProfile("testdata/recording.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Spec.Mode != kubeapi.ModeVerify || !cmp.Equal(rec.Spec.Profile, want) {
		t.Errorf("recording: mode %q, profile %+v", rec.Spec.Mode, rec.Spec.Profile)
	}
	if _, err := fc.get(recordingsGVR, "shop", "deploy-web-x0000"); !apierrors.IsNotFound(err) {
		t.Errorf("the recording was not deleted: %v", err)
	}
}

// Each container checked against its own profile: the recording carries them
// by name, and the report names each container with its profile.
func TestVerifyPerContainer(t *testing.T) {
	fc := webCluster(t, "verify.input.json")
	dir := t.TempDir()
	golden, _ := os.ReadFile("testdata/recording.golden.json")
	for _, c := range []string{"migrate", "app", "sidecar"} {
		os.WriteFile(filepath.Join(dir, c+".json"), golden, 0o644)
	}
	code, stdout, stderr := fc.run("verify", "deploy/web", "-n", "shop", "--profile", dir, "--duration", "1ms", "--containers", "app,sidecar")
	if code != 1 || strings.Contains(stderr, "Error:") {
		t.Fatalf("exit %d, want 1 for missing calls\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "container app, against "+filepath.Join(dir, "app.json")+" (node ") {
		t.Errorf("the report does not name the container with its profile:\n%s", stdout)
	}
	var rec kubeapi.SyscallRecording
	for _, a := range fc.dyn.Actions() {
		if a.GetVerb() == "create" && a.GetResource() == recordingsGVR {
			if err := fromUnstructured(a.(interface{ GetObject() runtime.Object }).GetObject().(*unstructured.Unstructured), &rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rec.Spec.Profile != nil || len(rec.Spec.Profiles) != 2 || rec.Spec.Profiles["app"] == nil || rec.Spec.Profiles["migrate"] != nil || !cmp.Equal(rec.Spec.Containers, []string{"app", "sidecar"}) {
		t.Errorf("recording spec: profile %v, profiles %d, containers %v", rec.Spec.Profile, len(rec.Spec.Profiles), rec.Spec.Containers)
	}
	// A directory without a selected container's profile is refused up front.
	os.Remove(filepath.Join(dir, "sidecar.json"))
	code, _, stderr = fc.run("verify", "deploy/web", "-n", "shop", "--profile", dir, "--duration", "1ms")
	if code != 1 || !strings.Contains(stderr, "no profile for container sidecar of deployment/web") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	// Only those --containers selects need one.
	code, _, stderr = fc.run("verify", "deploy/web", "-n", "shop", "--profile", dir, "--duration", "1ms", "--containers", "app")
	if code != 1 || strings.Contains(stderr, "Error:") {
		t.Errorf("--containers app: exit %d\n%s", code, stderr)
	}
}

func TestVerifyClean(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)}, agentPod("node-a"), agentDaemonSet())
	fc.results["node-a"] = kubeapi.NodeRecording{Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{
		{Pod: "web-1", Container: "app", From: kubeapi.FromStart, Running: true},
	}}
	fc.runAgents("node-a")
	code, stdout, stderr := fc.run("verify", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json", "--duration", "1ms", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, `"missing": []`) {
		t.Errorf("json report:\n%s", stdout)
	}
}

func TestApplyWithAgents(t *testing.T) {
	fc := webCluster(t, "recording.input.json")
	code, stdout, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	data, _ := os.ReadFile("testdata/recording.golden.json")
	want := "syscallprofile shop/web: written on 3 nodes as syscage/shop/web.json (" + kubeapi.Digest(data) + ")\n" +
		"deployment/web: pod template securityContext.seccompProfile set to Localhost syscage/shop/web.json\n" +
		"its pods are being replaced: kubectl -n shop rollout status deployment/web\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr, "warning: no Ready syscage agent runs on node-d: the profile is not written there, and pods that use it cannot start there\n") {
		t.Errorf("no warning about node-d:\n%s", stderr)
	}
	if !strings.Contains(stderr, "warning: container sidecar sets its own seccompProfile (RuntimeDefault), which overrides the pod's") {
		t.Errorf("no warning about the sidecar's own profile:\n%s", stderr)
	}
	u, err := fc.get(deploymentsGVR, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	sp, _, _ := unstructured.NestedMap(u.Object, "spec", "template", "spec", "securityContext", "seccompProfile")
	if diff := cmp.Diff(map[string]any{"type": "Localhost", "localhostProfile": "syscage/shop/web.json"}, sp); diff != "" {
		t.Errorf("seccompProfile (-want +got):\n%s", diff)
	}
	u, err = fc.get(profilesGVR, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	var obj kubeapi.SyscallProfile
	if err := fromUnstructured(u, &obj); err != nil {
		t.Fatal(err)
	}
	got, _ := profile.Marshal(obj.Spec.Profile)
	if string(got) != string(data) {
		t.Errorf("SyscallProfile spec.profile:\n%s", got)
	}

	// Applying it again changes nothing, and says how to restart.
	code, stdout, stderr = fc.run("apply", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json")
	if code != 0 || !strings.Contains(stdout, "deployment/web: its pods already use seccompProfile Localhost syscage/shop/web.json") {
		t.Errorf("second apply: exit %d\n%s%s", code, stdout, stderr)
	}
}

// A profile per container: each is on every node before the template changes,
// and each container, init container included, gets its own.
func TestApplyPerContainer(t *testing.T) {
	fc := webCluster(t, "recording.input.json")
	dir := t.TempDir()
	golden, _ := os.ReadFile("testdata/recording.golden.json")
	for _, c := range []string{"migrate", "app", "sidecar"} {
		os.WriteFile(filepath.Join(dir, c+".json"), golden, 0o644)
	}
	// The order of the writes (reactors run under the fake's lock: count here).
	var n, patchedAt, installed int
	fc.dyn.PrependReactor("*", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		n++
		switch {
		case a.GetVerb() == "patch" && a.GetResource() == deploymentsGVR:
			patchedAt = n
		case a.GetVerb() == "patch" && a.GetResource() == profilesGVR:
			installed = n
		}
		return false, nil, nil
	})
	code, stdout, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--profile", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, s := range []string{
		"syscallprofile shop/web-app: written on 3 nodes as syscage/shop/web-app.json",
		"syscallprofile shop/web-migrate: written on 3 nodes as syscage/shop/web-migrate.json",
		"deployment/web: container migrate securityContext.seccompProfile set to Localhost syscage/shop/web-migrate.json\n",
		"deployment/web: container app securityContext.seccompProfile set to Localhost syscage/shop/web-app.json\n",
		"deployment/web: container sidecar securityContext.seccompProfile set to Localhost syscage/shop/web-sidecar.json\n",
	} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
	if installed == 0 || patchedAt < installed {
		t.Errorf("the template was patched (action %d) before the last profile was installed (action %d)", patchedAt, installed)
	}
	u, err := fc.get(deploymentsGVR, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	got := map[string]string{}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if c.Image != "busybox" {
			t.Errorf("container %s lost its image: the patch replaced the list", c.Name)
		}
		if sc := c.SecurityContext; sc != nil && sc.SeccompProfile != nil && sc.SeccompProfile.LocalhostProfile != nil {
			got[c.Name] = string(sc.SeccompProfile.Type) + " " + *sc.SeccompProfile.LocalhostProfile
		}
	}
	want := map[string]string{"migrate": "Localhost syscage/shop/web-migrate.json", "app": "Localhost syscage/shop/web-app.json", "sidecar": "Localhost syscage/shop/web-sidecar.json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("containers' seccompProfile (-want +got):\n%s", diff)
	}
	if spec.SecurityContext != nil && spec.SecurityContext.SeccompProfile != nil {
		t.Errorf("the pod's seccompProfile was set: %+v", spec.SecurityContext.SeccompProfile)
	}

	// Again: nothing changes.
	code, stdout, _ = fc.run("apply", "deploy/web", "-n", "shop", "--profile", dir)
	if code != 0 || !strings.Contains(stdout, "deployment/web: its containers already use these profiles") {
		t.Errorf("second apply: exit %d\n%s", code, stdout)
	}

	// NAME=FILE for some containers, under another name.
	code, stdout, stderr = fc.run("apply", "deploy/web", "-n", "shop", "--profile", "app="+filepath.Join(dir, "app.json"), "--profile", "sidecar="+filepath.Join(dir, "sidecar.json"), "--name", "v2")
	if code != 0 || !strings.Contains(stdout, "container app securityContext.seccompProfile set to Localhost syscage/shop/v2-app.json") || strings.Contains(stdout, "migrate") {
		t.Errorf("NAME=FILE: exit %d\n%s%s", code, stdout, stderr)
	}

	os.Remove(filepath.Join(dir, "migrate.json"))
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--profile", dir}, "--profile " + dir + ": no profile for container migrate of deployment/web (" + filepath.Join(dir, "migrate.json") + "): record them with 'kubectl syscage record deployment/web -o " + dir + "/'"},
		{[]string{"--profile", "db=" + filepath.Join(dir, "app.json")}, `deployment/web has no container "db"; its containers are migrate, app, sidecar`},
		{[]string{"--profile", "app=" + filepath.Join(dir, "app.json"), "--profile", "app=x.json"}, "container app is given a profile twice"},
		{[]string{"--profile", filepath.Join(dir, "app.json"), "--profile", "sidecar=x.json"}, "with several, give each as NAME=FILE"},
	} {
		code, _, stderr := fc.run(append([]string{"apply", "deploy/web", "-n", "shop"}, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.err) {
			t.Errorf("%v: exit %d\n%s\nwant %q", tc.args, code, stderr, tc.err)
		}
	}
}

// A CronJob's profiles go into its job template; a Job's template cannot
// change, so apply installs the profiles and says what to put in the manifest.
func TestApplyJobKinds(t *testing.T) {
	cronjobs := schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}
	fc := newFakeCluster(t, []runtime.Object{
		object(t, `{apiVersion: batch/v1, kind: CronJob, metadata: {name: nightly, namespace: shop, uid: cj1},
			spec: {schedule: "* * * * *", jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: test, image: busybox}]}}}}}}`),
		object(t, `{apiVersion: batch/v1, kind: Job, metadata: {name: build, namespace: shop, uid: j1}, spec: {selector: {matchLabels: {batch.kubernetes.io/controller-uid: j1}},
			template: {spec: {restartPolicy: Never, containers: [{name: test, image: busybox}]}}}}`),
	}, agentPod("node-a"), agentDaemonSet())
	fc.runAgents("node-a")
	code, stdout, stderr := fc.run("apply", "cronjob/nightly", "-n", "shop", "--profile", "test=testdata/recording.golden.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	u, _ := fc.get(cronjobs, "shop", "nightly")
	ctrs, _, _ := unstructured.NestedSlice(u.Object, "spec", "jobTemplate", "spec", "template", "spec", "containers")
	if len(ctrs) != 1 {
		t.Fatalf("containers: %v", ctrs)
	}
	if lp, _, _ := unstructured.NestedString(ctrs[0].(map[string]any), "securityContext", "seccompProfile", "localhostProfile"); lp != "syscage/shop/nightly-test.json" {
		t.Errorf("localhostProfile %q\n%s", lp, stdout)
	}
	if !strings.Contains(stdout, "the next runs of cronjob/nightly use it") {
		t.Errorf("stdout:\n%s", stdout)
	}
	code, stdout, stderr = fc.run("apply", "job/build", "-n", "shop", "--profile", "testdata/recording.golden.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "syscallprofile shop/build: written on 1 node") ||
		!strings.Contains(stdout, "job/build: its pods cannot change their seccompProfile; to use the profile, set this in the pod's securityContext (in its manifest) and create it again:\n  seccompProfile: {type: Localhost, localhostProfile: syscage/shop/build.json}\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
	for _, a := range fc.dyn.Actions() {
		if a.GetVerb() == "patch" && a.GetResource() == jobsGVR {
			t.Errorf("the Job was patched")
		}
	}
}

// Argument conditions survive every object a profile travels in: the
// SyscallProfile, and the operator's SeccompProfile.
func TestApplyKeepsArgs(t *testing.T) {
	withArgs := filepath.Join(t.TempDir(), "args.json")
	os.WriteFile(withArgs, []byte(`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
	 "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
	  {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
	  {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 524288, "valueTwo": 524288, "op": "SCMP_CMP_MASKED_EQ"}]}]}`), 0o644)
	want, err := readProfile(withArgs)
	if err != nil {
		t.Fatal(err)
	}
	wantData, _ := profile.Marshal(want)
	fc := webCluster(t, "recording.input.json")
	if code, _, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--profile", "app="+withArgs); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	u, _ := fc.get(profilesGVR, "shop", "web-app")
	var sp kubeapi.SyscallProfile
	fromUnstructured(u, &sp)
	if got, _ := profile.Marshal(sp.Spec.Profile); string(got) != string(wantData) {
		t.Errorf("SyscallProfile:\n%s\nwant\n%s", got, wantData)
	}

	fc = newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)})
	fc.withSPO1()
	fc.spoState = "Installed"
	fc.runAgents()
	if code, _, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--profile", "app="+withArgs); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	u, err = fc.get(spoV1GVR, "", "shop-web-app")
	if err != nil {
		t.Fatal(err)
	}
	s, err := profile.ParseSPO("SeccompProfile", mustJSON(t, u))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.OCI("SeccompProfile")
	if d, err := profile.Compare(profile.Named{Name: "file", Profile: want}, profile.Named{Name: "SeccompProfile", Profile: got}); err != nil || !d.Empty() {
		t.Errorf("the SeccompProfile differs from the file: %v %+v", err, d)
	}
}

func TestApplyNodeError(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)}, agentPod("node-a"), agentDaemonSet())
	// An agent that cannot write the file says so in its node's status.
	fc.reportCopy("shop", "node-a", "web", kubeapi.NodeProfile{Error: "open /host/seccomp/syscage/shop/web.json: read-only file system"})
	code, _, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json")
	want := "Error: SyscallProfile shop/web could not be written on every node: node node-a: open /host/seccomp/syscage/shop/web.json: read-only file system\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d\n%s\nwant %s", code, stderr, want)
	}
}

func TestApplySPO(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)})
	fc.withSPO()
	fc.spoState = "Installed"
	fc.runAgents()
	code, stdout, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json", "--name", "web-v2")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "seccompprofile shop/web-v2: installed by the security-profiles-operator as operator/shop/web-v2.json\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
	u, err := fc.get(spoGVR, "shop", "web-v2")
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != profile.SPOAPIVersion || u.GetKind() != profile.SPOKind {
		t.Errorf("SeccompProfile %s %s", u.GetAPIVersion(), u.GetKind())
	}
	u, _ = fc.get(deploymentsGVR, "shop", "web")
	if lp, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "securityContext", "seccompProfile", "localhostProfile"); lp != "operator/shop/web-v2.json" {
		t.Errorf("localhostProfile %q", lp)
	}

	// --no-spo uses the agents even so; there are none here.
	code, _, stderr = fc.run("apply", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json", "--no-spo")
	if code != 1 || !strings.Contains(stderr, "syscage is not installed") {
		t.Errorf("--no-spo: exit %d\n%s", code, stderr)
	}
}

// The operator as it is since 1.0: SeccompProfile v1, cluster-scoped, installed
// as operator/NAME.json, which it reports in status.localhostProfile.
func TestApplySPO1(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)})
	fc.withSPO1()
	fc.spoState = "Installed"
	fc.runAgents()
	code, stdout, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	// Cluster-scoped: the namespace is part of the name chosen for it.
	if !strings.HasPrefix(stdout, "seccompprofile shop-web: installed by the security-profiles-operator as operator/shop-web.json\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
	u, err := fc.get(spoV1GVR, "", "shop-web")
	if err != nil {
		t.Fatalf("no cluster-scoped v1 SeccompProfile: %v", err)
	}
	if u.GetAPIVersion() != kubeapi.SPOGroup+"/v1" || u.GetNamespace() != "" || u.GetAnnotations()[spoNamespaceAnnotation] != "shop" {
		t.Errorf("SeccompProfile %s, namespace %q, annotations %v", u.GetAPIVersion(), u.GetNamespace(), u.GetAnnotations())
	}
	s, err := profile.ParseSPO("SeccompProfile shop-web", mustJSON(t, u))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.OCI("SeccompProfile shop-web")
	gotData, _ := profile.Marshal(got)
	if want, _ := os.ReadFile("testdata/recording.golden.json"); string(gotData) != string(want) {
		t.Errorf("the SeccompProfile's rules are not the profile's:\n%s", gotData)
	}
	u, _ = fc.get(deploymentsGVR, "shop", "web")
	if lp, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "securityContext", "seccompProfile", "localhostProfile"); lp != "operator/shop-web.json" {
		t.Errorf("localhostProfile %q", lp)
	}

	// Another namespace's profile of the same name is not taken over.
	other := object(t, `{apiVersion: security-profiles-operator.x-k8s.io/v1, kind: SeccompProfile, metadata: {name: mine, labels: {app.kubernetes.io/managed-by: kubectl-syscage}, annotations: {syscage.io/namespace: billing}}, spec: {defaultAction: SCMP_ACT_ERRNO}}`)
	if err := fc.dyn.Tracker().Create(spoV1GVR, other, ""); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = fc.run("apply", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json", "--name", "mine")
	if code != 1 || !strings.Contains(stderr, "SeccompProfile mine exists and was written for namespace billing; SeccompProfiles are cluster-scoped, so apply will not replace it: choose another name with --name") {
		t.Errorf("exit %d\n%s", code, stderr)
	}

	// An operator that reports no localhostProfile: where 1.0 installs it.
	fc.mu.Lock()
	fc.spoNoLocalhost = true
	fc.mu.Unlock()
	code, stdout, stderr = fc.run("apply", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json", "--name", "web-v3")
	if code != 0 || !strings.HasPrefix(stdout, "seccompprofile web-v3: installed by the security-profiles-operator as operator/web-v3.json\n") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
}

func mustJSON(t *testing.T, u *unstructured.Unstructured) []byte {
	t.Helper()
	data, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestApplySPOError(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)})
	fc.withSPO()
	fc.spoState = "Error"
	fc.runAgents()
	code, _, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--profile", "testdata/recording.golden.json")
	if code != 1 || !strings.Contains(stderr, "Error: the security-profiles-operator could not install SeccompProfile shop/web") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

func TestApplyRefusals(t *testing.T) {
	dir := t.TempDir()
	invalid := filepath.Join(dir, "bad.json")
	os.WriteFile(invalid, []byte(`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [{"names": ["opn"], "action": "SCMP_ACT_ALLOW"}]}`), 0o644)
	spo := filepath.Join(dir, "spo.yaml")
	os.WriteFile(spo, []byte("apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata: {name: web}\nspec: {defaultAction: SCMP_ACT_ERRNO}\n"), 0o644)
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML),
		object(t, `{apiVersion: apps/v1, kind: ReplicaSet, metadata: {name: web-1, namespace: shop, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u1, controller: true}]},
			spec: {selector: {matchLabels: {app: web}}, template: {spec: {containers: [{name: app}]}}}}`),
	})
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"invalid profile", []string{"apply", "deploy/web", "-n", "shop", "--profile", invalid}, invalid + `: syscalls[0].names[0]: unknown syscall "opn"`},
		{"SeccompProfile given", []string{"apply", "deploy/web", "-n", "shop", "--profile", spo}, "--profile " + spo + " is a spo profile, not an OCI one: convert it first with 'syscage convert"},
		{"owned replicaset", []string{"apply", "rs/web-1", "-n", "shop", "--profile", "testdata/recording.golden.json"}, "replicaset/web-1 is managed by deployment/web, which would undo a change to its template: apply to deployment/web instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := fc.run(tc.args...)
			if code != 1 || !strings.Contains(stderr, tc.err) {
				t.Errorf("exit %d, stderr:\n%s\nwant it to contain %q", code, stderr, tc.err)
			}
		})
	}
}

func node(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }

// installedCluster has every object install makes.
func installedCluster(t *testing.T, kubeObjs ...runtime.Object) *fakeCluster {
	t.Helper()
	objs, err := installObjects(kubeapi.InstallOptions{Image: "localhost/syscage:dev", SeccompDir: "/var/lib/kubelet/seccomp"})
	if err != nil {
		t.Fatal(err)
	}
	var dyn []runtime.Object
	for _, u := range objs {
		dyn = append(dyn, u)
	}
	return newFakeCluster(t, dyn, kubeObjs...)
}

func TestUninstall(t *testing.T) {
	fc := installedCluster(t)
	code, stdout, stderr := fc.run("uninstall")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	want := "daemonset syscage-system/syscage-agent deleted\n" +
		"flowschema syscage-agent deleted\n" +
		"prioritylevelconfiguration syscage-agent deleted\n" +
		"validatingadmissionpolicybinding syscage-agent-own-leases deleted\n" +
		"validatingadmissionpolicy syscage-agent-own-leases deleted\n" +
		"validatingadmissionpolicybinding syscage-agent-own-node deleted\n" +
		"validatingadmissionpolicy syscage-agent-own-node deleted\n" +
		"clusterrolebinding syscage-agent deleted\n" +
		"clusterrole syscage-agent deleted\n" +
		"serviceaccount syscage-system/syscage-agent deleted\n" +
		"namespace syscage-system deleted\n" +
		"customresourcedefinition syscallnodestatuses.syscage.io deleted\n" +
		"customresourcedefinition syscallnoderesults.syscage.io deleted\n" +
		"customresourcedefinition syscallprofiles.syscage.io deleted\n" +
		"customresourcedefinition syscallrecordings.syscage.io deleted\n" +
		"syscage is uninstalled\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	code, stdout, _ = fc.run("uninstall")
	if code != 0 || stdout != "syscage is not installed in this cluster: nothing to remove\n" {
		t.Errorf("uninstall again: exit %d\n%s", code, stdout)
	}
}

func TestUninstallRefuses(t *testing.T) {
	path := "syscage/shop/web.json"
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "d1"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: &path}},
		}}},
	}
	fc := installedCluster(t, dep)
	code, _, stderr := fc.run("uninstall")
	want := "Error: these use profiles syscage installs on the nodes; their new pods could not start without them:\n" +
		"  deployment shop/web: pod syscage/shop/web.json\n" +
		"set their seccompProfile to another (e.g. type: RuntimeDefault) or delete them, or uninstall with --force\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d\n%s\nwant\n%s", code, stderr, want)
	}
	for _, a := range fc.dyn.Actions() {
		if a.GetVerb() == "delete" {
			t.Errorf("refused, yet deleted %s", a.GetResource())
		}
	}
	code, stdout, stderr := fc.run("uninstall", "--force")
	if code != 0 || !strings.Contains(stderr, "warning: --force: these use profiles syscage installs; their new pods will fail to start:\n  deployment shop/web") ||
		!strings.HasSuffix(stdout, "syscage is uninstalled\n") {
		t.Errorf("--force: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestUninstallProfilesWithoutAgents(t *testing.T) {
	// A profile an agent holds, with the DaemonSet gone: nothing will remove its
	// finalizer. The fake API server deletes at once, so a reactor keeps it.
	fc := installedCluster(t)
	if err := fc.dyn.Tracker().Delete(appsv1.SchemeGroupVersion.WithResource("daemonsets"), kubeapi.Namespace, kubeapi.AgentName); err != nil {
		t.Fatal(err)
	}
	sp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": kubeapi.APIVersion, "kind": kubeapi.KindProfile,
		"metadata": map[string]any{"name": "web", "namespace": "shop", "finalizers": []any{kubeapi.NodeFinalizer("node-a"), "example.com/keep"}},
		"spec":     map[string]any{"profile": map[string]any{"defaultAction": "SCMP_ACT_ERRNO"}},
		"status":   map[string]any{"nodes": map[string]any{"node-a": map[string]any{"digest": "sha256:x"}}},
	}}
	if err := fc.dyn.Tracker().Add(sp); err != nil {
		t.Fatal(err)
	}
	fc.dyn.PrependReactor("delete", "syscallprofiles", func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, nil })
	code, _, stderr := fc.run("uninstall")
	if code != 1 || !strings.Contains(stderr, "Error: the agent's DaemonSet is gone, so no agent removes these profiles' files: syscage/shop/web.json on node-a\n") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := fc.run("uninstall", "--force")
	if code != 0 || !strings.Contains(stderr, "these nodes may keep the files, below the kubelet's seccomp directory: syscage/shop/web.json on node-a\n") ||
		!strings.HasSuffix(stdout, "syscage is uninstalled\n") {
		t.Errorf("--force: exit %d\n%s%s", code, stdout, stderr)
	}
	u, err := fc.get(profilesGVR, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"example.com/keep"}, u.GetFinalizers()); diff != "" {
		t.Errorf("finalizers left (-want +got):\n%s", diff)
	}
}

func TestVersion(t *testing.T) {
	fc := newFakeCluster(t, nil)
	code, stdout, _ := fc.run("version")
	if code != 0 || stdout != "kubectl-syscage devel\n" {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
	code, stdout, _ = fc.run("--help")
	for _, c := range []string{"install", "record", "apply", "verify", "uninstall", "version", "--kubeconfig", "--context", "-n, --namespace"} {
		if code != 0 || !strings.Contains(stdout, c) {
			t.Errorf("help lacks %q:\n%s", c, stdout)
		}
	}
	if !strings.Contains(stdout, "kubectl syscage [command]") {
		t.Errorf("help does not call it kubectl syscage:\n%s", stdout)
	}
}

func TestCompletion(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML),
		object(t, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: api, namespace: shop}, spec: {selector: {matchLabels: {app: api}}}}`),
		object(t, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: worker, namespace: shop}, spec: {selector: {matchLabels: {app: worker}}}}`),
	})
	_, stdout, _ := fc.run("__complete", "record", "")
	if !strings.HasPrefix(stdout, "deployment/\nstatefulset/\ndaemonset/\nreplicaset/\njob/\ncronjob/\npod/\n:6\n") {
		t.Errorf("kinds:\n%s", stdout)
	}
	_, stdout, _ = fc.run("__complete", "apply", "-n", "shop", "deploy/w")
	if !strings.HasPrefix(stdout, "deploy/web\ndeploy/worker\n:4\n") {
		t.Errorf("names:\n%s", stdout)
	}
	_, stdout, _ = fc.run("__complete", "verify", "-o", "")
	if !strings.HasPrefix(stdout, "json\nyaml\n:4\n") {
		t.Errorf("-o:\n%s", stdout)
	}
}

func TestInstall(t *testing.T) {
	// The DaemonSet the typed client reads, as the controller reports it.
	ds := agentDaemonSet()
	ds.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": kubeapi.AgentName}}
	ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, UpdatedNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2}
	fc := newFakeCluster(t, nil, ds)
	fc.runAgents()
	code, stdout, stderr := fc.run("install", "--image", "localhost/syscage:e2e", "--pull-policy", "Never")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	want := "customresourcedefinition syscallrecordings.syscage.io applied\n" +
		"customresourcedefinition syscallprofiles.syscage.io applied\n" +
		"customresourcedefinition syscallnoderesults.syscage.io applied\n" +
		"customresourcedefinition syscallnodestatuses.syscage.io applied\n" +
		"namespace syscage-system applied\n" +
		"serviceaccount syscage-system/syscage-agent applied\n" +
		"clusterrole syscage-agent applied\n" +
		"clusterrolebinding syscage-agent applied\n" +
		"validatingadmissionpolicy syscage-agent-own-node applied\n" +
		"validatingadmissionpolicybinding syscage-agent-own-node applied\n" +
		"validatingadmissionpolicy syscage-agent-own-leases applied\n" +
		"validatingadmissionpolicybinding syscage-agent-own-leases applied\n" +
		"prioritylevelconfiguration syscage-agent applied\n" +
		"flowschema syscage-agent applied\n" +
		"daemonset syscage-system/syscage-agent applied\n" +
		"syscage agent (localhost/syscage:e2e) running on 2 nodes\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	u, err := fc.get(appsv1.SchemeGroupVersion.WithResource("daemonsets"), kubeapi.Namespace, kubeapi.AgentName)
	if err != nil {
		t.Fatal(err)
	}
	if img, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers"); img[0].(map[string]any)["image"] != "localhost/syscage:e2e" {
		t.Errorf("agent containers: %v", img)
	}
	applies := 0
	for _, a := range fc.dyn.Actions() {
		if p, ok := a.(clienttesting.PatchActionImpl); ok && p.GetPatchType() == types.ApplyPatchType {
			applies++
			if opts := p.PatchOptions; opts.FieldManager != fieldManager || opts.Force == nil || !*opts.Force || opts.DryRun != nil {
				t.Errorf("apply of %s with options %+v", p.GetName(), opts)
			}
		}
	}
	if applies != 15 {
		t.Errorf("%d applies, want 15", applies)
	}
}

func TestInstallDryRun(t *testing.T) {
	fc := newFakeCluster(t, nil)
	code, stdout, stderr := fc.run("install", "--dry-run")
	if code != 0 || !strings.HasSuffix(stdout, "daemonset syscage-system/syscage-agent checked (server dry run)\n") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	applies := 0
	for _, a := range fc.dyn.Actions() {
		if p, ok := a.(clienttesting.PatchActionImpl); ok {
			applies++
			if !cmp.Equal(p.PatchOptions.DryRun, []string{metav1.DryRunAll}) {
				t.Errorf("apply of %s without dry run", p.GetName())
			}
		}
	}
	if applies != 15 {
		t.Errorf("%d applies, want 15", applies)
	}
}

// --from pulls the profile from an OCI artifact and applies it as --profile would.
func TestApplyFrom(t *testing.T) {
	data, err := os.ReadFile("testdata/recording.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	layout := t.TempDir()
	desc, err := artifact.Push(context.Background(), "v1", "recording.golden.json", data, artifact.Options{Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	fc := webCluster(t, "recording.input.json")
	code, stdout, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--from", "v1@"+desc.Digest.String(), "--oci-layout", layout)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if want := "pulled v1@" + desc.Digest.String() + " (" + desc.Digest.String() + ")\n"; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr does not start with %q:\n%s", want, stderr)
	}
	if want := "syscallprofile shop/web: written on 3 nodes as syscage/shop/web.json (" + kubeapi.Digest(data) + ")\n"; !strings.HasPrefix(stdout, want) {
		t.Errorf("stdout does not start with %q:\n%s", want, stdout)
	}

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"both", []string{"--profile", "testdata/recording.golden.json", "--from", "v1", "--oci-layout", layout}, "[from profile] were all set"},
		{"neither", nil, "at least one of the flags in the group [profile from] is required"},
		{"pin mismatch", []string{"--from", "v1@sha256:" + strings.Repeat("0", 64), "--oci-layout", layout}, "not the pinned sha256:0000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := fc.run(append([]string{"apply", "deploy/web", "-n", "shop"}, tt.args...)...)
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q, want it to say %q", code, stderr, tt.want)
			}
		})
	}
}

// Coverage: ten runs of the app on two nodes, two results of which merged
// restarts and carry the agent's counts. record writes the counts beside the
// profile and lists the calls one run in ten made; apply carries them into the
// SyscallProfile. (Dropping them when a later apply has none is server-side
// apply's doing, which the fake merges instead.)
func TestRecordApplyCoverage(t *testing.T) {
	fc := webCluster(t, "recording-coverage.input.json")
	dir := filepath.Join(t.TempDir(), "web") + "/"
	code, _, stderr := fc.run("record", "deploy/web", "-n", "shop", "--duration", "1ms", "--containers", "app", "-o", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	wantCov := `{
  "runs": 10,
  "calls": {
    "ptrace": 1,
    "socket(AF_INET6, SOCK_STREAM)": 1,
    "write": 9
  }
}
`
	if got := string(readAll(t, filepath.Join(dir, "app.json.coverage"))); got != wantCov {
		t.Errorf("app.json.coverage:\n%s\nwant\n%s", got, wantCov)
	}
	wantRare := "rarely seen, made by few of the 10 runs: check that the workload needs them (or record longer, or more replicas):\n" +
		"  CALL                           RUNS\n" +
		"  ptrace                         1 of 10\n" +
		"  socket(AF_INET6, SOCK_STREAM)  1 of 10\n"
	if !strings.Contains(stderr, "container app of 3 pods on 2 nodes (node-a, node-b), 10 runs (it restarted in its pods): all recorded from the start\n"+wantRare) {
		t.Errorf("stderr lacks the rare calls after the app's line:\n%s", stderr)
	}

	// apply: the counts go into spec.coverage, beside the profile.
	code, _, stderr = fc.run("apply", "deploy/web", "-n", "shop", "--profile", "app="+filepath.Join(dir, "app.json"))
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	u, err := fc.get(profilesGVR, "shop", "web-app")
	if err != nil {
		t.Fatal(err)
	}
	var sp kubeapi.SyscallProfile
	if err := fromUnstructured(u, &sp); err != nil {
		t.Fatal(err)
	}
	want := &profile.Coverage{Runs: 10, Calls: map[string]int{"ptrace": 1, "socket(AF_INET6, SOCK_STREAM)": 1, "write": 9}}
	if diff := cmp.Diff(want, sp.Spec.Coverage); diff != "" {
		t.Errorf("spec.coverage (-want +got):\n%s", diff)
	}

	// Counts that do not add up are refused, naming the file.
	os.WriteFile(filepath.Join(dir, "app.json.coverage"), []byte(`{"runs": 2, "calls": {"read": 2}}`), 0o644)
	code, _, stderr = fc.run("apply", "deploy/web", "-n", "shop", "--profile", "app="+filepath.Join(dir, "app.json"))
	if code == 0 || !strings.Contains(stderr, `app.json.coverage: calls["read"] is 2: give a count from 1 to 1`) {
		t.Errorf("bad coverage accepted: exit %d\n%s", code, stderr)
	}
}

// With the security-profiles-operator, the coverage beside the profile goes
// into the SeccompProfile's annotation, without the calls the profile lacks.
func TestApplySPOCoverage(t *testing.T) {
	fc := newFakeCluster(t, []runtime.Object{object(t, deploymentYAML)})
	fc.withSPO()
	fc.spoState = "Installed"
	fc.runAgents()
	file := filepath.Join(t.TempDir(), "web.json")
	os.WriteFile(file, readAll(t, "testdata/recording.golden.json"), 0o644)
	os.WriteFile(file+".coverage", []byte(`{"runs": 3, "calls": {"close": 1, "ptrace": 2}}`), 0o644)
	if code, _, stderr := fc.run("apply", "deploy/web", "-n", "shop", "--profile", file); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	u, err := fc.get(spoGVR, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.GetAnnotations()[coverageAnnotation]; got != `{"runs":3,"calls":{"close":1}}` {
		t.Errorf("annotation %s: %q", coverageAnnotation, got)
	}
}
