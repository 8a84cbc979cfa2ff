package kubeapi

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
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
	want := "CustomResourceDefinition CustomResourceDefinition Namespace ServiceAccount ClusterRole ClusterRoleBinding ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding DaemonSet"
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
