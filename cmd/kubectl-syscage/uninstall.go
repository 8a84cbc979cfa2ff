package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/syscage/syscage/hooks/kubeapi"
)

type uninstallOptions struct {
	force   bool
	timeout time.Duration
}

func newUninstallCmd(o *rootOptions) *cobra.Command {
	opts := &uninstallOptions{}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove syscage's agent, CRDs and profiles from the cluster",
		Long: `Remove everything install made, and every SyscallRecording and SyscallProfile.
The agents remove the profiles' files from the nodes before they go.

Uninstall refuses while a workload or pod uses a profile under "` + kubeapi.ProfileDir + `/": new
pods of it could not start without the file. --force removes everything anyway,
and when agents do not answer in time, drops the profiles without them, naming
the nodes that may keep the files.`,
		Example: `  kubectl syscage uninstall
  kubectl syscage uninstall --force --timeout 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUninstall(cmd.Context(), o, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.force, "force", false, "remove everything even while profiles are in use or agents do not answer")
	f.DurationVar(&opts.timeout, "timeout", 2*time.Minute, "how long each wait may take (profiles, agent pods, namespace, CRDs)")
	return cmd
}

// installed is an object of install's that exists.
type installed struct {
	u          *unstructured.Unstructured
	gvr        schema.GroupVersionResource
	namespaced bool
}

func (i installed) resource(d dynamic.Interface) dynamic.ResourceInterface {
	if i.namespaced {
		return d.Resource(i.gvr).Namespace(i.u.GetNamespace())
	}
	return d.Resource(i.gvr)
}

func runUninstall(ctx context.Context, o *rootOptions, opts *uninstallOptions) error {
	out, log := o.streams.Out, o.streams.ErrOut
	if opts.timeout <= 0 {
		return fmt.Errorf("--timeout %s: give a positive duration, e.g. 2m", opts.timeout)
	}
	c, err := o.connect()
	if err != nil {
		return err
	}
	// Only the names matter here, not the settings install was given.
	objs, err := installObjects(kubeapi.InstallOptions{Image: "unused", SeccompDir: "/unused"})
	if err != nil {
		return err
	}
	var present []installed
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		gvr, namespaced, err := c.mapping(gvk)
		if optionalKind(gvk, err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, u.GetName(), err)
		}
		i := installed{u: u, gvr: gvr, namespaced: namespaced}
		if _, err := i.resource(c.dyn).Get(ctx, u.GetName(), metav1.GetOptions{}); err == nil {
			present = append(present, i)
		} else if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading %s %s: %w", gvk.Kind, objectName(u), err)
		}
	}

	if len(present) == 0 {
		fmt.Fprintln(out, "syscage is not installed in this cluster: nothing to remove")
		return nil
	}
	refs, err := c.profileUsers(ctx)
	if err != nil {
		return err
	}
	if len(refs) > 0 {
		list := "\n  " + strings.Join(refs, "\n  ")
		if !opts.force {
			return fmt.Errorf("these use profiles syscage installs on the nodes; their new pods could not start without them:%s\n"+
				"set their seccompProfile to another (e.g. type: RuntimeDefault) or delete them, or uninstall with --force", list)
		}
		fmt.Fprintf(log, "warning: --force: these use profiles syscage installs; their new pods will fail to start:%s\n", list)
	}

	// Recordings first, so that no agent records anything more.
	recs, err := c.listAll(ctx, recordingsGVR)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := c.dyn.Resource(recordingsGVR).Namespace(r.GetNamespace()).Delete(ctx, r.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting SyscallRecording %s: %w", objectName(&r), err)
		}
	}
	if len(recs) > 0 {
		fmt.Fprintf(out, "deleted %s\n", plural(len(recs), "SyscallRecording"))
	}
	if err := c.removeProfiles(ctx, out, log, opts, present); err != nil {
		return err
	}

	// Then install's objects in reverse: the agent first, the CRDs last.
	for i := len(present) - 1; i >= 0; i-- {
		p := present[i]
		kind, name := strings.ToLower(p.u.GetKind()), objectName(p.u)
		if err := p.resource(c.dyn).Delete(ctx, p.u.GetName(), deleteOptions()); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s %s: %w", kind, name, err)
		}
		err := c.poll(ctx, opts.timeout, kind+" "+name+" to be gone", func(ctx context.Context) (pending, error) {
			_, err := p.resource(c.dyn).Get(ctx, p.u.GetName(), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return "", nil
			}
			if err != nil {
				return "", err
			}
			return "it still exists", nil
		})
		if err != nil {
			return err
		}
		if p.u.GetKind() == "DaemonSet" {
			if err := c.waitAgentsGone(ctx, p.u.GetNamespace(), opts.timeout); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "%s %s deleted\n", kind, name)
	}
	fmt.Fprintln(out, "syscage is uninstalled")
	return nil
}

// waitAgentsGone waits for the agent's pods to exit: each cleans up its node as
// it does.
func (c *clients) waitAgentsGone(ctx context.Context, ns string, timeout time.Duration) error {
	return c.poll(ctx, timeout, "the agent's pods to exit", func(ctx context.Context) (pending, error) {
		pods, err := c.core.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: agentLabel})
		if err != nil {
			return "", fmt.Errorf("listing the agent's pods: %w", err)
		}
		if len(pods.Items) == 0 {
			return "", nil
		}
		var names []string
		for _, p := range pods.Items {
			names = append(names, p.Name+" on "+p.Spec.NodeName)
		}
		return "still running: " + strings.Join(names, ", "), nil
	})
}

// listAll lists a syscage resource in every namespace; none when its CRD is gone.
func (c *clients) listAll(ctx context.Context, gvr schema.GroupVersionResource) ([]unstructured.Unstructured, error) {
	list, err := c.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", gvr.Resource, err)
	}
	return list.Items, nil
}

// removeProfiles deletes every SyscallProfile and waits until the agents have
// removed their files and finalizers. With --force, it drops the finalizers of
// the agents that did not answer in time.
func (c *clients) removeProfiles(ctx context.Context, out, log io.Writer, opts *uninstallOptions, present []installed) error {
	profiles, err := c.listAll(ctx, profilesGVR)
	if err != nil || len(profiles) == 0 {
		return err
	}
	for _, p := range profiles {
		if err := c.dyn.Resource(profilesGVR).Namespace(p.GetNamespace()).Delete(ctx, p.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting SyscallProfile %s: %w", objectName(&p), err)
		}
	}
	agentRuns := slices.ContainsFunc(present, func(i installed) bool { return i.u.GetKind() == "DaemonSet" })
	var left []kubeapi.SyscallProfile
	wait := func(ctx context.Context) (pending, error) {
		items, err := c.listAll(ctx, profilesGVR)
		if err != nil {
			return "", err
		}
		left = left[:0]
		for _, u := range items {
			var sp kubeapi.SyscallProfile
			if err := fromUnstructured(&u, &sp); err != nil {
				return "", err
			}
			left = append(left, sp)
		}
		if len(left) == 0 {
			return "", nil
		}
		return "nodes still holding their files: " + strings.Join(heldFiles(left), "; "), nil
	}
	what := "the agents to remove " + plural(len(profiles), "profile") + " from their nodes"
	if agentRuns {
		err = c.poll(ctx, opts.timeout, what, wait)
	} else {
		// No agent will answer: do not wait for one.
		if _, err = wait(ctx); err == nil && len(left) > 0 {
			err = fmt.Errorf("the agent's DaemonSet is gone, so no agent removes these profiles' files: %s", strings.Join(heldFiles(left), "; "))
		}
	}
	if err == nil {
		fmt.Fprintf(out, "deleted %s, and their files on the nodes\n", plural(len(profiles), "SyscallProfile"))
		return nil
	}
	if !opts.force || ctx.Err() != nil {
		return fmt.Errorf("%w\n(is the agent running on those nodes? 'kubectl -n %s get pods -l %s'; or uninstall with --force, leaving the files)", err, kubeapi.Namespace, agentLabel)
	}
	for _, sp := range left {
		if err := c.dropNodeFinalizers(ctx, sp); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "warning: --force: deleted the profiles without their agents; these nodes may keep the files, below the kubelet's seccomp directory: %s\n", strings.Join(heldFiles(left), "; "))
	return nil
}

// heldFiles says which nodes still hold which profile's file: those whose
// finalizer is on it.
func heldFiles(profiles []kubeapi.SyscallProfile) []string {
	var out []string
	for _, sp := range profiles {
		nodes := finalizerNodes(sp)
		if len(nodes) == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s on %s", kubeapi.LocalhostProfile(sp.Metadata.Namespace, sp.Metadata.Name), strings.Join(nodes, ", ")))
	}
	slices.Sort(out)
	return out
}

// finalizerNodes names the nodes whose agent finalizers a profile carries: by
// the status entries they match, or as the finalizer itself when none does (a
// long node name is hashed in it).
func finalizerNodes(sp kubeapi.SyscallProfile) []string {
	byFinalizer := map[string]string{}
	for node := range sp.Status.Nodes {
		byFinalizer[kubeapi.NodeFinalizer(node)] = node
	}
	var nodes []string
	for _, f := range sp.Metadata.Finalizers {
		if !isNodeFinalizer(f) {
			continue
		}
		nodes = append(nodes, cmp.Or(byFinalizer[f], f))
	}
	slices.Sort(nodes)
	return nodes
}

func isNodeFinalizer(f string) bool { return strings.HasPrefix(f, kubeapi.Group+"/node.") }

// dropNodeFinalizers removes the agents' finalizers from a profile, keeping any
// other, with the resourceVersion read as a precondition.
func (c *clients) dropNodeFinalizers(ctx context.Context, sp kubeapi.SyscallProfile) error {
	ri := c.dyn.Resource(profilesGVR).Namespace(sp.Metadata.Namespace)
	for range 5 {
		keep := slices.DeleteFunc(slices.Clone(sp.Metadata.Finalizers), isNodeFinalizer)
		if keep == nil {
			keep = []string{}
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": keep, "resourceVersion": sp.Metadata.ResourceVersion}})
		if err != nil {
			return err
		}
		_, err = ri.Patch(ctx, sp.Metadata.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("removing the finalizers of SyscallProfile %s/%s: %w", sp.Metadata.Namespace, sp.Metadata.Name, err)
		}
		u, err := ri.Get(ctx, sp.Metadata.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fromUnstructured(u, &sp); err != nil {
			return err
		}
	}
	return errors.New("removing the finalizers of SyscallProfile " + sp.Metadata.Namespace + "/" + sp.Metadata.Name + ": it kept changing; try again")
}

// templateUser is an object with a pod spec, for the scan of profile users.
type templateUser struct {
	Kind, Namespace, Name string
	UID                   types.UID
	// Controller is the UID of the object that manages this one, if any.
	Controller types.UID
	Spec       corev1.PodSpec
	// Idle marks a ReplicaSet a Deployment keeps only for rollbacks.
	Idle bool
}

// profileUsers lists, in every namespace, the workloads and pods whose pod spec
// uses a profile under syscage's directory.
func (c *clients) profileUsers(ctx context.Context) ([]string, error) {
	var users []templateUser
	add := func(kind string, m metav1.ObjectMeta, spec corev1.PodSpec, idle bool) {
		t := templateUser{Kind: kind, Namespace: m.Namespace, Name: m.Name, UID: m.UID, Spec: spec, Idle: idle}
		if ref := metav1.GetControllerOfNoCopy(&m); ref != nil {
			t.Controller = ref.UID
		}
		users = append(users, t)
	}
	all := metav1.ListOptions{}
	deps, err := c.apps.Deployments("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	for _, d := range deps.Items {
		add("deployment", d.ObjectMeta, d.Spec.Template.Spec, false)
	}
	sts, err := c.apps.StatefulSets("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing statefulsets: %w", err)
	}
	for _, s := range sts.Items {
		add("statefulset", s.ObjectMeta, s.Spec.Template.Spec, false)
	}
	dss, err := c.apps.DaemonSets("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing daemonsets: %w", err)
	}
	for _, d := range dss.Items {
		add("daemonset", d.ObjectMeta, d.Spec.Template.Spec, false)
	}
	rss, err := c.apps.ReplicaSets("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing replicasets: %w", err)
	}
	for _, r := range rss.Items {
		idle := r.Spec.Replicas != nil && *r.Spec.Replicas == 0 && r.Status.Replicas == 0 && metav1.GetControllerOfNoCopy(&r) != nil
		add("replicaset", r.ObjectMeta, r.Spec.Template.Spec, idle)
	}
	jobs, err := c.batch.Jobs("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	for _, j := range jobs.Items {
		add("job", j.ObjectMeta, j.Spec.Template.Spec, false)
	}
	cjs, err := c.batch.CronJobs("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing cronjobs: %w", err)
	}
	for _, j := range cjs.Items {
		add("cronjob", j.ObjectMeta, j.Spec.JobTemplate.Spec.Template.Spec, false)
	}
	pods, err := c.core.Pods("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue // will not start again
		}
		add("pod", p.ObjectMeta, p.Spec, false)
	}
	return profileUsers(users), nil
}

// profileUsers says which objects use a profile under syscage's directory, and
// where in their spec. An object whose controller is listed is not: changing the
// controller changes it. Idle ReplicaSets are skipped.
func profileUsers(objs []templateUser) []string {
	using := map[types.UID]bool{}
	found := map[int][]string{}
	for i, o := range objs {
		if o.Idle {
			continue
		}
		if uses := syscageProfiles(o.Spec); len(uses) > 0 {
			found[i] = uses
			if o.UID != "" {
				using[o.UID] = true
			}
		}
	}
	var out []string
	for i, uses := range found {
		o := objs[i]
		if o.Controller != "" && using[o.Controller] {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s/%s: %s", o.Kind, o.Namespace, o.Name, strings.Join(uses, ", ")))
	}
	slices.Sort(out)
	return out
}

// syscageProfiles lists where a pod spec uses a Localhost profile under
// syscage's directory: "pod syscage/ns/web.json", "container app syscage/…".
func syscageProfiles(spec corev1.PodSpec) []string {
	var uses []string
	check := func(where string, sp *corev1.SeccompProfile) {
		if sp != nil && sp.Type == corev1.SeccompProfileTypeLocalhost && sp.LocalhostProfile != nil &&
			strings.HasPrefix(*sp.LocalhostProfile, kubeapi.ProfileDir+"/") {
			uses = append(uses, where+" "+*sp.LocalhostProfile)
		}
	}
	if spec.SecurityContext != nil {
		check("pod", spec.SecurityContext.SeccompProfile)
	}
	for _, c := range spec.InitContainers {
		if c.SecurityContext != nil {
			check("init container "+c.Name, c.SecurityContext.SeccompProfile)
		}
	}
	for _, c := range spec.Containers {
		if c.SecurityContext != nil {
			check("container "+c.Name, c.SecurityContext.SeccompProfile)
		}
	}
	for _, c := range spec.EphemeralContainers {
		if c.SecurityContext != nil {
			check("ephemeral container "+c.Name, c.SecurityContext.SeccompProfile)
		}
	}
	return uses
}
