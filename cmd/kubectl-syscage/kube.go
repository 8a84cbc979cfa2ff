package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// fieldManager owns what kubectl-syscage writes with server-side apply and patches.
const fieldManager = "kubectl-syscage"

// agentLabel selects the agent's pods.
const agentLabel = "app.kubernetes.io/name=" + kubeapi.AgentName

var (
	recordingsGVR  = schema.GroupVersionResource{Group: kubeapi.Group, Version: kubeapi.Version, Resource: kubeapi.Recordings}
	profilesGVR    = schema.GroupVersionResource{Group: kubeapi.Group, Version: kubeapi.Version, Resource: kubeapi.Profiles}
	nodeResultsGVR = schema.GroupVersionResource{Group: kubeapi.Group, Version: kubeapi.Version, Resource: kubeapi.NodeResults}
	nodeStatusGVR  = schema.GroupVersionResource{Group: kubeapi.Group, Version: kubeapi.Version, Resource: kubeapi.NodeStatuses}
	crdsGVR        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	// leasesGVR: the nodes' final answers to a recording's stop (kubeapi.FinalAnswer).
	leasesGVR = schema.GroupVersionResource{Group: kubeapi.LeaseGroup, Version: kubeapi.LeaseVersion, Resource: kubeapi.Leases}
)

// clients are the API clients the commands use: the dynamic client for syscage's
// custom resources (and anything read generically), typed ones for the rest.
type clients struct {
	dyn       dynamic.Interface
	core      corev1client.CoreV1Interface
	apps      appsv1client.AppsV1Interface
	batch     batchv1client.BatchV1Interface
	leases    coordinationv1client.LeasesGetter
	discovery discovery.DiscoveryInterface
	// mapper maps the kinds of install's manifests to resources; made when
	// first needed.
	mapper meta.RESTMapper
	// namespace is -n, or the kubeconfig context's namespace.
	namespace string
	// interval is how often waits poll.
	interval time.Duration
	// dryRun has the API server check applies without persisting them.
	dryRun bool
	// unpack unpacks the profiles of the node results read, each distinct one
	// once (nil: each anew).
	unpack *kubeapi.Unpacker
	// meta reads objects' metadata alone (nil: waits read whole objects).
	meta metadata.Interface
}

func newClients(flags *genericclioptions.ConfigFlags, interval time.Duration) (*clients, error) {
	// Without a kubeconfig client-go falls back to http://localhost:8080, and
	// "connection refused" would be all a user learns.
	if raw, err := flags.ToRawKubeConfigLoader().RawConfig(); err == nil && len(raw.Contexts) == 0 &&
		*flags.APIServer == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, errors.New("no cluster is configured: name a kubeconfig with --kubeconfig or KUBECONFIG (default ~/.kube/config)")
	}
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's configuration: %w (name it with --kubeconfig or KUBECONFIG, and --context)", err)
	}
	cfg.UserAgent = "kubectl-syscage/" + versionString()
	// Waits poll once a second; the uninstall scan lists seven kinds at once.
	cfg.QPS, cfg.Burst = 20, 40
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	c := &clients{namespace: ns, interval: interval, unpack: &kubeapi.Unpacker{}}
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.meta, err = metadata.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.core, err = corev1client.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.apps, err = appsv1client.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.batch, err = batchv1client.NewForConfig(cfg); err != nil {
		return nil, err
	}
	// The nodes' final answers, a Lease from each node at a recording's stop,
	// travel as protobuf.
	pb := rest.CopyConfig(cfg)
	pb.ContentType = "application/vnd.kubernetes.protobuf"
	pb.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if c.leases, err = coordinationv1client.NewForConfig(pb); err != nil {
		return nil, err
	}
	// Not the on-disk cache of kubectl: whether the security-profiles-operator is
	// installed must be current.
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.discovery = disc
	return c, nil
}

// mapping returns the resource of a kind of install's manifests, and whether it
// is namespaced.
func (c *clients) mapping(gvk schema.GroupVersionKind) (schema.GroupVersionResource, bool, error) {
	if c.mapper == nil {
		groups, err := restmapper.GetAPIGroupResources(c.discovery)
		if err != nil {
			return schema.GroupVersionResource{}, false, fmt.Errorf("discovering the API: %w", err)
		}
		c.mapper = restmapper.NewDiscoveryRESTMapper(groups)
	}
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return schema.GroupVersionResource{}, false, err
	}
	return m.Resource, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// fromUnstructured decodes an object into one of kubeapi's types (or any other
// JSON-tagged type).
func fromUnstructured(u *unstructured.Unstructured, v any) error {
	data, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// toUnstructured encodes one of kubeapi's types for the dynamic client.
func toUnstructured(v any) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return u, nil
}

// errNotInstalled is returned when syscage's CRDs or agent are missing.
var errNotInstalled = errors.New("syscage is not installed in this cluster: run 'kubectl syscage install'")

// notInstalled turns the API server's "no such resource" for syscage's CRs into
// errNotInstalled.
func notInstalled(err error) error {
	if apierrors.IsNotFound(err) {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			if d := status.Status().Details; d != nil && d.Name != "" {
				return err // a named object is missing, not the resource
			}
		}
		return errNotInstalled
	}
	return err
}

// agentNodes returns the nodes where the agent is Ready, each with its pod's name.
func (c *clients) agentNodes(ctx context.Context) (map[string]string, error) {
	pods, err := c.core.Pods(kubeapi.Namespace).List(ctx, metav1.ListOptions{LabelSelector: agentLabel})
	if err != nil {
		return nil, fmt.Errorf("listing the agent's pods: %w", err)
	}
	nodes := readyAgentNodes(pods.Items)
	if len(nodes) > 0 {
		return nodes, nil
	}
	if _, err := c.apps.DaemonSets(kubeapi.Namespace).Get(ctx, kubeapi.AgentName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil, errNotInstalled
	}
	msg := fmt.Sprintf("the syscage agent is Ready on no node (pods %s in %s)", agentLabel, kubeapi.Namespace)
	if problems := podProblems(pods.Items); len(problems) > 0 {
		msg += ": " + strings.Join(problems, "; ")
	}
	return nil, errors.New(msg + ": see 'kubectl -n " + kubeapi.Namespace + " describe pods -l " + agentLabel + "'")
}

// readyAgentNodes maps each node with a Ready agent pod to that pod's name.
func readyAgentNodes(pods []corev1.Pod) map[string]string {
	nodes := map[string]string{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil || !podReady(&p) {
			continue
		}
		nodes[p.Spec.NodeName] = p.Name
	}
	return nodes
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// unreported returns, sorted, the nodes of want that have no entry in have:
// the nodes whose agents have not yet answered.
func unreported[V any](want map[string]string, have map[string]V) []string {
	var missing []string
	for node := range want {
		if _, ok := have[node]; !ok {
			missing = append(missing, node)
		}
	}
	slices.Sort(missing)
	return missing
}

// describeNodes names nodes with their agent pods, for messages.
func describeNodes(nodes []string, agents map[string]string) string {
	var parts []string
	for _, n := range nodes {
		if pod, ok := agents[n]; ok {
			parts = append(parts, fmt.Sprintf("%s (agent pod %s)", n, pod))
		} else {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, ", ")
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// podProblems says why pods are not running or not Ready: a container waiting
// (ImagePullBackOff, CreateContainerError…), one that terminated, a pod that is
// not scheduled. Pods that are Ready are not mentioned.
func podProblems(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		if p.DeletionTimestamp != nil || (p.Status.Phase == corev1.PodRunning && podReady(&p)) {
			continue
		}
		var why []string
		statuses := append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
		for _, cs := range statuses {
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing" && cs.State.Waiting.Reason != "ContainerCreating":
				why = append(why, fmt.Sprintf("container %s: %s", cs.Name, joinReason(cs.State.Waiting.Reason, cs.State.Waiting.Message)))
			case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
				why = append(why, fmt.Sprintf("container %s: %s (exit %d)", cs.Name, joinReason(cs.State.Terminated.Reason, cs.State.Terminated.Message), cs.State.Terminated.ExitCode))
			case cs.LastTerminationState.Terminated != nil && cs.RestartCount > 0 && !cs.Ready:
				t := cs.LastTerminationState.Terminated
				why = append(why, fmt.Sprintf("container %s: restarted %d times, last %s (exit %d)", cs.Name, cs.RestartCount, joinReason(t.Reason, t.Message), t.ExitCode))
			}
		}
		if len(why) == 0 {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
					why = append(why, "not scheduled: "+joinReason(c.Reason, c.Message))
				}
			}
		}
		if len(why) == 0 {
			why = append(why, strings.ToLower(string(p.Status.Phase)))
			if p.Status.Phase == corev1.PodRunning {
				why[0] = "running, not Ready"
			}
		}
		where := ""
		if p.Spec.NodeName != "" {
			where = " on " + p.Spec.NodeName
		}
		out = append(out, fmt.Sprintf("pod %s%s: %s", p.Name, where, strings.Join(why, ", ")))
	}
	return out
}

func joinReason(reason, message string) string {
	message = strings.TrimSpace(message)
	switch {
	case reason == "":
		return message
	case message == "":
		return reason
	}
	// Messages of runtimes can be long; the first line says what matters.
	if i := strings.IndexByte(message, '\n'); i >= 0 {
		message = message[:i]
	}
	return reason + ": " + message
}

// pending is what a wait still waits for; empty when it is over.
type pending = string

// poll calls check every c.interval until it reports nothing pending, fails, or
// timeout passes. On timeout the error names what was awaited and what was still
// missing, from check's last answer. Errors the API server says are passing
// (timeouts, throttling) are retried.
func (c *clients) poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) (pending, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		left, err := check(ctx)
		switch {
		case err == nil && left == "":
			return nil
		case err != nil && ctx.Err() != nil:
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case err != nil && transient(err):
			left = err.Error()
		case err != nil:
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: %s (raise --timeout to wait longer)", timeout, what, left)
		}
		t := time.NewTimer(min(c.interval, time.Until(deadline)+time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w (still %s)", what, context.Cause(ctx), left)
		case <-t.C:
		}
	}
}

func transient(err error) bool {
	return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err)
}

// applyObject server-side applies u with kubectl-syscage as the field manager,
// taking over fields others set: install and apply own what they write.
func (c *clients) applyObject(ctx context.Context, gvr schema.GroupVersionResource, namespaced bool, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	var ri dynamic.ResourceInterface = c.dyn.Resource(gvr)
	if namespaced {
		ri = c.dyn.Resource(gvr).Namespace(u.GetNamespace())
	}
	ao := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if c.dryRun {
		ao.DryRun = []string{metav1.DryRunAll}
	}
	return ri.Apply(ctx, u.GetName(), u, ao)
}

// deleteOptions is how this plugin deletes: dependents (a DaemonSet's pods) go
// first, so that waiting for the object to be gone also waits for them.
func deleteOptions() metav1.DeleteOptions {
	p := metav1.DeletePropagationForeground
	return metav1.DeleteOptions{PropagationPolicy: &p}
}
