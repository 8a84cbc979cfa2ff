package agent

import (
	"cmp"
	"encoding/json"
	"slices"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

// mergeResults merges the results of one container of one pod into one: its
// restarts, and what an earlier run of the agent published of it. A node's
// status then grows with the pods, not with their restarts.
func mergeResults(in []kubeapi.ContainerResult) ([]kubeapi.ContainerResult, error) {
	var out []kubeapi.ContainerResult
	at := map[string]int{}
	for _, r := range in {
		r.Runs = max(r.Runs, 1)
		key := cmp.Or(r.PodUID, r.Pod) + "/" + r.Container
		i, ok := at[key]
		if !ok {
			at[key] = len(out)
			out = append(out, r)
			continue
		}
		m, err := mergeResult(out[i], r)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	slices.SortStableFunc(out, func(a, b kubeapi.ContainerResult) int {
		return cmp.Or(cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Container, b.Container))
	})
	return out, nil
}

// fit merges a node's results per container of a pod (its restarts, and what an
// earlier run of the agent published) and, if they are still larger than
// kubeapi.NodeResultBudget, per container name across pods.
func fit(st *kubeapi.NodeRecording, sums profileSums) error {
	merged, err := mergeResults(st.Containers)
	if err != nil {
		return err
	}
	st.Containers = merged
	if size(*st, sums) <= kubeapi.NodeResultBudget {
		return nil
	}
	st.Containers, err = mergeByName(st.Containers)
	return err
}

// mergeByName merges the results of each container name into one, across pods:
// what a node publishes when one result per pod would be too large. The pods and
// the number of containers stay counted.
func mergeByName(in []kubeapi.ContainerResult) ([]kubeapi.ContainerResult, error) {
	var out []kubeapi.ContainerResult
	at := map[string]int{}
	for _, r := range in {
		r.Runs = max(r.Runs, 1)
		i, ok := at[r.Container]
		if !ok {
			at[r.Container] = len(out)
			out = append(out, r)
			continue
		}
		a := out[i]
		m, err := mergeResult(a, r)
		if err != nil {
			return nil, err
		}
		m.Pods = unionPods(a, r)
		m.Pod, m.PodUID = m.Pods[0].Name, m.Pods[0].UID
		m.Containers = a.ContainerCount() + r.ContainerCount()
		out[i] = m
	}
	slices.SortStableFunc(out, func(a, b kubeapi.ContainerResult) int { return cmp.Compare(a.Container, b.Container) })
	return out, nil
}

func mergeResult(a, b kubeapi.ContainerResult) (kubeapi.ContainerResult, error) {
	m := a
	m.Runs = a.Runs + b.Runs
	m.Running = a.Running || b.Running
	if b.Running || !a.Running {
		m.ContainerID = b.ContainerID // the running one, or the later
	}
	if a.From == kubeapi.FromAttach || b.From == kubeapi.FromAttach {
		m.From = kubeapi.FromAttach
		m.Attached = earliest(a.Attached, b.Attached)
	}
	m.Events = a.Events + b.Events
	switch {
	case a.Profile != nil && b.Profile != nil:
		p, err := profile.Merge(profile.Named{Name: a.ContainerID, Profile: a.Profile}, profile.Named{Name: b.ContainerID, Profile: b.Profile})
		if err != nil {
			return m, err
		}
		m.Profile = p
	case b.Profile != nil:
		m.Profile = b.Profile
	}
	// How many of the runs made each call, before a.Runs and b.Runs become one.
	var t profile.Tally
	t.Add(a.Profile, a.Runs, a.Coverage)
	t.Add(b.Profile, b.Runs, b.Coverage)
	m.Coverage = nil
	if m.Profile != nil {
		m.Coverage = t.Coverage().Calls
	}
	m.Denied = sumCalls(a.Denied, b.Denied)
	m.Missing = sumCalls(a.Missing, b.Missing)
	m.Conditional = sumCalls(a.Conditional, b.Conditional)
	m.Unnamed = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a.Unnamed), b.Unnamed...))))
	if len(a.Pods) > 0 || len(b.Pods) > 0 {
		// A restart merged into a result of several pods (an earlier run of the
		// agent published it so): one of its pods, one of its containers.
		m.Pods = unionPods(a, b)
		m.Containers = max(a.ContainerCount(), b.ContainerCount())
	}
	return m, nil
}

// unionPods are the pods of two results, sorted, each once.
func unionPods(a, b kubeapi.ContainerResult) []kubeapi.PodRef {
	pods := append(slices.Clone(a.PodRefs()), b.PodRefs()...)
	slices.SortFunc(pods, func(x, y kubeapi.PodRef) int { return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.UID, y.UID)) })
	return slices.Compact(pods)
}

// earliest of two RFC 3339 times in UTC ("" for none): they order as strings.
func earliest(a, b string) string {
	if a == "" || (b != "" && b < a) {
		return b
	}
	return a
}

// sumCalls adds up the counts of the same calls, keeping the first process seen.
func sumCalls(a, b []kubeapi.Call) []kubeapi.Call {
	out := slices.Clone(a)
	for _, c := range b {
		i := slices.IndexFunc(out, func(o kubeapi.Call) bool { return o.Arch == c.Arch && o.Name == c.Name })
		if i < 0 {
			out = append(out, c)
			continue
		}
		out[i].Count += c.Count
	}
	slices.SortFunc(out, func(x, y kubeapi.Call) int {
		return cmp.Or(profile.CompareArches(x.Arch, y.Arch), cmp.Compare(x.Name, y.Name))
	})
	return out
}

// size is the size of a node's status as JSON, its profiles' sizes from sums.
func size(st kubeapi.NodeRecording, sums profileSums) int {
	st.Containers = slices.Clone(st.Containers)
	n := 0
	for i := range st.Containers {
		if c := &st.Containers[i]; c.Profile != nil {
			n += len(`,"profile":`) + sums.of(c.Profile).size
			c.Profile = nil
		}
	}
	b, _ := json.Marshal(st)
	return n + len(b)
}
