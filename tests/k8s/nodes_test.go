package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// pair: the mkdir loop of deployment web, its two replicas forced onto different
// nodes. Recreate, since a surge pod would have no node to go to.
const pair = `apiVersion: apps/v1
kind: Deployment
metadata: {name: pair, namespace: %[1]s}
spec:
  replicas: 2
  strategy: {type: Recreate}
  selector: {matchLabels: {app: pair}}
  template:
    metadata: {labels: {app: pair}}
    spec:
      securityContext: {seccompProfile: {type: RuntimeDefault}}
      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - {labelSelector: {matchLabels: {app: pair}}, topologyKey: kubernetes.io/hostname}
      containers:
      - name: app
        image: localhost/busybox:e2e
        imagePullPolicy: Never
        command: [/bin/sh, -c, 'echo started; while true; do mkdir /tmp/d || exit 3; rmdir /tmp/d; sleep 1; done']
`

// twoNodes records a deployment with a replica on each node: each node's agent
// publishes its own pod alone, record merges both and names both nodes; apply
// puts the profile on both nodes, and the pods on both run under it, and fail
// under one without mkdir.
func twoNodes(t *testing.T, c *cluster, ns, tmp string) {
	apply(t, c, fmt.Sprintf(pair, ns))
	defer c.try(c.kubectl, "-n", ns, "delete", "deployment/pair", "--wait=true", "--timeout=60s")
	c.kc(t, "-n", ns, "rollout", "status", "deployment/pair", "--timeout=120s")
	// podNodes maps the pair's live pods to their nodes.
	podNodes := func() map[string]string {
		var list struct {
			Items []struct {
				Metadata struct {
					Name              string  `json:"name"`
					DeletionTimestamp *string `json:"deletionTimestamp"`
				} `json:"metadata"`
				Spec struct {
					NodeName string `json:"nodeName"`
				} `json:"spec"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(c.kc(t, "-n", ns, "get", "pods", "-l", "app=pair", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, it := range list.Items {
			if it.Metadata.DeletionTimestamp == nil {
				m[it.Metadata.Name] = it.Spec.NodeName
			}
		}
		return m
	}
	var names []string
	for _, n := range c.nodes {
		names = append(names, n.name)
	}
	spread := func(m map[string]string) bool {
		var on []string
		for _, n := range m {
			on = append(on, n)
		}
		slices.Sort(on)
		return slices.Equal(on, names)
	}
	slices.Sort(names)
	if m := podNodes(); !spread(m) {
		t.Fatalf("the pair's pods are not one on each node: %v", m)
	}

	t.Run("each node publishes its own pods", func(t *testing.T) {
		apply(t, c, fmt.Sprintf(`apiVersion: syscage.io/v1alpha1
kind: SyscallRecording
metadata: {name: pair-nodes, namespace: %s}
spec: {mode: record, selector: {matchLabels: {app: pair}}}
`, ns))
		defer c.kc(t, "-n", ns, "delete", "syscallrecording", "pair-nodes", "--wait=false")
		var o kubeapi.SyscallRecording
		waitFor(t, "each node's agent to publish one container", time.Minute, func() (bool, string) {
			var err error
			if o, err = c.recording(t, ns, "pair-nodes"); err != nil {
				return false, err.Error()
			}
			ok := len(o.Status.Nodes) == len(c.nodes)
			for _, n := range o.Status.Nodes {
				ok = ok && len(n.Containers) == 1 && n.Containers[0].Profile != nil
			}
			return ok, fmt.Sprintf("%+v", o.Status.Nodes)
		})
		pods := podNodes()
		for node, st := range o.Status.Nodes {
			for _, ct := range st.Containers {
				if pods[ct.Pod] != node {
					t.Errorf("node %s published pod %s, which runs on %q", node, ct.Pod, pods[ct.Pod])
				}
			}
		}
	})

	file := filepath.Join(tmp, "pair.json")
	t.Run("record merges the nodes", func(t *testing.T) {
		out, code := c.syscage(t, "record", "-n", ns, "deployment/pair", "--restart", "--duration", "6s", "-o", file, "--timeout", "3m")
		t.Logf("record:\n%s", out)
		if code != 0 {
			t.Fatalf("record: exit %d", code)
		}
		// The pods --restart replaced count too: they were attached to until they exited.
		want := fmt.Sprintf(`container app of \d+ pods on 2 nodes \(%s\): 2 pods recorded from the start`, regexp.QuoteMeta(strings.Join(names, ", ")))
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the summary does not match %q", want)
		}
		if !regexp.MustCompile(`results from 2 nodes\)`).MatchString(out) {
			t.Errorf("record does not say it had the results of 2 nodes")
		}
		if p := allowed(load(t, file)); !p["mkdir"] || !p["rmdir"] {
			t.Errorf("the merged profile lacks mkdir or rmdir: %v", keys(p))
		}
	})

	t.Run("apply on both nodes", func(t *testing.T) {
		out, code := c.syscage(t, "apply", "-n", ns, "deployment/pair", "--profile", file, "--wait", "--timeout", "3m")
		t.Logf("apply:\n%s", out)
		if code != 0 {
			t.Fatalf("apply: exit %d", code)
		}
		lp := kubeapi.LocalhostProfile(ns, "pair")
		for _, n := range c.nodes {
			data, err := os.ReadFile(filepath.Join(n.seccompDir, lp))
			if err != nil {
				t.Errorf("the profile is not on node %s: %v", n.name, err)
			} else if !allowed(parse(t, n.name+": "+lp, data))["mkdir"] {
				t.Errorf("node %s's profile lacks mkdir", n.name)
			}
		}
		settle(t, c, ns, "app=pair", "the 2 pods of pair to run under the profile, one on each node", func() (bool, string) {
			pods := podsOf(t, c, ns, "app=pair")
			m := podNodes()
			ok := len(pods) == 2 && spread(m)
			for _, p := range pods {
				ok = ok && p.profile == lp && p.ready && p.restarts == 0
			}
			return ok, fmt.Sprintf("%v on %v", pods, m)
		})

		// Without mkdir, the pods of both nodes fail with EPERM.
		strict := filepath.Join(tmp, "pair-strict.json")
		writeWithout(t, file, strict, "mkdir")
		out, code = c.syscage(t, "apply", "-n", ns, "deployment/pair", "--profile", strict, "--name", "pair-strict", "--timeout", "2m")
		if code != 0 {
			t.Fatalf("apply (strict): exit %d\n%s", code, out)
		}
		// A pod failed with exit 3 counts once its logs, read then (the kubelet
		// keeps a crash-looping container's logs only so long), show the EPERM.
		failed := map[string]string{} // node: pod
		waitFor(t, "a pod under the strict profile to fail with EPERM on each node", 2*time.Minute, func() (bool, string) {
			on := podNodes()
			var logs []string
			for _, p := range podsOf(t, c, ns, "app=pair") {
				if p.profile != kubeapi.LocalhostProfile(ns, "pair-strict") || p.exitCode != 3 || on[p.name] == "" || failed[on[p.name]] != "" {
					continue
				}
				out, _ := c.try(c.kubectl, "-n", ns, "logs", p.name)
				if prev, err := c.try(c.kubectl, "-n", ns, "logs", p.name, "--previous"); err == nil {
					out += prev
				}
				if strings.Contains(out, "Operation not permitted") {
					failed[on[p.name]] = p.name
				} else {
					logs = append(logs, p.name+": "+out)
				}
			}
			return len(failed) == len(c.nodes), fmt.Sprintf("%v; logs of pods failed without EPERM: %q", failed, logs)
		})
	})
}
