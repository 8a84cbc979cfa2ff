package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// The agent reads and writes the API server through client-go: shared informers
// for the pods bound to its node, the recordings and the profiles; a dynamic
// client for syscage's resources, whose objects it converts to kubeapi's types
// through their JSON.

var (
	recordingsGVR  = gvr(kubeapi.Recordings)
	profilesGVR    = gvr(kubeapi.Profiles)
	nodeResultsGVR = gvr(kubeapi.NodeResults)
)

func gvr(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: kubeapi.Group, Version: kubeapi.Version, Resource: resource}
}

// Client-side rate limits of an agent's requests when the config sets none
// (client-go's own are 5 and 10): an agent publishes at most once per recording
// every publishInterval, and updates a profile's status once per change; a start
// with many profiles to confirm should not take minutes.
const (
	defaultQPS   = 20
	defaultBurst = 50
)

type api struct {
	core kubernetes.Interface
	dyn  dynamic.Interface
}

func newAPI(cfg *rest.Config) (*api, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = defaultQPS, defaultBurst
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "syscage-agent"
	}
	// Built-in types (pods, the Leases of final answers) travel as protobuf:
	// cheaper for the API server to decode and encode than JSON.
	coreCfg := rest.CopyConfig(cfg)
	if coreCfg.ContentType == "" {
		coreCfg.ContentType = "application/vnd.kubernetes.protobuf"
		coreCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	}
	core, err := kubernetes.NewForConfig(coreCfg)
	if err != nil {
		return nil, fmt.Errorf("a client for the API server at %s: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("a client for the API server at %s: %w", cfg.Host, err)
	}
	return &api{core: core, dyn: dyn}, nil
}

// get reads one object into out (a kubeapi type).
func (c *api) get(ctx context.Context, r schema.GroupVersionResource, ns, name string, out any) error {
	u, err := c.dyn.Resource(r).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	return fromUnstructured(u, out)
}

// list reads every object of a resource, in all namespaces, into items.
func list[T any](ctx context.Context, c *api, r schema.GroupVersionResource) ([]T, error) {
	l, err := c.dyn.Resource(r).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(l.Items))
	for i := range l.Items {
		var o T
		if err := fromUnstructured(&l.Items[i], &o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// mergePatch applies a JSON merge patch to an object, or to one of its
// subresources ("status").
func (c *api) mergePatch(ctx context.Context, r schema.GroupVersionResource, ns, name string, body []byte, subresources ...string) error {
	_, err := c.dyn.Resource(r).Namespace(ns).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{}, subresources...)
	return err
}

// create creates an object given as JSON.
func (c *api) create(ctx context.Context, r schema.GroupVersionResource, ns string, body []byte) error {
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(body); err != nil {
		return err
	}
	_, err := c.dyn.Resource(r).Namespace(ns).Create(ctx, &u, metav1.CreateOptions{})
	return err
}

// writeResult writes a node's result (a merge patch, or its creation) and
// returns its resourceVersion, read from the answer without decoding the
// object into a map: the API server echoes the whole result (some 10 KiB) at
// every write, and decoding it was a tenth of the simulated agents' CPU at a
// 5,000-node stop.
func (c *api) writeResult(ctx context.Context, ns, name string, body []byte, create bool) (string, error) {
	rc := c.core.CoreV1().RESTClient()
	var req *rest.Request
	if create {
		req = rc.Post().AbsPath("/apis", kubeapi.Group, kubeapi.Version, "namespaces", ns, kubeapi.NodeResults).SetHeader("Content-Type", "application/json")
	} else {
		req = rc.Patch(types.MergePatchType).AbsPath("/apis", kubeapi.Group, kubeapi.Version, "namespaces", ns, kubeapi.NodeResults, name)
	}
	raw, err := req.SetHeader("Accept", "application/json").Body(body).Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var out struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("reading the answer to a write of %s/%s: %w", ns, name, err)
	}
	return out.Metadata.ResourceVersion, nil
}

// answer writes a node's final answer to the recording rec, the Lease
// ns/name owned by it (see kubeapi.FinalAnswer): created, or updated if an
// earlier answer is there.
func (c *api) answer(ctx context.Context, rec kubeapi.SyscallRecording, name, node string, a kubeapi.FinalAnswer) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	now := metav1.NewMicroTime(time.Now())
	ns := rec.Metadata.Namespace
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: kubeapi.APIVersion, Kind: kubeapi.KindRecording, Name: rec.Metadata.Name, UID: types.UID(rec.Metadata.UID)}},
			Labels:          map[string]string{kubeapi.RecordingLabel: rec.Metadata.UID, kubeapi.NodeLabel: kubeapi.NodeLabelValue(node)},
			Annotations:     map[string]string{kubeapi.FinalAnnotation: string(data)},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &node, RenewTime: &now},
	}
	leases := c.core.CoordinationV1().Leases(ns)
	_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"annotations": lease.Annotations},
			"spec":     map[string]any{"holderIdentity": node, "renewTime": now},
		})
		_, err = leases.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	return err
}

func (c *api) getPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	return c.core.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
}

func fromUnstructured(u *unstructured.Unstructured, out any) error {
	b, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// objectOf is the object an informer hands a handler, the last state of a
// deleted one the informer missed included.
func objectOf(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

// decode converts what a dynamic informer hands a handler to a kubeapi type.
func decode[T any](obj any) (T, bool) {
	var o T
	u, ok := objectOf(obj).(*unstructured.Unstructured)
	return o, ok && fromUnstructured(u, &o) == nil
}

// informers are the agent's shared informers: started together, each handing
// its objects to the agent's handlers.
type informerSet struct {
	pods    informers.SharedInformerFactory
	syscage dynamicinformer.DynamicSharedInformerFactory
}

func (c *api) informers(node string) informerSet {
	return informerSet{
		pods: informers.NewSharedInformerFactoryWithOptions(c.core, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		})),
		syscage: dynamicinformer.NewDynamicSharedInformerFactory(c.dyn, 0),
	}
}

// slimPod keeps of a pod what the agent reads (its metadata, but for managed
// fields, and its containers' statuses), so that a node's cache of its pods
// stays small.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{ObjectMeta: p.ObjectMeta}
	slim.ManagedFields = nil
	slim.Spec.NodeName = p.Spec.NodeName
	slim.Status.InitContainerStatuses = p.Status.InitContainerStatuses
	slim.Status.ContainerStatuses = p.Status.ContainerStatuses
	return slim, nil
}

// withoutManagedFields drops what the agent never reads of syscage's objects:
// their managed fields, often the larger part of a small object.
func withoutManagedFields(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		u.SetManagedFields(nil)
	}
	return obj, nil
}

// apiTimeout bounds a request made outside the informers.
const apiTimeout = 10 * time.Second
