package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

// fakeCluster is an API server made of client-go's fakes, with agents that
// answer as the contract in internal/kubeapi says: it tests the commands' side
// of that contract, not Kubernetes. The fakes keep no status subresource, no
// generation and no server-side apply; the reactors here add what the commands
// need: generateName, apply as create-or-merge, and patches under one lock with
// the agents' writes.
type fakeCluster struct {
	t    *testing.T
	dyn  *dynamicfake.FakeDynamicClient
	kube *kubefake.Clientset
	// mu orders the commands' patches and the agents' read-modify-writes.
	mu sync.Mutex
	// results are what each node's agent publishes when a recording stops.
	results map[string]kubeapi.NodeRecording
	// spoState is what the fake security-profiles-operator reports.
	spoState string
	// spoNoLocalhost: the fake operator reports no status.localhostProfile.
	spoNoLocalhost bool
	created        []string // names of the recordings created
	stopped        []string // names of the recordings that were stopped
}

var (
	spoGVR   = schema.GroupVersionResource{Group: kubeapi.SPOGroup, Version: "v1beta1", Resource: "seccompprofiles"}
	spoV1GVR = schema.GroupVersionResource{Group: kubeapi.SPOGroup, Version: "v1", Resource: "seccompprofiles"}
)

func newFakeCluster(t *testing.T, dynObjs []runtime.Object, kubeObjs ...runtime.Object) *fakeCluster {
	t.Helper()
	listKinds := map[schema.GroupVersionResource]string{
		recordingsGVR:  "SyscallRecordingList",
		profilesGVR:    "SyscallProfileList",
		nodeResultsGVR: "SyscallNodeResultList",
		nodeStatusGVR:  "SyscallNodeStatusList",
		leasesGVR:      "LeaseList",
		crdsGVR:        "CustomResourceDefinitionList",
		spoGVR:         "SeccompProfileList",
		spoV1GVR:       "SeccompProfileList",
		appsv1.SchemeGroupVersion.WithResource("deployments"):  "DeploymentList",
		appsv1.SchemeGroupVersion.WithResource("statefulsets"): "StatefulSetList",
		appsv1.SchemeGroupVersion.WithResource("daemonsets"):   "DaemonSetList",
		appsv1.SchemeGroupVersion.WithResource("replicasets"):  "ReplicaSetList",
		jobsGVR: "JobList",
		{Group: "batch", Version: "v1", Resource: "cronjobs"}:                                                 "CronJobList",
		corev1.SchemeGroupVersion.WithResource("pods"):                                                        "PodList",
		corev1.SchemeGroupVersion.WithResource("namespaces"):                                                  "NamespaceList",
		corev1.SchemeGroupVersion.WithResource("serviceaccounts"):                                             "ServiceAccountList",
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}:                         "ClusterRoleList",
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}:                  "ClusterRoleBindingList",
		{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}:       "ValidatingAdmissionPolicyList",
		{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}: "ValidatingAdmissionPolicyBindingList",
		{Group: "flowcontrol.apiserver.k8s.io", Version: "v1", Resource: "prioritylevelconfigurations"}:       "PriorityLevelConfigurationList",
		{Group: "flowcontrol.apiserver.k8s.io", Version: "v1", Resource: "flowschemas"}:                       "FlowSchemaList",
	}
	fc := &fakeCluster{
		t:       t,
		dyn:     dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, dynObjs...),
		kube:    kubefake.NewClientset(kubeObjs...),
		results: map[string]kubeapi.NodeRecording{},
	}
	fc.dyn.PrependReactor("create", "*", fc.create)
	fc.dyn.PrependReactor("patch", "*", fc.patch)
	return fc
}

// create gives objects with generateName a name, as the API server does.
func (fc *fakeCluster) create(action clienttesting.Action) (bool, runtime.Object, error) {
	u, ok := action.(clienttesting.CreateAction).GetObject().(*unstructured.Unstructured)
	if ok && u.GetName() == "" && u.GetGenerateName() != "" {
		fc.mu.Lock()
		u.SetName(fmt.Sprintf("%sx%04d", u.GetGenerateName(), len(fc.created)))
		fc.created = append(fc.created, u.GetName())
		fc.mu.Unlock()
	}
	return false, nil, nil
}

// patch applies every kind of patch as a JSON merge patch, which for the
// patches this plugin sends (objects, no lists to merge by key) is what the API
// server does; an apply patch creates the object when it is missing.
func (fc *fakeCluster) patch(action clienttesting.Action) (bool, runtime.Object, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	pa := action.(clienttesting.PatchAction)
	gvr, ns, name := pa.GetResource(), pa.GetNamespace(), pa.GetName()
	var patch map[string]any
	if err := json.Unmarshal(pa.GetPatch(), &patch); err != nil {
		return true, nil, apierrors.NewBadRequest(err.Error())
	}
	tr := fc.dyn.Tracker()
	obj, err := tr.Get(gvr, ns, name)
	if apierrors.IsNotFound(err) && pa.GetPatchType() == types.ApplyPatchType {
		u := &unstructured.Unstructured{Object: patch}
		return true, u, tr.Create(gvr, u, ns)
	}
	if err != nil {
		return true, nil, err
	}
	merge := mergePatch
	if pa.GetPatchType() == types.StrategicMergePatchType {
		merge = strategicMerge
	}
	u := &unstructured.Unstructured{Object: merge(obj.(*unstructured.Unstructured).UnstructuredContent(), patch)}
	if gvr == recordingsGVR && stopSet(patch) {
		fc.stopped = append(fc.stopped, name)
	}
	return true, u, tr.Update(gvr, u, ns)
}

func stopSet(patch map[string]any) bool {
	spec, _ := patch["spec"].(map[string]any)
	stop, _ := spec["stop"].(bool)
	return stop
}

// mergePatch is RFC 7386.
func mergePatch(target, patch map[string]any) map[string]any {
	out := runtime.DeepCopyJSON(target)
	for k, v := range patch {
		if v == nil {
			delete(out, k)
			continue
		}
		pv, ok := v.(map[string]any)
		tv, tok := out[k].(map[string]any)
		if ok && tok {
			out[k] = mergePatch(tv, pv)
		} else if ok {
			out[k] = mergePatch(map[string]any{}, pv)
		} else {
			out[k] = v
		}
	}
	return out
}

// strategicMerge is a JSON merge patch in which lists of objects with a name
// (containers, initContainers) merge by name, as the API server's strategic
// merge patch does for a pod template's containers.
func strategicMerge(target, patch map[string]any) map[string]any {
	out := runtime.DeepCopyJSON(target)
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			tv, _ := out[k].(map[string]any)
			if tv == nil {
				tv = map[string]any{}
			}
			out[k] = strategicMerge(tv, pv)
		case []any:
			tl, _ := out[k].([]any)
			if !namedList(pv) || !namedList(tl) {
				out[k] = v
				continue
			}
			merged := runtime.DeepCopyJSONValue(tl).([]any)
			for _, pe := range pv {
				pm := pe.(map[string]any)
				i := slices.IndexFunc(merged, func(e any) bool { return e.(map[string]any)["name"] == pm["name"] })
				if i < 0 {
					merged = append(merged, pm)
				} else {
					merged[i] = strategicMerge(merged[i].(map[string]any), pm)
				}
			}
			out[k] = merged
		default:
			out[k] = v
		}
	}
	return out
}

func namedList(l []any) bool {
	for _, e := range l {
		if m, ok := e.(map[string]any); !ok || m["name"] == nil {
			return false
		}
	}
	return true
}

// runAgents answers as the agents on nodes and the security-profiles-operator
// would, until the test ends.
func (fc *fakeCluster) runAgents(nodes ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	fc.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fc.answer(nodes)
			time.Sleep(time.Millisecond)
		}
	}()
}

func (fc *fakeCluster) answer(nodes []string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	tr := fc.dyn.Tracker()
	update := func(gvr schema.GroupVersionResource, kind string, change func(u *unstructured.Unstructured) error) {
		list, err := tr.List(gvr, gvr.GroupVersion().WithKind(kind), "")
		if err != nil {
			return
		}
		items, _ := meta.ExtractList(list)
		for _, item := range items {
			u := item.(*unstructured.Unstructured)
			if err := change(u); err != nil {
				fc.t.Errorf("fake agent: %v", err)
				continue
			}
			// Deleted meanwhile (deletes do not take mu): the agents ignore it too.
			if err := tr.Update(gvr, u, u.GetNamespace()); err != nil && !apierrors.IsNotFound(err) {
				fc.t.Errorf("fake agent: %v", err)
			}
		}
	}
	update(recordingsGVR, kubeapi.KindRecording, func(u *unstructured.Unstructured) error {
		var rec kubeapi.SyscallRecording
		if err := fromUnstructured(u, &rec); err != nil {
			return err
		}
		if rec.Status.Nodes == nil {
			rec.Status.Nodes = map[string]kubeapi.NodeRecording{}
		}
		for _, n := range nodes {
			if rec.Spec.Stop {
				res, ok := fc.results[n]
				if !ok {
					res = kubeapi.NodeRecording{Phase: kubeapi.PhaseDone}
				}
				rec.Status.Nodes[n] = res
			} else if _, ok := rec.Status.Nodes[n]; !ok {
				rec.Status.Nodes[n] = kubeapi.NodeRecording{Phase: kubeapi.PhaseRecording}
			}
		}
		return setStatus(u, rec.Status)
	})
	// Each node reports its copy of each profile in its SyscallNodeStatus of the
	// profile's namespace.
	if list, err := tr.List(profilesGVR, profilesGVR.GroupVersion().WithKind(kubeapi.KindProfile), ""); err == nil {
		items, _ := meta.ExtractList(list)
		for _, item := range items {
			var sp kubeapi.SyscallProfile
			if err := fromUnstructured(item.(*unstructured.Unstructured), &sp); err != nil {
				fc.t.Errorf("fake agent: %v", err)
				continue
			}
			data, err := profile.Marshal(sp.Spec.Profile)
			if err != nil {
				fc.t.Errorf("fake agent: %v", err)
				continue
			}
			for _, n := range nodes {
				fc.reportCopy(sp.Metadata.Namespace, n, sp.Metadata.Name, kubeapi.NodeProfile{Digest: kubeapi.Digest(data)})
			}
		}
	}
	update(crdsGVR, "CustomResourceDefinition", func(u *unstructured.Unstructured) error {
		return unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Established", "status": "True"}}, "status", "conditions")
	})
	// The operator installs a profile as operator/NAME.json (cluster-scoped, 1.0)
	// or operator/NAMESPACE/NAME.json (namespaced, before 1.0), and says where.
	for _, gvr := range []schema.GroupVersionResource{spoGVR, spoV1GVR} {
		update(gvr, profile.SPOKind, func(u *unstructured.Unstructured) error {
			if fc.spoState == "Installed" && !fc.spoNoLocalhost {
				lp := path.Join("operator", u.GetNamespace(), u.GetName()+".json")
				if err := unstructured.SetNestedField(u.Object, lp, "status", "localhostProfile"); err != nil {
					return err
				}
			}
			return unstructured.SetNestedField(u.Object, fc.spoState, "status", "status")
		})
	}
}

// reportCopy writes node's copy of profile ns/name into its SyscallNodeStatus.
func (fc *fakeCluster) reportCopy(ns, node, name string, p kubeapi.NodeProfile) {
	tr := fc.dyn.Tracker()
	var st kubeapi.SyscallNodeStatus
	obj, err := tr.Get(nodeStatusGVR, ns, node)
	exists := err == nil
	if exists {
		if err := fromUnstructured(obj.(*unstructured.Unstructured), &st); err != nil {
			fc.t.Errorf("fake agent: %v", err)
			return
		}
	} else {
		st = kubeapi.SyscallNodeStatus{APIVersion: kubeapi.APIVersion, Kind: kubeapi.KindNodeStatus,
			Metadata: kubeapi.ObjectMeta{Name: node, Namespace: ns}, Spec: kubeapi.NodeStatusSpec{Node: node}}
	}
	if st.Profiles == nil {
		st.Profiles = map[string]kubeapi.NodeProfile{}
	}
	if st.Profiles[name] == p {
		return
	}
	st.Profiles[name] = p
	u, err := toUnstructured(st)
	if err != nil {
		fc.t.Errorf("fake agent: %v", err)
		return
	}
	if exists {
		err = tr.Update(nodeStatusGVR, u, ns)
	} else {
		err = tr.Create(nodeStatusGVR, u, ns)
	}
	if err != nil {
		fc.t.Errorf("fake agent: %v", err)
	}
}

func setStatus(u *unstructured.Unstructured, status any) error {
	var m map[string]any
	if err := remarshal(status, &m); err != nil {
		return err
	}
	u.Object["status"] = m
	return nil
}

// get reads an object of the fake API server.
func (fc *fakeCluster) get(gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	obj, err := fc.dyn.Tracker().Get(gvr, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*unstructured.Unstructured), nil
}

// run runs kubectl-syscage against the fake cluster.
func (fc *fakeCluster) run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	o := &rootOptions{
		flags:    genericclioptions.NewConfigFlags(false),
		streams:  genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut},
		interval: time.Millisecond,
	}
	o.connect = func() (*clients, error) {
		ns := *o.flags.Namespace
		if ns == "" {
			ns = "default"
		}
		mapper := meta.NewDefaultRESTMapper(nil)
		for _, m := range []struct {
			gvk   schema.GroupVersionKind
			scope meta.RESTScope
		}{
			{crdsGVR.GroupVersion().WithKind("CustomResourceDefinition"), meta.RESTScopeRoot},
			{corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot},
			{corev1.SchemeGroupVersion.WithKind("ServiceAccount"), meta.RESTScopeNamespace},
			{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, meta.RESTScopeRoot},
			{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}, meta.RESTScopeRoot},
			{appsv1.SchemeGroupVersion.WithKind("DaemonSet"), meta.RESTScopeNamespace},
			{schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicy"}, meta.RESTScopeRoot},
			{schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicyBinding"}, meta.RESTScopeRoot},
			{schema.GroupVersionKind{Group: "flowcontrol.apiserver.k8s.io", Version: "v1", Kind: "PriorityLevelConfiguration"}, meta.RESTScopeRoot},
			{schema.GroupVersionKind{Group: "flowcontrol.apiserver.k8s.io", Version: "v1", Kind: "FlowSchema"}, meta.RESTScopeRoot},
		} {
			mapper.Add(m.gvk, m.scope)
		}
		return &clients{
			dyn: fc.dyn, core: fc.kube.CoreV1(), apps: fc.kube.AppsV1(), batch: fc.kube.BatchV1(), leases: fc.kube.CoordinationV1(),
			discovery: fc.kube.Discovery(), mapper: mapper, namespace: ns, interval: time.Millisecond,
		}, nil
	}
	root := newRootCmdWith(o)
	root.SetArgs(args)
	code = exitStatus(&errOut, root.ExecuteContext(context.Background()))
	return code, out.String(), errOut.String()
}

// withSPO makes the fake API server serve the security-profiles-operator's API
// as its releases before 1.0 did: SeccompProfile v1beta1, namespaced.
func (fc *fakeCluster) withSPO() {
	fc.kube.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{
		{GroupVersion: kubeapi.SPOGroup + "/v1alpha1", APIResources: []metav1.APIResource{{Name: "profilebindings", Kind: "ProfileBinding", Namespaced: true}}},
		{GroupVersion: kubeapi.SPOGroup + "/v1beta1", APIResources: []metav1.APIResource{{Name: "seccompprofiles", Kind: profile.SPOKind, Namespaced: true}}},
	}
}

// withSPO1 serves the operator's API as its 1.0 does: SeccompProfile v1 and
// v1beta1, both cluster-scoped. v1beta1 is listed first, so that a client that
// took the first version or assumed a scope would go wrong.
func (fc *fakeCluster) withSPO1() {
	fc.kube.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{
		{GroupVersion: kubeapi.SPOGroup + "/v1beta1", APIResources: []metav1.APIResource{{Name: "seccompprofiles", Kind: profile.SPOKind, Namespaced: false}}},
		{GroupVersion: kubeapi.SPOGroup + "/v1", APIResources: []metav1.APIResource{{Name: "seccompprofiles", Kind: profile.SPOKind, Namespaced: false}}},
		{GroupVersion: kubeapi.SPOGroup + "/v1alpha1", APIResources: []metav1.APIResource{{Name: "profilebindings", Kind: "ProfileBinding", Namespaced: true}}},
	}
}

// agentPod is a Ready agent pod on node.
func agentPod(node string) *corev1.Pod {
	p := pod("syscage-agent-"+node, node, true)
	return &p
}

// appPod is a running pod of the web deployment of the tests.
func appPod(name, node string) *corev1.Pod {
	p := pod(name, node, true)
	p.Namespace = "shop"
	p.Labels = map[string]string{"app": "web", "tier": "front"}
	return &p
}

func agentDaemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: kubeapi.AgentName, Namespace: kubeapi.Namespace}}
}
