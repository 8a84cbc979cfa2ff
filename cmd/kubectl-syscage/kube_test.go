package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/syscage/syscage/hooks/kubeapi"
)

func pod(name, node string, ready bool, mutate ...func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: kubeapi.Namespace, Labels: map[string]string{"app.kubernetes.io/name": kubeapi.AgentName}},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func TestReadyAgentNodes(t *testing.T) {
	now := metav1.Now()
	pods := []corev1.Pod{
		pod("agent-a", "node-a", true),
		pod("agent-b", "node-b", false),
		pod("agent-c", "", true),
		pod("agent-d", "node-d", true, func(p *corev1.Pod) { p.DeletionTimestamp = &now }),
		pod("agent-e", "node-e", true, func(p *corev1.Pod) { p.Status.Conditions = nil }),
		pod("agent-f", "node-f", true),
	}
	got := readyAgentNodes(pods)
	want := map[string]string{"node-a": "agent-a", "node-f": "agent-f"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("readyAgentNodes (-want +got):\n%s", diff)
	}
}

func TestUnreported(t *testing.T) {
	agents := map[string]string{"node-a": "agent-1", "node-b": "agent-2", "node-c": "agent-3"}
	have := map[string]kubeapi.NodeRecording{"node-b": {Phase: kubeapi.PhaseRecording}, "node-x": {Phase: kubeapi.PhaseDone}}
	got := unreported(agents, have)
	if diff := cmp.Diff([]string{"node-a", "node-c"}, got); diff != "" {
		t.Errorf("unreported (-want +got):\n%s", diff)
	}
	if d := describeNodes(got, agents); d != "node-a (agent pod agent-1), node-c (agent pod agent-3)" {
		t.Errorf("describeNodes = %q", d)
	}
	if d := describeNodes([]string{"node-x"}, agents); d != "node-x" {
		t.Errorf("describeNodes of a node without agent = %q", d)
	}
	if got := unreported(agents, map[string]kubeapi.NodeProfile{"node-a": {}, "node-b": {}, "node-c": {}}); got != nil {
		t.Errorf("unreported when all reported = %v", got)
	}
}

func TestUnfinished(t *testing.T) {
	agents := map[string]string{"node-a": "agent-1", "node-b": "agent-2", "node-c": "agent-3"}
	st := kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{
		"node-a": {Phase: kubeapi.PhaseDone},
		"node-b": {Phase: kubeapi.PhaseRecording},
		// A node whose agent was not Ready at the start, and joined in.
		"node-d": {Phase: kubeapi.PhaseRecording},
		"node-e": {Phase: kubeapi.PhaseFailed},
	}}
	if diff := cmp.Diff([]string{"node-b", "node-c", "node-d"}, unfinished(st, agents)); diff != "" {
		t.Errorf("unfinished (-want +got):\n%s", diff)
	}
	st.Nodes["node-b"] = kubeapi.NodeRecording{Phase: kubeapi.PhaseDone}
	st.Nodes["node-c"] = kubeapi.NodeRecording{Phase: kubeapi.PhaseFailed}
	st.Nodes["node-d"] = kubeapi.NodeRecording{Phase: kubeapi.PhaseDone}
	if got := unfinished(st, agents); len(got) != 0 {
		t.Errorf("unfinished when every node is done = %v", got)
	}
}

func TestPodProblems(t *testing.T) {
	now := metav1.Now()
	pods := []corev1.Pod{
		pod("ok", "node-a", true),
		pod("gone", "node-a", false, func(p *corev1.Pod) { p.DeletionTimestamp = &now }),
		pod("pull", "node-a", false, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ErrImageNeverPull", Message: `Container image "localhost/syscage:dev" is not present with pull policy of Never`,
			}}}}
		}),
		pod("create", "node-b", false, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "CreateContainerError", Message: "failed to create containerd container: seccomp profile not found\nmore detail",
			}}}}
		}),
		pod("crash", "node-b", false, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", RestartCount: 4,
				State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}},
			}}
		}),
		pod("init", "node-b", false, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				Reason: "Error", ExitCode: 159,
			}}}}
		}),
		pod("unscheduled", "", false, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available"}}
		}),
		pod("starting", "node-c", false, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
		}),
		pod("notready", "node-c", false),
	}
	want := []string{
		`pod pull on node-a: container agent: ErrImageNeverPull: Container image "localhost/syscage:dev" is not present with pull policy of Never`,
		"pod create on node-b: container app: CreateContainerError: failed to create containerd container: seccomp profile not found",
		"pod crash on node-b: container app: restarted 4 times, last Error (exit 1)",
		"pod init on node-b: container migrate: Error (exit 159)",
		"pod unscheduled: not scheduled: Unschedulable: 0/1 nodes are available",
		"pod starting on node-c: pending",
		"pod notready on node-c: running, not Ready",
	}
	if diff := cmp.Diff(want, podProblems(pods)); diff != "" {
		t.Errorf("podProblems (-want +got):\n%s", diff)
	}
}

func TestPoll(t *testing.T) {
	c := &clients{interval: time.Millisecond}
	ctx := context.Background()

	calls := 0
	err := c.poll(ctx, time.Second, "three calls", func(context.Context) (pending, error) {
		if calls++; calls < 3 {
			return "not yet", nil
		}
		return "", nil
	})
	if err != nil || calls != 3 {
		t.Errorf("poll: %v after %d calls", err, calls)
	}

	err = c.poll(ctx, 20*time.Millisecond, "node-b to answer", func(context.Context) (pending, error) {
		return "no answer yet from node-b (agent pod agent-2)", nil
	})
	want := "timed out after 20ms waiting for node-b to answer: no answer yet from node-b (agent pod agent-2) (raise --timeout to wait longer)"
	if err == nil || err.Error() != want {
		t.Errorf("poll timeout: %v\nwant %s", err, want)
	}

	// Passing API errors are retried, and named if they last.
	calls = 0
	err = c.poll(ctx, 20*time.Millisecond, "x", func(context.Context) (pending, error) {
		calls++
		return "", apierrors.NewServerTimeout(schema.GroupResource{Resource: "pods"}, "list", 1)
	})
	if err == nil || !strings.Contains(err.Error(), "timed out after 20ms waiting for x: The list operation against pods could not be completed") || calls < 2 {
		t.Errorf("poll with server timeouts: %v after %d calls", err, calls)
	}

	// Other errors end the wait at once.
	boom := errors.New("boom")
	calls = 0
	err = c.poll(ctx, time.Second, "x", func(context.Context) (pending, error) { calls++; return "", boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("poll with an error: %v after %d calls", err, calls)
	}

	// Cancelling stops it, saying what was still awaited.
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	err = (&clients{interval: time.Hour}).poll(cctx, time.Hour, "node-b", func(context.Context) (pending, error) { return "no answer", nil })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "still no answer") {
		t.Errorf("poll cancelled: %v", err)
	}
}

func TestNotInstalled(t *testing.T) {
	// What the API server answers for a resource it does not serve.
	noResource := apierrors.NewNotFound(schema.GroupResource{Group: kubeapi.Group, Resource: kubeapi.Recordings}, "")
	if err := notInstalled(noResource); !errors.Is(err, errNotInstalled) {
		t.Errorf("notInstalled(no resource) = %v", err)
	}
	noObject := apierrors.NewNotFound(schema.GroupResource{Group: kubeapi.Group, Resource: kubeapi.Recordings}, "web-1")
	if err := notInstalled(noObject); err != noObject {
		t.Errorf("notInstalled(no object) = %v", err)
	}
	other := errors.New("other")
	if err := notInstalled(other); err != other {
		t.Errorf("notInstalled(other) = %v", err)
	}
}

// The API server's clock is read from a recording's creation, to the second:
// a clock that agrees with it is not corrected, and one that is off is
// corrected to within a second and the round trip, whatever the moment within
// the second.
func TestClockSkew(t *testing.T) {
	const rtt = 40 * time.Millisecond
	for phase := time.Duration(0); phase < time.Second; phase += 50 * time.Millisecond {
		sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(phase)
		for _, server := range []time.Duration{0, 300 * time.Millisecond, -700 * time.Millisecond, 5 * time.Second, -90 * time.Second} {
			created := sent.Add(rtt / 2).Add(server).Truncate(time.Second)
			got := clockSkew(created, sent, sent.Add(rtt))
			if server == 0 && got != 0 || (got-server).Abs() > time.Second+rtt {
				t.Errorf("sent at +%s, the server's clock %s ahead: corrected by %s", phase, server, got)
			}
		}
	}
	if got := clockSkew(time.Time{}, time.Now(), time.Now()); got != 0 {
		t.Errorf("no creation time: corrected by %s, want 0", got)
	}
}
