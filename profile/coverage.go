package profile

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Coverage says how many of the runs a merged profile came from made each of
// its calls: a call that one run in ten made is one a reviewer should look at
// before it is allowed for good. Calls every run made are not listed, so that a
// profile from runs that all behaved alike carries almost nothing.
type Coverage struct {
	// Runs counts the runs (containers, and their restarts) merged.
	Runs int `json:"runs"`
	// Calls are the calls fewer than Runs of them made, each with how many
	// did, keyed as CoverageCalls names them.
	Calls map[string]int `json:"calls,omitempty"`
}

// CoverageCalls returns, sorted, the calls of a profile as coverage counts
// them: each syscall name any rule gives, and for a rule with argument
// conditions also the call with those values, as DescribeCall writes it
// ("socket(AF_INET, SOCK_STREAM)"). A run that made socket with any values made
// "socket".
func CoverageCalls(p *specs.LinuxSeccomp) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, sc := range p.Syscalls {
		for _, name := range sc.Names {
			out = append(out, name)
			if len(sc.Args) > 0 {
				args := slices.Clone(sc.Args)
				sortConds(args)
				out = append(out, DescribeCall(name, args))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Made returns how many runs made call: its count in Calls, else all of them.
func (c *Coverage) Made(call string) int {
	if n, ok := c.Calls[call]; ok {
		return n
	}
	return c.Runs
}

// Tally adds up coverage over the profiles of runs; the zero value is ready.
type Tally struct {
	runs int
	made map[string]int
}

// Add counts a profile merged from runs runs (at least one). calls, if set,
// are the counts of the calls fewer than all of those runs made, as in
// Coverage.Calls; the profile's other calls count for every run.
func (t *Tally) Add(p *specs.LinuxSeccomp, runs int, calls map[string]int) {
	runs = max(runs, 1)
	t.runs += runs
	if t.made == nil {
		t.made = map[string]int{}
	}
	for _, call := range CoverageCalls(p) {
		n, ok := calls[call]
		if !ok || n > runs || n < 0 {
			n = runs
		}
		t.made[call] += n
	}
}

// Runs is how many runs were added.
func (t *Tally) Runs() int { return t.runs }

// Coverage returns the counts so far: nil before anything was added.
func (t *Tally) Coverage() *Coverage {
	if t.runs == 0 {
		return nil
	}
	c := &Coverage{Runs: t.runs}
	for call, n := range t.made {
		if n < t.runs {
			if c.Calls == nil {
				c.Calls = map[string]int{}
			}
			c.Calls[call] = n
		}
	}
	return c
}

// CallCount is a call with how many runs made it.
type CallCount struct {
	Call string
	Made int
}

// Rare returns the calls few runs made, fewest first: those at most one run in
// ten made, and those a single run of three or more made.
func (c *Coverage) Rare() []CallCount {
	if c == nil {
		return nil
	}
	var out []CallCount
	for _, call := range slices.Sorted(maps.Keys(c.Calls)) {
		n := c.Calls[call]
		if n*10 <= c.Runs || n == 1 && c.Runs >= 3 {
			out = append(out, CallCount{call, n})
		}
	}
	slices.SortStableFunc(out, func(a, b CallCount) int { return cmp.Compare(a.Made, b.Made) })
	return out
}

// WriteRare lists for people the calls Rare returns, if any, under a line that
// says what to do about them (advice).
func (c *Coverage) WriteRare(w io.Writer, advice string) {
	rare := c.Rare()
	if len(rare) == 0 {
		return
	}
	fmt.Fprintf(w, "rarely seen, made by few of the %d runs: %s:\n", c.Runs, advice)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  CALL\tRUNS")
	for _, r := range rare {
		fmt.Fprintf(tw, "  %s\t%d of %d\n", r.Call, r.Made, c.Runs)
	}
	tw.Flush()
}

// For keeps the counts of the calls p has: what a profile edited since it
// was recorded still allows.
func (c *Coverage) For(p *specs.LinuxSeccomp) *Coverage {
	if c == nil {
		return nil
	}
	out := &Coverage{Runs: c.Runs}
	for _, call := range CoverageCalls(p) {
		if n, ok := c.Calls[call]; ok {
			if out.Calls == nil {
				out.Calls = map[string]int{}
			}
			out.Calls[call] = n
		}
	}
	return out
}

// MarshalCoverage writes coverage as its files hold it: 2-space indented JSON,
// calls sorted, with a trailing newline, so the same counts give the same bytes.
func MarshalCoverage(c *Coverage) ([]byte, error) {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding coverage: %w", err)
	}
	return append(data, '\n'), nil
}

// ParseCoverage reads a coverage file and checks it: at least one run, and
// each listed call made by at least one run and fewer than all.
func ParseCoverage(name string, data []byte) (*Coverage, error) {
	var c Coverage
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: reading coverage: %w", name, err)
	}
	if c.Runs < 1 {
		return nil, fmt.Errorf("%s: runs is %d: a coverage file counts at least one run", name, c.Runs)
	}
	for _, call := range slices.Sorted(maps.Keys(c.Calls)) {
		if n := c.Calls[call]; n < 1 || n >= c.Runs {
			return nil, fmt.Errorf("%s: calls[%q] is %d: give a count from 1 to %d (calls every run made are left out)", name, call, n, c.Runs-1)
		}
	}
	return &c, nil
}
