package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/profiles"
	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
	"github.com/syscage/syscage/tests/workload"
)

// permissive is the filter a container is recorded under: it puts every task under
// seccomp (where StartSeccomp begins) and denies nothing a workload uses. It lists
// every ABI of the machine: a filter without the compat arch kills 32-bit calls.
func permissive(t *testing.T) *specs.LinuxSeccomp {
	arches, err := record.Arches()
	if err != nil {
		t.Fatal(err)
	}
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActErrno}},
	}
	for _, a := range arches {
		if a != "" {
			p.Architectures = append(p.Architectures, a)
		}
	}
	return p
}

// track starts recording the cgroup of pid from its tasks' seccomp start.
func track(t *testing.T, r *bpf.Recorder, pid int) uint64 {
	t.Helper()
	cg, err := cgroups.PathOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	mnt, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	id, err := cgroups.ID(mnt + cg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Track(id, bpf.StartSeccomp); err != nil {
		t.Fatal(err)
	}
	return id
}

// profileOf reads what the cgroup made and turns it into a profile.
func profileOf(t *testing.T, r *bpf.Recorder, id uint64) *specs.LinuxSeccomp {
	t.Helper()
	rec, err := r.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	name, base, err := profiles.Baseline(profiles.DefaultBaseline)
	if err != nil {
		t.Fatal(err)
	}
	prepared, err := profile.NewBaseline(name, base)
	if err != nil {
		t.Fatal(err)
	}
	built, err := record.Profile(rec, profile.Options{Baseline: prepared}, true)
	if err != nil || len(built.Unnamed) > 0 || len(built.Dropped) > 0 {
		t.Fatalf("profile: %v, unnamed %v, dropped %v", err, built.Unnamed, built.Dropped)
	}
	p := built.Profile
	t.Logf("recorded %d syscalls (%d before the filter left out): %v", len(allowed(p)), rec.Stats.BeforeStart, allowed(p))
	return p
}

func openRecorder(t *testing.T) *bpf.Recorder {
	t.Helper()
	r, err := record.Open()
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// recordInRunc runs args in a runc container and records it from the moment its
// tasks run under a seccomp filter, as the OCI hook does: runc create, track the
// container's cgroup, runc start.
func recordInRunc(t *testing.T, files map[string]string, args ...string) *specs.LinuxSeccomp {
	t.Helper()
	runc := testenv.RequireCommand(t, "runc")
	r := openRecorder(t)
	dir, spec := rt.Bundle(t, args, files)
	spec.Linux.Seccomp = permissive(t)
	rt.WriteSpec(t, dir, spec)
	id := "syscage-e2e-" + strings.ReplaceAll(t.Name(), "/", "-")
	exec.Command(runc, "delete", "-f", id).Run()
	t.Cleanup(func() { exec.Command(runc, "delete", "-f", id).Run() })

	// The container inherits runc create's stdio; a pipe would keep CombinedOutput
	// waiting for the container to exit, so it writes to a file.
	log, err := os.Create(dir + "/output")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	create := exec.Command(runc, "create", "--bundle", dir, id)
	create.Stdout, create.Stderr = log, log
	if err := create.Run(); err != nil {
		out, _ := os.ReadFile(log.Name())
		t.Fatalf("runc create: %v\n%s", err, out)
	}
	var state specs.State
	out, err := exec.Command(runc, "state", id).Output()
	if err != nil {
		t.Fatalf("runc state: %v", err)
	}
	if err := json.Unmarshal(out, &state); err != nil {
		t.Fatal(err)
	}
	id64 := track(t, r, state.Pid)
	if out, err := exec.Command(runc, "start", id).CombinedOutput(); err != nil {
		t.Fatalf("runc start: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(runc, "state", id).Output()
		if err != nil || strings.Contains(string(out), `"stopped"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("container did not stop within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if out, _ := os.ReadFile(log.Name()); !strings.Contains(string(out), "ok") {
		t.Fatalf("the workload failed while it was recorded: %s", out)
	}
	return profileOf(t, r, id64)
}

// recordInPodman does what recordInRunc does through podman. Podman's runc runs with
// another configuration than a plain bundle's, so the profile is recorded there.
// Without no_new_privs runc installs the filter before it drops privileges, which
// is during `podman init`, before this test could track the container (the OCI
// hook tracks earlier); hence --security-opt no-new-privileges, here and in the run.
func recordInPodman(t *testing.T, image string, args ...string) *specs.LinuxSeccomp {
	t.Helper()
	podman := testenv.RequireCommand(t, "podman")
	r := openRecorder(t)
	perm := writeProfile(t, permissive(t))
	name := "syscage-e2e-" + strings.ReplaceAll(t.Name(), "/", "-")
	exec.Command(podman, "rm", "-f", name).Run()
	t.Cleanup(func() { exec.Command(podman, "rm", "-f", "--time", "0", name).Run() })
	create := append([]string{"--runtime", "runc", "create", "--name", name, "--pull", "never", "--network", "none",
		"--security-opt", "seccomp=" + perm, "--security-opt", "no-new-privileges"}, rt.Ulimits(t)...)
	create = append(append(create, image), args...)
	if out, err := exec.Command(podman, create...).CombinedOutput(); err != nil {
		t.Fatalf("podman create: %v\n%s", err, out)
	}
	if out, err := exec.Command(podman, "--runtime", "runc", "init", name).CombinedOutput(); err != nil {
		t.Fatalf("podman init: %v\n%s", err, out)
	}
	out, err := exec.Command(podman, "inspect", "--format", "{{.State.Pid}}", name).Output()
	if err != nil {
		t.Fatalf("podman inspect: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("podman inspect pid %q: %v", out, err)
	}
	id := track(t, r, pid)
	out, err = exec.Command(podman, "--runtime", "runc", "start", "--attach", name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("the workload failed while it was recorded: %v\n%s", err, out)
	}
	return profileOf(t, r, id)
}

func runcWith(t *testing.T, p *specs.LinuxSeccomp, files map[string]string, args ...string) (rt.Result, error) {
	t.Helper()
	dir, spec := rt.Bundle(t, args, files)
	spec.Linux.Seccomp = p
	rt.WriteSpec(t, dir, spec)
	return rt.RuncTry(t, dir)
}

// A container recorded from its seccomp start runs under its profile, and the same
// profile without any one of the workload's own calls stops it.
func TestContainerProfileFromSeccompStart(t *testing.T) {
	testenv.RequireRoot(t)
	wl := workload.Build(t, t.TempDir(), workload.Static)
	files := map[string]string{"/bin/workload": wl}
	p := recordInRunc(t, files, "/bin/workload", "calls")

	res, err := runcWith(t, p, files, "/bin/workload", "calls")
	if err != nil || res.ExitCode != 0 || !strings.Contains(res.Stdout, "ok") {
		t.Fatalf("workload under its recorded profile: exit %d, err %v\nstdout: %s\nstderr: %s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	for _, calls := range workload.Calls {
		for _, name := range calls {
			res, err := runcWith(t, without(t, p, name), files, "/bin/workload", "calls")
			if err == nil && res.ExitCode == 0 {
				t.Errorf("workload succeeded under the profile without %q", name)
			}
			if !strings.Contains(res.Stdout, "denied: "+name) {
				t.Errorf("without %q: want it reported denied, got stdout %q stderr %q", name, res.Stdout, res.Stderr)
			}
		}
	}
	// The runtime's own set-up before the filter (Go runtime threads of runc init)
	// is not in the profile.
	for _, setup := range []string{"epoll_pwait", "sched_yield", "pipe2"} {
		if slices.Contains(allowed(p), setup) {
			t.Logf("note: %q recorded; runc made it under the filter", setup)
		}
	}
}

// Calls the filter in force refuses never reach sys_enter; they are reported with
// their counts, while calls that failed on their own (syncfs(-1): EBADF) are not.
func TestRefusedCallsReported(t *testing.T) {
	testenv.RequireRoot(t)
	runc := testenv.RequireCommand(t, "runc")
	wl := workload.Build(t, t.TempDir(), workload.Static)
	r, err := record.OpenWith(bpf.Options{ReportRefused: true})
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	defer r.Close()
	filter := permissive(t)
	filter.Syscalls = append(filter.Syscalls, specs.LinuxSyscall{Names: []string{"membarrier"}, Action: specs.ActErrno})
	dir, spec := rt.Bundle(t, []string{"/bin/workload", "calls"}, map[string]string{"/bin/workload": wl})
	spec.Linux.Seccomp = filter
	rt.WriteSpec(t, dir, spec)
	id := "syscage-e2e-denied"
	exec.Command(runc, "delete", "-f", id).Run()
	t.Cleanup(func() { exec.Command(runc, "delete", "-f", id).Run() })
	out, err := os.Create(dir + "/output")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	create := exec.Command(runc, "create", "--bundle", dir, id)
	create.Stdout, create.Stderr = out, out
	if err := create.Run(); err != nil {
		t.Fatalf("runc create: %v", err)
	}
	var state specs.State
	b, _ := exec.Command(runc, "state", id).Output()
	if err := json.Unmarshal(b, &state); err != nil {
		t.Fatal(err)
	}
	cg := track(t, r, state.Pid)
	if b, err := exec.Command(runc, "start", id).CombinedOutput(); err != nil {
		t.Fatalf("runc start: %v\n%s", err, b)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := exec.Command(runc, "state", id).Output(); err != nil || strings.Contains(string(b), `"stopped"`) {
			break
		}
	}
	if b, _ := os.ReadFile(out.Name()); !strings.Contains(string(b), "denied: membarrier") {
		t.Fatalf("the filter did not refuse membarrier: %s", b)
	}
	rec, err := r.Read(cg)
	if err != nil {
		t.Fatal(err)
	}
	denials, err := record.Denials(rec)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range denials {
		names = append(names, d.Name)
		if d.Name == "membarrier" && d.Count != 1 {
			t.Errorf("membarrier refused %d times, want 1", d.Count)
		}
	}
	if !slices.Equal(names, []string{"membarrier"}) {
		t.Errorf("refused calls: got %v, want [membarrier]", denials)
	}
}
