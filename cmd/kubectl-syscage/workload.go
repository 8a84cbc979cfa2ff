package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// restartAnnotation is set on a pod template to restart its pods, as
// `kubectl rollout restart` does with its own annotation.
const restartAnnotation = "syscage.io/restartedAt"

// workloadKind is a kind of workload the commands take.
type workloadKind struct {
	Kind     string // Deployment
	Resource string // deployments
	Short    string // deploy
	Group    string // apps
	Version  string // v1
}

var workloadKinds = []workloadKind{
	{"Deployment", "deployments", "deploy", "apps", "v1"},
	{"StatefulSet", "statefulsets", "sts", "apps", "v1"},
	{"DaemonSet", "daemonsets", "ds", "apps", "v1"},
	{"ReplicaSet", "replicasets", "rs", "apps", "v1"},
	{"Job", "jobs", "job", "batch", "v1"},
	{"CronJob", "cronjobs", "cj", "batch", "v1"},
	{"Pod", "pods", "po", "", "v1"},
}

// workloadRef is a workload named on the command line: KIND/NAME.
type workloadRef struct {
	workloadKind
	Name string
}

// String is the workload as kubectl names it: deployment/web.
func (r workloadRef) String() string { return strings.ToLower(r.Kind) + "/" + r.Name }

func (r workloadRef) gvr() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource}
}

// kindOf finds a kind by its name, plural or short name, in any case,
// optionally with its group (deployment.apps, as kubectl prints).
func kindOf(kind string) (workloadKind, bool) {
	k := strings.ToLower(kind)
	for _, wk := range workloadKinds {
		name := k
		if wk.Group != "" {
			name = strings.TrimSuffix(k, "."+wk.Group)
		}
		if name == strings.ToLower(wk.Kind) || name == wk.Resource || name == wk.Short {
			return wk, true
		}
	}
	return workloadKind{}, false
}

// parseWorkload reads KIND/NAME, where KIND is a kind, its plural or short name,
// in any case, optionally with its group (deployment.apps/web, as kubectl prints).
func parseWorkload(arg string) (workloadRef, error) {
	kinds := make([]string, 0, len(workloadKinds))
	for _, k := range workloadKinds {
		kinds = append(kinds, fmt.Sprintf("%s (%s)", strings.ToLower(k.Kind), k.Short))
	}
	hint := "name a workload as KIND/NAME, e.g. deployment/web; KIND is one of " + strings.Join(kinds, ", ")
	kind, name, ok := strings.Cut(arg, "/")
	if !ok || kind == "" || name == "" || strings.Contains(name, "/") {
		return workloadRef{}, fmt.Errorf("workload %q: %s", arg, hint)
	}
	if wk, ok := kindOf(kind); ok {
		return workloadRef{wk, name}, nil
	}
	return workloadRef{}, fmt.Errorf("workload %q: unknown kind %q: %s", arg, kind, hint)
}

// workload is what the commands need to know of a workload.
type workload struct {
	ref       workloadRef
	namespace string
	// selector selects the workload's pods. It is empty for a CronJob or a Pod,
	// whose pods a recording selects by a label it sets (recordLabel).
	selector kubeapi.LabelSelector
	template corev1.PodTemplateSpec
	// templatePath is where the pod template is in the object: spec.template,
	// spec.jobTemplate.spec.template, or the object itself for a Pod.
	templatePath []string
	controller   string // "deployment/web" when another object manages this one
	// onDelete is set when a template change does not replace its pods.
	onDelete bool
	// obj is the object as read.
	obj *unstructured.Unstructured
}

// recordLabel selects the pods of a workload that has no selector of its own
// (a CronJob's runs, a Pod, an object record --create makes): record sets it
// on the pod template (or the pod) with a value of its own, and the recording
// selects that.
const recordLabel = "syscage.io/record"

// labelled reports whether the workload's pods are selected by recordLabel.
func (w *workload) labelled() bool {
	return len(w.selector.MatchLabels) == 1 && w.selector.MatchLabels[recordLabel] != ""
}

// getWorkload fetches a workload from the namespace of the command.
func (c *clients) getWorkload(ctx context.Context, ref workloadRef) (*workload, error) {
	u, err := c.dyn.Resource(ref.gvr()).Namespace(c.namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s not found in namespace %q: check the name, or choose the namespace with -n", ref, c.namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("getting %s: %w", ref, err)
	}
	return newWorkload(ref, u)
}

// newWorkload reads a workload's selector, pod template and update strategy.
func newWorkload(ref workloadRef, u *unstructured.Unstructured) (*workload, error) {
	w := &workload{ref: ref, namespace: u.GetNamespace(), obj: u, templatePath: []string{"spec", "template"}}
	switch ref.Kind {
	case "CronJob":
		w.templatePath = []string{"spec", "jobTemplate", "spec", "template"}
	case "Pod":
		w.templatePath = nil
	}
	// A Job made by record --create has no selector yet: the API server adds it.
	ownSelector := ref.Kind != "CronJob" && ref.Kind != "Pod" && !(ref.Kind == "Job" && u.GetUID() == "")
	if ownSelector {
		sel, found, err := unstructured.NestedMap(u.Object, "spec", "selector")
		if err != nil {
			return nil, fmt.Errorf("%s: spec.selector: %w", ref, err)
		}
		if !found {
			return nil, fmt.Errorf("%s has no spec.selector", ref)
		}
		if err := remarshal(sel, &w.selector); err != nil {
			return nil, fmt.Errorf("%s: spec.selector: %w", ref, err)
		}
		if len(w.selector.MatchLabels) == 0 && len(w.selector.MatchExpressions) == 0 {
			return nil, fmt.Errorf("%s has an empty selector: syscage records only pods a selector names", ref)
		}
	}
	tmpl := u.Object
	if w.templatePath != nil {
		var found bool
		var err error
		tmpl, found, err = unstructured.NestedMap(u.Object, w.templatePath...)
		if err != nil || !found {
			return nil, fmt.Errorf("%s has no %s", ref, strings.Join(w.templatePath, "."))
		}
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &w.template); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", ref, cmp.Or(strings.Join(w.templatePath, "."), "spec"), err)
	}
	if owner := metav1.GetControllerOf(u); owner != nil {
		w.controller = strings.ToLower(owner.Kind) + "/" + owner.Name
	}
	switch ref.Kind {
	case "StatefulSet", "DaemonSet":
		t, _, _ := unstructured.NestedString(u.Object, "spec", "updateStrategy", "type")
		w.onDelete = t == "OnDelete"
	case "ReplicaSet":
		w.onDelete = true // a ReplicaSet never replaces its pods for a new template
	}
	return w, nil
}

// remarshal converts between two JSON-shaped values.
func remarshal(in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// containerNames are the template's containers, init containers included.
func (w *workload) containerNames() []string {
	var names []string
	for _, c := range w.template.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range w.template.Spec.Containers {
		names = append(names, c.Name)
	}
	return names
}

// checkContainers refuses --containers names the template does not have.
func (w *workload) checkContainers(want []string) error {
	have := w.containerNames()
	for _, n := range want {
		if !slices.Contains(have, n) {
			return fmt.Errorf("--containers %s: %s has no container %q; its containers are %s", strings.Join(want, ","), w.ref, n, strings.Join(have, ", "))
		}
	}
	return nil
}

// canRestart says why a template change would not replace the workload's pods.
func (w *workload) canRestart() error {
	switch {
	case w.ref.Kind == "Job" || w.ref.Kind == "Pod":
		return fmt.Errorf("a %s is not restarted: record a new one from its first syscall with 'record --create -f FILE'", w.ref.Kind)
	case w.ref.Kind == "CronJob":
		return fmt.Errorf("a CronJob's runs each start anew: record the next ones with --runs N")
	case w.ref.Kind == "ReplicaSet" && w.controller != "":
		return fmt.Errorf("%s does not replace its pods when its template changes: name its owner, %s, instead", w.ref, w.controller)
	case w.ref.Kind == "ReplicaSet":
		return fmt.Errorf("%s does not replace its pods when its template changes: delete its pods yourself, then record without --restart", w.ref)
	case w.onDelete:
		return fmt.Errorf("%s has updateStrategy OnDelete: a template change does not replace its pods; delete them yourself, or record without --restart", w.ref)
	}
	return nil
}

// selectorString is the selector in kubectl's syntax, for listing and messages.
func selectorString(s kubeapi.LabelSelector) (string, error) {
	var ls metav1.LabelSelector
	if err := remarshal(s, &ls); err != nil {
		return "", err
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return "", err
	}
	return sel.String(), nil
}

// pods lists the pods the workload's selector matches.
func (c *clients) pods(ctx context.Context, w *workload) ([]corev1.Pod, error) {
	return c.podsWhere(ctx, w, "")
}

// failedPodsOf lists the workload's pods that failed. At the end of a recording
// of thousands of pods, the API server then sends the few that failed, not
// every pod (at 5,000 pods, a second after the results are in).
func (c *clients) failedPodsOf(ctx context.Context, w *workload) ([]corev1.Pod, error) {
	return c.podsWhere(ctx, w, "status.phase="+string(corev1.PodFailed))
}

// podsWhere lists the pods the workload's selector matches, and the field
// selector fields if it is not empty.
func (c *clients) podsWhere(ctx context.Context, w *workload, fields string) ([]corev1.Pod, error) {
	if len(w.selector.MatchLabels) == 0 && len(w.selector.MatchExpressions) == 0 {
		// A CronJob or Pod not yet labelled: nothing, rather than the namespace.
		if w.ref.Kind == "Pod" && w.obj != nil && w.obj.GetUID() != "" {
			p, err := c.core.Pods(w.namespace).Get(ctx, w.ref.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("getting %s: %w", w.ref, err)
			}
			return []corev1.Pod{*p}, nil
		}
		return nil, nil
	}
	sel, err := selectorString(w.selector)
	if err != nil {
		return nil, fmt.Errorf("%s: selector: %w", w.ref, err)
	}
	list, err := c.core.Pods(w.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel, FieldSelector: fields})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", w.ref, err)
	}
	return list.Items, nil
}

// restart replaces the workload's pods, as `kubectl rollout restart` does.
func (c *clients) restart(ctx context.Context, w *workload, now time.Time) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{restartAnnotation: now.UTC().Format(time.RFC3339)}},
	}}})
	if err != nil {
		return err
	}
	_, err = c.dyn.Resource(w.ref.gvr()).Namespace(w.namespace).Patch(ctx, w.ref.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil {
		return fmt.Errorf("restarting %s: %w", w.ref, err)
	}
	return nil
}

// waitRollout waits until the workload runs its current template everywhere. On
// timeout it says how far the rollout got and why pods are not Ready.
func (c *clients) waitRollout(ctx context.Context, w *workload, timeout time.Duration) error {
	return c.poll(ctx, timeout, "the rollout of "+w.ref.String(), func(ctx context.Context) (pending, error) {
		u, err := c.dyn.Resource(w.ref.gvr()).Namespace(w.namespace).Get(ctx, w.ref.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("getting %s: %w", w.ref, err)
		}
		left, err := rolloutStatus(u)
		if err != nil || left == "" {
			return left, err
		}
		if pods, err := c.pods(ctx, w); err == nil {
			if problems := podProblems(pods); len(problems) > 0 {
				left += "; " + strings.Join(problems, "; ")
			}
		}
		return left, nil
	})
}

// rolloutStatus says what a rollout still waits for, "" once it is complete, as
// `kubectl rollout status` judges it. It fails when the rollout cannot complete.
func rolloutStatus(u *unstructured.Unstructured) (pending, error) {
	conv := runtime.DefaultUnstructuredConverter
	switch u.GetKind() {
	case "Deployment":
		var d appsv1.Deployment
		if err := conv.FromUnstructured(u.Object, &d); err != nil {
			return "", err
		}
		return deploymentStatus(&d)
	case "StatefulSet":
		var s appsv1.StatefulSet
		if err := conv.FromUnstructured(u.Object, &s); err != nil {
			return "", err
		}
		return statefulSetStatus(&s), nil
	case "DaemonSet":
		var d appsv1.DaemonSet
		if err := conv.FromUnstructured(u.Object, &d); err != nil {
			return "", err
		}
		return daemonSetStatus(&d), nil
	case "ReplicaSet":
		var r appsv1.ReplicaSet
		if err := conv.FromUnstructured(u.Object, &r); err != nil {
			return "", err
		}
		want := int32(1)
		if r.Spec.Replicas != nil {
			want = *r.Spec.Replicas
		}
		if r.Status.ObservedGeneration < r.Generation || r.Status.ReadyReplicas < want {
			return fmt.Sprintf("%d of %d pods Ready", r.Status.ReadyReplicas, want), nil
		}
		return "", nil
	}
	return "", fmt.Errorf("%s/%s: no rollout for kind %q", u.GetKind(), u.GetName(), u.GetKind())
}

func deploymentStatus(d *appsv1.Deployment) (pending, error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "the new template is not yet seen by the controller", nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return "", fmt.Errorf("deployment/%s exceeded its progress deadline: %s", d.Name, c.Message)
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.UpdatedReplicas < want:
		return fmt.Sprintf("%d of %d new replicas updated", st.UpdatedReplicas, want), nil
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas), nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("%d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas), nil
	}
	return "", nil
}

func statefulSetStatus(s *appsv1.StatefulSet) pending {
	if s.Status.ObservedGeneration == 0 || s.Generation > s.Status.ObservedGeneration {
		return "the new template is not yet seen by the controller"
	}
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	if s.Status.ReadyReplicas < want {
		return fmt.Sprintf("%d of %d pods Ready", s.Status.ReadyReplicas, want)
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; s.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && ru != nil && ru.Partition != nil && *ru.Partition > 0 {
		if s.Status.UpdatedReplicas < want-*ru.Partition {
			return fmt.Sprintf("%d of %d new pods updated (partition %d)", s.Status.UpdatedReplicas, want-*ru.Partition, *ru.Partition)
		}
		return ""
	}
	if s.Status.UpdateRevision != s.Status.CurrentRevision {
		return fmt.Sprintf("%d of %d pods at revision %s", s.Status.UpdatedReplicas, want, s.Status.UpdateRevision)
	}
	return ""
}

func daemonSetStatus(d *appsv1.DaemonSet) pending {
	if d.Generation > d.Status.ObservedGeneration {
		return "the new template is not yet seen by the controller"
	}
	st := d.Status
	switch {
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return fmt.Sprintf("%d of %d new pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberReady < st.DesiredNumberScheduled:
		return fmt.Sprintf("%d of %d pods Ready", st.NumberReady, st.DesiredNumberScheduled)
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return fmt.Sprintf("%d of %d pods available", st.NumberAvailable, st.DesiredNumberScheduled)
	}
	return ""
}

// completeWorkload completes the WORKLOAD argument: a kind, then the names of
// the workloads of that kind in the namespace.
func completeWorkload(o *rootOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		kind, _, ok := strings.Cut(toComplete, "/")
		if !ok {
			var kinds []cobra.Completion
			for _, k := range workloadKinds {
				kinds = append(kinds, strings.ToLower(k.Kind)+"/")
			}
			return kinds, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
		}
		ref, err := parseWorkload(kind + "/-")
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := o.connect()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := c.dyn.Resource(ref.gvr()).Namespace(c.namespace).List(cmd.Context(), metav1.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, u := range list.Items {
			if n := kind + "/" + u.GetName(); strings.HasPrefix(n, toComplete) {
				names = append(names, n)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
