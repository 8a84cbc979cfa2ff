package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/hooks/kubeapi"
)

func allow(names ...string) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}}
}

func TestMergeResults(t *testing.T) {
	x86 := specs.ArchX86_64
	in := []kubeapi.ContainerResult{
		// web-1/app crashed once, and an earlier run of the agent published it.
		{Pod: "web-1", PodUID: "u1", Container: "app", ContainerID: "c1", From: kubeapi.FromStart, Events: 10,
			Profile: allow("read", "write"), Missing: []kubeapi.Call{{Arch: x86, Name: "mkdir", Count: 2, Pid: 7, Comm: "sh"}}},
		{Pod: "web-2", PodUID: "u2", Container: "app", ContainerID: "c3", From: kubeapi.FromStart, Running: true, Profile: allow("read")},
		{Pod: "web-1", PodUID: "u1", Container: "app", ContainerID: "c2", From: kubeapi.FromAttach, Attached: "2026-11-25T10:00:05Z", Running: true, Events: 5,
			Profile: allow("read", "mkdir"), Missing: []kubeapi.Call{{Arch: x86, Name: "mkdir", Count: 3, Pid: 9, Comm: "mkdir"}, {Arch: x86, Name: "chmod", Count: 1}}},
		{Pod: "web-1", PodUID: "u1", Container: "side", ContainerID: "c4", From: kubeapi.FromStart, Runs: 2, Unnamed: []string{"SCMP_ARCH_X86_64:999"}},
	}
	out, err := mergeResults(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("%d results, want 3 (web-1/app, web-1/side, web-2/app): %+v", len(out), out)
	}
	app := out[0]
	if app.Pod != "web-1" || app.Container != "app" || app.Runs != 2 || !app.Running || app.ContainerID != "c2" || app.Events != 15 {
		t.Errorf("web-1/app: %+v", app)
	}
	if app.From != kubeapi.FromAttach || app.Attached != "2026-11-25T10:00:05Z" {
		t.Errorf("a merged result with an attached run must say so: from %q attached %q", app.From, app.Attached)
	}
	if got := allowed(app.Profile); len(got) != 3 || !got["mkdir"] || !got["write"] {
		t.Errorf("merged profile allows %v, want read, write, mkdir", got)
	}
	if len(app.Missing) != 2 || app.Missing[0].Name != "chmod" || app.Missing[1].Count != 5 || app.Missing[1].Comm != "sh" {
		t.Errorf("missing %+v, want chmod ×1 and mkdir ×5 first by sh", app.Missing)
	}
	// Of its two runs, one wrote and one made mkdir.
	if diff := cmp.Diff(map[string]int{"mkdir": 1, "write": 1}, app.Coverage); diff != "" {
		t.Errorf("web-1/app coverage (-want +got):\n%s", diff)
	}
	if side := out[1]; side.Container != "side" || side.Runs != 2 || len(side.Unnamed) != 1 {
		t.Errorf("web-1/side: %+v", side)
	}
	if web2 := out[2]; web2.Pod != "web-2" || web2.Runs != 1 {
		t.Errorf("web-2/app: %+v", web2)
	}
}

func allowed(p *specs.LinuxSeccomp) map[string]bool {
	m := map[string]bool{}
	if p == nil {
		return m
	}
	for _, s := range p.Syscalls {
		if s.Action == specs.ActAllow {
			for _, n := range s.Names {
				m[n] = true
			}
		}
	}
	return m
}
