package kubeapi

import (
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed manifests/crds.yaml
var crdsYAML []byte

//go:embed manifests/agent.yaml
var agentYAML string

// InstallOptions fill in the agent's manifests.
type InstallOptions struct {
	Image      string // the image holding /syscage-agent
	PullPolicy string // Always, IfNotPresent or Never
	SeccompDir string // the kubelet's seccomp directory on the nodes
}

// Manifests returns the YAML documents `kubectl syscage install` applies, in
// order: the CRDs, then the namespace, RBAC and the agent DaemonSet.
func Manifests(o InstallOptions) ([]string, error) {
	if o.Image == "" || o.SeccompDir == "" {
		return nil, fmt.Errorf("an image and the kubelet's seccomp directory are needed")
	}
	if o.PullPolicy == "" {
		o.PullPolicy = "IfNotPresent"
	}
	var b bytes.Buffer
	if err := template.Must(template.New("agent").Option("missingkey=error").Parse(agentYAML)).Execute(&b, o); err != nil {
		return nil, err
	}
	var docs []string
	for _, d := range strings.Split(string(crdsYAML)+"\n---\n"+b.String(), "\n---\n") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs, nil
}
