package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// resultsWatch follows the SyscallNodeResults of one recording, and the nodes'
// final answers to its stop (Leases, see kubeapi.FinalAnswer): for each, one
// list, then a watch from it, so that a wait reads each node's result once per
// change rather than every node's at every poll. A fleet of thousands of nodes
// has a result of some 10 KiB each: listing them all every 200 ms would be as
// many megabytes each time, for the API server to send and this plugin to
// decode.
type resultsWatch struct {
	ns, uid string
	unpack  *kubeapi.Unpacker
	// listed is closed once the first lists are in; err says why one failed.
	listed chan struct{}
	err    error
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	legacy  bool // no such resource: results are in the status
	results followed[versioned]
	answers followed[kubeapi.FinalAnswer]
}

// versioned is a node's result with its resourceVersion, which a final answer
// names.
type versioned struct {
	st      kubeapi.NodeRecording
	version string
	stopAt  bool // its agent stops at spec.stopAt by itself
}

// followed are the objects of one resource followed, by node, and the node of
// each object's name.
type followed[T any] struct {
	nodes map[string]T
	names map[string]string
}

func newFollowed[T any]() followed[T] {
	return followed[T]{nodes: map[string]T{}, names: map[string]string{}}
}

// watchResults starts following the results of the recording ns/uid, until
// stop is called.
func (c *clients) watchResults(ctx context.Context, ns, uid string) *resultsWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &resultsWatch{ns: ns, uid: uid, unpack: c.unpack, listed: make(chan struct{}), cancel: cancel, done: make(chan struct{}),
		results: newFollowed[versioned](), answers: newFollowed[kubeapi.FinalAnswer]()}
	var wg sync.WaitGroup
	var errs [2]error
	var listed [2]chan struct{}
	for i := range listed {
		listed[i] = make(chan struct{})
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		follow(ctx, w, dynamicSource(c, nodeResultsGVR, ns), "the node results", &w.results, listed[0], &errs[0], func(u *unstructured.Unstructured) (string, versioned, bool, error) {
			nr, ok, err := recordingResult(u, uid, w.unpack)
			return nr.Spec.Node, versioned{st: nr.Result, version: u.GetResourceVersion(), stopAt: slices.Contains(nr.Spec.Features, kubeapi.FeatureStopAt)}, ok, err
		})
	}()
	go func() {
		defer wg.Done()
		follow(ctx, w, leaseSource(c, ns), "the final answers (Leases)", &w.answers, listed[1], &errs[1], func(l *coordinationv1.Lease) (string, kubeapi.FinalAnswer, bool, error) {
			return finalAnswer(l, uid)
		})
	}()
	go func() {
		<-listed[0]
		<-listed[1]
		w.err = cmp.Or(errs[0], errs[1])
		close(w.listed)
	}()
	go func() {
		defer close(w.done)
		wg.Wait()
		<-w.listed
	}()
	return w
}

func (w *resultsWatch) stop() {
	w.cancel()
	<-w.done
}

// metaObject is what a source lists: an object with metadata.
type metaObject interface {
	runtime.Object
	metav1.Object
}

// source lists and watches one resource in one namespace.
type source[O metaObject] struct {
	gvr   schema.GroupVersionResource
	list  func(context.Context, metav1.ListOptions) (items []O, version, cont string, err error)
	watch func(context.Context, metav1.ListOptions) (watch.Interface, error)
}

// dynamicSource is a resource read through the dynamic client, as JSON.
func dynamicSource(c *clients, gvr schema.GroupVersionResource, ns string) source[*unstructured.Unstructured] {
	ri := c.dyn.Resource(gvr).Namespace(ns)
	return source[*unstructured.Unstructured]{gvr: gvr, watch: ri.Watch,
		list: func(ctx context.Context, o metav1.ListOptions) ([]*unstructured.Unstructured, string, string, error) {
			l, err := ri.List(ctx, o)
			if err != nil {
				return nil, "", "", err
			}
			return pointers(l.Items), l.GetResourceVersion(), l.GetContinue(), nil
		}}
}

// leaseSource is the Leases of a namespace, read through their typed client:
// as protobuf, which at a fleet's stop (an answer from every node at once)
// costs the API server less to encode, and this plugin less to decode, than
// JSON.
func leaseSource(c *clients, ns string) source[*coordinationv1.Lease] {
	li := c.leases.Leases(ns)
	return source[*coordinationv1.Lease]{gvr: leasesGVR, watch: li.Watch,
		list: func(ctx context.Context, o metav1.ListOptions) ([]*coordinationv1.Lease, string, string, error) {
			l, err := li.List(ctx, o)
			if err != nil {
				return nil, "", "", err
			}
			return pointers(l.Items), l.ResourceVersion, l.Continue, nil
		}}
}

// pointers points at each of a list's items, in place.
func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// follow lists and watches one resource of a recording's objects into into,
// reading each object with read, until ctx ends. It closes listed after the
// first list, having set firstErr if that failed for good (it then stops).
func follow[O metaObject, T any](ctx context.Context, w *resultsWatch, src source[O], what string, into *followed[T], listed chan struct{},
	firstErr *error, read func(O) (string, T, bool, error)) {
	sel := kubeapi.RecordingLabel + "=" + w.uid
	first := true
	var rv string // the version the next watch starts from
	relist := true
	for ctx.Err() == nil {
		if relist {
			var err error
			rv, err = list(ctx, w, src, sel, what, into, read)
			if first {
				first = false
				if err != nil && !transient(err) {
					*firstErr = err
				}
				close(listed)
				w.mu.Lock()
				legacy := w.legacy
				w.mu.Unlock()
				if *firstErr != nil || legacy {
					return
				}
			}
			if err != nil {
				if !sleep(ctx, time.Second) {
					continue
				}
				return
			}
			relist = false
		}
		// From the list's version on. A watch that ends is followed by another
		// from the last version it delivered: the API server ends the watches
		// that take its events too slowly, as this one may when a fleet's nodes
		// answer a stop together, and a new list of every node's answer then
		// would cost it seconds more. A watch that fails, or whose version is
		// gone (410), is followed by a new list.
		wi, err := src.watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			relist = true
			if !sleep(ctx, time.Second) {
				continue
			}
			return
		}
		var events int
		rv, events, relist = apply(ctx, w, wi, into, read, rv)
		wi.Stop()
		if events == 0 && sleep(ctx, time.Second) {
			return // a watch that ended at once is not started again at once
		}
	}
	if first {
		close(listed)
	}
}

// list replaces what is known of one resource with a list of it, a page at a
// time, and returns the list's resource version. An installation without node
// results is an older one.
func list[O metaObject, T any](ctx context.Context, w *resultsWatch, src source[O], sel, what string, into *followed[T],
	read func(O) (string, T, bool, error)) (string, error) {
	gvr := src.gvr
	got := newFollowed[T]()
	var rv, cont string
	for {
		items, version, next, err := src.list(ctx, metav1.ListOptions{LabelSelector: sel, Limit: 500, Continue: cont})
		if apierrors.IsNotFound(err) && gvr == nodeResultsGVR {
			w.mu.Lock()
			w.legacy = true // an older installation: the results are in the status
			w.mu.Unlock()
			return "", nil
		}
		if apierrors.IsForbidden(err) {
			return "", fmt.Errorf("reading %s of SyscallRecording %s (uid %s): %w: record needs get, list and watch on %s in namespace %s",
				what, w.ns, w.uid, err, gvr.GroupResource(), w.ns)
		}
		if err != nil {
			return "", fmt.Errorf("reading %s of SyscallRecording %s (uid %s): %w", what, w.ns, w.uid, err)
		}
		if rv == "" {
			rv = version
		}
		for _, o := range items {
			if err := add(got, o, read); err != nil {
				return "", err
			}
		}
		if cont = next; cont == "" {
			break
		}
	}
	w.mu.Lock()
	*into = got
	w.mu.Unlock()
	return rv, nil
}

// apply applies a watch's events until it ends, and returns the version of
// the last one (from rv, the watch's), how many events it delivered, and
// whether it failed: what it delivered is then to be listed anew.
func apply[O metaObject, T any](ctx context.Context, w *resultsWatch, wi watch.Interface, into *followed[T], read func(O) (string, T, bool, error), rv string) (string, int, bool) {
	for events := 0; ; events++ {
		var ev watch.Event
		var open bool
		select {
		case <-ctx.Done():
			return rv, events, false
		case ev, open = <-wi.ResultChan():
		}
		if !open {
			return rv, events, false
		}
		u, ok := ev.Object.(O)
		switch {
		case ev.Type == watch.Error || !ok:
			return rv, events, true
		case ev.Type == watch.Bookmark:
			rv = cmp.Or(u.GetResourceVersion(), rv)
			continue
		}
		w.mu.Lock()
		if ev.Type == watch.Deleted {
			if node, ok := into.names[u.GetName()]; ok {
				delete(into.nodes, node)
				delete(into.names, u.GetName())
			}
		} else if err := add(*into, u, read); err != nil {
			w.mu.Unlock()
			return rv, events, true
		}
		w.mu.Unlock()
		rv = cmp.Or(u.GetResourceVersion(), rv)
	}
}

// add records one object, if it is one of this recording's.
func add[O metaObject, T any](into followed[T], u O, read func(O) (string, T, bool, error)) error {
	node, v, ok, err := read(u)
	if err != nil || !ok {
		return err
	}
	into.nodes[node] = v
	into.names[u.GetName()] = node
	return nil
}

// finalAnswer reads a node's final answer to the recording uid from its Lease:
// only a Lease owned by the recording, held by the node the answer names,
// counts (the admission policy lets an agent write only Leases its node
// holds).
func finalAnswer(l *coordinationv1.Lease, uid string) (string, kubeapi.FinalAnswer, bool, error) {
	var a kubeapi.FinalAnswer
	var holder string
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	data, ok := l.Annotations[kubeapi.FinalAnnotation]
	if !ok || holder == "" || !slices.ContainsFunc(l.OwnerReferences, func(o metav1.OwnerReference) bool { return string(o.UID) == uid }) {
		return "", a, false, nil
	}
	if err := json.Unmarshal([]byte(data), &a); err != nil {
		return "", a, false, fmt.Errorf("reading the final answer of node %s (Lease %s/%s): %w", holder, l.Namespace, l.Name, err)
	}
	return holder, a, a.Node == holder, nil
}

// into puts the results followed into a recording's status, over what agents
// before node results wrote there, each completed by its node's final answer.
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
	if len(w.results.nodes) > 0 && rec.Status.Nodes == nil {
		rec.Status.Nodes = map[string]kubeapi.NodeRecording{}
	}
	for node, r := range w.results.nodes {
		rec.Status.Nodes[node] = completed(node, r, w.answers.nodes)
	}
	return nil
}

// completed is a node's result, completed by its final answer if it has one
// for this version of the result. An answer that does not fit the result it
// names fails the node's part, saying so.
func completed(node string, r versioned, answers map[string]kubeapi.FinalAnswer) kubeapi.NodeRecording {
	a, ok := answerFor(node, r, answers)
	if !ok {
		return r.st
	}
	st := r.st
	if err := a.Complete(&st); err != nil {
		return kubeapi.NodeRecording{Phase: kubeapi.PhaseFailed, Message: err.Error(), Updated: a.Updated, Containers: r.st.Containers}
	}
	return st
}

// unfinished returns, sorted, the nodes that owe final results, as the function
// of that name does for a recording's status: the agents' nodes without a
// result, and the nodes whose result is neither final nor completed by a final
// answer. ok is false until the first lists are in, and for an older
// installation (results in the status), where the status must be read.
func (w *resultsWatch) unfinished(agents map[string]string) (left []string, ok bool) {
	if !w.listedCurrent() {
		return nil, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	left = unreported(agents, w.results.nodes)
	for node, r := range w.results.nodes {
		phase := r.st.Phase
		if a, ok := answerFor(node, r, w.answers.nodes); ok {
			phase = a.Phase
		}
		if !final(phase) {
			left = append(left, node)
		}
	}
	slices.Sort(left)
	return slices.Compact(left), true
}

// answerFor is node's final answer for the version r of its result, if it has
// given one.
func answerFor(node string, r versioned, answers map[string]kubeapi.FinalAnswer) (kubeapi.FinalAnswer, bool) {
	a, ok := answers[node]
	return a, ok && a.Result == r.version
}

// stopAtUnderstood reports whether the agent of every node in agents has said,
// in its result, that it stops at spec.stopAt by itself. It is false until the
// first lists are in, and for an older installation.
func (w *resultsWatch) stopAtUnderstood(agents map[string]string) bool {
	if !w.listedCurrent() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for node := range agents {
		if r, ok := w.results.nodes[node]; !ok || !r.stopAt {
			return false
		}
	}
	return true
}

// listedCurrent reports whether the first lists are in, and the node results
// are what the watch follows (not an older installation's status).
func (w *resultsWatch) listedCurrent() bool {
	if w == nil {
		return false
	}
	select {
	case <-w.listed:
	default:
		return false
	}
	if w.err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.legacy
}
