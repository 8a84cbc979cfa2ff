package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// The annotations a CRI runtime puts on every container it creates: containerd's
// CRI plugin, and CRI-O.
const (
	CRIContainerType = "io.kubernetes.cri.container-type" // "sandbox" or "container"
	CRINamespace     = "io.kubernetes.cri.sandbox-namespace"
	CRIPod           = "io.kubernetes.cri.sandbox-name"
	CRIPodUID        = "io.kubernetes.cri.sandbox-uid"
	CRIContainerName = "io.kubernetes.cri.container-name"

	CRIOContainerType = "io.kubernetes.cri-o.ContainerType" // "sandbox" or "container"
	CRIONamespace     = "io.kubernetes.pod.namespace"
	CRIOPod           = "io.kubernetes.pod.name"
	CRIOPodUID        = "io.kubernetes.pod.uid"
	CRIOContainerName = "io.kubernetes.container.name"
)

// PodContainer is who a CRI container is: its pod and its name there.
type PodContainer struct {
	Namespace, Pod, PodUID, Container string
}

// KubernetesContainer reads, from a container's annotations, the identity of an
// application container (not a pod sandbox) that a CRI runtime created.
func KubernetesContainer(annotations map[string]string) (PodContainer, bool) {
	var c PodContainer
	switch {
	case annotations[CRIContainerType] == "container":
		c = PodContainer{annotations[CRINamespace], annotations[CRIPod], annotations[CRIPodUID], annotations[CRIContainerName]}
	case annotations[CRIOContainerType] == "container":
		c = PodContainer{annotations[CRIONamespace], annotations[CRIOPod], annotations[CRIOPodUID], annotations[CRIOContainerName]}
	default:
		return c, false
	}
	return c, c.Namespace != "" && c.Pod != "" && c.Container != ""
}

// KubernetesDir, below the hook's run directory, is the node agent's: its
// recorder's socket and the node's selection. The host's own recorder, which
// serves annotated containers, keeps the run directory itself, so the two never
// take each other's requests.
const KubernetesDir = "kubernetes"

// KubernetesRunDir is the node agent's directory in a run directory.
func KubernetesRunDir(runDir string) string { return filepath.Join(runDir, KubernetesDir) }

// SelectionFile, in the agent's directory, lists the namespaces in which the node's
// agent records: it is written by the agent and read by the runc wrapper and the
// hook, which send those namespaces' containers to the agent. Which pods and
// containers are recorded is the agent's decision, made from the recordings in
// the API server; nothing a pod author writes steers it.
const SelectionFile = "selection.json"

// Selection is the content of SelectionFile.
type Selection struct {
	Namespaces []string `json:"namespaces"`
}

// ReadSelection reads the node's selection from the agent's directory; no file
// means none.
func ReadSelection(runDir string) (*Selection, error) {
	data, err := os.ReadFile(filepath.Join(runDir, SelectionFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &Selection{}, nil
	}
	if err != nil {
		return nil, err
	}
	var s Selection
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(runDir, SelectionFile), err)
	}
	return &s, nil
}

// WriteSelection replaces the node's selection in the agent's directory
// atomically; an empty one removes the file.
func WriteSelection(runDir string, s *Selection) error {
	path := filepath.Join(runDir, SelectionFile)
	if len(s.Namespaces) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return err
	}
	defer root.Close()
	return WriteIn(root, SelectionFile, append(data, '\n'))
}

// kubernetesSelected reports whether a container is one the node's agent may
// record: a CRI application container in a namespace of the selection in
// agentDir.
func kubernetesSelected(annotations map[string]string, agentDir string) bool {
	c, ok := KubernetesContainer(annotations)
	if !ok {
		return false
	}
	s, err := ReadSelection(agentDir)
	return err == nil && slices.Contains(s.Namespaces, c.Namespace)
}
