package hooks

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKubernetesSelection(t *testing.T) {
	run := t.TempDir()
	app := map[string]string{CRIContainerType: "container", CRINamespace: "web", CRIPod: "web-1", CRIContainerName: "app"}
	sandbox := map[string]string{CRIContainerType: "sandbox", CRINamespace: "web", CRIPod: "web-1"}
	other := map[string]string{CRIContainerType: "container", CRINamespace: "db", CRIPod: "db-1", CRIContainerName: "db"}

	if kubernetesSelected(app, run) {
		t.Fatal("selected with no selection file")
	}
	if err := WriteSelection(run, &Selection{Namespaces: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	if !kubernetesSelected(app, run) {
		t.Error("a container in a selected namespace is not selected")
	}
	if kubernetesSelected(sandbox, run) {
		t.Error("a pod sandbox is selected: only application containers are recorded")
	}
	if kubernetesSelected(other, run) || kubernetesSelected(map[string]string{Annotation: "x"}, run) {
		t.Error("a container outside the selection is selected")
	}
	// An empty selection removes the file: nothing is sent to an agent that left.
	if err := WriteSelection(run, &Selection{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run, SelectionFile)); !os.IsNotExist(err) {
		t.Errorf("the selection file is still there: %v", err)
	}
	if kubernetesSelected(app, run) {
		t.Error("selected after the selection was emptied")
	}
	// CRI-O's annotations say the same under other keys.
	crio := map[string]string{CRIOContainerType: "container", CRIONamespace: "web", CRIOPod: "web-1", CRIOPodUID: "u", CRIOContainerName: "app"}
	if c, ok := KubernetesContainer(crio); !ok || c != (PodContainer{"web", "web-1", "u", "app"}) {
		t.Errorf("CRI-O container: %+v, %v", c, ok)
	}
	if _, ok := KubernetesContainer(map[string]string{CRIOContainerType: "sandbox", CRIONamespace: "web", CRIOPod: "p", CRIOContainerName: "POD"}); ok {
		t.Error("a CRI-O sandbox is taken for an application container")
	}
	WriteSelection(run, &Selection{Namespaces: []string{"web"}})
	if !kubernetesSelected(crio, run) {
		t.Error("a CRI-O container in a selected namespace is not selected")
	}
	WriteSelection(run, &Selection{})
	// A corrupt file selects nothing rather than everything.
	os.WriteFile(filepath.Join(run, SelectionFile), []byte("{"), 0o644)
	if kubernetesSelected(app, run) {
		t.Error("a corrupt selection selects")
	}
}
