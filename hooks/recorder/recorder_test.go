package recorder

import (
	"testing"

	"github.com/syscage/syscage/hooks"
)

// The node agent's recorder decides on Kubernetes containers, and writes no
// annotated container's profile file: that is the host recorder's job.
func TestAgentRecorderRequests(t *testing.T) {
	var admitted []AdmitRequest
	d := &Daemon{cfg: hooks.DefaultConfig(), containers: map[string]*container{}, opts: ServeOptions{
		Admit: func(r AdmitRequest) (bool, error) {
			admitted = append(admitted, r)
			return r.Annotations[hooks.CRIContainerName] == "app", nil
		},
	}}
	app := map[string]string{hooks.CRIContainerType: "container", hooks.CRINamespace: "web", hooks.CRIPod: "web-1", hooks.CRIContainerName: "app"}
	if resp := d.track(hooks.Request{Op: "track", Container: "c1", Annotations: app, CgroupID: 7}); resp.Error != "" || !resp.Tracked {
		t.Errorf("an admitted container: %+v", resp)
	}
	side := map[string]string{hooks.CRIContainerType: "container", hooks.CRINamespace: "web", hooks.CRIPod: "web-1", hooks.CRIContainerName: "side"}
	if resp := d.track(hooks.Request{Op: "track", Container: "c2", Annotations: side}); resp.Error != "" || resp.Tracked {
		t.Errorf("a container the agent declines: %+v", resp)
	}
	if len(admitted) != 2 || admitted[0].CgroupID != 7 || admitted[0].Container != "c1" {
		t.Errorf("Admit saw %+v", admitted)
	}
	if resp := d.track(hooks.Request{Op: "track", Container: "c3", Annotations: map[string]string{hooks.Annotation: "web"}}); resp.Error == "" {
		t.Error("the agent's recorder took an annotated container's recording into a file")
	}
	if len(d.containers) != 0 {
		t.Errorf("the daemon keeps state for the agent's containers: %v", d.containers)
	}
}
