package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/syscage/syscage/hooks/kubeapi"
)

func localhost(path string) *corev1.SeccompProfile {
	return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: &path}
}

func podSpec(pod *corev1.SeccompProfile, containers ...corev1.Container) corev1.PodSpec {
	s := corev1.PodSpec{Containers: containers}
	if pod != nil {
		s.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: pod}
	}
	return s
}

func container(name string, sp *corev1.SeccompProfile) corev1.Container {
	c := corev1.Container{Name: name}
	if sp != nil {
		c.SecurityContext = &corev1.SecurityContext{SeccompProfile: sp}
	}
	return c
}

func TestSyscageProfiles(t *testing.T) {
	spec := podSpec(localhost("syscage/shop/web.json"),
		container("app", nil),
		container("side", localhost("syscage/shop/side.json")),
		container("other", localhost("operator/shop/web.json")),
		container("rt", &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}),
	)
	spec.InitContainers = []corev1.Container{container("migrate", localhost("syscage/shop/migrate.json"))}
	spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debug", SecurityContext: &corev1.SecurityContext{SeccompProfile: localhost("syscage/shop/debug.json")},
	}}}
	want := []string{
		"pod syscage/shop/web.json",
		"init container migrate syscage/shop/migrate.json",
		"container side syscage/shop/side.json",
		"ephemeral container debug syscage/shop/debug.json",
	}
	if diff := cmp.Diff(want, syscageProfiles(spec)); diff != "" {
		t.Errorf("syscageProfiles (-want +got):\n%s", diff)
	}
	// A directory that merely starts like syscage's is not it.
	if got := syscageProfiles(podSpec(localhost("syscage-old/web.json"))); got != nil {
		t.Errorf("syscageProfiles(syscage-old/…) = %v", got)
	}
	if got := syscageProfiles(podSpec(nil, container("app", nil))); got != nil {
		t.Errorf("syscageProfiles(no profile) = %v", got)
	}
}

func TestProfileUsers(t *testing.T) {
	web := podSpec(localhost("syscage/shop/web.json"), container("app", nil))
	plain := podSpec(nil, container("app", nil))
	objs := []templateUser{
		// A Deployment using a profile, its ReplicaSet and pods: the Deployment is what to change.
		{Kind: "deployment", Namespace: "shop", Name: "web", UID: "d1", Spec: web},
		{Kind: "replicaset", Namespace: "shop", Name: "web-2", UID: "r2", Controller: "d1", Spec: web},
		{Kind: "pod", Namespace: "shop", Name: "web-2-a", UID: "p1", Controller: "r2", Spec: web},
		// An old ReplicaSet of a Deployment that no longer uses the profile: kept for rollbacks only.
		{Kind: "deployment", Namespace: "shop", Name: "api", UID: "d2", Spec: plain},
		{Kind: "replicaset", Namespace: "shop", Name: "api-1", UID: "r3", Controller: "d2", Spec: web, Idle: true},
		// A pod whose owner (a Job of a CronJob here) does not use it: the pod is listed.
		{Kind: "job", Namespace: "batch", Name: "nightly-1", UID: "j1", Spec: plain},
		{Kind: "pod", Namespace: "batch", Name: "nightly-1-x", UID: "p2", Controller: "j1", Spec: podSpec(nil, container("run", localhost("syscage/batch/run.json")))},
		// A bare pod, a StatefulSet, a DaemonSet and a CronJob.
		{Kind: "pod", Namespace: "default", Name: "debug", UID: "p3", Spec: web},
		{Kind: "statefulset", Namespace: "db", Name: "pg", UID: "s1", Spec: web},
		{Kind: "daemonset", Namespace: "kube-system", Name: "log", UID: "ds1", Spec: plain},
		{Kind: "cronjob", Namespace: "batch", Name: "report", UID: "c1", Spec: web},
	}
	want := []string{
		"cronjob batch/report: pod syscage/shop/web.json",
		"deployment shop/web: pod syscage/shop/web.json",
		"pod batch/nightly-1-x: container run syscage/batch/run.json",
		"pod default/debug: pod syscage/shop/web.json",
		"statefulset db/pg: pod syscage/shop/web.json",
	}
	if diff := cmp.Diff(want, profileUsers(objs)); diff != "" {
		t.Errorf("profileUsers (-want +got):\n%s", diff)
	}
	if got := profileUsers([]templateUser{{Kind: "deployment", Name: "api", Spec: plain}}); got != nil {
		t.Errorf("profileUsers without users = %v", got)
	}
}

func TestFinalizerNodes(t *testing.T) {
	long := "node-with-a-very-long-name-that-does-not-fit-into-a-finalizer.example.internal"
	sp := kubeapi.SyscallProfile{
		Metadata: kubeapi.ObjectMeta{Name: "web", Namespace: "shop", Finalizers: []string{
			kubeapi.NodeFinalizer("node-b"),
			"example.com/keep",
			kubeapi.NodeFinalizer(long),
			kubeapi.NodeFinalizer("node-gone"), // a node with no status entry
		}},
		Status: kubeapi.ProfileStatus{Nodes: map[string]kubeapi.NodeProfile{"node-a": {}, "node-b": {}, long: {}}},
	}
	want := []string{"node-b", long, kubeapi.Group + "/node.node-gone"}
	if diff := cmp.Diff(want, finalizerNodes(sp)); diff != "" {
		t.Errorf("finalizerNodes (-want +got):\n%s", diff)
	}
	done := kubeapi.SyscallProfile{Metadata: kubeapi.ObjectMeta{Name: "api", Namespace: "shop", Finalizers: []string{"example.com/keep"}}}
	got := heldFiles([]kubeapi.SyscallProfile{sp, done})
	wantHeld := []string{"syscage/shop/web.json on node-b, " + long + ", syscage.io/node.node-gone"}
	if diff := cmp.Diff(wantHeld, got); diff != "" {
		t.Errorf("heldFiles (-want +got):\n%s", diff)
	}
}
