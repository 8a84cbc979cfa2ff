package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// Namespace is where the simulated workload runs; Workload is its DaemonSet.
const (
	Namespace = "fleet"
	Workload  = "fleet"
)

func nodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

// install applies syscage's manifests as `kubectl syscage install` does
// (server-side apply of kubeapi.Manifests, in order) and waits for the CRDs
// to be established. It does not wait for the agent's DaemonSet: no
// controller runs here, and the agents are this process's.
func install(ctx context.Context, cs *kubernetes.Clientset, dyn dynamic.Interface) error {
	docs, err := kubeapi.Manifests(kubeapi.InstallOptions{Image: "localhost/syscage:dev", PullPolicy: "Never", SeccompDir: "/var/lib/kubelet/seccomp"})
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	var crds []string
	for i, doc := range docs {
		data, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return fmt.Errorf("manifest %d: %w", i, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return fmt.Errorf("manifest %d: %w", i, err)
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("manifest %d (%s): %w", i, gvk.Kind, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if u.GetNamespace() != "" {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		if _, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "kubectl-syscage", Force: true}); err != nil {
			return fmt.Errorf("applying %s %s: %w", gvk.Kind, u.GetName(), err)
		}
		if gvk.Kind == "CustomResourceDefinition" {
			crds = append(crds, u.GetName())
		}
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, name := range crds {
		err := poll(ctx, time.Minute, func() (bool, error) {
			u, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s: %w", name, err)
		}
	}
	return nil
}

// populate creates what a fleet has before a recording: n Nodes; on each, a
// Ready agent pod (the DaemonSet's, which no controller makes here) and one
// pod of the workload's DaemonSet with its containers named c0…, spec.nodeName
// set (no kubelet runs them: the agents admit them as a runtime's hook would).
func populate(ctx context.Context, cs *kubernetes.Clientset, n, containers int) (agentPods []*corev1.Pod, err error) {
	for _, ns := range []string{Namespace} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	// The service-account controller is not running: the accounts pods name.
	for _, ns := range []string{Namespace, kubeapi.Namespace} {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	labels := map[string]string{"app": Workload}
	var cspecs []corev1.Container
	for j := range containers {
		cspecs = append(cspecs, corev1.Container{Name: fmt.Sprintf("c%d", j), Image: "localhost/busybox:e2e", Command: []string{"/bin/sh", "-c", "sleep 3600"}})
	}
	no := false
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: Workload, Namespace: Namespace},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: cspecs, AutomountServiceAccountToken: &no},
			},
		},
	}
	if _, err := cs.AppsV1().DaemonSets(Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the workload's daemonset: %w", err)
	}
	agentPods = make([]*corev1.Pod, n)
	err = parallel(ctx, n, 32, func(i int) error {
		name := nodeName(i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
		ap := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: kubeapi.AgentName + "-" + name, Namespace: kubeapi.Namespace,
				Labels: map[string]string{"app.kubernetes.io/name": kubeapi.AgentName}},
			Spec: corev1.PodSpec{NodeName: name, ServiceAccountName: kubeapi.AgentName, AutomountServiceAccountToken: &no,
				Containers: []corev1.Container{{Name: "agent", Image: "localhost/syscage:dev"}}},
		}
		ap, err := cs.CoreV1().Pods(kubeapi.Namespace).Create(ctx, ap, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating the agent pod of %s: %w", name, err)
		}
		ap.Status.Phase = corev1.PodRunning
		ap.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		if ap, err = cs.CoreV1().Pods(kubeapi.Namespace).UpdateStatus(ctx, ap, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("making the agent pod of %s Ready: %w", name, err)
		}
		agentPods[i] = ap
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: Workload + "-" + name, Namespace: Namespace, Labels: labels},
			Spec:       *ds.Spec.Template.Spec.DeepCopy(),
		}
		p.Spec.NodeName = name
		if _, err := cs.CoreV1().Pods(Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating the workload's pod on %s: %w", name, err)
		}
		return nil
	})
	return agentPods, err
}

// agentToken is a token of the agent's service account bound to its pod on
// its node, as the kubelet projects it: the API server puts the node's name in
// it, which the admission policy binds the agent's writes to.
func agentToken(ctx context.Context, cs *kubernetes.Clientset, pod *corev1.Pod) (string, error) {
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(kubeapi.Namespace).CreateToken(ctx, kubeapi.AgentName, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("a token for the agent on %s: %w", pod.Spec.NodeName, err)
	}
	return tr.Status.Token, nil
}

// objectSize is one object and the size of its JSON.
type objectSize struct {
	Kind, Name string
	Bytes      int
}

// syscageObjects measures every syscage object as the API server serves it.
func syscageObjects(ctx context.Context, dyn dynamic.Interface) (largest objectSize, byKind map[string]objectSize, count map[string]int, err error) {
	byKind, count = map[string]objectSize{}, map[string]int{}
	for _, res := range []string{kubeapi.Recordings, kubeapi.NodeResults, kubeapi.Profiles} {
		gvr := schema.GroupVersionResource{Group: kubeapi.Group, Version: kubeapi.Version, Resource: res}
		cont := ""
		for {
			list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
			if err != nil {
				return largest, nil, nil, fmt.Errorf("listing %s: %w", res, err)
			}
			for i := range list.Items {
				data, err := json.Marshal(list.Items[i].Object)
				if err != nil {
					return largest, nil, nil, err
				}
				o := objectSize{list.Items[i].GetKind(), list.Items[i].GetNamespace() + "/" + list.Items[i].GetName(), len(data)}
				count[res]++
				if o.Bytes > byKind[res].Bytes {
					byKind[res] = o
				}
				if o.Bytes > largest.Bytes {
					largest = o
				}
			}
			if cont = list.GetContinue(); cont == "" {
				break
			}
		}
	}
	return largest, byKind, count, nil
}

// answerTimes are the moments the nodes made their final answers to the
// recording's stop (their Leases' renewTime, set by each agent as it answers),
// and the moments the API server stored them (their creationTimestamp, to the
// second), each sorted.
func answerTimes(ctx context.Context, cs *kubernetes.Clientset) (made, stored []time.Time, err error) {
	list, err := cs.CoordinationV1().Leases(Namespace).List(ctx, metav1.ListOptions{LabelSelector: kubeapi.RecordingLabel})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the nodes' final answers (Leases): %w", err)
	}
	for _, l := range list.Items {
		if l.Spec.RenewTime != nil {
			made = append(made, l.Spec.RenewTime.Time)
		}
		stored = append(stored, l.CreationTimestamp.Time)
	}
	slices.SortFunc(made, time.Time.Compare)
	slices.SortFunc(stored, time.Time.Compare)
	return made, stored, nil
}

// recordingState is the SyscallRecording record created in the namespace, if
// any, and whether it is stopped: by spec.stop, or by spec.stopAt come (this
// machine's clock is the API server's and the agents').
func recordingState(ctx context.Context, dyn dynamic.Interface) (name string, uid types.UID, stop bool, err error) {
	gvr := schema.GroupVersionResource{Group: kubeapi.Group, Version: kubeapi.Version, Resource: kubeapi.Recordings}
	list, err := dyn.Resource(gvr).Namespace(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) == 0 {
		return "", "", false, err
	}
	u := list.Items[0]
	stop, _, _ = unstructured.NestedBool(u.Object, "spec", "stop")
	if s, _, _ := unstructured.NestedString(u.Object, "spec", "stopAt"); s != "" && !stop {
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return "", "", false, fmt.Errorf("SyscallRecording %s: spec.stopAt %q: %w", u.GetName(), s, err)
		}
		if d := time.Until(at); d > 0 && d < 150*time.Millisecond {
			time.Sleep(d) // seen on time, not up to a poll late
		}
		stop = !time.Now().Before(at)
	}
	return u.GetName(), u.GetUID(), stop, nil
}

// parallel runs fn(0…n-1) on workers goroutines; the first error ends it.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// poll calls fn every 100 ms until it is done, fails, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, fn func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := fn()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("timed out after " + timeout.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sortedKeys is a map's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
