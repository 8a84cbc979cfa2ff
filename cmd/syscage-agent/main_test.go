package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func execute(t *testing.T, env map[string]string, args ...string) error {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	cmd := newCmd()
	cmd.SetArgs(args)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	return cmd.ExecuteContext(context.Background())
}

// Each way the agent cannot start names what is missing and how to give it.
func TestAgentRefuses(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"outside a pod", map[string]string{"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""}, []string{"--node", "n1"},
			"the pod's service account: "},
		{"a kubeconfig that is not there", nil, []string{"--node", "n1", "--kubeconfig", "/nonexistent/kubeconfig"},
			"--kubeconfig /nonexistent/kubeconfig: "},
		{"no node", map[string]string{"NODE_NAME": ""}, []string{"--kubeconfig", kubeconfig, "--node", ""},
			"the node name is unknown: set NODE_NAME (the downward API's spec.nodeName) or --node"},
		{"arguments", nil, []string{"extra"}, `unknown command "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := execute(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	err := execute(t, map[string]string{"KUBERNETES_SERVICE_HOST": ""}, "--node", "n1")
	if err == nil || !strings.Contains(err.Error(), "pass --kubeconfig FILE") {
		t.Errorf("outside a pod: %v, want the way out named", err)
	}
}

func TestAgentVersion(t *testing.T) {
	cmd := newCmd()
	cmd.SetArgs([]string{"--version"})
	var out bytes.Buffer
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil || !strings.HasPrefix(out.String(), "syscage-agent version ") {
		t.Errorf("%q, %v", out.String(), err)
	}
}
