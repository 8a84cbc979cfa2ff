package kubeapi

import (
	"reflect"
	"strings"
	"testing"
)

// A final answer carries the counters its result lacks, and completes exactly
// the result it was made for; one that does not fit is refused.
func TestFinalAnswerCompletes(t *testing.T) {
	final := NodeRecording{Phase: PhaseDone, Message: "m", Updated: "2026-12-06T20:00:00Z", Containers: []ContainerResult{
		{Pod: "web-1", Container: "app", Events: 70, Denied: []Call{{Arch: "SCMP_ARCH_X86_64", Name: "mount", Count: 3}}},
		{Pod: "web-1", Container: "side", Events: 9, Missing: []Call{{Name: "a", Count: 1}, {Name: "b", Count: 4}}, Conditional: []Call{{Name: "clone", Count: 2}}},
	}}
	// The result as last written: the same calls, older counters.
	published := NodeRecording{Phase: PhaseRecording, Updated: "2026-12-06T19:59:00Z", Containers: []ContainerResult{
		{Pod: "web-1", Container: "app", Events: 12, Denied: []Call{{Arch: "SCMP_ARCH_X86_64", Name: "mount", Count: 1}}},
		{Pod: "web-1", Container: "side", Events: 1, Missing: []Call{{Name: "a", Count: 1}, {Name: "b", Count: 1}}, Conditional: []Call{{Name: "clone", Count: 1}}},
	}}
	a := NewFinalAnswer("n1", "42", final)
	if a.Node != "n1" || a.Result != "42" {
		t.Fatalf("answer %+v", a)
	}
	st := published
	if err := a.Complete(&st); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, final) {
		t.Errorf("completed:\n%+v\nwant\n%+v", st, final)
	}
	if published.Containers[0].Events != 12 || published.Containers[0].Denied[0].Count != 1 {
		t.Error("completing changed the result it was given")
	}

	other := published
	other.Containers = other.Containers[:1]
	if err := a.Complete(&other); err == nil || !strings.Contains(err.Error(), "counts 2 containers") {
		t.Errorf("an answer for two containers completed a result of one: %v", err)
	}
	other = published
	other.Containers = []ContainerResult{published.Containers[0], {Pod: "web-1", Container: "side"}}
	if err := a.Complete(&other); err == nil || !strings.Contains(err.Error(), "container side") {
		t.Errorf("an answer completed a container of other calls: %v", err)
	}
}
