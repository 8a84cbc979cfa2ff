package agent

import (
	"encoding/json"
	"fmt"
	"slices"
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

// Many pods of one workload on a node (a Deployment of 300 replicas, say) would
// make one result per pod: past the budget the node publishes one result per
// container name, with its pods and containers counted, and the object stays
// small whatever the number of pods.
func TestFitManyPods(t *testing.T) {
	names := []string{"read", "write", "openat", "close", "fstat", "mmap", "mprotect", "munmap", "brk", "rt_sigaction",
		"rt_sigprocmask", "ioctl", "pread64", "writev", "access", "pipe2", "select", "sched_yield", "mremap", "madvise",
		"dup3", "nanosleep", "getpid", "sendfile", "socket", "connect", "accept4", "sendto", "recvfrom", "bind", "listen",
		"getsockname", "getpeername", "setsockopt", "getsockopt", "clone", "execve", "exit", "wait4", "kill", "uname",
		"fcntl", "flock", "fsync", "getdents64", "getcwd", "chdir", "rename", "mkdir", "rmdir", "unlink", "readlink",
		"chmod", "umask", "gettimeofday", "getrlimit", "getuid", "getgid", "futex", "epoll_wait", "epoll_ctl", "epoll_create1",
		"set_tid_address", "clock_gettime", "exit_group", "tgkill", "set_robust_list", "prlimit64", "getrandom", "rseq"}
	var st kubeapi.NodeRecording
	for i := range 300 {
		pod := fmt.Sprintf("web-6f9c4d7b8-%05d", i)
		uid := fmt.Sprintf("0b5e7a3c-%04d-4000-8000-%012d", i, i)
		// Each pod made most of the calls, and one of its own.
		calls := append(slices.Clone(names[:50+i%20]), names[i%len(names)])
		st.Containers = append(st.Containers,
			kubeapi.ContainerResult{Pod: pod, PodUID: uid, Container: "app", ContainerID: fmt.Sprintf("%064d", i), From: kubeapi.FromStart, Events: 100, Profile: allow(calls...)},
			kubeapi.ContainerResult{Pod: pod, PodUID: uid, Container: "proxy", ContainerID: fmt.Sprintf("%063dp", i), From: kubeapi.FromStart, Events: 10, Profile: allow(names[:40]...)})
	}
	before, _ := json.Marshal(st)
	if err := fit(&st, nil); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(st)
	t.Logf("figure: 300 pods of two containers: %d KiB as one result per container, %d KiB per name", len(before)>>10, len(after)>>10)
	if len(after) > 256<<10 {
		t.Errorf("the node's result is %d bytes, over 256 KiB", len(after))
	}
	if len(st.Containers) != 2 {
		t.Fatalf("%d results, want one per container name", len(st.Containers))
	}
	app := st.Containers[0]
	if app.Container != "app" || len(app.Pods) != 300 || app.ContainerCount() != 300 || app.Runs != 300 || app.Events != 30000 {
		t.Errorf("app: %d pods, %d containers, %d runs, %d events; want 300, 300, 300, 30000", len(app.Pods), app.ContainerCount(), app.Runs, app.Events)
	}
	if got := allowed(app.Profile); len(got) != len(names) {
		t.Errorf("the merged profile allows %d calls, want every one of the %d the pods made", len(got), len(names))
	}
	// How many of the 300 runs made each call is kept: e.g. rseq, the last name,
	// was made by the pods whose own call it was, and by none of the others.
	if app.Coverage["rseq"] == 0 || app.Coverage["rseq"] >= 300 {
		t.Errorf("coverage of rseq %d, want the few runs that made it", app.Coverage["rseq"])
	}
	if _, ok := app.Coverage["read"]; ok {
		t.Errorf("read, made by every run, is counted: %v", app.Coverage["read"])
	}
	// A small node result is left as it is, a result per pod.
	small := kubeapi.NodeRecording{Containers: st.Containers[:0:0]}
	small.Containers = append(small.Containers,
		kubeapi.ContainerResult{Pod: "a", Container: "app", Profile: allow("read")},
		kubeapi.ContainerResult{Pod: "b", Container: "app", Profile: allow("write")})
	if err := fit(&small, nil); err != nil || len(small.Containers) != 2 || small.Containers[0].Pods != nil {
		t.Errorf("a small result was merged across pods: %+v, %v", small.Containers, err)
	}
}

// The size a node's status is budgeted at, its profiles' from their sums, is
// the size of its JSON.
func TestSizeIsJSONSize(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}}}
	st := kubeapi.NodeRecording{Phase: kubeapi.PhaseRecording, Containers: []kubeapi.ContainerResult{
		{Pod: "a", Container: "app", Profile: p, Events: 3},
		{Pod: "a", Container: "side"},
		{Pod: "b", Container: "app", Profile: p, Denied: []kubeapi.Call{{Name: "mount", Count: 1}}},
	}}
	b, _ := json.Marshal(st)
	sums := profileSums{}
	for range 2 {
		if got := size(st, sums); got != len(b) {
			t.Errorf("size %d, JSON %d bytes", got, len(b))
		}
	}
	if len(sums) != 1 {
		t.Errorf("%d sums kept for one profile", len(sums))
	}
}
