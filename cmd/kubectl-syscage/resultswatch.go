package main

import (
	"context"

	"fmt"
	"maps"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// resultsWatch follows the SyscallNodeResults of one recording: one list, then
// a watch from it, so that a wait reads each node's result once per change
// rather than every node's at every poll. A fleet of thousands of nodes has
// a result of some 20 KiB each: listing them all every 200 ms would be as
// many megabytes each time, for the API server to send and this plugin to
// decode.
type resultsWatch struct {
	ns, uid string
	unpack  *kubeapi.Unpacker
	// listed is closed once the first list is in; err says why it failed.
	listed chan struct{}
	err    error
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	legacy bool                             // no such resource: results are in the status
	nodes  map[string]kubeapi.NodeRecording // by node
	names  map[string]string                // object name → its node
}

// watchResults starts following the results of the recording ns/uid, until
// stop is called.
func (c *clients) watchResults(ctx context.Context, ns, uid string) *resultsWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &resultsWatch{ns: ns, uid: uid, unpack: c.unpack, listed: make(chan struct{}), cancel: cancel, done: make(chan struct{}),
		nodes: map[string]kubeapi.NodeRecording{}, names: map[string]string{}}
	go func() {
		defer close(w.done)
		w.run(ctx, c)
	}()
	return w
}

func (w *resultsWatch) stop() {
	w.cancel()
	<-w.done
}

func (w *resultsWatch) run(ctx context.Context, c *clients) {
	ri := c.dyn.Resource(nodeResultsGVR).Namespace(w.ns)
	sel := kubeapi.RecordingLabel + "=" + w.uid
	first := true
	for ctx.Err() == nil {
		rv, err := w.list(ctx, c, sel)
		if first {
			first = false
			if err != nil && !transient(err) {
				w.err = err
			}
			close(w.listed)
			if w.err != nil || w.legacy {
				return
			}
		}
		if err != nil {
			if !sleep(ctx, time.Second) {
				continue
			}
			return
		}
		// From the list's version on; a watch that ends, or whose version is
		// gone (410), is followed by a new list.
		wi, err := ri.Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if !sleep(ctx, time.Second) {
				continue
			}
			return
		}
		w.follow(ctx, wi)
		wi.Stop()
	}
}

// list replaces what is known with a list of the results, a page at a time,
// and returns the list's resource version.
func (w *resultsWatch) list(ctx context.Context, c *clients, sel string) (string, error) {
	nodes, names := map[string]kubeapi.NodeRecording{}, map[string]string{}
	var rv, cont string
	for {
		list, err := c.dyn.Resource(nodeResultsGVR).Namespace(w.ns).List(ctx, metav1.ListOptions{LabelSelector: sel, Limit: 500, Continue: cont})
		if apierrors.IsNotFound(err) {
			w.mu.Lock()
			w.legacy = true // an older installation: the results are in the status
			w.mu.Unlock()
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("reading the node results of SyscallRecording %s (uid %s): %w", w.ns, w.uid, err)
		}
		if rv == "" {
			rv = list.GetResourceVersion()
		}
		for i := range list.Items {
			if err := w.add(nodes, names, &list.Items[i]); err != nil {
				return "", err
			}
		}
		if cont = list.GetContinue(); cont == "" {
			break
		}
	}
	w.mu.Lock()
	w.nodes, w.names = nodes, names
	w.mu.Unlock()
	return rv, nil
}

// follow applies a watch's events until it ends.
func (w *resultsWatch) follow(ctx context.Context, wi watch.Interface) {
	for {
		var ev watch.Event
		var open bool
		select {
		case <-ctx.Done():
			return
		case ev, open = <-wi.ResultChan():
		}
		if !open {
			return
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		switch {
		case ev.Type == watch.Error || !ok:
			return
		case ev.Type == watch.Bookmark:
			continue
		}
		w.mu.Lock()
		if ev.Type == watch.Deleted {
			if node, ok := w.names[u.GetName()]; ok {
				delete(w.nodes, node)
				delete(w.names, u.GetName())
			}
		} else if err := w.add(w.nodes, w.names, u); err != nil {
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// add records one node result, if it is one of this recording's.
func (w *resultsWatch) add(nodes map[string]kubeapi.NodeRecording, names map[string]string, u *unstructured.Unstructured) error {
	nr, ok, err := recordingResult(u, w.uid, w.unpack)
	if err != nil || !ok {
		return err
	}
	nodes[nr.Spec.Node] = nr.Result
	names[u.GetName()] = nr.Spec.Node
	return nil
}

// into puts the results followed into a recording's status, over what agents
// before node results wrote there.
func (w *resultsWatch) into(ctx context.Context, rec *kubeapi.SyscallRecording) error {
	select {
	case <-w.listed:
	case <-ctx.Done():
		return ctx.Err()
	}
	if w.err != nil {
		return w.err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.legacy {
		return nil
	}
	if len(w.nodes) > 0 && rec.Status.Nodes == nil {
		rec.Status.Nodes = map[string]kubeapi.NodeRecording{}
	}
	maps.Copy(rec.Status.Nodes, w.nodes)
	return nil
}
