package main

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The CI report formats of check, diff and merge --check, on indented profiles
// (as syscage writes them) so that every finding has a line of its own.
var reportCases = []goldenCase{
	{"check-bad-github", "txt", []string{"check", "--format", "github", "testdata/ci-bad.input.json"}, 1},
	{"check-bad-sarif", "sarif", []string{"check", "--format", "sarif", "testdata/ci-bad.input.json"}, 1},
	{"check-clean-sarif", "sarif", []string{"check", "--format", "sarif", "testdata/ci-app.input.json"}, 0},
	{"check-docker-github", "txt", []string{"check", "--format", "github", "testdata/docker.input.json", "--arch", "amd64", "--kernel", "6.2"}, 2},
	{"check-spo-github", "txt", []string{"check", "--format", "github", "testdata/ci-spo.input.yaml"}, 2},
	{"diff-github", "txt", []string{"diff", "--format", "github", "testdata/ci-app.input.json", "testdata/ci-new.input.json"}, 0},
	{"diff-sarif", "sarif", []string{"diff", "--format", "sarif", "--exit-code", "testdata/ci-app.input.json", "testdata/ci-new.input.json"}, 1},
	{"merge-check-github", "txt", []string{"merge", "--check", "--format", "github", "testdata/ci-app.input.json", "testdata/ci-new.input.json"}, 1},
	{"merge-check-sarif", "sarif", []string{"merge", "--check", "--format", "sarif", "testdata/ci-app.input.json", "testdata/ci-new.input.json"}, 1},
	{"merge-check-covered-github", "txt", []string{"merge", "--check", "--format", "github", "testdata/merge.golden.json", "testdata/ci-app.input.json", "testdata/ci-new.input.json"}, 0},
}

func TestReportFormatsGolden(t *testing.T) {
	for _, tt := range reportCases {
		t.Run(tt.name, func(t *testing.T) {
			_, want := tt.check(t, "Report")
			// Re-read what CI would read.
			if tt.ext == "sarif" {
				checkSARIF(t, want)
			} else {
				checkWorkflowCommands(t, want)
			}
		})
	}
}

var workflowCommand = regexp.MustCompile(`^::(error|warning|notice) ((?:[a-z]+=[^,:]*)(?:,[a-z]+=[^,:]*)*)::(.+)$`)

// checkWorkflowCommands parses each line as GitHub's runner would, and checks that
// the line it names holds what the message is about.
func checkWorkflowCommands(t *testing.T, data []byte) {
	t.Helper()
	s := bufio.NewScanner(strings.NewReader(string(data)))
	for s.Scan() {
		m := workflowCommand.FindStringSubmatch(s.Text())
		if m == nil {
			t.Errorf("not a workflow command: %q", s.Text())
			continue
		}
		props := map[string]string{}
		for _, kv := range strings.Split(m[2], ",") {
			k, v, _ := strings.Cut(kv, "=")
			props[k] = strings.NewReplacer("%3A", ":", "%2C", ",", "%25", "%").Replace(v)
		}
		if props["file"] == "" || props["title"] == "" {
			t.Errorf("no file or title: %q", s.Text())
			continue
		}
		if l := props["line"]; l != "" {
			n, err := strconv.Atoi(l)
			if err != nil {
				t.Errorf("line %q: %v", l, err)
				continue
			}
			checkLine(t, props["file"], n, m[3])
		}
	}
}

// checkLine: a line number names a line of the file, and when the message quotes
// a syscall that the line lists, it is that line.
func checkLine(t *testing.T, file string, n int, msg string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		t.Errorf("%s:%d: no such line (message %q)", file, n, msg)
		return
	}
	if m := allowedBy.FindStringSubmatch(msg); m != nil && m[2] == file && !strings.Contains(lines[n-1], `"`+m[1]+`"`) {
		t.Errorf("%s:%d is %q, not the line that lists %q", file, n, lines[n-1], m[1])
	}
}

var allowedBy = regexp.MustCompile(`^"([a-z0-9_]+)" is allowed by (\S+) `)

func checkSARIF(t *testing.T, data []byte) {
	t.Helper()
	var log sarifLog
	if err := json.Unmarshal(data, &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "syscage" {
		t.Fatalf("not one SARIF 2.1.0 run of syscage: %s", data)
	}
	run := log.Runs[0]
	if run.Results == nil {
		t.Error("results must be an array, even when empty")
	}
	for i, r := range run.Results {
		if r.RuleIndex >= len(run.Tool.Driver.Rules) || run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("results[%d]: ruleIndex %d does not name rule %q", i, r.RuleIndex, r.RuleID)
		}
		switch r.Level {
		case "error", "warning", "note":
		default:
			t.Errorf("results[%d]: level %q", i, r.Level)
		}
		for _, loc := range r.Locations {
			u, err := url.Parse(loc.PhysicalLocation.ArtifactLocation.URI)
			if err != nil || u.IsAbs() {
				t.Errorf("results[%d]: uri %q: want a relative reference", i, loc.PhysicalLocation.ArtifactLocation.URI)
				continue
			}
			if reg := loc.PhysicalLocation.Region; reg != nil {
				checkLine(t, u.Path, reg.StartLine, r.Message.Text)
			}
		}
	}
}

func TestIndexJSON(t *testing.T) {
	data, err := os.ReadFile("testdata/ci-bad.input.json")
	if err != nil {
		t.Fatal(err)
	}
	ix := indexJSON(data)
	lines := strings.Split(string(data), "\n")
	for path, want := range map[string]string{
		"":                          "{",
		"defaultAction":             `"defaultAction": "SCMP_ACT_ERRNO"`,
		"flags[1]":                  `"SECCOMP_FILTER_FLAG_LOG"`,
		"syscalls":                  `"syscalls": [`,
		"syscalls[0].names[1]":      `"opn"`,
		"syscalls[3].args[0].index": `"index": 6`,
		"syscalls[3].args[0].nope":  `{`, // the nearest ancestor: args[0]
		"listenerPath":              `{`, // absent: the file's first line
	} {
		n := ix.line(path)
		if n < 1 || !strings.Contains(lines[n-1], want) {
			t.Errorf("line(%q) = %d, want the line with %q", path, n, want)
		}
	}
	if n := ix.nameLine("opn"); n < 1 || !strings.Contains(lines[n-1], `"opn"`) {
		t.Errorf("nameLine(opn) = %d", n)
	}
	if n := ix.allowLine(); n < 1 || !strings.Contains(lines[n-1], `"names": [`) {
		t.Errorf("allowLine() = %d", n)
	}
	if indexJSON([]byte("kind: SeccompProfile\n")) != nil {
		t.Error("YAML indexed as JSON")
	}
}

func TestWorkflowCommandEscapes(t *testing.T) {
	var b strings.Builder
	writeReport(&b, formatGitHub, []finding{{rule: "check/note", level: "note", file: "a,b:c%.json", line: 3, message: "50% of\nit"}})
	want := "::notice file=a%2Cb%3Ac%25.json,line=3,title=syscage check/note::50%25 of%0Ait\n"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
}

func TestReportFormatErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "--format", "xml", "testdata/app.input.json"}, `--format "xml": use text, json, github or sarif`},
		{[]string{"merge", "--format", "github", "testdata/app.input.json"}, "--format github is for the --check report"},
		{[]string{"merge", "--check", "--format", "json", "testdata/app.input.json", "testdata/new.input.json"}, `--format "json": use text, github or sarif`},
	} {
		_, _, err := execute(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.args, err, tt.want)
		}
	}
}

// Profiles are files from pull requests: indexing one never panics, and every
// line it finds is in the file.
func FuzzIndexJSON(f *testing.F) {
	for _, name := range []string{"ci-bad.input.json", "ci-new.input.json", "docker.input.json", "ci-spo.input.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"a":[1,{"b":"c"}],"d":"\n"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix := indexJSON(data)
		if ix == nil {
			return
		}
		n := strings.Count(string(data), "\n") + 1
		for p, l := range ix.lines {
			if l < 1 || l > n {
				t.Errorf("path %q at line %d of %d", p, l, n)
			}
		}
		ix.allowLine()
		ix.nameLine("read")
		ix.line("syscalls[0].names[0]")
	})
}
