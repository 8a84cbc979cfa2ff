package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

// call is one recorded syscall of the native ABI, with the argument values the
// recorder would have kept for it (spec index into profile.ArgSpecs, or -1).
type call struct {
	nr     int
	spec   int
	values []uint64
	any    bool
}

// source is a recorded profile turned back into what the recorder saw.
type source struct {
	name  string
	calls []call // sorted by number
}

// loadSources reads the repository's recorded profiles (profiles/demo-*.json)
// and the test profiles (cmd/syscage's and cmd/kubectl-syscage's test data),
// each turned back into the calls a recording of it holds on this machine.
func loadSources(root string) (demos, others []source, err error) {
	arches, err := record.Arches()
	if err != nil {
		return nil, nil, err
	}
	tab, err := profile.TableFor(arches[bpf.Native])
	if err != nil {
		return nil, nil, err
	}
	add := func(list *[]source, name string, p *specs.LinuxSeccomp) {
		if s := toSource(name, p, tab); len(s.calls) > 0 {
			*list = append(*list, s)
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "profiles", "demo-*.json"))
	for _, f := range files {
		p, err := readProfile(f)
		if err != nil {
			return nil, nil, err
		}
		add(&demos, filepath.Base(f), p)
	}
	files, _ = filepath.Glob(filepath.Join(root, "cmd", "syscage", "testdata", "*.input.json"))
	for _, f := range files {
		if p, err := readProfile(f); err == nil {
			add(&others, filepath.Base(f), p)
		}
	}
	files, _ = filepath.Glob(filepath.Join(root, "cmd", "kubectl-syscage", "testdata", "recording*.input.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		var rec kubeapi.SyscallRecording
		if err := json.Unmarshal(data, &rec); err != nil {
			continue
		}
		for node, n := range rec.Status.Nodes {
			for _, c := range n.Containers {
				if c.Profile != nil {
					add(&others, fmt.Sprintf("%s:%s/%s", filepath.Base(f), node, c.Container), c.Profile)
				}
			}
		}
	}
	if len(demos) == 0 || len(others) == 0 {
		return nil, nil, errors.New("no recorded profiles found below " + root + " (profiles/demo-*.json, cmd/*/testdata)")
	}
	return demos, others, nil
}

func readProfile(file string) (*specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return profile.Parse(file, data)
}

// toSource turns a profile's allowed calls back into recorded numbers, and
// its argument conditions back into the values profile.ArgSpec.Conds made
// them from. A call allowed with no condition was recorded with any value.
func toSource(name string, p *specs.LinuxSeccomp, tab *profile.Table) source {
	byNr := map[int]*call{}
	for _, r := range p.Syscalls {
		if r.Action != specs.ActAllow && r.Action != specs.ActLog {
			continue
		}
		for _, n := range r.Names {
			nr, ok := tab.Number(n)
			if !ok {
				continue
			}
			c := byNr[nr]
			if c == nil {
				c = &call{nr: nr, spec: -1}
				byNr[nr] = c
			}
			si := slices.IndexFunc(profile.ArgSpecs, func(s profile.ArgSpec) bool { return s.Name == n })
			if si < 0 {
				continue
			}
			c.spec = si
			v, ok := argValue(profile.ArgSpecs[si], r.Args)
			switch {
			case !ok:
				c.any = true
			case !slices.Contains(c.values, v):
				c.values = append(c.values, v)
			}
		}
	}
	s := source{name: name}
	for _, c := range byNr {
		slices.Sort(c.values)
		s.calls = append(s.calls, *c)
	}
	slices.SortFunc(s.calls, func(a, b call) int { return a.nr - b.nr })
	return s
}

// argValue is the inverse of ArgSpec.Conds.
func argValue(s profile.ArgSpec, conds []specs.LinuxSeccompArg) (uint64, bool) {
	of := func(idx uint) (uint64, bool) {
		for _, c := range conds {
			if c.Index != idx {
				continue
			}
			switch c.Op {
			case specs.OpEqualTo:
				return c.Value, true
			case specs.OpMaskedEqual:
				return c.ValueTwo, true
			}
		}
		return 0, false
	}
	v0, ok := of(s.Index0)
	if !ok {
		return 0, false
	}
	if s.Kind == profile.ArgPair {
		v1, ok := of(s.Index1)
		if !ok {
			return 0, false
		}
		return v0&0xffffffff | v1<<32, true
	}
	return v0, true
}

// union is the calls of several sources, as one workload's.
func union(srcs ...source) []call {
	byNr := map[int]call{}
	for _, s := range srcs {
		for _, c := range s.calls {
			old, ok := byNr[c.nr]
			if !ok {
				byNr[c.nr] = call{nr: c.nr, spec: c.spec, values: slices.Clone(c.values), any: c.any}
				continue
			}
			old.any = old.any || c.any
			for _, v := range c.values {
				if !slices.Contains(old.values, v) {
					old.values = append(old.values, v)
				}
			}
			slices.Sort(old.values)
			byNr[c.nr] = old
		}
	}
	out := make([]call, 0, len(byNr))
	for _, c := range byNr {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b call) int { return a.nr - b.nr })
	return out
}

// simContainer is one simulated container's workload: its calls in the order
// it first makes them. It makes the first ones at once (its start-up) and a
// new one every `every` after, so that its recording keeps growing.
type simContainer struct {
	calls   []call // in the order made
	initial int    // made at once
	every   time.Duration
	rate    uint64 // syscalls per second, for Stats.Events

	// made is the recording of the first len(made's calls) calls, as last
	// built: a node's agent reads each container every publication interval,
	// and 50,000 of them building it anew each time were a tenth of the
	// simulation's CPU.
	mu   sync.Mutex
	made *bpf.Recording
	n    int
}

// simTracker is the agent's recorder for one simulated node: it serves, for
// each tracked cgroup, the recording its container has made so far.
type simTracker struct {
	mu        sync.Mutex
	workloads map[uint64]*simContainer // by cgroup id: what runs in it
	tracked   map[uint64]time.Time     // since when
	reads     int
}

func newSimTracker() *simTracker {
	return &simTracker{workloads: map[uint64]*simContainer{}, tracked: map[uint64]time.Time{}}
}

// place says what the container in cgroup id will do once tracked.
func (t *simTracker) place(id uint64, c *simContainer) {
	t.mu.Lock()
	t.workloads[id] = c
	t.mu.Unlock()
}

func (t *simTracker) TrackWith(id uint64, _ bpf.TrackOptions) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.workloads[id]; !ok {
		return fmt.Errorf("simulated recorder: no container in cgroup %d", id)
	}
	if _, ok := t.tracked[id]; ok {
		return fmt.Errorf("simulated recorder: cgroup %d is already tracked", id)
	}
	t.tracked[id] = time.Now()
	return nil
}

func (t *simTracker) Untrack(id uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.tracked[id]; !ok {
		return fmt.Errorf("simulated recorder: cgroup %d is not tracked", id)
	}
	delete(t.tracked, id)
	return nil
}

// Read returns what the container made since it was tracked: a new Recording
// each time, as the BPF recorder's Read does.
func (t *simTracker) Read(id uint64) (*bpf.Recording, error) {
	t.mu.Lock()
	since, ok := t.tracked[id]
	w := t.workloads[id]
	t.reads++
	t.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("simulated recorder: cgroup %d is not tracked", id)
	}
	el := time.Since(since)
	n := min(len(w.calls), w.initial+int(el/w.every))
	rec := *w.recording(n) // the calls shared, as nothing changes them
	rec.Stats = bpf.Stats{Events: uint64(n) + w.rate*uint64(el/time.Second)}
	return &rec, nil
}

// recording is the recording of the container's first n calls.
func (w *simContainer) recording(n int) *bpf.Recording {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.made != nil && w.n == n {
		return w.made
	}
	made := slices.Clone(w.calls[:n])
	slices.SortFunc(made, func(a, b call) int { return a.nr - b.nr })
	rec := &bpf.Recording{}
	for _, c := range made {
		rec.Syscalls[bpf.Native] = append(rec.Syscalls[bpf.Native], c.nr)
		if c.spec < 0 {
			continue
		}
		if rec.Args[bpf.Native] == nil {
			rec.Args[bpf.Native] = map[int]bpf.ArgValues{}
		}
		av := rec.Args[bpf.Native][c.spec]
		av.Any = av.Any || c.any
		av.Values = append(av.Values, c.values...)
		slices.Sort(av.Values)
		av.Values = slices.Compact(av.Values)
		rec.Args[bpf.Native][c.spec] = av
	}
	w.made, w.n = rec, n
	return rec
}
