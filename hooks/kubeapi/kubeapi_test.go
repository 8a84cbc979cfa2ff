package kubeapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/profile"
)

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front"}
	tests := []struct {
		s    LabelSelector
		want bool
	}{
		{LabelSelector{}, false}, // an empty selector records nothing
		{LabelSelector{MatchLabels: map[string]string{"app": "web"}}, true},
		{LabelSelector{MatchLabels: map[string]string{"app": "db"}}, false},
		{LabelSelector{MatchLabels: map[string]string{"app": "web", "x": "y"}}, false},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "tier", Operator: "In", Values: []string{"back", "front"}}}}, true},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "tier", Operator: "NotIn", Values: []string{"front"}}}}, false},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "gone", Operator: "NotIn", Values: []string{"x"}}}}, true},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "app", Operator: "Exists"}}}, true},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "app", Operator: "DoesNotExist"}}}, false},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "app", Operator: "Gt"}}}, false},
	}
	for i, tt := range tests {
		if got := tt.s.Matches(labels); got != tt.want {
			t.Errorf("%d: %+v.Matches = %v, want %v", i, tt.s, got, tt.want)
		}
	}
}

func TestManifests(t *testing.T) {
	docs, err := Manifests(InstallOptions{Image: "localhost/syscage:x", SeccompDir: "/var/lib/kubelet/seccomp"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range docs {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.UnmarshalStrict([]byte(d), &obj); err != nil && !strings.Contains(err.Error(), "unknown field") {
			t.Fatalf("%v\n%s", err, d)
		}
		if obj.Kind == "" || obj.Metadata.Name == "" {
			t.Errorf("a document without kind or name:\n%s", d)
		}
		kinds = append(kinds, obj.Kind)
	}
	want := "CustomResourceDefinition CustomResourceDefinition CustomResourceDefinition CustomResourceDefinition Namespace ServiceAccount ClusterRole ClusterRoleBinding ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding PriorityLevelConfiguration FlowSchema DaemonSet"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("kinds %q, want %q", got, want)
	}
	if !strings.Contains(docs[len(docs)-1], "image: localhost/syscage:x") {
		t.Error("the image is not in the DaemonSet")
	}
	if _, err := Manifests(InstallOptions{SeccompDir: "/x"}); err == nil {
		t.Error("no image accepted")
	}
}

func TestNodeFinalizer(t *testing.T) {
	if got := NodeFinalizer("node-1"); got != "syscage.io/node.node-1" {
		t.Errorf("got %q", got)
	}
	long := NodeFinalizer(strings.Repeat("n", 100))
	if name := strings.TrimPrefix(long, Group+"/"); len(name) > 63 {
		t.Errorf("%q: the name part is longer than 63", long)
	}
}

// The SyscallProfile schema has a place for each field of ProfileSpec, and
// spec.coverage takes what profile.Coverage writes; without it the API server
// would prune the counts.
func TestProfileSchemaCoverage(t *testing.T) {
	docs, err := Manifests(InstallOptions{Image: "x", SeccompDir: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	type props map[string]struct {
		Type                 string         `json:"type"`
		Required             []string       `json:"required"`
		Properties           map[string]any `json:"properties"`
		AdditionalProperties map[string]any `json:"additionalProperties"`
	}
	var crd struct {
		Metadata struct{ Name string } `json:"metadata"`
		Spec     struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Properties map[string]struct {
							Properties props `json:"properties"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	for _, d := range docs {
		if strings.Contains(d, "name: syscallprofiles.syscage.io") {
			if err := yaml.Unmarshal([]byte(d), &crd); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("no SyscallProfile CRD with one version: %+v", crd)
	}
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties
	for _, field := range []string{"profile", "coverage"} {
		if _, ok := spec[field]; !ok {
			t.Errorf("spec.%s is not in the schema", field)
		}
	}
	cov := spec["coverage"]
	if cov.Type != "object" || cov.Properties["runs"] == nil || cov.Properties["calls"] == nil {
		t.Errorf("spec.coverage: %+v", cov)
	}
	b, _ := json.Marshal(ProfileSpec{Coverage: &profile.Coverage{Runs: 2, Calls: map[string]int{"read": 1}}})
	var m map[string]any
	json.Unmarshal(b, &m)
	for k := range m {
		if _, ok := spec[k]; !ok {
			t.Errorf("ProfileSpec writes %q, which the schema lacks", k)
		}
	}
}

// A node result packs its containers' profiles into one string each and unpacks
// them: the same result comes back, and one written with plain profiles reads
// as it is.
func TestNodeResultPacksProfiles(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}}}}
	nr := SyscallNodeResult{APIVersion: APIVersion, Kind: "SyscallNodeResult", Metadata: ObjectMeta{Name: "r-n1"},
		Spec:   NodeResultSpec{Recording: "r", Node: "n1"},
		Result: NodeRecording{Phase: PhaseDone, Containers: []ContainerResult{{Pod: "web-1", Container: "app", Profile: p}, {Pod: "web-1", Container: "side"}}}}
	data, err := json.Marshal(nr)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"syscalls"`) || !strings.Contains(string(data), `"profileData":"`) {
		t.Errorf("the profile is not packed: %s", data)
	}
	if nr.Result.Containers[0].Profile == nil {
		t.Error("marshalling changed the result it was given")
	}
	var back SyscallNodeResult
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(nr, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	plain := []byte(`{"spec":{"node":"n1"},"result":{"phase":"Done","containers":[{"pod":"a","container":"app","profile":{"defaultAction":"SCMP_ACT_ERRNO"}}]}}`)
	if err := json.Unmarshal(plain, &back); err != nil || back.Result.Containers[0].Profile == nil || back.Result.Containers[0].Profile.DefaultAction != specs.ActErrno {
		t.Errorf("a plain profile: %+v, %v", back.Result.Containers, err)
	}
	for _, bad := range []string{`"!!"`, `"aGVsbG8="`} {
		err := json.Unmarshal([]byte(`{"result":{"containers":[{"pod":"a","container":"app","profileData":`+bad+`}]}}`), &back)
		if err == nil || !strings.Contains(err.Error(), "container app of pod a") {
			t.Errorf("profileData %s: %v, want an error naming the container", bad, err)
		}
	}
}

// An Unpacker unpacks each distinct profile once: the results it reads share
// it, and read exactly as without it.
func TestUnpackerShares(t *testing.T) {
	mk := func(node string, names ...string) []byte {
		nr := SyscallNodeResult{Spec: NodeResultSpec{Node: node}, Result: NodeRecording{Phase: PhaseDone}}
		for i, n := range names {
			p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{n}, Action: specs.ActAllow}}}
			nr.Result.Containers = append(nr.Result.Containers, ContainerResult{Pod: "p-" + node, Container: fmt.Sprint("c", i), Profile: p})
		}
		data, err := json.Marshal(nr)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a, b := mk("n1", "read", "write"), mk("n2", "read", "openat")
	up := &Unpacker{}
	var ra, rb, plain SyscallNodeResult
	if err := up.UnmarshalNodeResult(a, &ra); err != nil {
		t.Fatal(err)
	}
	if err := up.UnmarshalNodeResult(b, &rb); err != nil {
		t.Fatal(err)
	}
	if ra.Result.Containers[0].Profile != rb.Result.Containers[0].Profile {
		t.Error("the same packed profile on two nodes was unpacked twice")
	}
	if ra.Result.Containers[1].Profile == rb.Result.Containers[1].Profile {
		t.Error("two different profiles share one unpacked profile")
	}
	if err := json.Unmarshal(b, &plain); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(plain, rb); diff != "" {
		t.Errorf("through the Unpacker (-plain +shared):\n%s", diff)
	}
	if err := up.UnmarshalNodeResult([]byte(`{"result":{"containers":[{"pod":"a","container":"app","profileData":"!!"}]}}`), &ra); err == nil || !strings.Contains(err.Error(), "container app of pod a") {
		t.Errorf("bad profileData: %v, want an error naming the container", err)
	}
}
