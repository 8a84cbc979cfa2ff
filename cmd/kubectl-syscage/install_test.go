package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/syscage/syscage/hooks/kubeapi"
)

func TestInstallObjects(t *testing.T) {
	objs, err := installObjects(kubeapi.InstallOptions{Image: "registry.example/syscage:v1", PullPolicy: "Always", SeccompDir: "/data/kubelet/seccomp"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range objs {
		got = append(got, u.GetKind()+" "+objectName(u))
	}
	// CRDs first, the DaemonSet last: uninstall deletes in reverse.
	want := []string{
		"CustomResourceDefinition syscallrecordings.syscage.io",
		"CustomResourceDefinition syscallprofiles.syscage.io",
		"CustomResourceDefinition syscallnoderesults.syscage.io",
		"CustomResourceDefinition syscallnodestatuses.syscage.io",
		"Namespace syscage-system",
		"ServiceAccount syscage-system/syscage-agent",
		"ClusterRole syscage-agent",
		"ClusterRoleBinding syscage-agent",
		"ValidatingAdmissionPolicy syscage-agent-own-node",
		"ValidatingAdmissionPolicyBinding syscage-agent-own-node",
		"ValidatingAdmissionPolicy syscage-agent-own-leases",
		"ValidatingAdmissionPolicyBinding syscage-agent-own-leases",
		"PriorityLevelConfiguration syscage-agent",
		"FlowSchema syscage-agent",
		"DaemonSet syscage-system/syscage-agent",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	ds := objs[len(objs)-1]
	ctrs, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
	c := ctrs[0].(map[string]any)
	if c["image"] != "registry.example/syscage:v1" || c["imagePullPolicy"] != "Always" {
		t.Errorf("agent container: %v", c)
	}
	if !strings.Contains(jsonString(ds.Object), `"path":"/data/kubelet/seccomp"`) {
		t.Errorf("the seccomp directory is not the one given: %s", jsonString(ds.Object))
	}
	// What the agents are found by is what the DaemonSet labels its pods with.
	if labels, _, _ := unstructured.NestedStringMap(ds.Object, "spec", "template", "metadata", "labels"); labels["app.kubernetes.io/name"] != kubeapi.AgentName ||
		agentLabel != "app.kubernetes.io/name="+kubeapi.AgentName {
		t.Errorf("agent pods labelled %v, looked up by %s", labels, agentLabel)
	}
	if _, err := installObjects(kubeapi.InstallOptions{}); err == nil {
		t.Error("installObjects without an image did not fail")
	}
}

func TestCRDEstablished(t *testing.T) {
	for _, tc := range []struct {
		name, manifest, pending, err string
	}{
		{name: "no status", manifest: `{kind: CustomResourceDefinition, metadata: {name: a.syscage.io}}`, pending: "not yet established"},
		{
			name:     "established",
			manifest: `{kind: CustomResourceDefinition, metadata: {name: a.syscage.io}, status: {conditions: [{type: NamesAccepted, status: "True"}, {type: Established, status: "True"}]}}`,
		},
		{
			name:     "not yet",
			manifest: `{kind: CustomResourceDefinition, metadata: {name: a.syscage.io}, status: {conditions: [{type: Established, status: "False"}]}}`,
			pending:  "not yet established",
		},
		{
			name:     "names conflict",
			manifest: `{kind: CustomResourceDefinition, metadata: {name: a.syscage.io}, status: {conditions: [{type: NamesAccepted, status: "False", message: "\"screc\" is already in use"}]}}`,
			err:      `CRD a.syscage.io: its names are not accepted: "screc" is already in use`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pending, err := crdEstablished(object(t, tc.manifest))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("crdEstablished: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || pending != tc.pending {
				t.Errorf("crdEstablished = %q, %v; want %q", pending, err, tc.pending)
			}
		})
	}
}

func TestSPOVersion(t *testing.T) {
	res := func(gv string, namespaced bool, names ...string) *metav1.APIResourceList {
		l := &metav1.APIResourceList{GroupVersion: gv}
		for _, n := range names {
			l.APIResources = append(l.APIResources, metav1.APIResource{Name: n, Namespaced: namespaced})
		}
		return l
	}
	g := kubeapi.SPOGroup
	for _, tc := range []struct {
		name      string
		resources []*metav1.APIResourceList
		want      spoAPI
	}{
		{name: "no operator", resources: []*metav1.APIResourceList{res("apps/v1", true, "deployments")}},
		{
			name:      "operator without seccomp profiles",
			resources: []*metav1.APIResourceList{res(g+"/v1alpha2", true, "selinuxprofiles")},
		},
		{
			// Before 1.0: the server prefers v1alpha1 (listed first), but syscage writes v1beta1.
			name:      "0.x: v1beta1, namespaced",
			resources: []*metav1.APIResourceList{res(g+"/v1alpha1", true, "seccompprofiles"), res(g+"/v1beta1", true, "seccompprofiles")},
			want:      spoAPI{g + "/v1beta1", true},
		},
		{
			// 1.0: v1 and v1beta1 served, both cluster-scoped; v1 is written.
			name:      "1.0: v1 and v1beta1, cluster-scoped",
			resources: []*metav1.APIResourceList{res(g+"/v1beta1", false, "seccompprofiles"), res(g+"/v1", false, "seccompprofiles")},
			want:      spoAPI{g + "/v1", false},
		},
		{
			name:      "1.0 with v1 no longer served",
			resources: []*metav1.APIResourceList{res(g+"/v1alpha1", true, "profilebindings"), res(g+"/v1beta1", false, "seccompprofiles")},
			want:      spoAPI{g + "/v1beta1", false},
		},
		{
			name:      "another version only",
			resources: []*metav1.APIResourceList{res(g+"/v1alpha2", true, "selinuxprofiles"), res(g+"/v1alpha1", true, "seccompprofiles")},
			want:      spoAPI{g + "/v1alpha1", true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clients{discovery: &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: tc.resources}}}
			got, err := c.spoVersion()
			if err != nil || got != tc.want {
				t.Errorf("spoVersion = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestCheckLocalhost(t *testing.T) {
	for p, ok := range map[string]bool{
		"operator/web.json": true, "operator/shop/web.json": true,
		"": false, "/var/lib/kubelet/seccomp/x.json": false, "../x.json": false, "operator/../../x.json": false, "operator//x.json": false,
	} {
		if err := checkLocalhost(p); (err == nil) != ok {
			t.Errorf("checkLocalhost(%q) = %v", p, err)
		}
	}
}

func TestProfileProgress(t *testing.T) {
	agents := map[string]string{"node-a": "a", "node-b": "b", "node-c": "c", "node-d": "d"}
	st := map[string]kubeapi.NodeProfile{
		"node-a": {Digest: "sha256:new"},
		"node-b": {Digest: "sha256:old"},
		"node-c": {Digest: "sha256:old", Error: "read-only file system"},
		"node-x": {Error: "not an agent node any more"},
	}
	waiting, failed := profileProgress(st, agents, "sha256:new")
	if diff := cmp.Diff([]string{"node-b", "node-d"}, waiting); diff != "" {
		t.Errorf("waiting (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"node node-c: read-only file system"}, failed); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
}

func TestContainerOverrides(t *testing.T) {
	spec := podSpec(nil, container("app", nil), container("side", &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}))
	spec.InitContainers = []corev1.Container{container("init", localhost("profiles/init.json"))}
	want := []string{
		"container init sets its own seccompProfile (Localhost profiles/init.json), which overrides the pod's: remove it from the container's securityContext for the profile to apply to that container",
		"container side sets its own seccompProfile (Unconfined), which overrides the pod's: remove it from the container's securityContext for the profile to apply to that container",
	}
	if diff := cmp.Diff(want, containerOverrides(spec)); diff != "" {
		t.Errorf("containerOverrides (-want +got):\n%s", diff)
	}
	if !sameSeccomp(localhost("syscage/a/b.json"), localhost("syscage/a/b.json")) || sameSeccomp(localhost("syscage/a/c.json"), localhost("syscage/a/b.json")) ||
		sameSeccomp(nil, localhost("x")) || sameSeccomp(&corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost}, localhost("x")) {
		t.Error("sameSeccomp")
	}
}

func jsonString(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

func TestStorable(t *testing.T) {
	for _, tc := range []struct {
		value uint64
		ok    bool
	}{{1<<63 - 1, true}, {1 << 63, false}, {^uint64(0), false}} {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{
			Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: tc.value, ValueTwo: 8, Op: specs.OpMaskedEqual}},
		}}}
		if err := storable(p); (err == nil) != tc.ok {
			t.Errorf("storable(value %d) = %v", tc.value, err)
		}
	}
}
