package agent

import (
	"context"
	"encoding/json"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// A node reports its copy of each profile in a SyscallNodeStatus of its own per
// namespace (named after the node, owned by its Node): no object grows with the
// number of nodes, and a node deleted from the cluster takes its statuses along.
// The agent keeps what it last reported, so that a profile's own events coming
// back, or an agent's restart, write nothing new.

var nodeStatusesGVR = gvr(kubeapi.NodeStatuses)

// loadStatuses reads this node's statuses, and its Node's UID to own new ones.
// Neither is needed to go on: without them the agent reports every profile once
// more, and creates statuses without an owner.
func (a *Agent) loadStatuses(ctx context.Context) {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	a.reported = map[string]map[string]kubeapi.NodeProfile{}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if n, err := a.api.core.CoreV1().Nodes().Get(ctx, a.opts.Node, metav1.GetOptions{}); err != nil {
		a.log.Warn("reading this node's Node object: its statuses will have no owner, and stay if the node is deleted", "node", a.opts.Node, "err", err)
	} else {
		a.owner = []kubeapi.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: string(n.UID)}}
	}
	l, err := a.api.dyn.Resource(nodeStatusesGVR).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", a.opts.Node).String(),
	})
	if err != nil {
		a.log.Warn("reading this node's profile statuses", "err", err)
		return
	}
	for i := range l.Items {
		var o kubeapi.SyscallNodeStatus
		if fromUnstructured(&l.Items[i], &o) != nil || o.Spec.Node != a.opts.Node {
			continue
		}
		m := map[string]kubeapi.NodeProfile{}
		for name, p := range o.Profiles {
			p.Updated = ""
			m[name] = p
		}
		a.reported[o.Metadata.Namespace] = m
	}
}

// isReported says whether this node last reported st (nil: nothing) for a profile.
func (a *Agent) isReported(ns, name string, st *kubeapi.NodeProfile) bool {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	prev, ok := a.reported[ns][name]
	if st == nil {
		return !ok
	}
	return ok && prev.Digest == st.Digest && prev.Error == st.Error
}

// report publishes this node's copy of profile ns/name (nil: it has none), if
// it differs from what was last reported.
func (a *Agent) report(ctx context.Context, ns, name string, st *kubeapi.NodeProfile) {
	if a.isReported(ns, name, st) {
		return
	}
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	var entry any
	if st != nil {
		s := *st
		s.Updated = time.Now().UTC().Format(time.RFC3339)
		entry = s
	}
	body, _ := json.Marshal(map[string]any{"profiles": map[string]any{name: entry}})
	err := a.api.mergePatch(ctx, nodeStatusesGVR, ns, a.opts.Node, body)
	if apierrors.IsNotFound(err) && st != nil {
		// The node's first profile in this namespace.
		obj := kubeapi.SyscallNodeStatus{
			APIVersion: kubeapi.APIVersion,
			Kind:       kubeapi.KindNodeStatus,
			Metadata: kubeapi.ObjectMeta{
				Name: a.opts.Node, Namespace: ns, OwnerReferences: a.owner,
				Labels: map[string]string{"app.kubernetes.io/part-of": "syscage", kubeapi.NodeLabel: kubeapi.NodeLabelValue(a.opts.Node)},
			},
			Spec:     kubeapi.NodeStatusSpec{Node: a.opts.Node},
			Profiles: map[string]kubeapi.NodeProfile{name: entry.(kubeapi.NodeProfile)},
		}
		create, _ := json.Marshal(obj)
		if err = a.api.create(ctx, nodeStatusesGVR, ns, create); apierrors.IsAlreadyExists(err) {
			err = a.api.mergePatch(ctx, nodeStatusesGVR, ns, a.opts.Node, body)
		}
	}
	if apierrors.IsNotFound(err) && st == nil {
		err = nil // nothing to take the entry out of
	}
	if err != nil {
		a.log.Warn("reporting this node's copy of a profile", "profile", ns+"/"+name, "err", err)
		return
	}
	if a.reported == nil {
		a.reported = map[string]map[string]kubeapi.NodeProfile{}
	}
	if st == nil {
		delete(a.reported[ns], name)
		return
	}
	if a.reported[ns] == nil {
		a.reported[ns] = map[string]kubeapi.NodeProfile{}
	}
	s := *st
	s.Updated = ""
	a.reported[ns][name] = s
}

// unreport takes out of this node's statuses the profiles whose files keep does
// not name (kubeapi.LocalhostProfile): deleted while the agent was away, or as
// it stops.
func (a *Agent) unreport(keep map[string]bool) {
	a.statusMu.Lock()
	var gone [][2]string
	for ns, m := range a.reported {
		for name := range m {
			if !keep[kubeapi.LocalhostProfile(ns, name)] {
				gone = append(gone, [2]string{ns, name})
			}
		}
	}
	a.statusMu.Unlock()
	if len(gone) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	for _, g := range gone {
		a.report(ctx, g[0], g[1], nil)
	}
}
