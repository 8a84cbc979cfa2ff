package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

// nodeContainer is a container's result with the node that published it.
type nodeContainer struct {
	Node string `json:"node"`
	kubeapi.ContainerResult
}

// key names a container in messages and profile merge errors.
func (c nodeContainer) key() string { return c.Pod + "/" + c.Container }

// containers flattens a recording's results, ordered by node, pod, container
// and id, so that everything built from them is stable.
func containers(st kubeapi.RecordingStatus) []nodeContainer {
	n := 0
	for _, r := range st.Nodes {
		n += len(r.Containers)
	}
	out := make([]nodeContainer, 0, n)
	// By node, then pod, container and ID: each node's few sorted in place.
	for _, node := range sortedKeys(st.Nodes) {
		from := len(out)
		for _, c := range st.Nodes[node].Containers {
			out = append(out, nodeContainer{node, c})
		}
		slices.SortStableFunc(out[from:], func(a, b nodeContainer) int {
			return cmp.Or(cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Container, b.Container), cmp.Compare(a.ContainerID, b.ContainerID))
		})
	}
	return out
}

// nodeMessage is a node's message: why it failed, or a note on its results.
type nodeMessage struct {
	Node    string `json:"node"`
	Phase   string `json:"phase"`
	Message string `json:"message"`
}

func nodeMessages(st kubeapi.RecordingStatus) (failed, notes []nodeMessage) {
	for _, node := range sortedKeys(st.Nodes) {
		n := st.Nodes[node]
		m := nodeMessage{node, n.Phase, n.Message}
		switch {
		case n.Phase == kubeapi.PhaseFailed:
			if m.Message == "" {
				m.Message = "no reason given"
			}
			failed = append(failed, m)
		case n.Message != "":
			notes = append(notes, m)
		}
	}
	return failed, notes
}

// deniedCall is a call the filter in force refused, over all containers.
type deniedCall struct {
	kubeapi.Call
	Containers []string `json:"containers"`
}

// recordResult is a recording merged into one profile.
type recordResult struct {
	Profile *specs.LinuxSeccomp
	// Containers, Pods and Nodes count what contributed to Profile;
	// AttachedPods the pods with a container in Attached.
	Containers, Pods, Nodes, AttachedPods int
	// NodeNames are the nodes that contributed, sorted.
	NodeNames []string
	// Runs counts the containers' runs: more than Containers when some
	// restarted in their pods.
	Runs int
	// Coverage says how many of the Runs made each call of Profile.
	Coverage *profile.Coverage
	// Attached are the containers recorded from when they were attached to, not
	// from their start.
	Attached []nodeContainer
	Denied   []deniedCall
	Unnamed  []string // "pod/container: number"
	Failed   []nodeMessage
	Notes    []nodeMessage
}

// mergeRecording merges the profiles of every container of a finished recording.
// A recording in which no container was recorded is an error, as the merge would
// be a profile that allows nothing.
func mergeRecording(st kubeapi.RecordingStatus) (*recordResult, error) {
	res := &recordResult{}
	res.Failed, res.Notes = nodeMessages(st)
	var named []profile.Named
	// A container can have two results: one published by an agent that then
	// restarted, and one from the agent that took over. It counts once.
	ids, pods, nodes, attachedPods := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	merged := 0 // containers a node merged into another's result (many pods on one node)
	denied := map[string]*deniedCall{}
	var tally profile.Tally
	// The containers of a fleet share a few profiles (kubeapi.Unpacker unpacks
	// each distinct one once): each is merged and counted once, with the runs of
	// every container that has it.
	type shared struct {
		name string
		runs int // of the containers without coverage of their own
	}
	byProfile := map[*specs.LinuxSeccomp]*shared{}
	var distinct []*specs.LinuxSeccomp
	for _, c := range containers(st) {
		if c.Profile == nil {
			continue
		}
		s := byProfile[c.Profile]
		if s == nil {
			s = &shared{name: c.Node + ":" + c.key()}
			byProfile[c.Profile] = s
			distinct = append(distinct, c.Profile)
		}
		res.Runs += max(c.Runs, 1)
		if c.Coverage != nil {
			tally.Add(c.Profile, c.Runs, c.Coverage)
		} else {
			s.runs += max(c.Runs, 1)
		}
		if id := cmp.Or(c.ContainerID, c.Node+":"+c.key()); !ids[id] {
			merged += c.ContainerCount() - 1
			ids[id] = true
		}
		for _, p := range c.PodRefs() {
			pods[cmp.Or(p.UID, p.Name)] = true
			if c.From == kubeapi.FromAttach {
				attachedPods[cmp.Or(p.UID, p.Name)] = true
			}
		}
		nodes[c.Node] = true
		if c.From == kubeapi.FromAttach {
			res.Attached = append(res.Attached, c)
		}
		for _, d := range c.Denied {
			k := string(d.Arch) + "/" + d.Name
			if denied[k] == nil {
				denied[k] = &deniedCall{Call: kubeapi.Call{Arch: d.Arch, Name: d.Name}}
			}
			denied[k].Count += d.Count
			if !slices.Contains(denied[k].Containers, c.key()) {
				denied[k].Containers = append(denied[k].Containers, c.key())
			}
		}
		for _, u := range c.Unnamed {
			res.Unnamed = append(res.Unnamed, c.key()+": "+u)
		}
	}
	for _, p := range distinct {
		named = append(named, profile.Named{Name: byProfile[p].name, Profile: p})
		if n := byProfile[p].runs; n > 0 {
			tally.Add(p, n, nil)
		}
	}
	res.Containers, res.Pods, res.Nodes, res.AttachedPods = len(ids)+merged, len(pods), len(nodes), len(attachedPods)
	res.NodeNames = sortedKeys(nodes)
	for _, d := range denied {
		res.Denied = append(res.Denied, *d)
	}
	slices.SortFunc(res.Denied, func(a, b deniedCall) int {
		return cmp.Or(profile.CompareArches(a.Arch, b.Arch), cmp.Compare(a.Name, b.Name))
	})
	if len(named) == 0 {
		return res, nil
	}
	p, err := profile.Merge(named...)
	if err != nil {
		return nil, fmt.Errorf("merging the containers' profiles: %w", err)
	}
	res.Profile = p
	res.Coverage = tally.Coverage().For(p)
	return res, nil
}

// nothingRecorded explains a recording that recorded no container.
func nothingRecorded(w *workload, sel string, agents map[string]string, res *recordResult) error {
	msg := fmt.Sprintf("no container was recorded: the selector of %s (%s) matched no running pod in namespace %q on the %d node(s) with a Ready agent (%s)",
		w.ref, sel, w.namespace, len(agents), strings.Join(sortedKeys(agents), ", "))
	for _, f := range res.Failed {
		msg += fmt.Sprintf("; node %s failed: %s", f.Node, f.Message)
	}
	return fmt.Errorf("%s: check that its pods are running (kubectl -n %s get pods -l '%s') and scheduled on nodes that run the agent", msg, w.namespace, sel)
}

// byContainer splits a recording's results by container name: what each
// profile of a per-container recording is merged from. The nodes' messages are
// left out, to be said once for the whole recording.
func byContainer(st kubeapi.RecordingStatus) map[string]kubeapi.RecordingStatus {
	out := map[string]kubeapi.RecordingStatus{}
	for node, n := range st.Nodes {
		for _, c := range n.Containers {
			g := out[c.Container]
			if g.Nodes == nil {
				g.Nodes = map[string]kubeapi.NodeRecording{}
			}
			gn := g.Nodes[node]
			gn.Phase = kubeapi.PhaseDone
			gn.Containers = append(gn.Containers, c)
			g.Nodes[node] = gn
			out[c.Container] = g
		}
	}
	return out
}

// mergeEach merges the results of each container name in names, from groups
// (byContainer), on as many goroutines as there are CPUs: at a fleet's scale
// the merges are what is left to do once the last node has answered.
func mergeEach(groups map[string]kubeapi.RecordingStatus, names []string) ([]*recordResult, error) {
	out := make([]*recordResult, len(names))
	errs := make([]error, len(names))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(names)) {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = mergeRecording(groups[names[i]])
			}
		})
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", names[i], err)
		}
	}
	return out, nil
}

// how says how a result's pods were recorded.
func how(res *recordResult) string {
	switch res.AttachedPods {
	case 0:
		return "all recorded from the start"
	case res.Pods:
		return "all attached to while running"
	}
	return fmt.Sprintf("%s recorded from the start, %s with containers attached to while running", plural(res.Pods-res.AttachedPods, "pod"), plural(res.AttachedPods, "pod"))
}

// printRecordSummary tells on stderr what went into the merged profile, and
// what did not. restarted says that record restarted the workload.
func printRecordSummary(w io.Writer, res *recordResult, dest string, restarted bool) {
	fmt.Fprintf(w, "wrote %s: the merged profile of %s of %s on %s: %s\n",
		dest, plural(res.Containers, "container"), plural(res.Pods, "pod"), plural(res.Nodes, "node"), how(res))
	printRecordDetails(w, res, restarted)
	printNodeMessages(w, res)
}

// printRecordDetails tells what is missing from a profile: containers attached
// to, calls denied while recording, numbers without a name.
func printRecordDetails(w io.Writer, res *recordResult, restarted bool) {
	var running, exited []nodeContainer
	for _, c := range res.Attached {
		if c.Running {
			running = append(running, c)
		} else {
			exited = append(exited, c)
		}
	}
	switch {
	case len(res.Attached) > 0 && !restarted:
		fmt.Fprintf(w, "%s attached to while already running: the calls made before attaching, start-up above all, are missing from the profile "+
			"(record with --restart to record every replica from its first syscall):\n", plural(len(res.Attached), "container was", "containers were"))
		printAttached(w, res.Attached)
	case restarted:
		if len(exited) > 0 {
			fmt.Fprintln(w, "attached to while running in the pods --restart replaced, and recorded until they exited (so their shutdown is in the profile too):")
			printAttached(w, exited)
		}
		if len(running) > 0 {
			fmt.Fprintln(w, "attached to while running although --restart replaced the pods: calls made before attaching are missing; "+
				"if they started after the restart, their node's runtime did not run syscage's OCI hook:")
			printAttached(w, running)
		}
	}
	if len(res.Denied) > 0 {
		fmt.Fprintln(w, "denied by the filter in force while recording; these calls never ran and are NOT in the profile:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ARCH\tSYSCALL\tCOUNT\tCONTAINERS")
		for _, d := range res.Denied {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", profile.ShortArch(d.Arch), d.Name, d.Count, strings.Join(d.Containers, ", "))
		}
		tw.Flush()
	}
	if len(res.Unnamed) > 0 {
		fmt.Fprintf(w, "syscall numbers with no name, not in the profile: %s\n", strings.Join(res.Unnamed, "; "))
	}
}

// printNodeMessages tells the nodes' notes and failures.
func printNodeMessages(w io.Writer, res *recordResult) {
	for _, n := range res.Notes {
		fmt.Fprintf(w, "node %s: %s\n", n.Node, n.Message)
	}
	for _, f := range res.Failed {
		fmt.Fprintf(w, "node %s failed, its containers are missing: %s\n", f.Node, f.Message)
	}
}

func printAttached(w io.Writer, cs []nodeContainer) {
	for _, c := range cs {
		state := "since exited"
		if c.Running {
			state = "running"
		}
		fmt.Fprintf(w, "  %s on %s, attached %s (%s)\n", c.key(), c.Node, c.Attached, state)
	}
}

// plural writes "1 pod", "2 pods"; with two words, "1 container was", "2 containers were".
func plural(n int, one string, many ...string) string {
	if n == 1 {
		return "1 " + one
	}
	if len(many) > 0 {
		return fmt.Sprintf("%d %s", n, many[0])
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// verifyReport is what verify found, per container.
type verifyReport struct {
	Workload   string            `json:"workload"`
	Namespace  string            `json:"namespace"`
	Profile    string            `json:"profile"`
	Containers []verifyContainer `json:"containers"`
	Failed     []nodeMessage     `json:"failedNodes,omitempty"`
	Notes      []nodeMessage     `json:"notes,omitempty"`
}

// verifyContainer is one container's findings.
type verifyContainer struct {
	Node string `json:"node"`
	Pod  string `json:"pod"`
	// Pods are the pods whose containers of this name a node merged into this
	// one result, having many of them; Pod is then the first.
	Pods        []string `json:"pods,omitempty"`
	Container   string   `json:"container"`
	ContainerID string   `json:"containerID"`
	// Profile is the container's own profile, when each has one.
	Profile     string         `json:"profile,omitempty"`
	From        string         `json:"from"`
	Attached    string         `json:"attached,omitempty"`
	Running     bool           `json:"running"`
	Events      uint64         `json:"events"`
	Missing     []kubeapi.Call `json:"missing"`
	Conditional []kubeapi.Call `json:"conditional,omitempty"`
	Unnamed     []string       `json:"unnamed,omitempty"`
}

func newVerifyReport(w *workload, profilePath string, st kubeapi.RecordingStatus) *verifyReport {
	rep := &verifyReport{Workload: w.ref.String(), Namespace: w.namespace, Profile: profilePath, Containers: []verifyContainer{}}
	rep.Failed, rep.Notes = nodeMessages(st)
	for _, c := range containers(st) {
		vc := verifyContainer{
			Node: c.Node, Pod: c.Pod, Container: c.Container, ContainerID: c.ContainerID, From: c.From, Attached: c.Attached,
			Running: c.Running, Events: c.Events, Missing: sortCalls(c.Missing), Conditional: sortCalls(c.Conditional), Unnamed: c.Unnamed,
		}
		if vc.Missing == nil {
			vc.Missing = []kubeapi.Call{}
		}
		if len(c.Pods) > 1 {
			for _, p := range c.Pods {
				vc.Pods = append(vc.Pods, p.Name)
			}
		}
		rep.Containers = append(rep.Containers, vc)
	}
	return rep
}

func sortCalls(calls []kubeapi.Call) []kubeapi.Call {
	calls = slices.Clone(calls)
	slices.SortFunc(calls, func(a, b kubeapi.Call) int {
		return cmp.Or(profile.CompareArches(a.Arch, b.Arch), cmp.Compare(a.Name, b.Name))
	})
	return calls
}

// missing counts the containers with missing calls.
func (r *verifyReport) missing() int {
	n := 0
	for _, c := range r.Containers {
		if len(c.Missing) > 0 {
			n++
		}
	}
	return n
}

// printVerifyReport writes the report for people.
func printVerifyReport(w io.Writer, r *verifyReport) {
	if n := r.missing(); n == 0 {
		fmt.Fprintf(w, "%s allows every syscall the %s of %s made\n", r.Profile, plural(len(r.Containers), "container"), r.Workload)
	} else {
		fmt.Fprintf(w, "%s does not allow calls made by %d of the %s of %s: pods using it would be denied them\n", r.Profile, n, plural(len(r.Containers), "container"), r.Workload)
	}
	attached := 0
	for _, c := range r.Containers {
		how := "recorded from its start"
		if c.From == kubeapi.FromAttach {
			how = "attached at " + c.Attached + ": calls before then were not seen"
			attached++
		}
		if !c.Running {
			how += ", since exited"
		}
		against := ""
		if c.Profile != "" {
			against = ", against " + c.Profile
		}
		pod := "pod " + c.Pod
		if n := len(c.Pods); n > 1 {
			pod = fmt.Sprintf("%d pods (%s)", n, strings.Join(c.Pods[:min(n, 3)], ", "))
			if n > 3 {
				pod = fmt.Sprintf("%d pods (%s and %d more)", n, strings.Join(c.Pods[:3], ", "), n-3)
			}
		}
		fmt.Fprintf(w, "\n%s, container %s%s (node %s; %s)\n", pod, c.Container, against, c.Node, how)
		if len(c.Missing) == 0 {
			fmt.Fprintln(w, "  nothing missing")
		} else {
			fmt.Fprintf(w, "  missing, %s:\n", plural(len(c.Missing), "syscall"))
			printCalls(w, c.Missing)
		}
		if len(c.Conditional) > 0 {
			fmt.Fprintln(w, "  allowed for some arguments only, which complain mode cannot judge:")
			printCalls(w, c.Conditional)
		}
		if len(c.Unnamed) > 0 {
			fmt.Fprintf(w, "  syscall numbers with no name: %s\n", strings.Join(c.Unnamed, ", "))
		}
	}
	if attached > 0 {
		fmt.Fprintf(w, "\n%s attached to while already running: calls made before attaching, start-up above all, were not checked (verify --restart checks every replica from its first syscall)\n",
			plural(attached, "container was", "containers were"))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "node %s: %s\n", n.Node, n.Message)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "node %s failed, its containers are not checked: %s\n", f.Node, f.Message)
	}
}

func printCalls(w io.Writer, calls []kubeapi.Call) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "    ARCH\tSYSCALL\tCOUNT\tFIRST BY")
	for _, c := range calls {
		by := "-"
		if c.Comm != "" || c.Pid != 0 {
			by = fmt.Sprintf("%s (pid %d)", c.Comm, c.Pid)
		}
		fmt.Fprintf(tw, "    %s\t%s\t%d\t%s\n", profile.ShortArch(c.Arch), c.Name, c.Count, by)
	}
	tw.Flush()
}

// recordedPods are the names of the pods with containers in st.
func recordedPods(st kubeapi.RecordingStatus) map[string]bool {
	recorded := map[string]bool{}
	for _, n := range st.Nodes {
		for _, c := range n.Containers {
			for _, p := range c.PodRefs() {
				recorded[p.Name] = true
			}
		}
	}
	return recorded
}

// failedPods says which recorded pods (by name) failed or were evicted while
// recorded: what their containers did until then is in the profiles, and no
// more.
func failedPods(pods []corev1.Pod, recorded map[string]bool) []string {
	var out []string
	for _, p := range pods {
		if !recorded[p.Name] || p.Status.Phase != corev1.PodFailed {
			continue
		}
		why := joinReason(p.Status.Reason, p.Status.Message)
		if why == "" {
			why = "a container failed"
		}
		out = append(out, fmt.Sprintf("pod %s failed while recorded (%s): what it did until then is in the profiles", p.Name, why))
	}
	slices.Sort(out)
	return out
}
