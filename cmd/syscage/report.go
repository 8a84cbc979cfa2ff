package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/syscage/syscage/profile"
)

// The report formats CI shows on a pull request, for check, diff and merge
// --check: GitHub Actions workflow commands (::error file=…,line=…::…), which
// GitHub turns into annotations on the lines of the diff, and SARIF 2.1.0, which
// code scanning (GitHub's upload-sarif, and most other CI) reads.
const (
	formatGitHub = "github"
	formatSARIF  = "sarif"
)

// finding is one result for CI: a rule, a level, a file and, when known, a line.
type finding struct {
	rule    string // one of reportRules' ids
	level   string // error, warning or note
	file    string // "" for stdin
	line    int    // 0: the file as a whole
	message string
}

// reportRules are the kinds of result, in the order SARIF lists them.
var reportRules = []struct{ id, text string }{
	{"check/invalid", "The profile is invalid: a runtime would refuse or misread it"},
	{"check/warning", "The profile allows a dangerous syscall, or forbids one every workload needs"},
	{"check/note", "Information about the profile: nothing to fix"},
	{"diff/allowed", "The second profile allows syscalls the first does not"},
	{"diff/removed", "The second profile no longer allows syscalls the first allows"},
	{"diff/changed", "A syscall's verdict, the default action, the architectures or the flags changed"},
	{"merge-check/missing", "The profile does not allow everything the others allow: merging them would change it"},
}

// writeReport writes findings in format (github or sarif).
func writeReport(w io.Writer, format string, findings []finding) error {
	if format == formatGitHub {
		for _, f := range findings {
			level := f.level
			if level == "note" {
				level = "notice"
			}
			var props []string
			if f.file != "" {
				props = append(props, "file="+escapeProperty(f.file))
				if f.line > 0 {
					props = append(props, fmt.Sprintf("line=%d", f.line))
				}
			}
			props = append(props, "title="+escapeProperty("syscage "+f.rule))
			fmt.Fprintf(w, "::%s %s::%s\n", level, strings.Join(props, ","), escapeData(f.message))
		}
		return nil
	}
	return writeSARIF(w, findings)
}

// GitHub's workflow command escapes: data escapes %, CR and LF; a property also
// ':' and ','.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

type sarifLog struct {
	Version string     `json:"version"`
	Schema  string     `json:"$schema"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string       `json:"id"`
	ShortDescription sarifMessage `json:"shortDescription"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

// writeSARIF writes one SARIF 2.1.0 run; its rules are the kinds of result it
// holds, so that the bytes depend on nothing but the findings.
func writeSARIF(w io.Writer, findings []finding) error {
	var rules []sarifRule
	index := map[string]int{}
	for _, r := range reportRules {
		if slices.ContainsFunc(findings, func(f finding) bool { return f.rule == r.id }) {
			index[r.id] = len(rules)
			rules = append(rules, sarifRule{ID: r.id, ShortDescription: sarifMessage{r.text}})
		}
	}
	results := []sarifResult{}
	for _, f := range findings {
		res := sarifResult{RuleID: f.rule, RuleIndex: index[f.rule], Level: f.level, Message: sarifMessage{f.message}}
		if f.file != "" {
			loc := sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: fileURI(f.file)}}}
			if f.line > 0 {
				loc.PhysicalLocation.Region = &sarifRegion{StartLine: f.line}
			}
			res.Locations = []sarifLocation{loc}
		}
		results = append(results, res)
	}
	log := sarifLog{
		Version: "2.1.0",
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Runs: []sarifRun{{
			Tool:    sarifTool{Driver: sarifDriver{Name: "syscage", InformationURI: "https://github.com/syscage/syscage", Rules: rules}},
			Results: results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(log)
}

// fileURI is a relative path as a relative URI reference (CI resolves it against
// the checkout), an absolute one as a file URI.
func fileURI(path string) string {
	p := filepath.ToSlash(path)
	if filepath.IsAbs(path) {
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return (&url.URL{Path: p}).String()
}

// jsonIndex maps the JSON paths of a file (as profile.Finding writes them:
// syscalls[3].names[0]) to their lines, and each string value to its paths.
type jsonIndex struct {
	lines   map[string]int
	strings map[string][]string
}

// indexJSON indexes data, or returns nil when it is not JSON (YAML has no
// positions here, and a finding on it names the file alone).
func indexJSON(data []byte) *jsonIndex {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil
	}
	ix := &jsonIndex{lines: map[string]int{}, strings: map[string][]string{}}
	dec := json.NewDecoder(bytes.NewReader(data))
	lineAt := func() int { return 1 + bytes.Count(data[:dec.InputOffset()-1], []byte{'\n'}) }
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		ix.lines[path] = lineAt()
		switch tok := tok.(type) {
		case string:
			ix.strings[tok] = append(ix.strings[tok], path)
		case json.Delim:
			if tok == '{' {
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					key, _ := k.(string)
					p := key
					if path != "" {
						p = path + "." + key
					}
					if err := walk(p); err != nil {
						return err
					}
				}
			} else {
				for i := 0; dec.More(); i++ {
					if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
						return err
					}
				}
			}
			_, err = dec.Token() // the closing delimiter
			return err
		}
		return nil
	}
	if walk("") != nil {
		return nil
	}
	return ix
}

// line is the line of path, or of its nearest ancestor the file has, or 0.
func (ix *jsonIndex) line(path string) int {
	if ix == nil {
		return 0
	}
	for p := path; p != ""; {
		if l, ok := ix.lines[p]; ok {
			return l
		}
		i := max(strings.LastIndexByte(p, '.'), strings.LastIndexByte(p, '['))
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return ix.lines[""]
}

// nameLine is the line where a rule lists the syscall name, or 0.
func (ix *jsonIndex) nameLine(name string) int {
	if ix == nil {
		return 0
	}
	for _, p := range ix.strings[name] {
		if strings.Contains(p, "syscalls[") && strings.Contains(p, ".names[") {
			return ix.lines[p]
		}
	}
	return 0
}

// allowLine is the line of the names of the first rule that allows without
// conditions: where a syscall the profile lacks would go. Else the syscalls, else 1.
func (ix *jsonIndex) allowLine() int {
	if ix == nil {
		return 0
	}
	for _, p := range ix.strings["SCMP_ACT_ALLOW"] {
		rule, ok := strings.CutSuffix(p, ".action")
		if !ok || !strings.Contains(rule, "syscalls[") {
			continue
		}
		if _, conditional := ix.lines[rule+".args[0]"]; conditional {
			continue
		}
		if l, ok := ix.lines[rule+".names"]; ok {
			return l
		}
	}
	return ix.line("syscalls")
}

// level is a check severity as a report level.
func level(s profile.Severity) (rule, level string) {
	switch s {
	case profile.Error:
		return "check/invalid", "error"
	case profile.Warning:
		return "check/warning", "warning"
	}
	return "check/note", "note"
}

// diffFindings turns a diff of a and b into findings. For diff, what b allows
// more is a warning on b's line that allows it, what it no longer allows a note
// on a's; for merge --check (missing), everything is an error on a, at the rule
// that would allow it.
func diffFindings(d *profile.Diff, a, b *reportFile, others string, missing bool) []finding {
	var out []finding
	// For merge --check, a finding is on a's line that says what would change:
	// its default action, its architectures or flags, or the rule that would
	// allow a syscall.
	add := func(rule, level string, f *reportFile, line int, aKey, msg string) {
		if missing {
			rule, level, f, line = "merge-check/missing", "error", a, a.index.allowLine()
			if aKey != "" {
				line = a.index.line(aKey)
			}
		}
		out = append(out, finding{rule: rule, level: level, file: f.file, line: line, message: msg})
	}
	if c := d.DefaultAction; c != nil {
		add("diff/changed", "warning", b, b.index.line("defaultAction"), "defaultAction", fmt.Sprintf("default action: %s → %s", c.From, c.To))
	}
	if c := d.Listener; c != nil {
		add("diff/changed", "warning", b, b.index.line("listenerPath"), "listenerPath", fmt.Sprintf("listener: %s → %s", c.From, c.To))
	}
	for _, s := range []struct {
		what  string
		key   string
		delta *profile.SetDelta
	}{{"architecture", "architectures", d.Architectures}, {"flag", "flags", d.Flags}} {
		if s.delta == nil {
			continue
		}
		for _, x := range s.delta.Added {
			msg := fmt.Sprintf("%s %s: %s lists it and %s does not", s.what, x, b.name, a.name)
			if missing {
				msg = fmt.Sprintf("%s %s: %s %s it and %s does not", s.what, x, others, verbList(others), a.name)
			}
			add("diff/allowed", "warning", b, b.index.line(s.key), s.key, msg)
		}
		for _, x := range s.delta.Removed {
			add("diff/removed", "note", a, a.index.line(s.key), s.key, fmt.Sprintf("%s %s: %s lists it and %s no longer does", s.what, x, a.name, b.name))
		}
	}
	// One finding per syscall, naming the architectures.
	type change struct{ arches []string }
	collect := func(pick func(profile.ArchDelta) []string) ([]string, map[string]*change) {
		var order []string
		m := map[string]*change{}
		for _, ad := range d.Arches {
			for _, n := range pick(ad) {
				if m[n] == nil {
					m[n] = &change{}
					order = append(order, n)
				}
				m[n].arches = append(m[n].arches, string(ad.Arch))
			}
		}
		return order, m
	}
	names, added := collect(func(ad profile.ArchDelta) []string { return ad.Added })
	for _, n := range names {
		on := strings.Join(added[n].arches, ", ")
		msg := fmt.Sprintf("%q is allowed by %s and not by %s (on %s)", n, b.name, a.name, on)
		if missing {
			msg = fmt.Sprintf("%q is allowed by %s and not by %s (on %s)", n, others, a.name, on)
		}
		add("diff/allowed", "warning", b, b.index.nameLine(n), "", msg)
	}
	names, removed := collect(func(ad profile.ArchDelta) []string { return ad.Removed })
	for _, n := range names {
		add("diff/removed", "note", a, a.index.nameLine(n), "", fmt.Sprintf("%q is allowed by %s and no longer by %s (on %s)", n, a.name, b.name, strings.Join(removed[n].arches, ", ")))
	}
	for _, c := range d.Changed {
		var on []string
		for _, x := range c.On {
			on = append(on, string(x))
		}
		msg := fmt.Sprintf("%q: %s → %s (on %s)", c.Name, c.From, c.To, strings.Join(on, ", "))
		if missing {
			msg = fmt.Sprintf("%q: %s in %s, %s once %s is merged in (on %s)", c.Name, c.From, a.name, c.To, others, strings.Join(on, ", "))
		}
		add("diff/changed", "note", b, b.index.nameLine(c.Name), "", msg)
	}
	if r := d.Rules; r != nil {
		for _, sc := range r.Added {
			j, _ := json.Marshal(sc)
			msg := fmt.Sprintf("rule with argument conditions only in %s: %s", b.name, j)
			if missing {
				msg = fmt.Sprintf("rule with argument conditions in %s and not in %s: %s", others, a.name, j)
			}
			add("diff/allowed", "warning", b, b.index.nameLine(firstName(sc.Names)), "", msg)
		}
		for _, sc := range r.Removed {
			j, _ := json.Marshal(sc)
			add("diff/removed", "note", a, a.index.nameLine(firstName(sc.Names)), "", fmt.Sprintf("rule with argument conditions only in %s: %s", a.name, j))
		}
	}
	return out
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func verbList(names string) string {
	if strings.Contains(names, " ") {
		return "list"
	}
	return "lists"
}

// reportFile is a profile file as a report names it.
type reportFile struct {
	name  string // as messages name it
	file  string // as locations name it: "" for stdin
	index *jsonIndex
}

// newReportFile indexes the file a profile was read from (name, as the command
// was given it), to find the lines of what a report says about it.
func newReportFile(name string) *reportFile {
	if name == "stdin" || name == "-" {
		return &reportFile{name: "stdin"}
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return &reportFile{name: name, file: name}
	}
	return &reportFile{name: name, file: name, index: indexJSON(data)}
}

// reportFormat checks a --format that may be github or sarif besides allowed.
func reportFormat(format string, allowed ...string) error {
	if format == formatGitHub || format == formatSARIF || slices.Contains(allowed, format) {
		return nil
	}
	return fmt.Errorf("--format %q: use %s, %s or %s", format, strings.Join(allowed, ", "), formatGitHub, formatSARIF)
}
