// Package kubeapi is the contract between the kubectl plugin and the node agent:
// syscage's custom resources, as plain Go types with JSON tags. It imports no
// Kubernetes module: the agent converts client-go's objects to these through
// their JSON, and the syscage binary can read results without a Kubernetes client.
package kubeapi

import (
	"crypto/sha256"
	"encoding/hex"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
)

const (
	Group      = "syscage.io"
	Version    = "v1alpha1"
	APIVersion = Group + "/" + Version

	KindRecording = "SyscallRecording"
	KindProfile   = "SyscallProfile"
	// Resources, as they appear in API paths.
	Recordings = "syscallrecordings"
	Profiles   = "syscallprofiles"
	// NodeResults are the per-node parts of recordings.
	NodeResults = "syscallnoderesults"
	// NodeStatuses say, per node and namespace, which profiles the node holds.
	NodeStatuses   = "syscallnodestatuses"
	KindNodeStatus = "SyscallNodeStatus"

	// Namespace is where the agent runs.
	Namespace = "syscage-system"
	// AgentName names the DaemonSet, its ServiceAccount and its ClusterRole.
	AgentName = "syscage-agent"
	// ProfileDir is the agent's directory below the kubelet's seccomp directory:
	// a profile ns/name is written as ProfileDir/ns/name.json and a pod refers to
	// it as localhostProfile "syscage/ns/name.json".
	ProfileDir = "syscage"
	// SPOGroup is the security-profiles-operator's API group: where its
	// SeccompProfile CRD is installed, apply writes one of those instead.
	SPOGroup = "security-profiles-operator.x-k8s.io"
)

// Modes of a recording.
const (
	ModeRecord = "record" // record what the selected containers do
	ModeVerify = "verify" // watch for calls spec.profile does not allow (complain mode)
)

// Phases of a node's part in a recording.
const (
	PhaseRecording = "Recording"
	PhaseDone      = "Done" // spec.stop was seen; the results are final
	PhaseFailed    = "Failed"
)

// How a container came to be recorded.
const (
	// FromStart: the hook tracked it before its first instruction, from its
	// seccomp filter's installation (or its entrypoint's exec when unconfined).
	FromStart = "start"
	// FromAttach: it was already running; calls made before Attached are missing.
	FromAttach = "attached"
)

// ObjectMeta is the part of metav1.ObjectMeta syscage reads and writes.
type ObjectMeta struct {
	Name              string            `json:"name,omitempty"`
	Namespace         string            `json:"namespace,omitempty"`
	UID               string            `json:"uid,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	Generation        int64             `json:"generation,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	Finalizers        []string          `json:"finalizers,omitempty"`
	DeletionTimestamp *string           `json:"deletionTimestamp,omitempty"`
	OwnerReferences   []OwnerReference  `json:"ownerReferences,omitempty"`
}

// OwnerReference is metav1.OwnerReference: the object a node result belongs to.
type OwnerReference struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
}

// LabelSelector is metav1.LabelSelector.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is metav1.LabelSelectorRequirement.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"` // In, NotIn, Exists, DoesNotExist
	Values   []string `json:"values,omitempty"`
}

// Matches reports whether labels satisfy the selector. An empty selector matches
// nothing here: a recording must say what it records.
func (s LabelSelector) Matches(labels map[string]string) bool {
	if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
		return false
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, ok := labels[r.Key]
		in := false
		for _, want := range r.Values {
			in = in || (ok && v == want)
		}
		switch r.Operator {
		case "In":
			if !in {
				return false
			}
		case "NotIn":
			if in {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// SyscallRecording asks the agents to record (or verify) the containers of the
// pods its selector matches in its namespace, and carries each node's results.
type SyscallRecording struct {
	APIVersion string          `json:"apiVersion,omitempty"`
	Kind       string          `json:"kind,omitempty"`
	Metadata   ObjectMeta      `json:"metadata"`
	Spec       RecordingSpec   `json:"spec"`
	Status     RecordingStatus `json:"status,omitempty"`
}

// RecordingSpec is what to record.
type RecordingSpec struct {
	Mode     string        `json:"mode"`
	Selector LabelSelector `json:"selector"`
	// Containers limits the recording to these container names; all if empty.
	Containers []string `json:"containers,omitempty"`
	// Profile is what verify mode checks the calls against.
	Profile *specs.LinuxSeccomp `json:"profile,omitempty"`
	// Profiles (verify mode) are per container name: a container named here is
	// checked against its own profile rather than Profile.
	Profiles map[string]*specs.LinuxSeccomp `json:"profiles,omitempty"`
	// Stop ends the recording: each agent publishes its final results (PhaseDone)
	// and stops tracking.
	Stop bool `json:"stop,omitempty"`
	// StopAt (RFC 3339, the API server's clock) ends the recording as Stop does,
	// when each node's clock reaches it: the agents stop on their own timers, and
	// no write has to reach every node at the end. Agents that predate it do not
	// say FeatureStopAt in their results, and are sent Stop.
	StopAt string `json:"stopAt,omitempty"`
}

// RecordingStatus holds one entry per node, each written only by that node's
// agent (with a JSON merge patch on its own key, so agents never conflict).
type RecordingStatus struct {
	Nodes map[string]NodeRecording `json:"nodes,omitempty"`
}

// NodeRecording is one node's part of a recording. Its fields have no omitempty:
// each is sent in the agent's merge patch, so that none outlives its value.
type NodeRecording struct {
	Phase      string            `json:"phase"`
	Message    string            `json:"message"`
	Updated    string            `json:"updated"` // RFC 3339
	Containers []ContainerResult `json:"containers"`
}

// ContainerResult is what one container did while it was recorded.
type ContainerResult struct {
	Pod         string `json:"pod"`
	PodUID      string `json:"podUID,omitempty"`
	Container   string `json:"container"`
	ContainerID string `json:"containerID"`
	From        string `json:"from"`               // FromStart or FromAttach
	Attached    string `json:"attached,omitempty"` // RFC 3339, for FromAttach
	Running     bool   `json:"running"`            // still running when published
	// Runs counts the containers merged into this result: a container
	// restarted in its pod (a new ContainerID, the latest here) adds a run.
	Runs   int    `json:"runs,omitempty"`
	Events uint64 `json:"events"`
	// Profile (record mode) allows what the container did; the plugin merges them.
	Profile *specs.LinuxSeccomp `json:"profile,omitempty"`
	// ProfileData is Profile as a SyscallNodeResult stores it (see
	// SyscallNodeResult.MarshalJSON); empty in memory.
	ProfileData string `json:"profileData,omitempty"`
	// Coverage (record mode, Runs over 1) counts the calls of Profile that
	// fewer than Runs of the runs made, keyed as profile.CoverageCalls names
	// them; every run made the others.
	Coverage map[string]int `json:"coverage,omitempty"`
	// Denied lists calls the filter in force refused while it was recorded: they
	// never ran, so they are not in Profile.
	Denied []Call `json:"denied,omitempty"`
	// Missing (verify mode) are calls spec.profile does not allow.
	Missing []Call `json:"missing,omitempty"`
	// Conditional (verify mode) are calls spec.profile allows for some arguments
	// only; complain mode cannot judge the arguments.
	Conditional []Call   `json:"conditional,omitempty"`
	Unnamed     []string `json:"unnamed,omitempty"` // numbers with no name in the tables
	// Dropped are recorded calls the baseline (containerd's default, what
	// RuntimeDefault gives) refuses, left out of Profile.
	Dropped []string `json:"dropped,omitempty"`
	// Pods, when set, are the pods whose containers of this name the agent
	// merged into this one result, as a node with many of them would otherwise
	// publish an object too large (see NodeResultBudget); Pod and PodUID are the
	// first of them, ContainerID the last container's, and Containers counts the
	// containers merged.
	Pods       []PodRef `json:"pods,omitempty"`
	Containers int      `json:"containers,omitempty"`
}

// PodRef names a pod.
type PodRef struct {
	Name string `json:"name"`
	UID  string `json:"uid,omitempty"`
}

// PodRefs are the pods of a result: Pods, or its one pod.
func (r ContainerResult) PodRefs() []PodRef {
	if len(r.Pods) > 0 {
		return r.Pods
	}
	return []PodRef{{Name: r.Pod, UID: r.PodUID}}
}

// ContainerCount is how many containers a result stands for.
func (r ContainerResult) ContainerCount() int {
	return max(r.Containers, 1)
}

// NodeResultBudget is the size of a node's result past which its agent merges
// the results of each container name across pods: a SyscallNodeResult stays well
// under the 256 KiB the issue allows, and far under etcd's 1.5 MiB, whatever the
// number of pods on the node.
const NodeResultBudget = 64 << 10

// Call is one syscall with how often it was made and the first process to make it.
type Call struct {
	Arch  specs.Arch `json:"arch"`
	Name  string     `json:"name"`
	Count uint64     `json:"count"`
	Pid   uint32     `json:"pid,omitempty"`
	Comm  string     `json:"comm,omitempty"`
}

// SyscallProfile is a profile the agents write on every node, for pods to use as
// seccompProfile {type: Localhost, localhostProfile: LocalhostProfile(ns, name)}.
type SyscallProfile struct {
	APIVersion string        `json:"apiVersion,omitempty"`
	Kind       string        `json:"kind,omitempty"`
	Metadata   ObjectMeta    `json:"metadata"`
	Spec       ProfileSpec   `json:"spec"`
	Status     ProfileStatus `json:"status,omitempty"`
}

// ProfileSpec is the profile itself.
type ProfileSpec struct {
	Profile *specs.LinuxSeccomp `json:"profile"`
	// Coverage, for a recorded profile, says how many of the runs it was
	// merged from made each call that not all of them made. The agents do not
	// read it: it is for the people who review the profile.
	Coverage *profile.Coverage `json:"coverage,omitempty"`
}

// ProfileStatus says, per node, what the agent wrote.
type ProfileStatus struct {
	// LocalhostProfile is set by kubectl syscage apply; it is always
	// LocalhostProfile(namespace, name).
	LocalhostProfile string `json:"localhostProfile,omitempty"`
	// Nodes is where agents before SyscallNodeStatus reported their copies. It
	// grew with the nodes; it is read only to name the nodes of their finalizers.
	Nodes map[string]NodeProfile `json:"nodes,omitempty"`
}

// SyscallNodeStatus is one node's copies of the profiles of one namespace,
// written by that node's agent alone: named after the node, in the profiles'
// namespace, and owned by the Node (so that a node deleted from the cluster
// takes its statuses with it and never keeps anything waiting). No object grows
// with the number of nodes; one grows with the profiles of its namespace, by
// about 150 bytes a profile.
type SyscallNodeStatus struct {
	APIVersion string                 `json:"apiVersion,omitempty"`
	Kind       string                 `json:"kind,omitempty"`
	Metadata   ObjectMeta             `json:"metadata"`
	Spec       NodeStatusSpec         `json:"spec"`
	Profiles   map[string]NodeProfile `json:"profiles,omitempty"` // by profile name
}

// NodeStatusSpec says whose status it is.
type NodeStatusSpec struct {
	Node string `json:"node"`
}

// NodeLabel is the label a node status carries: its node's name, or a hash of a
// name too long for a label value.
const NodeLabel = Group + "/node"

// NodeLabelValue is the value of NodeLabel for a node.
func NodeLabelValue(node string) string {
	if len(node) <= 63 {
		return node
	}
	sum := sha256.Sum256([]byte(node))
	return "sha256-" + hex.EncodeToString(sum[:16])
}

// NodeProfile is one node's copy of a profile.
// Its fields have no omitempty, as in NodeRecording.
type NodeProfile struct {
	// Digest is the sha256 of the file written; it equals Digest(spec) once the
	// node has the current spec.
	Digest  string `json:"digest"`
	Error   string `json:"error"`
	Updated string `json:"updated"`
}

// LocalhostProfile is the kubelet's name for profile ns/name, relative to its
// seccomp directory.
func LocalhostProfile(namespace, name string) string {
	return path.Join(ProfileDir, namespace, name+".json")
}

// Digest is the sha256 of the bytes written for a profile.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NodeFinalizer is the finalizer agents before profiles went finalizer-free
// kept on a SyscallProfile while their node held the file; today's agents and
// uninstall take it off wherever they find it.
func NodeFinalizer(node string) string {
	name := "node." + node
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(node))
		name = "node." + hex.EncodeToString(sum[:16])
	}
	return Group + "/" + name
}

// SyscallNodeResult is one node's part of a SyscallRecording, written by that
// node's agent alone, owned by the recording (and so deleted with it). One object
// per node keeps every object the size of one node's part, whatever the number
// of nodes.
type SyscallNodeResult struct {
	APIVersion string         `json:"apiVersion,omitempty"`
	Kind       string         `json:"kind,omitempty"`
	Metadata   ObjectMeta     `json:"metadata"`
	Spec       NodeResultSpec `json:"spec"`
	Result     NodeRecording  `json:"result"`
}

// NodeResultSpec says whose result it is.
type NodeResultSpec struct {
	Recording string `json:"recording"`
	Node      string `json:"node"`
	// Features are what the node's agent understands of a recording's spec
	// beyond its first version: FeatureStopAt.
	Features []string `json:"features,omitempty"`
}

// FeatureStopAt, in a node result's features, says that its agent stops at
// spec.stopAt by itself.
const FeatureStopAt = "stopAt"

// RecordingLabel is the label a node result carries: the UID of its recording.
const RecordingLabel = Group + "/recording"

// NodeResultName is the name of a node's result for a recording: NAME-NODE, or
// NAME-HASH when that is too long for a name.
func NodeResultName(recording, node string) string {
	if n := recording + "-" + node; len(n) <= 253 {
		return n
	}
	sum := sha256.Sum256([]byte(node))
	return recording[:min(len(recording), 253-17)] + "-" + hex.EncodeToString(sum[:8])
}
