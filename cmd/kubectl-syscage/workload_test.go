package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/hooks/kubeapi"
)

func TestParseWorkload(t *testing.T) {
	for _, tc := range []struct {
		name, arg string
		want      string // kind/name, or "" for an error
		err       string
	}{
		{name: "deployment", arg: "deployment/web", want: "Deployment/web"},
		{name: "short deploy", arg: "deploy/web", want: "Deployment/web"},
		{name: "plural", arg: "deployments/web", want: "Deployment/web"},
		{name: "kubectl's output", arg: "deployment.apps/web", want: "Deployment/web"},
		{name: "kind case", arg: "StatefulSet/db", want: "StatefulSet/db"},
		{name: "sts", arg: "sts/db", want: "StatefulSet/db"},
		{name: "ds", arg: "ds/agent", want: "DaemonSet/agent"},
		{name: "daemonset", arg: "daemonset/agent", want: "DaemonSet/agent"},
		{name: "rs", arg: "rs/web-5d8f", want: "ReplicaSet/web-5d8f"},
		{name: "replicaset", arg: "replicaset/web-5d8f", want: "ReplicaSet/web-5d8f"},
		{name: "no kind", arg: "web", err: `workload "web": name a workload as KIND/NAME, e.g. deployment/web; KIND is one of deployment (deploy), statefulset (sts), daemonset (ds), replicaset (rs), job (job), cronjob (cj), pod (po)`},
		{name: "no name", arg: "deploy/", err: "name a workload as KIND/NAME"},
		{name: "no kind before slash", arg: "/web", err: "name a workload as KIND/NAME"},
		{name: "two slashes", arg: "deploy/web/x", err: "name a workload as KIND/NAME"},
		{name: "unknown kind", arg: "svc/web", err: `workload "svc/web": unknown kind "svc": name a workload`},
		{name: "job", arg: "job/x", want: "Job/x"},
		{name: "job with group", arg: "job.batch/x", want: "Job/x"},
		{name: "cronjob", arg: "cj/nightly", want: "CronJob/nightly"},
		{name: "pod", arg: "po/web-1", want: "Pod/web-1"},
		{name: "pods", arg: "pods/web-1", want: "Pod/web-1"},
		{name: "wrong group", arg: "job.apps/x", err: `unknown kind "job.apps"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWorkload(tc.arg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseWorkload(%q) = %v, %v; want error containing %q", tc.arg, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := got.Kind + "/" + got.Name; s != tc.want {
				t.Errorf("parseWorkload(%q) = %s, want %s", tc.arg, s, tc.want)
			}
		})
	}
}

func TestWorkloadRefString(t *testing.T) {
	ref, err := parseWorkload("sts/db")
	if err != nil {
		t.Fatal(err)
	}
	if ref.String() != "statefulset/db" {
		t.Errorf("String() = %q", ref.String())
	}
	if gvr := ref.gvr(); gvr.Group != "apps" || gvr.Version != "v1" || gvr.Resource != "statefulsets" {
		t.Errorf("gvr() = %v", gvr)
	}
	if p := recordingPrefix(ref); p != "sts-db-" {
		t.Errorf("recordingPrefix = %q", p)
	}
	long := workloadRef{workloadKinds[0], strings.Repeat("a", 253)}
	if p := recordingPrefix(long); len(p)+5 > 253 || !strings.HasSuffix(p, "-") {
		t.Errorf("recordingPrefix of a long name = %q (%d characters)", p, len(p))
	}
}

// object reads a YAML manifest as the dynamic client returns it.
func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return u
}

const deploymentYAML = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 3}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
    matchExpressions:
    - {key: tier, operator: In, values: [front, edge]}
    - {key: canary, operator: DoesNotExist}
  template:
    metadata:
      labels: {app: web, tier: front}
    spec:
      initContainers: [{name: migrate, image: busybox}]
      containers:
      - {name: app, image: busybox}
      - name: sidecar
        image: busybox
        securityContext: {seccompProfile: {type: RuntimeDefault}}
status: {observedGeneration: 3, replicas: 2, updatedReplicas: 2, availableReplicas: 2}
`

func TestNewWorkload(t *testing.T) {
	ref, _ := parseWorkload("deploy/web")
	w, err := newWorkload(ref, object(t, deploymentYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := kubeapi.LabelSelector{
		MatchLabels: map[string]string{"app": "web"},
		MatchExpressions: []kubeapi.LabelSelectorRequirement{
			{Key: "tier", Operator: "In", Values: []string{"front", "edge"}},
			{Key: "canary", Operator: "DoesNotExist"},
		},
	}
	if diff := cmp.Diff(want, w.selector); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
	if w.namespace != "shop" || w.controller != "" || w.onDelete {
		t.Errorf("namespace %q, controller %q, onDelete %v", w.namespace, w.controller, w.onDelete)
	}
	if diff := cmp.Diff([]string{"migrate", "app", "sidecar"}, w.containerNames()); diff != "" {
		t.Errorf("containerNames (-want +got):\n%s", diff)
	}
	sel, err := selectorString(w.selector)
	if err != nil {
		t.Fatal(err)
	}
	if sel != "app=web,!canary,tier in (edge,front)" {
		t.Errorf("selectorString = %q", sel)
	}
	// The agents match pods with kubeapi's selector: it must agree with the workload's.
	if !w.selector.Matches(map[string]string{"app": "web", "tier": "edge"}) || w.selector.Matches(map[string]string{"app": "web", "tier": "edge", "canary": "1"}) {
		t.Error("the selector read does not select what the workload's does")
	}
	if err := w.checkContainers([]string{"app", "migrate"}); err != nil {
		t.Error(err)
	}
	err = w.checkContainers([]string{"app", "db"})
	if err == nil || err.Error() != `--containers app,db: deployment/web has no container "db"; its containers are migrate, app, sidecar` {
		t.Errorf("checkContainers: %v", err)
	}
	if err := w.canRestart(); err != nil {
		t.Errorf("canRestart: %v", err)
	}
}

func TestNewWorkloadKinds(t *testing.T) {
	for _, tc := range []struct {
		name, arg, manifest string
		controller          string
		onDelete            bool
		restartErr, err     string
	}{
		{
			name: "statefulset on delete", arg: "sts/db",
			manifest: `{kind: StatefulSet, metadata: {name: db}, spec: {selector: {matchLabels: {app: db}}, updateStrategy: {type: OnDelete}, template: {spec: {containers: [{name: db}]}}}}`,
			onDelete: true, restartErr: "statefulset/db has updateStrategy OnDelete",
		},
		{
			name: "daemonset rolling", arg: "ds/log",
			manifest: `{kind: DaemonSet, metadata: {name: log}, spec: {selector: {matchLabels: {app: log}}, template: {spec: {containers: [{name: log}]}}}}`,
		},
		{
			name: "replicaset of a deployment", arg: "rs/web-1",
			manifest: `{kind: ReplicaSet, metadata: {name: web-1, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u1, controller: true}]},
				spec: {selector: {matchLabels: {app: web}}, template: {spec: {containers: [{name: app}]}}}}`,
			controller: "deployment/web", onDelete: true, restartErr: "name its owner, deployment/web, instead",
		},
		{
			name: "lone replicaset", arg: "rs/web-1",
			manifest: `{kind: ReplicaSet, metadata: {name: web-1}, spec: {selector: {matchLabels: {app: web}}, template: {spec: {containers: [{name: app}]}}}}`,
			onDelete: true, restartErr: "delete its pods yourself",
		},
		{
			name: "no selector", arg: "deploy/x",
			manifest: `{kind: Deployment, metadata: {name: x}, spec: {template: {spec: {containers: [{name: app}]}}}}`,
			err:      "deployment/x has no spec.selector",
		},
		{
			name: "empty selector", arg: "deploy/x",
			manifest: `{kind: Deployment, metadata: {name: x}, spec: {selector: {}, template: {spec: {containers: [{name: app}]}}}}`,
			err:      "deployment/x has an empty selector",
		},
		{
			name: "bad selector", arg: "deploy/x",
			manifest: `{kind: Deployment, metadata: {name: x}, spec: {selector: {matchLabels: [a]}, template: {}}}`,
			err:      "deployment/x: spec.selector",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := parseWorkload(tc.arg)
			if err != nil {
				t.Fatal(err)
			}
			w, err := newWorkload(ref, object(t, tc.manifest))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("newWorkload: %v, want error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w.controller != tc.controller || w.onDelete != tc.onDelete {
				t.Errorf("controller %q, onDelete %v; want %q, %v", w.controller, w.onDelete, tc.controller, tc.onDelete)
			}
			err = w.canRestart()
			if (err == nil) != (tc.restartErr == "") || (err != nil && !strings.Contains(err.Error(), tc.restartErr)) {
				t.Errorf("canRestart: %v, want %q", err, tc.restartErr)
			}
		})
	}
}

func TestRolloutStatus(t *testing.T) {
	for _, tc := range []struct {
		name, manifest, pending, err string
	}{
		{name: "deployment done", manifest: deploymentYAML},
		{
			name:     "deployment not observed",
			manifest: `{kind: Deployment, metadata: {name: web, generation: 4}, spec: {replicas: 2}, status: {observedGeneration: 3}}`,
			pending:  "the new template is not yet seen by the controller",
		},
		{
			name:     "deployment updating",
			manifest: `{kind: Deployment, metadata: {name: web, generation: 4}, spec: {replicas: 3}, status: {observedGeneration: 4, replicas: 4, updatedReplicas: 1}}`,
			pending:  "1 of 3 new replicas updated",
		},
		{
			name:     "deployment old pods",
			manifest: `{kind: Deployment, metadata: {name: web, generation: 4}, spec: {replicas: 2}, status: {observedGeneration: 4, replicas: 3, updatedReplicas: 2}}`,
			pending:  "1 old replicas pending termination",
		},
		{
			name:     "deployment unavailable",
			manifest: `{kind: Deployment, metadata: {name: web, generation: 4}, spec: {replicas: 2}, status: {observedGeneration: 4, replicas: 2, updatedReplicas: 2, availableReplicas: 1}}`,
			pending:  "1 of 2 updated replicas available",
		},
		{
			name: "deployment deadline",
			manifest: `{kind: Deployment, metadata: {name: web, generation: 4}, spec: {replicas: 2}, status: {observedGeneration: 4,
				conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: "ReplicaSet web-2 has timed out progressing."}]}}`,
			err: "deployment/web exceeded its progress deadline: ReplicaSet web-2 has timed out progressing.",
		},
		{
			name:     "statefulset revisions",
			manifest: `{kind: StatefulSet, metadata: {name: db, generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, readyReplicas: 2, updatedReplicas: 1, currentRevision: db-1, updateRevision: db-2}}`,
			pending:  "1 of 2 pods at revision db-2",
		},
		{
			name:     "statefulset not ready",
			manifest: `{kind: StatefulSet, metadata: {name: db, generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, readyReplicas: 1}}`,
			pending:  "1 of 2 pods Ready",
		},
		{
			name:     "statefulset done",
			manifest: `{kind: StatefulSet, metadata: {name: db, generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2, currentRevision: db-2, updateRevision: db-2}}`,
		},
		{
			name: "statefulset partition",
			manifest: `{kind: StatefulSet, metadata: {name: db, generation: 2}, spec: {replicas: 3, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}},
				status: {observedGeneration: 2, readyReplicas: 3, updatedReplicas: 2, currentRevision: db-1, updateRevision: db-2}}`,
		},
		{
			name:     "daemonset updating",
			manifest: `{kind: DaemonSet, metadata: {name: log, generation: 2}, status: {observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 2, numberReady: 3}}`,
			pending:  "2 of 3 new pods updated",
		},
		{
			name:     "daemonset not ready",
			manifest: `{kind: DaemonSet, metadata: {name: log, generation: 2}, status: {observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberReady: 2}}`,
			pending:  "2 of 3 pods Ready",
		},
		{
			name:     "daemonset done",
			manifest: `{kind: DaemonSet, metadata: {name: log, generation: 2}, status: {observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberReady: 3, numberAvailable: 3}}`,
		},
		{
			name:     "replicaset",
			manifest: `{kind: ReplicaSet, metadata: {name: web-1, generation: 1}, spec: {replicas: 2}, status: {observedGeneration: 1, readyReplicas: 1}}`,
			pending:  "1 of 2 pods Ready",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pending, err := rolloutStatus(object(t, tc.manifest))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("rolloutStatus: %q, %v; want error %q", pending, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pending != tc.pending {
				t.Errorf("rolloutStatus = %q, want %q", pending, tc.pending)
			}
		})
	}
}
