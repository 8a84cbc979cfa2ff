package k8s

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

// The workload: busybox making a directory every second, under the runtime's
// default filter, so that it is recorded from that filter's installation. Without
// mkdir it exits 3.
const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {seccompProfile: {type: RuntimeDefault}}
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: localhost/busybox:e2e
        imagePullPolicy: Never
        command: [/bin/sh, -c, 'echo started; while true; do mkdir /tmp/d || exit 3; rmdir /tmp/d; sleep 1; done']
`

func TestKubernetes(t *testing.T) {
	c := setup(t)
	ns := fmt.Sprintf("syscage-e2e-%d", time.Now().Unix()%100000)
	tmp := t.TempDir()
	// A clean start: what an earlier run may have left (it is idempotent).
	c.try(c.plugin, "uninstall", "--force", "--timeout", "60s")

	bpffs := map[string]string{}
	for _, n := range c.nodes {
		bpffs[n.name] = c.bpffs(t, n)
	}
	// Install: CRDs, RBAC and the agent on every node.
	out, code := c.syscage(t, "install", "--image", c.image, "--pull-policy", "Never", "--seccomp-dir", c.seccompDir, "--timeout", "2m")
	if code != 0 {
		t.Fatalf("install: exit %d\n%s", code, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.try(c.kubectl, "-n", kubeapi.Namespace, "logs", "-l", "app.kubernetes.io/name="+kubeapi.AgentName, "--prefix", "--tail", "80")
			t.Logf("agents' logs:\n%s", tail(out, 160))
		}
		// Whatever happened above, leave nothing behind.
		c.try(c.kubectl, "delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=60s")
		c.try(c.plugin, "uninstall", "--force", "--timeout", "60s")
	})
	// A kubectl plugin: kubectl runs it as `kubectl syscage`.
	if out := c.kc(t, "syscage", "version"); !strings.Contains(out, "kubectl-syscage") {
		t.Errorf("kubectl syscage version: %q", out)
	}
	c.kc(t, "create", "namespace", ns)
	apply(t, c, fmt.Sprintf(deployment, ns))
	c.kc(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=120s")

	webJSON := filepath.Join(tmp, "web.json")
	t.Run("record", func(t *testing.T) {
		out, code := c.syscage(t, "record", "-n", ns, "deployment/web", "--restart", "--duration", "6s", "-o", webJSON, "--timeout", "3m", "--name", "web-rec", "--keep")
		t.Logf("record:\n%s", out)
		if code != 0 {
			t.Fatalf("record: exit %d", code)
		}
		// The agents stopped at spec.stopAt by their own clocks: no spec.stop
		// was sent, and every node's part is final.
		rec, err := c.recording(t, ns, "web-rec")
		if err != nil {
			t.Fatal(err)
		}
		if rec.Spec.StopAt == "" || rec.Spec.Stop {
			t.Errorf("the recording ended with spec.stopAt %q and spec.stop %v, want a time and no spec.stop", rec.Spec.StopAt, rec.Spec.Stop)
		}
		c.kc(t, "-n", ns, "delete", kubeapi.Recordings, "web-rec")
		p := load(t, webJSON)
		names := allowed(p)
		for _, want := range []string{"mkdir", "rmdir", "execve", "wait4"} {
			if !names[want] {
				t.Errorf("the merged profile lacks %s: %v", want, keys(names))
			}
		}
		if strings.Contains(out, "no syscage hook ran") {
			t.Errorf("the agent says containers were not sent by the hook, though containerd runs syscage-runc")
		}
		if !strings.Contains(out, "2 pods recorded from the start") {
			t.Errorf("the summary does not say that 2 pods contributed")
		}
		// A figure: from the stop to the profile on disk.
		if m := regexp.MustCompile(`the profiles were written (\S+) after the recording was stopped \(results from (\d+) nodes?\)`).FindStringSubmatch(out); m != nil {
			t.Logf("figure: record's end to the profile on disk: %s with %s node(s)", m[1], m[2])
		} else {
			t.Errorf("record does not say how long its results took")
		}
	})

	t.Run("apply", func(t *testing.T) {
		out, code := c.syscage(t, "apply", "-n", ns, "deployment/web", "--profile", webJSON, "--wait", "--timeout", "3m")
		t.Logf("apply:\n%s", out)
		if code != 0 {
			t.Fatalf("apply: exit %d", code)
		}
		for _, n := range c.nodes {
			onNode, err := os.ReadFile(filepath.Join(n.seccompDir, kubeapi.LocalhostProfile(ns, "web")))
			if err != nil {
				t.Fatalf("the profile is not on node %s: %v", n.name, err)
			}
			if !allowed(parse(t, "node file", onNode))["mkdir"] {
				t.Fatalf("node %s's profile lacks mkdir", n.name)
			}
		}
		// The pods run under it: each is Ready, running the loop, no restarts.
		settle(t, c, ns, "app=web", "the 2 pods of web to run under the profile", func() (bool, string) {
			pods := podsOf(t, c, ns, "app=web")
			ok := len(pods) == 2
			for _, p := range pods {
				ok = ok && p.profile == kubeapi.LocalhostProfile(ns, "web") && p.ready && p.restarts == 0
			}
			return ok, fmt.Sprint(pods)
		})
	})

	strict := filepath.Join(tmp, "strict.json")
	writeWithout(t, webJSON, strict, "mkdir")

	t.Run("verify", func(t *testing.T) {
		out, code := c.syscage(t, "verify", "-n", ns, "deployment/web", "--profile", strict, "--duration", "4s", "--timeout", "2m")
		t.Logf("verify (strict):\n%s", out)
		if code != 1 || !strings.Contains(out, "mkdir") {
			t.Errorf("verify of a profile without mkdir: exit %d, want 1 naming mkdir", code)
		}
		for _, p := range podsOf(t, c, ns, "app=web") {
			if !strings.Contains(out, p.name) {
				t.Errorf("verify does not report pod %s", p.name)
			}
		}
		out, code = c.syscage(t, "verify", "-n", ns, "deployment/web", "--profile", webJSON, "--duration", "4s", "--timeout", "2m")
		t.Logf("verify (recorded):\n%s", out)
		if code != 0 {
			t.Errorf("verify of the recorded profile: exit %d, want 0", code)
		}
	})

	t.Run("two nodes", func(t *testing.T) {
		if len(c.nodes) < 2 {
			t.Skip("one node (SYSCAGE_K8S_NODES=1)")
		}
		twoNodes(t, c, ns, tmp)
	})

	t.Run("per container", func(t *testing.T) { perContainer(t, c, ns, tmp) })

	t.Run("job", func(t *testing.T) { jobReplay(t, c, ns, tmp) })

	t.Run("cronjob", func(t *testing.T) { cronRuns(t, c, ns, tmp) })

	t.Run("argument rules", func(t *testing.T) { argsRules(t, c, ns, tmp) })

	t.Run("node-bound writes", func(t *testing.T) { nodeBound(t, c, ns) })

	t.Run("no stuck deletion", func(t *testing.T) { noStuckDeletion(t, c, ns) })

	t.Run("agent restart", func(t *testing.T) { agentRestart(t, c, ns) })

	t.Run("no hook", func(t *testing.T) { noHook(t, c, ns) })

	t.Run("enforce", func(t *testing.T) {
		out, code := c.syscage(t, "apply", "-n", ns, "deployment/web", "--profile", strict, "--name", "web-strict", "--timeout", "2m")
		t.Logf("apply (strict):\n%s", out)
		if code != 0 {
			t.Fatalf("apply: exit %d", code)
		}
		// A pod under the strict profile fails: its mkdir gets EPERM.
		var failed string
		waitFor(t, "a pod under the strict profile to fail", 2*time.Minute, func() (bool, string) {
			for _, p := range podsOf(t, c, ns, "app=web") {
				if p.profile == kubeapi.LocalhostProfile(ns, "web-strict") && p.exitCode == 3 {
					failed = p.name
					return true, ""
				}
			}
			return false, fmt.Sprint(podsOf(t, c, ns, "app=web"))
		})
		// The log of the run that failed: the current one, or the previous if the
		// container has been restarted since.
		logs, _ := c.try(c.kubectl, "-n", ns, "logs", failed)
		if prev, err := c.try(c.kubectl, "-n", ns, "logs", failed, "--previous"); err == nil {
			logs += prev
		}
		if !strings.Contains(logs, "mkdir: can't create directory '/tmp/d': Operation not permitted") {
			t.Errorf("pod %s failed, but not with EPERM from mkdir:\n%s", failed, logs)
		}
		// The workload refers to syscage's profiles: uninstall refuses, naming it.
		out, code = c.syscage(t, "uninstall", "--timeout", "60s")
		if code == 0 || !strings.Contains(out, "deployment "+ns+"/web") {
			t.Errorf("uninstall with a deployment using a syscage profile: exit %d, want a refusal naming it:\n%s", code, out)
		}
	})

	t.Run("security-profiles-operator", func(t *testing.T) { spoInterop(t, c, ns, webJSON) })

	t.Run("pod start", func(t *testing.T) { podStart(t, c, ns) })

	t.Run("uninstall", func(t *testing.T) {
		agentMemory(t)
		progs := agentPrograms(t)
		if len(progs) == 0 {
			t.Errorf("found no BPF program the agent holds")
		}
		c.kc(t, "delete", "namespace", ns, "--wait=true", "--timeout=90s")
		out, code := c.syscage(t, "uninstall", "--timeout", "90s")
		t.Logf("uninstall:\n%s", out)
		if code != 0 {
			t.Fatalf("uninstall: exit %d", code)
		}
		for _, crd := range []string{"syscallrecordings.syscage.io", "syscallprofiles.syscage.io", "syscallnoderesults.syscage.io"} {
			if out, err := c.try(c.kubectl, "get", "crd", crd); err == nil {
				t.Errorf("CRD %s is still there: %s", crd, out)
			}
		}
		if out, err := c.try(c.kubectl, "get", "namespace", kubeapi.Namespace); err == nil {
			t.Errorf("namespace %s is still there: %s", kubeapi.Namespace, out)
		}
		// The agent's own run directory: /run/syscage itself may belong to the
		// host's recorder, which removes it when it exits idle.
		for _, n := range c.nodes {
			for _, p := range []string{filepath.Join(n.seccompDir, kubeapi.ProfileDir), n.run(hooks.KubernetesRunDir(hooks.DefaultConfig().RunDir))} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s is still on node %s", p, n.name)
				}
			}
			// A node's own bpf filesystem holds what it held before install (the
			// host's may hold other recorders' pins).
			if n.mntns != "" {
				if now := c.bpffs(t, n); now != bpffs[n.name] {
					t.Errorf("node %s's /sys/fs/bpf holds %q, and held %q before install", n.name, now, bpffs[n.name])
				}
			}
		}
		// Other tests on this kernel may load programs of the same names: the
		// agent's own, by id, must be gone.
		if left := loaded(progs); len(left) > 0 {
			t.Errorf("the agent's BPF programs %v are still loaded after uninstall", left)
		}
		if out, _ := exec.Command("pgrep", "-f", "/syscage-agent ").Output(); len(out) > 0 {
			t.Errorf("an agent is still running: %s", out)
		}
	})
}

// The per-container workload: an init container that makes a symbolic link, a
// server (busybox httpd, which accepts) and a client sidecar (wget, which
// connects) that exits 7 once connect is refused with EPERM.
const shop = `apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: %[1]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      securityContext: {seccompProfile: {type: RuntimeDefault}}
      terminationGracePeriodSeconds: 1
      initContainers:
      - name: init
        image: localhost/busybox:e2e
        imagePullPolicy: Never
        command: [/bin/sh, -c, 'ln -s /bin /tmp/l && readlink /tmp/l']
      containers:
      - name: server
        image: localhost/busybox:e2e
        imagePullPolicy: Never
        command: [/bin/httpd, -f, -p, '127.0.0.1:8080', -h, /tmp]
      - name: client
        image: localhost/busybox:e2e
        imagePullPolicy: Never
        command: [/bin/sh, -c, 'while true; do wget -q -O /dev/null http://127.0.0.1:8080/ 2>/tmp/err; if grep -q "not permitted" /tmp/err; then cat /tmp/err; exit 7; fi; sleep 1; done']
`

// perContainer records a pod of three containers into three profiles, applies
// each to its container, and checks that a call missing from one container's
// profile fails that container alone, and that verify names it.
func perContainer(t *testing.T, c *cluster, ns, tmp string) {
	apply(t, c, fmt.Sprintf(shop, ns))
	defer c.try(c.kubectl, "-n", ns, "delete", "deployment/shop", "--wait=true", "--timeout=60s")
	c.kc(t, "-n", ns, "rollout", "status", "deployment/shop", "--timeout=120s")
	dir := filepath.Join(tmp, "shop") + "/"
	out, code := c.syscage(t, "record", "-n", ns, "deployment/shop", "--restart", "--duration", "6s", "-o", dir, "--timeout", "3m")
	t.Logf("record:\n%s", out)
	if code != 0 {
		t.Fatalf("record: exit %d", code)
	}
	profiles := map[string]map[string]bool{}
	for _, name := range []string{"init", "server", "client"} {
		profiles[name] = allowed(load(t, filepath.Join(dir, name+".json")))
		// The pods --restart replaced count too: they were attached to until they exited.
		line := regexp.MustCompile(`wrote ` + regexp.QuoteMeta(filepath.Join(dir, name+".json")) + `: container ` + name + ` of \d+ pods on (1 node|\d+ nodes) \([^)]+\): (all|2 pods) recorded from the start`)
		if !line.MatchString(out) {
			t.Errorf("the summary does not say that container %s of 2 pods recorded from the start made %s.json", name, name)
		}
	}
	has := func(ctr, call string, want bool) {
		if profiles[ctr][call] != want {
			t.Errorf("the %s container's profile allows %s: %v, want %v", ctr, call, !want, want)
		}
	}
	accepts := profiles["server"]["accept"] || profiles["server"]["accept4"]
	if !accepts {
		t.Errorf("the server's profile allows neither accept nor accept4: %v", keys(profiles["server"]))
	}
	has("server", "connect", false)
	has("client", "connect", true)
	has("client", "accept", false)
	has("client", "accept4", false)
	if !profiles["init"]["symlink"] && !profiles["init"]["symlinkat"] {
		t.Errorf("the init container's profile allows neither symlink nor symlinkat: %v", keys(profiles["init"]))
	}
	has("init", "connect", false)
	has("init", "accept4", false)
	has("init", "bind", false)
	if entries, _ := os.ReadDir(dir); len(entries) != 6 {
		t.Errorf("%d files in %s, want 6: 3 profiles, each with its .coverage", len(entries), dir)
	}

	out, code = c.syscage(t, "apply", "-n", ns, "deployment/shop", "--profile", dir, "--wait", "--timeout", "3m")
	t.Logf("apply:\n%s", out)
	if code != 0 {
		t.Fatalf("apply: exit %d", code)
	}
	coverageOf(t, c, ns, dir, "shop", []string{"init", "server", "client"}, 2)
	settle(t, c, ns, "app=shop", "every container of shop to run under its own profile", func() (bool, string) {
		ctrs := containersOf(t, c, ns, "app=shop")
		ok := len(ctrs) > 0
		for _, p := range ctrs {
			ok = ok && p.profile == kubeapi.LocalhostProfile(ns, "shop-"+p.container) && p.restarts == 0 && (p.container == "init" || p.ready)
		}
		return ok, fmt.Sprint(ctrs)
	})

	// The client's profile without connect: verify names the client and connect.
	strict := filepath.Join(tmp, "shop-strict") + "/"
	os.MkdirAll(strict, 0o755)
	for _, name := range []string{"init", "server"} {
		copyFile(t, filepath.Join(dir, name+".json"), filepath.Join(strict, name+".json"), 0o644)
	}
	writeWithout(t, filepath.Join(dir, "client.json"), filepath.Join(strict, "client.json"), "connect")
	out, code = c.syscage(t, "verify", "-n", ns, "deployment/shop", "--profile", strict, "--duration", "4s", "--timeout", "2m")
	t.Logf("verify (strict client):\n%s", out)
	if code != 1 {
		t.Errorf("verify: exit %d, want 1", code)
	}
	if !strings.Contains(out, "container client, against "+filepath.Join(strict, "client.json")) {
		t.Errorf("verify does not report the client against its own profile")
	}
	for _, line := range strings.Split(out, "\npod ") {
		if strings.Contains(line, "container client, against") != strings.Contains(line, " connect ") && strings.Contains(line, "container ") {
			t.Errorf("verify reports connect for another container than the client, or not for the client:\n%s", line)
		}
	}

	// Applied, the client (and only it) fails with EPERM.
	out, code = c.syscage(t, "apply", "-n", ns, "deployment/shop", "--profile", strict, "--name", "strict", "--timeout", "2m")
	t.Logf("apply (strict client):\n%s", out)
	if code != 0 {
		t.Fatalf("apply: exit %d", code)
	}
	var failed string
	waitFor(t, "a client under the strict profile to fail", 2*time.Minute, func() (bool, string) {
		for _, p := range containersOf(t, c, ns, "app=shop") {
			if p.container == "client" && p.profile == kubeapi.LocalhostProfile(ns, "strict-client") && p.exitCode == 7 {
				failed = p.pod
				return true, ""
			}
		}
		return false, fmt.Sprint(containersOf(t, c, ns, "app=shop"))
	})
	// The run that failed: the current one, or the previous if restarted since.
	logs, _ := c.try(c.kubectl, "-n", ns, "logs", failed, "-c", "client")
	if prev, err := c.try(c.kubectl, "-n", ns, "logs", failed, "-c", "client", "--previous"); err == nil {
		logs += prev
	}
	if !strings.Contains(logs, "Operation not permitted") {
		t.Errorf("client of %s failed, but not with EPERM:\n%s", failed, logs)
	}
	for _, p := range containersOf(t, c, ns, "app=shop") {
		if p.pod == failed && p.container == "server" && (!p.ready || p.restarts != 0) {
			t.Errorf("the server beside the failing client is not running: ready %v, restarts %d", p.ready, p.restarts)
		}
	}
}

type containerInfo struct {
	pod, container, profile string
	ready                   bool
	restarts, exitCode      int
}

func (p containerInfo) String() string {
	return fmt.Sprintf("%s/%s(%s ready=%v restarts=%d exit=%d)", p.pod, p.container, p.profile, p.ready, p.restarts, p.exitCode)
}

// containersOf lists the containers, init containers included, of the pods a
// selector matches, each with its own seccompProfile.
// settle waits up to a minute for ok, the pods of selector running as they
// should (a rollout that is complete may still have a pod on its way to ready
// on a slow machine), and fails unless it still holds 3 s later; a failure
// prints the pods' description and their previous containers' logs.
func settle(t *testing.T, c *cluster, ns, selector, what string, ok func() (bool, string)) {
	t.Helper()
	good, state := false, ""
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if good, state = ok(); good {
			break
		}
	}
	if good {
		time.Sleep(3 * time.Second)
		good, state = ok()
	}
	if !good {
		desc, _ := c.try(c.kubectl, "-n", ns, "describe", "pods", "-l", selector)
		prev, _ := c.try(c.kubectl, "-n", ns, "logs", "-l", selector, "--all-containers", "--previous", "--prefix")
		t.Fatalf("waiting for %s (a minute, then 3 s more): %s\n%s\nprevious logs:\n%s", what, state, desc, prev)
	}
}

func containersOf(t *testing.T, c *cluster, ns, selector string) []containerInfo {
	t.Helper()
	type ctr struct {
		Name            string `json:"name"`
		SecurityContext struct {
			SeccompProfile struct {
				LocalhostProfile string `json:"localhostProfile"`
			} `json:"seccompProfile"`
		} `json:"securityContext"`
	}
	type status struct {
		Name         string `json:"name"`
		Ready        bool   `json:"ready"`
		RestartCount int    `json:"restartCount"`
		LastState    struct {
			Terminated *struct {
				ExitCode int `json:"exitCode"`
			} `json:"terminated"`
		} `json:"lastState"`
		State struct {
			Terminated *struct {
				ExitCode int `json:"exitCode"`
			} `json:"terminated"`
		} `json:"state"`
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string  `json:"name"`
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
			Spec struct {
				InitContainers []ctr `json:"initContainers"`
				Containers     []ctr `json:"containers"`
			} `json:"spec"`
			Status struct {
				InitContainerStatuses []status `json:"initContainerStatuses"`
				ContainerStatuses     []status `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(c.kc(t, "-n", ns, "get", "pods", "-l", selector, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var out []containerInfo
	for _, it := range list.Items {
		if it.Metadata.DeletionTimestamp != nil {
			continue
		}
		statuses := map[string]status{}
		for _, st := range append(it.Status.InitContainerStatuses, it.Status.ContainerStatuses...) {
			statuses[st.Name] = st
		}
		for _, ct := range append(it.Spec.InitContainers, it.Spec.Containers...) {
			st := statuses[ct.Name]
			p := containerInfo{pod: it.Metadata.Name, container: ct.Name, profile: ct.SecurityContext.SeccompProfile.LocalhostProfile, ready: st.Ready, restarts: st.RestartCount}
			if st.LastState.Terminated != nil {
				p.exitCode = st.LastState.Terminated.ExitCode
			}
			if st.State.Terminated != nil && st.State.Terminated.ExitCode != 0 {
				p.exitCode = st.State.Terminated.ExitCode
			}
			out = append(out, p)
		}
	}
	return out
}

// A Job: makes a directory and a file, and fails without mkdir.
const job = `apiVersion: batch/v1
kind: Job
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      securityContext: {seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: test
        image: localhost/busybox:e2e
        imagePullPolicy: Never
        %[3]s
        command: [/bin/sh, -c, 'mkdir /tmp/x && echo ok > /tmp/x/f && cat /tmp/x/f']
`

// jobReplay records a Job with record --create from its first syscall to its
// completion, and runs it again under the profile: it succeeds, and fails
// without mkdir.
func jobReplay(t *testing.T, c *cluster, ns, tmp string) {
	manifest := filepath.Join(tmp, "job.yaml")
	os.WriteFile(manifest, []byte(fmt.Sprintf(job, ns, "build", "")), 0o644)
	defer c.try(c.kubectl, "-n", ns, "delete", "jobs", "--all", "--wait=true", "--timeout=60s")
	dir := filepath.Join(tmp, "job") + "/"
	out, code := c.syscage(t, "record", "--create", "-f", manifest, "-o", dir, "--timeout", "3m")
	t.Logf("record --create:\n%s", out)
	if code != 0 {
		t.Fatalf("record: exit %d", code)
	}
	for _, want := range []string{"job/build completed: 1 pod succeeded", "container test of 1 pod on 1 node", "all recorded from the start"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary does not say %q", want)
		}
	}
	names := allowed(load(t, filepath.Join(dir, "test.json")))
	for _, want := range []string{"mkdir", "execve", "write"} {
		if !names[want] {
			t.Errorf("the Job's profile lacks %s: %v", want, keys(names))
		}
	}
	out, code = c.syscage(t, "apply", "-n", ns, "job/build", "--profile", dir, "--timeout", "2m")
	t.Logf("apply:\n%s", out)
	if code != 0 {
		t.Fatalf("apply: exit %d", code)
	}
	lp := kubeapi.LocalhostProfile(ns, "build-test")
	if !strings.Contains(out, "localhostProfile: "+lp) {
		t.Errorf("apply does not say what to set in the Job's manifest")
	}
	// The Job again, under its profile: it succeeds.
	apply(t, c, fmt.Sprintf(job, ns, "replay", "securityContext: {seccompProfile: {type: Localhost, localhostProfile: "+lp+"}}"))
	if _, err := c.try(c.kubectl, "-n", ns, "wait", "--for=condition=complete", "job/replay", "--timeout=90s"); err != nil {
		logs, _ := c.try(c.kubectl, "-n", ns, "logs", "job/replay")
		t.Errorf("the Job did not complete under its profile: %v\n%s", err, logs)
	}
	// Without mkdir it fails, with EPERM.
	strict := filepath.Join(tmp, "job-strict.json")
	writeWithout(t, filepath.Join(dir, "test.json"), strict, "mkdir")
	if out, code := c.syscage(t, "apply", "-n", ns, "job/build", "--profile", "test="+strict, "--name", "strict", "--timeout", "2m"); code != 0 {
		t.Fatalf("apply (strict): exit %d\n%s", code, out)
	}
	apply(t, c, fmt.Sprintf(job, ns, "replay-strict", "securityContext: {seccompProfile: {type: Localhost, localhostProfile: "+kubeapi.LocalhostProfile(ns, "strict-test")+"}}"))
	if _, err := c.try(c.kubectl, "-n", ns, "wait", "--for=condition=failed", "job/replay-strict", "--timeout=90s"); err != nil {
		t.Errorf("the Job without mkdir in its profile did not fail: %v", err)
	}
	if logs, _ := c.try(c.kubectl, "-n", ns, "logs", "job/replay-strict"); !strings.Contains(logs, "Operation not permitted") {
		t.Errorf("the Job failed, but not with EPERM:\n%s", logs)
	}
}

// cronRuns records two runs of a CronJob. The CronJob is suspended and its
// runs are started by hand (kubectl create job --from), as its schedule would,
// so that the test waits for no minute to turn.
func cronRuns(t *testing.T, c *cluster, ns, tmp string) {
	apply(t, c, fmt.Sprintf(`apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: %[1]s}
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          securityContext: {seccompProfile: {type: RuntimeDefault}}
          containers:
          - {name: report, image: localhost/busybox:e2e, imagePullPolicy: Never, command: [/bin/sh, -c, 'uname -a > /tmp/r && cat /tmp/r']}
`, ns))
	defer c.try(c.kubectl, "-n", ns, "delete", "cronjob/nightly", "--wait=true", "--timeout=60s")
	dir := filepath.Join(tmp, "nightly") + "/"
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, err := c.try(c.plugin, "record", "-n", ns, "cronjob/nightly", "--runs", "2", "-o", dir, "--timeout", "2m")
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		done <- result{out, code}
	}()
	label := ""
	waitFor(t, "record to label the CronJob's pod template", time.Minute, func() (bool, string) {
		label = c.kc(t, "-n", ns, "get", "cronjob/nightly", "-o", `jsonpath={.spec.jobTemplate.spec.template.metadata.labels.syscage\.io/record}`)
		return label != "", ""
	})
	for _, run := range []string{"nightly-run1", "nightly-run2"} {
		c.kc(t, "-n", ns, "create", "job", run, "--from=cronjob/nightly")
		c.kc(t, "-n", ns, "wait", "--for=condition=complete", "job/"+run, "--timeout=90s")
	}
	r := <-done
	t.Logf("record cronjob --runs 2:\n%s", r.out)
	if r.code != 0 {
		t.Fatalf("record: exit %d", r.code)
	}
	for _, want := range []string{"cronjob/nightly: 2 runs recorded", "container report of 2 pods on ", "all recorded from the start"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the summary does not say %q", want)
		}
	}
	if names := allowed(load(t, filepath.Join(dir, "report.json"))); !names["uname"] {
		t.Errorf("the profile lacks uname: %v", keys(names))
	}
	if l := c.kc(t, "-n", ns, "get", "cronjob/nightly", "-o", `jsonpath={.spec.jobTemplate.spec.template.metadata.labels}`); strings.Contains(l, "syscage.io/record") {
		t.Errorf("the CronJob keeps the recording's label: %s", l)
	}
}

// noHook starts a pod during a recording on a node whose runc wrapper looks for
// the selection in the wrong place (its hook config names another run
// directory), as on a node set up without syscage-runc: the agent attaches to
// the container and says why it could not record it from the start.
func noHook(t *testing.T, c *cluster, ns string) {
	const cfg = "/etc/syscage/hook.json"
	if prev, err := os.ReadFile(cfg); err == nil {
		defer os.WriteFile(cfg, prev, 0o644) // this host's own config, back as it was
	} else {
		defer os.Remove(filepath.Dir(cfg))
		defer os.Remove(cfg)
	}
	os.MkdirAll(filepath.Dir(cfg), 0o755)
	if err := os.WriteFile(cfg, []byte(`{"runDir": "/run/syscage-e2e-elsewhere"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	apply(t, c, fmt.Sprintf(`apiVersion: syscage.io/v1alpha1
kind: SyscallRecording
metadata: {name: no-hook, namespace: %[1]s}
spec: {mode: record, selector: {matchLabels: {app: no-hook}}}
`, ns))
	defer c.kc(t, "-n", ns, "delete", "syscallrecording/no-hook", "--wait=false")
	status := func() (kubeapi.NodeRecording, bool) {
		n, all := c.recordingStatus(t, ns, "no-hook")
		return n, all
	}
	waitFor(t, "the agents to arm", 30*time.Second, func() (bool, string) { _, ok := status(); return ok, "" })
	time.Sleep(2 * time.Second) // the pod starts well after the selection names its namespace
	apply(t, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: no-hook, namespace: %[1]s, labels: {app: no-hook}}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: app, image: localhost/busybox:e2e, imagePullPolicy: Never, command: [sleep, "3600"]}]
`, ns))
	defer c.kc(t, "-n", ns, "delete", "pod/no-hook", "--wait=false")
	waitFor(t, "the agent to attach to the pod and say no hook ran", time.Minute, func() (bool, string) {
		n, _ := status()
		return len(n.Containers) == 1 && n.Containers[0].From == kubeapi.FromAttach && strings.Contains(n.Message, "no-hook/app"), fmt.Sprintf("%+v", n)
	})
}

// recordingStatus merges the nodes' parts of a recording's status: their
// containers, their messages, and their phase if all nodes are in the same one
// (else "mixed"). all says whether every node has published its part.
// recording reads a recording with each node's part, from the node results the
// agents publish (SyscallNodeResult, one per node), into its status.
func (c *cluster) recording(t *testing.T, ns, name string) (kubeapi.SyscallRecording, error) {
	t.Helper()
	var o kubeapi.SyscallRecording
	if err := json.Unmarshal([]byte(c.kc(t, "-n", ns, "get", "syscallrecording", name, "-o", "json")), &o); err != nil {
		return o, err
	}
	var list struct {
		Items []kubeapi.SyscallNodeResult `json:"items"`
	}
	if err := json.Unmarshal([]byte(c.kc(t, "-n", ns, "get", kubeapi.NodeResults, "-l", kubeapi.RecordingLabel+"="+o.Metadata.UID, "-o", "json")), &list); err != nil {
		return o, err
	}
	for _, nr := range list.Items {
		if o.Status.Nodes == nil {
			o.Status.Nodes = map[string]kubeapi.NodeRecording{}
		}
		o.Status.Nodes[nr.Spec.Node] = nr.Result
	}
	return o, nil
}

func (c *cluster) recordingStatus(t *testing.T, ns, name string) (kubeapi.NodeRecording, bool) {
	o, _ := c.recording(t, ns, name)
	var m kubeapi.NodeRecording
	var msgs []string
	for _, nd := range c.nodes {
		n, ok := o.Status.Nodes[nd.name]
		if !ok {
			continue
		}
		if m.Phase == "" {
			m.Phase = n.Phase
		} else if m.Phase != n.Phase {
			m.Phase = "mixed"
		}
		m.Containers = append(m.Containers, n.Containers...)
		if n.Message != "" {
			msgs = append(msgs, n.Message)
		}
	}
	m.Message = strings.Join(msgs, "; ")
	return m, len(o.Status.Nodes) == len(c.nodes)
}

// agentRestart restarts the agents in the middle of a recording: what the first
// agents published is kept, and the new ones attach to the running containers.
func agentRestart(t *testing.T, c *cluster, ns string) {
	apply(t, c, fmt.Sprintf(`apiVersion: syscage.io/v1alpha1
kind: SyscallRecording
metadata: {name: restart-check, namespace: %s}
spec: {mode: record, selector: {matchLabels: {app: web}}}
`, ns))
	defer c.kc(t, "-n", ns, "delete", "syscallrecording", "restart-check")
	status := func() kubeapi.NodeRecording {
		n, _ := c.recordingStatus(t, ns, "restart-check")
		return n
	}
	waitFor(t, "the agent to publish 2 containers", time.Minute, func() (bool, string) {
		st := status()
		return len(st.Containers) == 2 && st.Containers[0].Profile != nil, fmt.Sprintf("%+v", st)
	})
	// Every node's agent.
	c.kc(t, "-n", kubeapi.Namespace, "delete", "pods", "-l", "app.kubernetes.io/name="+kubeapi.AgentName, "--wait=true")
	c.kc(t, "-n", kubeapi.Namespace, "rollout", "status", "ds/"+kubeapi.AgentName, "--timeout=60s")
	waitFor(t, "the new agent to carry the 2 containers over and attach to them again", time.Minute, func() (bool, string) {
		st := status()
		ok := st.Phase == kubeapi.PhaseRecording && len(st.Containers) == 2
		for _, r := range st.Containers {
			// What the first agent published, merged with what the second records.
			ok = ok && r.Runs == 2 && r.Running && r.From == kubeapi.FromAttach
		}
		return ok, fmt.Sprintf("%+v", st)
	})
}

// The security-profiles-operator's SeccompProfile API, as far as apply uses it,
// in the two shapes it has had: 1.0 (August 2026) serves v1 (stored) and v1beta1,
// both cluster-scoped, and installs operator/NAME.json; earlier releases served
// a namespaced v1beta1 and installed operator/NAMESPACE/NAME.json. The operator
// itself cannot be installed here (no registry): the test plays its part,
// writing the file and reporting Installed with status.localhostProfile, as the
// operator does.
const spoCRD1 = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: seccompprofiles.security-profiles-operator.x-k8s.io}
spec:
  group: security-profiles-operator.x-k8s.io
  scope: Cluster
  names: {kind: SeccompProfile, listKind: SeccompProfileList, plural: seccompprofiles, singular: seccompprofile, shortNames: [sp]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v1beta1
    served: true
    storage: false
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

const spoCRD0 = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: seccompprofiles.security-profiles-operator.x-k8s.io}
spec:
  group: security-profiles-operator.x-k8s.io
  scope: Namespaced
  names: {kind: SeccompProfile, listKind: SeccompProfileList, plural: seccompprofiles, singular: seccompprofile, shortNames: [sp]}
  versions:
  - name: v1beta1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// spoInterop checks, against each shape of the operator's API, that apply
// writes a SeccompProfile with the recorded profile in the version and scope
// discovery reports, waits for the operator and points the pod template at the
// path the operator reports, and that the pods run under it.
func spoInterop(t *testing.T, c *cluster, ns, webJSON string) {
	for _, tc := range []struct {
		name, crd  string
		namespaced bool
		apiVersion string
	}{
		{"1.0 cluster-scoped v1", spoCRD1, false, "security-profiles-operator.x-k8s.io/v1"},
		{"0.x namespaced v1beta1", spoCRD0, true, "security-profiles-operator.x-k8s.io/v1beta1"},
	} {
		t.Run(tc.name, func(t *testing.T) { spoShape(t, c, ns, webJSON, tc.crd, tc.namespaced, tc.apiVersion) })
	}
}

func spoShape(t *testing.T, c *cluster, ns, webJSON, crd string, namespaced bool, apiVersion string) {
	const crdName = "seccompprofiles.security-profiles-operator.x-k8s.io"
	apply(t, c, crd)
	defer c.try(c.kubectl, "delete", "crd", crdName, "--wait=true", "--timeout=60s")
	c.kc(t, "wait", "--for=condition=Established", "crd/"+crdName, "--timeout=30s")
	// kubectl's discovery cache would not know the new resource at once.
	waitFor(t, "the API server to serve SeccompProfiles", 30*time.Second, func() (bool, string) {
		out, err := c.try(c.kubectl, "get", crdName, "-A")
		return err == nil, out
	})
	for _, n := range c.nodes {
		defer os.RemoveAll(filepath.Join(n.seccompDir, "operator"))
	}

	// The name apply gives it, and where the operator installs it.
	obj, getArgs, lp := "web-spo", []string{"-n", ns}, "operator/"+ns+"/web-spo.json"
	if !namespaced {
		obj, getArgs, lp = ns+"-web", nil, "operator/"+ns+"-web.json"
	}
	args := []string{"apply", "-n", ns, "deployment/web", "--profile", webJSON, "--wait", "--timeout", "2m"}
	if namespaced {
		args = append(args, "--name", "web-spo")
	}
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, err := c.try(c.plugin, args...)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		done <- result{out, code}
	}()

	// The operator's part.
	var data []byte
	waitFor(t, "apply to write a SeccompProfile", time.Minute, func() (bool, string) {
		out, err := c.try(c.kubectl, append(getArgs, "get", crdName, obj, "-o", "json")...)
		data = []byte(out)
		return err == nil, out
	})
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Metadata   struct {
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.APIVersion != apiVersion || (meta.Metadata.Namespace != "") != namespaced {
		t.Errorf("SeccompProfile %s: %s, namespace %q; want %s, namespaced %v", obj, meta.APIVersion, meta.Metadata.Namespace, apiVersion, namespaced)
	}
	spo, err := profile.ParseSPO("SeccompProfile "+obj, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := spo.OCI("SeccompProfile " + obj)
	if err != nil {
		t.Fatal(err)
	}
	d, err := profile.Compare(profile.Named{Name: webJSON, Profile: load(t, webJSON)}, profile.Named{Name: "the SeccompProfile", Profile: got})
	if err != nil || !d.Empty() {
		t.Errorf("the SeccompProfile is not the recorded profile: %v %+v", err, d)
	}
	prof, err := profile.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		os.MkdirAll(filepath.Dir(filepath.Join(n.seccompDir, lp)), 0o755)
		if err := os.WriteFile(filepath.Join(n.seccompDir, lp), prof, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.kc(t, append(getArgs, "patch", crdName, obj, "--subresource=status", "--type=merge",
		"-p", fmt.Sprintf(`{"status":{"status":"Installed","localhostProfile":%q}}`, lp))...)

	r := <-done
	t.Logf("apply (operator):\n%s", r.out)
	if r.code != 0 {
		t.Fatalf("apply: exit %d", r.code)
	}
	for _, p := range podsOf(t, c, ns, "app=web") {
		if p.profile != lp || !p.ready {
			t.Errorf("pod %s: profile %q, ready %v; want %q, ready", p.name, p.profile, p.ready, lp)
		}
	}
	if out, err := c.try(c.kubectl, "-n", ns, "get", "syscallprofile", obj); err == nil {
		t.Errorf("a SyscallProfile was written too: %s", out)
	}
}

// podStart measures the time a recording adds to a pod's start: pods created one
// at a time on the first node, alternately selected by a recording and not, from
// create to Ready.
func podStart(t *testing.T, c *cluster, ns string) {
	rec := `apiVersion: syscage.io/v1alpha1
kind: SyscallRecording
metadata: {name: start-bench, namespace: %s}
spec: {mode: record, selector: {matchLabels: {bench: recorded}}}
`
	apply(t, c, fmt.Sprintf(rec, ns))
	defer c.kc(t, "-n", ns, "delete", "syscallrecording", "start-bench", "--wait=false")
	time.Sleep(2 * time.Second) // the agent arms
	var times, starts [2][]time.Duration
	for i := range 24 {
		kind := []string{"recorded", "plain"}[i%2]
		name := fmt.Sprintf("start-%s-%d", kind, i)
		pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {bench: %s}}
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  terminationGracePeriodSeconds: 0
  securityContext: {seccompProfile: {type: RuntimeDefault}}
  containers: [{name: app, image: localhost/busybox:e2e, imagePullPolicy: Never, command: [sleep, "3600"]}]
`, name, ns, kind, c.nodes[0].name)
		// The kubelet notices a started container at its next relist, once a
		// second: a random pause keeps the loop from locking onto that period.
		time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
		sum0, n0 := startContainer(t, c)
		start := time.Now()
		apply(t, c, pod)
		c.kc(t, "-n", ns, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=60s")
		times[i%2] = append(times[i%2], time.Since(start))
		if sum1, n1 := startContainer(t, c); n1 == n0+1 {
			starts[i%2] = append(starts[i%2], sum1-sum0)
		}
		c.kc(t, "-n", ns, "delete", "pod", name, "--wait=true")
	}
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	// The agent's part of it: deciding, at the hook's request, and tracking.
	var took []time.Duration
	agent := strings.TrimSpace(c.kc(t, "-n", kubeapi.Namespace, "get", "pods", "-l", "app.kubernetes.io/name="+kubeapi.AgentName,
		"--field-selector", "spec.nodeName="+c.nodes[0].name, "-o", "name"))
	for _, l := range strings.Split(c.kc(t, "-n", kubeapi.Namespace, "logs", agent), "\n") {
		if !strings.Contains(l, "recording=start-bench") {
			continue
		}
		if _, v, ok := strings.Cut(l, " took="); ok {
			if d, err := time.ParseDuration(strings.Fields(v)[0]); err == nil {
				took = append(took, d)
			}
		}
	}
	if len(took) > 0 {
		t.Logf("the agent's admission of a container (hook request to tracked), median of %d: %s", len(took), med(took))
	}
	if len(starts[0]) > 0 && len(starts[1]) > 0 {
		r, p := med(starts[0]), med(starts[1])
		t.Logf("the kubelet's StartContainer (runc create with the hook, and start), median of %d and %d: recorded %s, not recorded %s: +%s (%.2fx)",
			len(starts[0]), len(starts[1]), r.Round(100*time.Microsecond), p.Round(100*time.Microsecond), (r - p).Round(100*time.Microsecond), float64(r)/float64(p))
	}
	r, p := med(times[0]), med(times[1])
	t.Logf("pod create to Ready, median of 12 each, interleaved: recorded %s, not recorded %s: +%s (%.2fx)",
		r.Round(time.Millisecond), p.Round(time.Millisecond), (r - p).Round(time.Millisecond), float64(r)/float64(p))
}

// startContainer reads, from the kubelet's metrics, the total time and number of
// its StartContainer calls to the runtime: for containerd that is runc create,
// with the prestart hook, and runc start.
func startContainer(t *testing.T, c *cluster) (time.Duration, int) {
	out := c.kc(t, "get", "--raw", "/api/v1/nodes/"+c.nodes[0].name+"/proxy/metrics")
	var sum float64
	var n int
	for _, l := range strings.Split(out, "\n") {
		const series = `kubelet_runtime_operations_duration_seconds_%s{operation_type="start_container"} `
		if v, ok := strings.CutPrefix(l, fmt.Sprintf(series, "sum")); ok {
			fmt.Sscan(v, &sum)
		}
		if v, ok := strings.CutPrefix(l, fmt.Sprintf(series, "count")); ok {
			fmt.Sscan(v, &n)
		}
	}
	return time.Duration(sum * float64(time.Second)), n
}

// agentMemory logs the agent's resident memory, read from the host.
func agentMemory(t *testing.T) {
	out, _ := exec.Command("pgrep", "-f", "/syscage-agent ").Output()
	for _, pid := range strings.Fields(string(out)) {
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			continue
		}
		var fields []string
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "VmHWM") {
				fields = append(fields, strings.Join(strings.Fields(l), " "))
			}
		}
		t.Logf("agent pid %s: %s", pid, strings.Join(fields, ", "))
	}
}

// agentPrograms are the ids of the BPF programs the running agents hold, read
// from their file descriptors.
func agentPrograms(t *testing.T) []string {
	out, _ := exec.Command("pgrep", "-f", "/syscage-agent ").Output()
	var ids []string
	for _, pid := range strings.Fields(string(out)) {
		fds, _ := os.ReadDir("/proc/" + pid + "/fdinfo")
		for _, fd := range fds {
			info, err := os.ReadFile("/proc/" + pid + "/fdinfo/" + fd.Name())
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(info), "\n") {
				if id, ok := strings.CutPrefix(l, "prog_id:"); ok {
					ids = append(ids, strings.TrimSpace(id))
				}
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// loaded returns the programs of ids that are still loaded.
func loaded(ids []string) []string {
	var left []string
	for _, id := range ids {
		if exec.Command("bpftool", "prog", "show", "id", id).Run() == nil {
			left = append(left, id)
		}
	}
	return left
}

type podInfo struct {
	name, profile string
	ready         bool
	restarts      int
	exitCode      int
}

func (p podInfo) String() string {
	return fmt.Sprintf("%s(profile=%s ready=%v restarts=%d exit=%d)", p.name, p.profile, p.ready, p.restarts, p.exitCode)
}

func podsOf(t *testing.T, c *cluster, ns, selector string) []podInfo {
	t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string  `json:"name"`
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
			Spec struct {
				SecurityContext struct {
					SeccompProfile struct {
						LocalhostProfile string `json:"localhostProfile"`
					} `json:"seccompProfile"`
				} `json:"securityContext"`
			} `json:"spec"`
			Status struct {
				ContainerStatuses []struct {
					Ready        bool `json:"ready"`
					RestartCount int  `json:"restartCount"`
					LastState    struct {
						Terminated *struct {
							ExitCode int `json:"exitCode"`
						} `json:"terminated"`
					} `json:"lastState"`
					State struct {
						Terminated *struct {
							ExitCode int `json:"exitCode"`
						} `json:"terminated"`
					} `json:"state"`
				} `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(c.kc(t, "-n", ns, "get", "pods", "-l", selector, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var out []podInfo
	for _, it := range list.Items {
		if it.Metadata.DeletionTimestamp != nil {
			continue
		}
		p := podInfo{name: it.Metadata.Name, profile: it.Spec.SecurityContext.SeccompProfile.LocalhostProfile}
		for _, cs := range it.Status.ContainerStatuses {
			p.ready, p.restarts = cs.Ready, cs.RestartCount
			if cs.LastState.Terminated != nil {
				p.exitCode = cs.LastState.Terminated.ExitCode
			}
			if cs.State.Terminated != nil {
				p.exitCode = cs.State.Terminated.ExitCode
			}
		}
		out = append(out, p)
	}
	return out
}

func apply(t *testing.T, c *cluster, yaml string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "obj.yaml")
	os.WriteFile(f, []byte(yaml), 0o644)
	c.kc(t, "apply", "-f", f)
}

func load(t *testing.T, path string) *specs.LinuxSeccomp {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, path, data)
}

func parse(t *testing.T, name string, data []byte) *specs.LinuxSeccomp {
	t.Helper()
	p, err := profile.Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func allowed(p *specs.LinuxSeccomp) map[string]bool {
	names := map[string]bool{}
	for _, s := range p.Syscalls {
		if s.Action == specs.ActAllow {
			for _, n := range s.Names {
				names[n] = true
			}
		}
	}
	return names
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// writeWithout writes the profile at from, less some syscalls, to to.
func writeWithout(t *testing.T, from, to string, drop ...string) {
	t.Helper()
	p := load(t, from)
	for i := range p.Syscalls {
		p.Syscalls[i].Names = slices.DeleteFunc(p.Syscalls[i].Names, func(n string) bool { return slices.Contains(drop, n) })
	}
	p.Syscalls = slices.DeleteFunc(p.Syscalls, func(s specs.LinuxSyscall) bool { return len(s.Names) == 0 })
	data, err := profile.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
