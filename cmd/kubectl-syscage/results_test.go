package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/kubectl-syscage -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test ./cmd/kubectl-syscage -update rewrites it):\n%s", path, diff)
	}
}

func readRecording(t *testing.T, name string) *kubeapi.SyscallRecording {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var rec kubeapi.SyscallRecording
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	return &rec
}

func TestMergeRecording(t *testing.T) {
	rec := readRecording(t, "recording.input.json")
	res, err := mergeRecording(rec.Status)
	if err != nil {
		t.Fatal(err)
	}
	if res.Containers != 3 || res.Pods != 2 || res.Nodes != 2 {
		t.Errorf("%d containers, %d pods, %d nodes; want 3, 2, 2", res.Containers, res.Pods, res.Nodes)
	}
	if len(res.Attached) != 1 || res.Attached[0].key() != "web-6f9c-a/sidecar" || res.Attached[0].Node != "node-a" {
		t.Errorf("attached: %+v", res.Attached)
	}
	wantDenied := []deniedCall{
		{Call: kubeapi.Call{Arch: specs.ArchX86_64, Name: "chmod", Count: 1}, Containers: []string{"web-6f9c-a/app"}},
		{Call: kubeapi.Call{Arch: specs.ArchX86_64, Name: "mkdir", Count: 5}, Containers: []string{"web-6f9c-a/app", "web-6f9c-b/app"}},
	}
	if diff := cmp.Diff(wantDenied, res.Denied); diff != "" {
		t.Errorf("denied (-want +got):\n%s", diff)
	}
	if len(res.Failed) != 1 || res.Failed[0].Node != "node-c" || len(res.Notes) != 1 || res.Notes[0].Node != "node-a" {
		t.Errorf("failed %+v, notes %+v", res.Failed, res.Notes)
	}
	// The merged profile allows what any container did, and only that; the
	// denied calls are not in it.
	always, _, err := profile.Allowed(res.Profile, specs.ArchX86_64)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"close", "exit_group", "nanosleep", "openat", "read", "write"}, always); diff != "" {
		t.Errorf("allowed (-want +got):\n%s", diff)
	}
	data, err := profile.Marshal(res.Profile)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "recording.golden.json", data)
	// The golden profile is one a runtime takes.
	again, err := profile.Parse("recording.golden.json", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range profile.Validate(again) {
		if f.Severity == profile.Error {
			t.Errorf("recording.golden.json: %s", f)
		}
	}

	var summary bytes.Buffer
	printRecordSummary(&summary, res, "web.json", false)
	golden(t, "recording-summary.golden.txt", summary.Bytes())

	// After --restart, the attached containers are those of the replaced pods,
	// or ones the OCI hook missed.
	summary.Reset()
	res.Attached = append(res.Attached, nodeContainer{"node-b", kubeapi.ContainerResult{
		Pod: "web-6f9c-b", Container: "app", From: kubeapi.FromAttach, Attached: "2026-01-10T10:00:04Z", Running: true,
	}})
	printRecordSummary(&summary, res, "web.json", true)
	golden(t, "recording-summary-restart.golden.txt", summary.Bytes())
}

func TestMergeRecordingOrderIndependent(t *testing.T) {
	rec := readRecording(t, "recording.input.json")
	a, err := mergeRecording(rec.Status)
	if err != nil {
		t.Fatal(err)
	}
	// Reverse every node's containers: the profile and summary must not change.
	for node, n := range rec.Status.Nodes {
		for i, j := 0, len(n.Containers)-1; i < j; i, j = i+1, j-1 {
			n.Containers[i], n.Containers[j] = n.Containers[j], n.Containers[i]
		}
		rec.Status.Nodes[node] = n
	}
	b, err := mergeRecording(rec.Status)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("the merge depends on the order of containers (-first +second):\n%s", diff)
	}
}

func TestMergeRecordingNothing(t *testing.T) {
	st := kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{
		"node-a": {Phase: kubeapi.PhaseDone},
		"node-b": {Phase: kubeapi.PhaseFailed, Message: "no BTF"},
	}}
	res, err := mergeRecording(st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile != nil || res.Containers != 0 {
		t.Fatalf("profile %v from %d containers, want none", res.Profile, res.Containers)
	}
	ref, _ := parseWorkload("deploy/web")
	w := &workload{ref: ref, namespace: "shop"}
	err = nothingRecorded(w, "app=web", map[string]string{"node-a": "agent-1", "node-b": "agent-2"}, res)
	want := `no container was recorded: the selector of deployment/web (app=web) matched no running pod in namespace "shop" on the 2 node(s) with a Ready agent (node-a, node-b); ` +
		`node node-b failed: no BTF: check that its pods are running (kubectl -n shop get pods -l 'app=web') and scheduled on nodes that run the agent`
	if err == nil || err.Error() != want {
		t.Errorf("nothingRecorded:\n%v\nwant\n%s", err, want)
	}
}

func TestMergeRecordingConflict(t *testing.T) {
	kill := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	errno := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	st := kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{
		"node-a": {Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{
			{Pod: "p", Container: "a", Profile: kill},
			{Pod: "p", Container: "b", Profile: errno},
		}},
	}}
	_, err := mergeRecording(st)
	if err == nil || !strings.Contains(err.Error(), "node-a:p/a") || !strings.Contains(err.Error(), "node-a:p/b") {
		t.Errorf("merging conflicting profiles: %v; want an error naming both containers", err)
	}
}

func TestVerifyReport(t *testing.T) {
	rec := readRecording(t, "verify.input.json")
	ref, _ := parseWorkload("deploy/web")
	w := &workload{ref: ref, namespace: "shop"}
	rep := newVerifyReport(w, "web.json", rec.Status)
	if rep.missing() != 1 {
		t.Errorf("%d containers with missing calls, want 1", rep.missing())
	}
	for _, format := range []string{"", "json", "yaml"} {
		var out bytes.Buffer
		if err := writeReport(&out, format, rep); err != nil {
			t.Fatal(err)
		}
		name := "verify.golden." + map[string]string{"": "txt", "json": "json", "yaml": "yaml"}[format]
		golden(t, name, out.Bytes())
		if format == "" {
			continue
		}
		// What a script reads back is the report.
		data := out.Bytes()
		if format == "yaml" {
			var err error
			if data, err = yaml.YAMLToJSON(data); err != nil {
				t.Fatal(err)
			}
		}
		var again verifyReport
		if err := json.Unmarshal(data, &again); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rep, &again); diff != "" {
			t.Errorf("%s does not read back as the report (-want +got):\n%s", name, diff)
		}
	}
}

func TestVerifyReportClean(t *testing.T) {
	st := kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{
		"node-a": {Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{{Pod: "web-1", Container: "app", From: kubeapi.FromStart, Running: true}}},
	}}
	ref, _ := parseWorkload("deploy/web")
	rep := newVerifyReport(&workload{ref: ref, namespace: "shop"}, "web.json", st)
	var out bytes.Buffer
	printVerifyReport(&out, rep)
	want := "web.json allows every syscall the 1 container of deployment/web made\n\npod web-1, container app (node node-a; recorded from its start)\n  nothing missing\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	var js bytes.Buffer
	if err := writeReport(&js, "json", rep); err != nil {
		t.Fatal(err)
	}
	// An empty list, not null, so that scripts can count it.
	if !strings.Contains(js.String(), `"missing": []`) {
		t.Errorf("json report without missing calls:\n%s", js.String())
	}
}

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
		many []string
	}{
		{0, "0 pods", nil},
		{1, "1 pod", nil},
		{2, "2 pods", nil},
		{1, "1 container was", []string{"containers were"}},
		{3, "3 containers were", []string{"containers were"}},
	} {
		one := "pod"
		if tc.many != nil {
			one = "container was"
		}
		if got := plural(tc.n, one, tc.many...); got != tc.want {
			t.Errorf("plural(%d, %q) = %q, want %q", tc.n, one, got, tc.want)
		}
	}
}

// An agent that restarts keeps what it had published of a container and
// publishes the container again: it counts once.
func TestMergeRecordingAgentRestart(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	c := kubeapi.ContainerResult{Pod: "web-1", PodUID: "u1", Container: "app", ContainerID: "c1", From: kubeapi.FromStart, Profile: p}
	again := c
	again.From = kubeapi.FromAttach
	st := kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{
		"n1": {Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{c, again}},
	}}
	res, err := mergeRecording(st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Containers != 1 || res.Pods != 1 || res.Nodes != 1 {
		t.Errorf("counted %d containers of %d pods on %d nodes, want 1, 1, 1", res.Containers, res.Pods, res.Nodes)
	}
}

// A node with many pods publishes one result per container name, with the pods
// it stands for: the plugin counts those pods and containers as if each had a
// result of its own, and the merged profile is the same.
func TestMergeRecordingMergedByNode(t *testing.T) {
	perPod := kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{
		"node-a": {Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{
			{Pod: "web-1", PodUID: "u1", Container: "app", ContainerID: "c1", From: kubeapi.FromStart, Profile: allowOnly("read", "write")},
			{Pod: "web-2", PodUID: "u2", Container: "app", ContainerID: "c2", From: kubeapi.FromStart, Profile: allowOnly("read")},
			{Pod: "web-3", PodUID: "u3", Container: "app", ContainerID: "c3", From: kubeapi.FromAttach, Attached: "2026-12-06T10:00:00Z", Profile: allowOnly("read", "mkdir")},
		}},
		"node-b": {Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{
			{Pod: "web-4", PodUID: "u4", Container: "app", ContainerID: "c4", From: kubeapi.FromStart, Profile: allowOnly("read")},
		}},
	}}
	want, err := mergeRecording(perPod)
	if err != nil {
		t.Fatal(err)
	}
	// node-a as an agent with many pods publishes it.
	merged := kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{
		"node-a": {Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{{
			Pod: "web-1", PodUID: "u1", Container: "app", ContainerID: "c3", From: kubeapi.FromAttach, Attached: "2026-12-06T10:00:00Z",
			Runs: 3, Containers: 3, Pods: []kubeapi.PodRef{{Name: "web-1", UID: "u1"}, {Name: "web-2", UID: "u2"}, {Name: "web-3", UID: "u3"}},
			Profile: allowOnly("read", "write", "mkdir"), Coverage: map[string]int{"write": 1, "mkdir": 1},
		}}},
		"node-b": perPod.Nodes["node-b"],
	}}
	got, err := mergeRecording(merged)
	if err != nil {
		t.Fatal(err)
	}
	if got.Containers != 4 || got.Pods != 4 || got.Nodes != 2 || got.Runs != 4 || got.AttachedPods != 3 {
		t.Errorf("%d containers, %d pods, %d nodes, %d runs, %d attached pods; want 4, 4, 2, 4, 3 (the merged result is attached: any of its pods may be)",
			got.Containers, got.Pods, got.Nodes, got.Runs, got.AttachedPods)
	}
	if want.Containers != 4 || want.Pods != 4 || want.Runs != 4 {
		t.Errorf("per pod: %d containers, %d pods, %d runs", want.Containers, want.Pods, want.Runs)
	}
	if diff := cmp.Diff(want.Profile, got.Profile); diff != "" {
		t.Errorf("profile (-per pod +merged):\n%s", diff)
	}
	if diff := cmp.Diff(want.Coverage, got.Coverage); diff != "" {
		t.Errorf("coverage (-per pod +merged):\n%s", diff)
	}
	var out bytes.Buffer
	rep := newVerifyReport(&workload{ref: workloadRef{Name: "web"}, namespace: "shop"}, "web.json", merged)
	printVerifyReport(&out, rep)
	if !strings.Contains(out.String(), "3 pods (web-1, web-2, web-3), container app") {
		t.Errorf("verify report:\n%s", out.String())
	}
}

func allowOnly(names ...string) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}}
}

func TestListed(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{"a", "b"}, "a, b"},
		{[]string{"a", "b", "c"}, "a, b, c"},
		{[]string{"a", "b", "c", "d"}, "a, b, c and 1 more"},
	} {
		if got := listed(tc.names, 3); got != tc.want {
			t.Errorf("listed(%q, 3) = %q, want %q", tc.names, got, tc.want)
		}
	}
}

// Containers that share one profile (as read through kubeapi.Unpacker) merge
// and count exactly as containers with copies of it do.
func TestMergeRecordingSharedProfiles(t *testing.T) {
	rw, r := allowOnly("read", "write"), allowOnly("read")
	status := func(share bool) kubeapi.RecordingStatus {
		p := func(x *specs.LinuxSeccomp) *specs.LinuxSeccomp {
			if share {
				return x
			}
			c := *x
			return &c
		}
		return kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{
			"node-a": {Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{
				{Pod: "web-1", PodUID: "u1", Container: "app", ContainerID: "c1", From: kubeapi.FromStart, Profile: p(rw)},
				{Pod: "web-2", PodUID: "u2", Container: "app", ContainerID: "c2", From: kubeapi.FromStart, Runs: 2, Profile: p(r)},
			}},
			"node-b": {Phase: kubeapi.PhaseDone, Containers: []kubeapi.ContainerResult{
				{Pod: "web-3", PodUID: "u3", Container: "app", ContainerID: "c3", From: kubeapi.FromStart, Profile: p(r)},
				// Its own coverage: 3 runs, one made write.
				{Pod: "web-4", PodUID: "u4", Container: "app", ContainerID: "c4", From: kubeapi.FromStart, Runs: 3, Profile: p(rw), Coverage: map[string]int{"write": 1}},
			}},
		}}
	}
	want, err := mergeRecording(status(false))
	if err != nil {
		t.Fatal(err)
	}
	got, err := mergeRecording(status(true))
	if err != nil {
		t.Fatal(err)
	}
	if got.Runs != 7 || got.Containers != 4 || got.Coverage.Made("write") != 2 || got.Coverage.Made("read") != 7 {
		t.Errorf("%d runs, %d containers, write made by %d, read by %d; want 7, 4, 2, 7", got.Runs, got.Containers, got.Coverage.Made("write"), got.Coverage.Made("read"))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("shared profiles (-copies +shared):\n%s", diff)
	}
}
