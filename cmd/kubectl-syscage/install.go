package main

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

type installOptions struct {
	image      string
	pullPolicy string
	seccompDir string
	timeout    time.Duration
	dryRun     bool
}

func newInstallCmd(o *rootOptions) *cobra.Command {
	opts := &installOptions{}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install syscage's CRDs and its node agent",
		Long: `Install the SyscallRecording and SyscallProfile CRDs, and the syscage agent: a
privileged DaemonSet in namespace ` + kubeapi.Namespace + ` that records containers and
writes profiles on every node. The manifests are built into this binary and
applied server-side, so install is also how to upgrade or change settings. It
waits until the CRDs are established and the agent runs on every node.`,
		Example: `  kubectl syscage install
  kubectl syscage install --image registry.example.com/syscage:v1 --pull-policy Always`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInstall(cmd.Context(), o, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.image, "image", "localhost/syscage:dev", "the agent's `IMAGE` (it holds /syscage-agent)")
	f.StringVar(&opts.pullPolicy, "pull-policy", "IfNotPresent", "the agent's image pull policy: Always, IfNotPresent or Never")
	f.StringVar(&opts.seccompDir, "seccomp-dir", profile.KubeletSeccompDir, "the kubelet's seccomp `DIR` on the nodes (<kubelet root dir>/seccomp)")
	f.DurationVar(&opts.timeout, "timeout", 2*time.Minute, "how long each wait may take (CRDs, agent rollout)")
	f.BoolVar(&opts.dryRun, "dry-run", false, "have the API server check every object without changing anything (the namespace must exist)")
	cmd.RegisterFlagCompletionFunc("pull-policy", cobra.FixedCompletions([]string{"Always", "IfNotPresent", "Never"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runInstall(ctx context.Context, o *rootOptions, opts *installOptions) error {
	out := o.streams.Out
	switch opts.pullPolicy {
	case "Always", "IfNotPresent", "Never":
	default:
		return fmt.Errorf("--pull-policy %q: use Always, IfNotPresent or Never", opts.pullPolicy)
	}
	if !path.IsAbs(opts.seccompDir) {
		return fmt.Errorf("--seccomp-dir %q: give the absolute path on the nodes, e.g. %s", opts.seccompDir, profile.KubeletSeccompDir)
	}
	if opts.timeout <= 0 {
		return fmt.Errorf("--timeout %s: give a positive duration, e.g. 2m", opts.timeout)
	}
	objs, err := installObjects(kubeapi.InstallOptions{Image: opts.image, PullPolicy: opts.pullPolicy, SeccompDir: path.Clean(opts.seccompDir)})
	if err != nil {
		return err
	}
	c, err := o.connect()
	if err != nil {
		return err
	}
	c.dryRun = opts.dryRun
	verb := "applied"
	if opts.dryRun {
		verb = "checked (server dry run)"
	}
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		gvr, namespaced, err := c.mapping(gvk)
		if optionalKind(gvk, err) {
			fmt.Fprintf(o.streams.ErrOut, "warning: this cluster serves no %s (Kubernetes before 1.30): the API server cannot keep one node's agent from writing another node's results\n", gvk.Kind)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, u.GetName(), err)
		}
		if _, err := c.applyObject(ctx, gvr, namespaced, u); err != nil {
			return fmt.Errorf("applying %s %s: %w", gvk.Kind, objectName(u), err)
		}
		fmt.Fprintf(out, "%s %s %s\n", strings.ToLower(gvk.Kind), objectName(u), verb)
	}
	if opts.dryRun {
		return nil
	}
	for _, u := range objs {
		if u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		name := u.GetName()
		err := c.poll(ctx, opts.timeout, "CRD "+name+" to be established", func(ctx context.Context) (pending, error) {
			crd, err := c.dyn.Resource(crdsGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return "", fmt.Errorf("reading CRD %s: %w", name, err)
			}
			return crdEstablished(crd)
		})
		if err != nil {
			return err
		}
	}
	for _, u := range objs {
		if u.GetKind() != "DaemonSet" {
			continue
		}
		ns, name := u.GetNamespace(), u.GetName()
		var nodes int32
		err := c.poll(ctx, opts.timeout, "daemonset "+ns+"/"+name+" to run on every node", func(ctx context.Context) (pending, error) {
			ds, err := c.apps.DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return "", fmt.Errorf("reading daemonset %s/%s: %w", ns, name, err)
			}
			nodes = ds.Status.DesiredNumberScheduled
			left := daemonSetStatus(ds)
			if left == "" {
				return "", nil
			}
			pods, err := c.core.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(ds.Spec.Selector)})
			if err == nil {
				if problems := podProblems(pods.Items); len(problems) > 0 {
					left += ": " + strings.Join(problems, "; ")
				}
			}
			return left, nil
		})
		if err != nil {
			return err
		}
		if nodes == 0 {
			fmt.Fprintf(o.streams.ErrOut, "warning: daemonset %s/%s runs on no node: check the nodes' taints and that there are nodes\n", ns, name)
		}
		fmt.Fprintf(out, "syscage agent (%s) running on %s\n", opts.image, plural(int(nodes), "node"))
	}
	return nil
}

// installObjects decodes the manifests install applies, in order.
func installObjects(o kubeapi.InstallOptions) ([]*unstructured.Unstructured, error) {
	docs, err := kubeapi.Manifests(o)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for i, doc := range docs {
		data, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("manifest %d: %w", i, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("manifest %d: %w", i, err)
		}
		objs = append(objs, u)
	}
	return objs, nil
}

// objectName is ns/name, or name for a cluster-scoped object.
func objectName(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetName()
}

// crdEstablished says what a CRD still waits for; it fails when its names
// conflict with another's.
func crdEstablished(crd *unstructured.Unstructured) (pending, error) {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	established := false
	for _, c := range conds {
		m, _ := c.(map[string]any)
		typ, _ := m["type"].(string)
		status, _ := m["status"].(string)
		msg, _ := m["message"].(string)
		switch {
		case typ == "Established" && status == "True":
			established = true
		case typ == "NamesAccepted" && status == "False":
			return "", fmt.Errorf("CRD %s: its names are not accepted: %s", crd.GetName(), msg)
		}
	}
	if !established {
		return "not yet established", nil
	}
	return "", nil
}

// optionalKind reports whether a manifest's kind is one a cluster may lack
// without harm to what syscage does: the admission policy that binds agents to
// their own node's results (Kubernetes 1.30 and later).
func optionalKind(gvk schema.GroupVersionKind, err error) bool {
	return err != nil && meta.IsNoMatchError(err) && gvk.Group == "admissionregistration.k8s.io"
}
