package kubeapi

import (
	"fmt"
)

// A node's final answer to a recording's stop is a Lease, not a write of its
// SyscallNodeResult. At fleet scale every node answers a stop at once, and the
// answer is what `record` waits for: a custom resource's write costs the API
// server 3.5–5.5 ms of CPU (its JSON, its schema, its managed fields, the
// admission policy), a Lease's 1.9 ms (a built-in type, stored as protobuf).
// A node whose result already holds every call it saw answers with the Lease
// alone, naming the result's resourceVersion it completes; the result object
// keeps the phase of its last publication (Recording), and a reader completes
// it with the answer (FinalAnswer.Complete), as the plugin does. A node with
// calls not yet published writes its result instead, saying Done (or Failed):
// one write either way.
//
// The Lease is named as the node's result (NodeResultName), lives in the
// recording's namespace, is owned by the recording (and goes with it), and
// carries RecordingLabel and NodeLabel; its holderIdentity is the node. The
// admission policy lets an agent write only Leases of its own node.

const (
	// FinalAnnotation, on a node's Lease, holds its FinalAnswer as JSON.
	FinalAnnotation = Group + "/final"
	// LeaseGroup, LeaseVersion and Leases name the Lease resource.
	LeaseGroup   = "coordination.k8s.io"
	LeaseVersion = "v1"
	Leases       = "leases"
)

// FinalAnswer is a node's last word on a recording: its phase and message, and
// the counters its result lacks (the events, and how often each denied,
// missing or conditional call was made: they change with every call, and a
// result is written only for new calls). Result is the resourceVersion of the
// SyscallNodeResult the answer completes; Counts are by the index of that
// result's containers, and of each container's calls.
type FinalAnswer struct {
	Node    string   `json:"node"`
	Result  string   `json:"result"`
	Phase   string   `json:"phase"`
	Message string   `json:"message"`
	Updated string   `json:"updated"`
	Counts  []Counts `json:"counts,omitempty"`
}

// Counts are a container's counters, in a FinalAnswer.
type Counts struct {
	Events      uint64   `json:"events,omitempty"`
	Denied      []uint64 `json:"denied,omitempty"`
	Missing     []uint64 `json:"missing,omitempty"`
	Conditional []uint64 `json:"conditional,omitempty"`
}

// NewFinalAnswer is node's answer for st, once st is published in the result
// at resourceVersion result.
func NewFinalAnswer(node, result string, st NodeRecording) FinalAnswer {
	a := FinalAnswer{Node: node, Result: result, Phase: st.Phase, Message: st.Message, Updated: st.Updated}
	counts := func(calls []Call) []uint64 {
		if len(calls) == 0 {
			return nil
		}
		out := make([]uint64, len(calls))
		for i, c := range calls {
			out[i] = c.Count
		}
		return out
	}
	for _, c := range st.Containers {
		a.Counts = append(a.Counts, Counts{Events: c.Events, Denied: counts(c.Denied), Missing: counts(c.Missing), Conditional: counts(c.Conditional)})
	}
	return a
}

// Complete applies the answer to the node's result it names: st is the result
// at that resourceVersion. An answer whose counters do not fit st's containers
// and calls is refused, and st is left as it was.
func (a FinalAnswer) Complete(st *NodeRecording) error {
	if len(a.Counts) != len(st.Containers) {
		return fmt.Errorf("node %s's final answer counts %d containers, its result has %d", a.Node, len(a.Counts), len(st.Containers))
	}
	for i, c := range st.Containers {
		n := a.Counts[i]
		if len(n.Denied) != len(c.Denied) || len(n.Missing) != len(c.Missing) || len(n.Conditional) != len(c.Conditional) {
			return fmt.Errorf("node %s's final answer does not fit the calls of container %s of pod %s in its result", a.Node, c.Container, c.Pod)
		}
	}
	set := func(calls []Call, counts []uint64) []Call {
		if len(calls) == 0 {
			return calls
		}
		out := make([]Call, len(calls))
		for i, c := range calls {
			c.Count = counts[i]
			out[i] = c
		}
		return out
	}
	containers := make([]ContainerResult, len(st.Containers))
	for i, c := range st.Containers {
		n := a.Counts[i]
		c.Events = n.Events
		c.Denied, c.Missing, c.Conditional = set(c.Denied, n.Denied), set(c.Missing, n.Missing), set(c.Conditional, n.Conditional)
		containers[i] = c
	}
	st.Phase, st.Message, st.Updated, st.Containers = a.Phase, a.Message, a.Updated, containers
	return nil
}
