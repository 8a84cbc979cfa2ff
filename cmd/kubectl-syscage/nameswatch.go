package main

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// namesWatch follows the metadata alone of one recording's node results: the
// wait for every node's first answer needs to know which nodes answered, not
// what they said. Following the whole results, the plugin decoded every
// publication of every node while the fleet armed (at 5,000 nodes, a minute
// of its CPU, and as many full objects for the API server to encode for it).
type namesWatch struct {
	ns, recording, uid string
	inf                cache.SharedIndexInformer
	cancel             context.CancelFunc
}

// watchNames starts following the names of the node results of recording
// ns/name (uid), until stop is called. It returns nil, and no error, where
// that cannot be done: no metadata client, or an older installation whose
// agents answer in the recording's status.
func (c *clients) watchNames(ctx context.Context, ns, name, uid string) (*namesWatch, error) {
	if c.meta == nil {
		return nil, nil
	}
	sel := kubeapi.RecordingLabel + "=" + uid
	_, err := c.meta.Resource(nodeResultsGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: sel, Limit: 1})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the node results of SyscallRecording %s/%s: %w", ns, name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	f := metadatainformer.NewFilteredSharedInformerFactory(c.meta, 0, ns, func(o *metav1.ListOptions) { o.LabelSelector = sel })
	w := &namesWatch{ns: ns, recording: name, uid: uid, inf: f.ForResource(nodeResultsGVR).Informer(), cancel: cancel}
	f.Start(ctx.Done())
	return w, nil
}

func (w *namesWatch) stop() { w.cancel() }

// synced reports whether the first list is in.
func (w *namesWatch) synced() bool { return w.inf.HasSynced() }

// answered reports whether node has published its result: the object of the
// node's name, owned by the recording.
func (w *namesWatch) answered(node string) bool {
	o, ok, err := w.inf.GetStore().GetByKey(w.ns + "/" + kubeapi.NodeResultName(w.recording, node))
	m, isMeta := o.(*metav1.PartialObjectMetadata)
	return ok && err == nil && isMeta && slices.ContainsFunc(m.OwnerReferences, func(r metav1.OwnerReference) bool { return string(r.UID) == w.uid })
}
