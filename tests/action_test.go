package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
	"github.com/syscage/syscage/tests/workload"
)

// The GitHub Action (action/action.yml) is run here as a runner runs a composite
// action: its inputs with their defaults, each step's `if`, its env evaluated,
// bash with -eo pipefail, GITHUB_OUTPUT and GITHUB_PATH between steps. Of the
// actions it uses, setup-go is checked (Go must be there) and upload-artifact is
// done by copying the file. Nothing reaches GitHub.

type actionSpec struct {
	Inputs  map[string]struct{ Default string } `json:"inputs"`
	Outputs map[string]struct{ Value string }   `json:"outputs"`
	Runs    struct {
		Using string       `json:"using"`
		Steps []actionStep `json:"steps"`
	} `json:"runs"`
}

type actionStep struct {
	Name  string         `json:"name"`
	ID    string         `json:"id"`
	If    string         `json:"if"`
	Uses  string         `json:"uses"`
	Run   string         `json:"run"`
	Shell string         `json:"shell"`
	With  map[string]any `json:"with"`
	Env   map[string]any `json:"env"`
}

// actionRun is one run of the action in a job: its workspace and runner temp.
type actionRun struct {
	workspace, temp string
	env             []string // the job's environment (DOCKER_HOST…)
}

type actionResult struct {
	failed    bool
	stdout    string // every step's output, as the job log shows it
	outputs   map[string]string
	artifacts map[string]string // name -> uploaded copy
}

func loadAction(t *testing.T) (*actionSpec, string) {
	t.Helper()
	dir, err := filepath.Abs("../action")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a actionSpec
	// Fields this runner does not model (name, description, branding) are ignored.
	if err := yaml.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using = %q, want composite", a.Runs.Using)
	}
	return &a, dir
}

func (r *actionRun) run(t *testing.T, inputs map[string]string) actionResult {
	t.Helper()
	a, actionDir := loadAction(t)
	for k := range inputs {
		if _, ok := a.Inputs[k]; !ok {
			t.Fatalf("input %q is not declared in action.yml", k)
		}
	}
	ctx := &exprContext{inputs: map[string]string{}, steps: map[string]map[string]string{}, actionPath: actionDir, temp: r.temp}
	for k, in := range a.Inputs {
		ctx.inputs[k] = in.Default
		if v, ok := inputs[k]; ok {
			ctx.inputs[k] = v
		}
	}
	res := actionResult{outputs: map[string]string{}, artifacts: map[string]string{}}
	pathFile := filepath.Join(r.temp, "_github_path")
	os.WriteFile(pathFile, nil, 0o644)
	var log bytes.Buffer
	for i, s := range a.Runs.Steps {
		ctx.failed = res.failed
		cond := s.If
		if cond == "" {
			cond = "success()"
		}
		if !truthy(ctx.eval(t, cond)) {
			continue
		}
		with := map[string]string{}
		for k, v := range s.With {
			with[k] = ctx.expand(t, fmt.Sprint(v))
		}
		switch {
		case strings.HasPrefix(s.Uses, "actions/setup-go@"):
			if _, err := exec.LookPath("go"); err != nil {
				t.Fatalf("step %d: setup-go: the test machine has no go", i)
			}
			if f := with["go-version-file"]; f != "" {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("step %d: setup-go: go-version-file: %v", i, err)
				}
			}
		case strings.HasPrefix(s.Uses, "actions/upload-artifact@"):
			data, err := os.ReadFile(with["path"])
			if err != nil {
				fmt.Fprintf(&log, "::error::upload-artifact: %v\n", err)
				res.failed = true
				continue
			}
			dst := filepath.Join(r.temp, "_artifacts", with["name"], filepath.Base(with["path"]))
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.WriteFile(dst, data, 0o644)
			res.artifacts[with["name"]] = dst
		case s.Uses != "":
			t.Fatalf("step %d uses %s, which this test does not model", i, s.Uses)
		default:
			if strings.Contains(s.Run, "${{") {
				t.Errorf("step %q puts an expression into its script: pass it through env instead (script injection)", s.Name)
			}
			if s.Shell != "bash" {
				t.Errorf("step %q: shell %q, want bash", s.Name, s.Shell)
			}
			outputs, ok := r.runStep(t, ctx, s, pathFile, actionDir, &log)
			if s.ID != "" {
				ctx.steps[s.ID] = outputs
			}
			if !ok {
				res.failed = true
			}
		}
	}
	for k, o := range a.Outputs {
		res.outputs[k] = ctx.expand(t, o.Value)
	}
	res.stdout = log.String()
	return res
}

// runStep runs a run step as the runner does: the script in a file, bash
// --noprofile --norc -eo pipefail, the step's env over the job's, and the files
// the step writes its outputs and PATH additions to.
func (r *actionRun) runStep(t *testing.T, ctx *exprContext, s actionStep, pathFile, actionDir string, log *bytes.Buffer) (map[string]string, bool) {
	t.Helper()
	script := filepath.Join(r.temp, "_step.sh")
	if err := os.WriteFile(script, []byte(s.Run), 0o644); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(r.temp, "_github_output")
	os.WriteFile(outFile, nil, 0o644)
	// The runner's own environment, then the job's, then the step's.
	env := append(os.Environ(), r.env...)
	// GITHUB_PATH entries come before the job's PATH in later steps.
	added, _ := os.ReadFile(pathFile)
	path := os.Getenv("PATH")
	for _, p := range strings.Fields(string(added)) {
		path = p + ":" + path
	}
	env = append(env, "PATH="+path, "RUNNER_TEMP="+r.temp, "GITHUB_WORKSPACE="+r.workspace,
		"GITHUB_ACTION_PATH="+actionDir, "GITHUB_OUTPUT="+outFile, "GITHUB_PATH="+pathFile, "CI=true", "GITHUB_ACTIONS=true")
	for k, v := range s.Env {
		env = append(env, k+"="+ctx.expand(t, fmt.Sprint(v)))
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
	cmd.Dir = r.workspace
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	fmt.Fprintf(log, "## %s\n%s", s.Name, out)
	outputs := map[string]string{}
	data, _ := os.ReadFile(outFile)
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			outputs[k] = v
		}
	}
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatalf("step %q: %v", s.Name, err)
	}
	return outputs, err == nil
}

// exprContext evaluates the few expressions action.yml uses: inputs.X,
// steps.ID.outputs.X, github.action_path, runner.temp, 'strings', ==, !=, &&, ||,
// !, always(), success(), failure(). Anything else fails the test, so that the
// action cannot come to rely on what this runner does not check.
type exprContext struct {
	inputs     map[string]string
	steps      map[string]map[string]string
	actionPath string
	temp       string
	failed     bool
}

func (c *exprContext) expand(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			t.Fatalf("unterminated expression in %q", s)
		}
		b.WriteString(s[:i])
		v := c.eval(t, s[i+3:i+j])
		if bv, ok := v.(bool); ok {
			v = fmt.Sprint(bv)
		}
		b.WriteString(v.(string))
		s = s[i+j+2:]
	}
}

func truthy(v any) bool {
	if b, ok := v.(bool); ok {
		return b
	}
	return v.(string) != ""
}

func (c *exprContext) eval(t *testing.T, expr string) any {
	t.Helper()
	expr = strings.TrimSpace(expr)
	if e, ok := strings.CutPrefix(expr, "${{"); ok {
		expr = strings.TrimSpace(strings.TrimSuffix(e, "}}"))
	}
	toks := tokenize(t, expr)
	p := &exprParser{t: t, c: c, toks: toks}
	v := p.or()
	if p.i != len(toks) {
		t.Fatalf("expression %q: unexpected %q", expr, toks[p.i])
	}
	return v
}

func tokenize(t *testing.T, s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ':
			i++
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated string in %q", s)
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		case strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			toks = append(toks, s[i:i+2])
			i += 2
		case c == '(' || c == ')' || c == '!':
			toks = append(toks, s[i:i+1])
			i++
		default:
			j := i
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || strings.ContainsRune("._-", rune(s[j]))) {
				j++
			}
			if j == i {
				t.Fatalf("expression %q: unexpected %q", s, s[i:])
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type exprParser struct {
	t    *testing.T
	c    *exprContext
	toks []string
	i    int
}

func (p *exprParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *exprParser) or() any {
	v := p.and()
	for p.peek() == "||" {
		p.i++
		w := p.and()
		if !truthy(v) {
			v = w
		}
	}
	return v
}

func (p *exprParser) and() any {
	v := p.cmp()
	for p.peek() == "&&" {
		p.i++
		w := p.cmp()
		if truthy(v) {
			v = w
		}
	}
	return v
}

func (p *exprParser) cmp() any {
	v := p.unary()
	if op := p.peek(); op == "==" || op == "!=" {
		p.i++
		w := p.unary()
		eq := fmt.Sprint(v) == fmt.Sprint(w)
		return eq == (op == "==")
	}
	return v
}

func (p *exprParser) unary() any {
	if p.peek() == "!" {
		p.i++
		return !truthy(p.unary())
	}
	return p.primary()
}

func (p *exprParser) primary() any {
	tok := p.peek()
	p.i++
	switch {
	case tok == "(":
		v := p.or()
		if p.peek() != ")" {
			p.t.Fatalf("expression: missing )")
		}
		p.i++
		return v
	case strings.HasPrefix(tok, "'"):
		return strings.Trim(tok, "'")
	case tok == "always" || tok == "success" || tok == "failure":
		if p.peek() != "(" || p.i+1 >= len(p.toks) || p.toks[p.i+1] != ")" {
			p.t.Fatalf("expression: %s without ()", tok)
		}
		p.i += 2
		return map[string]bool{"always": true, "success": !p.c.failed, "failure": p.c.failed}[tok]
	case tok == "github.action_path":
		return p.c.actionPath
	case tok == "runner.temp":
		return p.c.temp
	case strings.HasPrefix(tok, "inputs."):
		v, ok := p.c.inputs[strings.TrimPrefix(tok, "inputs.")]
		if !ok {
			p.t.Fatalf("expression: %s is not a declared input", tok)
		}
		return v
	case strings.HasPrefix(tok, "steps."):
		parts := strings.Split(tok, ".")
		if len(parts) != 4 || parts[2] != "outputs" {
			p.t.Fatalf("expression: %s: want steps.ID.outputs.NAME", tok)
		}
		return p.c.steps[parts[1]][parts[3]]
	}
	p.t.Fatalf("expression: %q is not modelled by this test", tok)
	return nil
}

func newActionRun(t *testing.T, env ...string) *actionRun {
	dir := t.TempDir()
	r := &actionRun{workspace: filepath.Join(dir, "ws"), temp: filepath.Join(dir, "tmp"), env: env}
	os.MkdirAll(r.workspace, 0o755)
	os.MkdirAll(r.temp, 0o755)
	return r
}

// indented writes p as syscage writes profiles: one name per line.
func indented(t *testing.T, p *specs.LinuxSeccomp) []byte {
	t.Helper()
	data, err := profile.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestActionCommand(t *testing.T) {
	testenv.RequireRoot(t)
	wl := workload.Build(t, t.TempDir(), workload.Dynamic)
	r := newActionRun(t)
	command := wl + " calls"

	// First run: no profile in the repository; merge writes it (building syscage
	// from the action's own checkout).
	res := r.run(t, map[string]string{"profile": "seccomp/app.json", "command": command, "mode": "merge"})
	if res.failed {
		t.Fatalf("merge run failed:\n%s", res.stdout)
	}
	committed := filepath.Join(r.workspace, "seccomp", "app.json")
	wantAll(t, "merged", readProfile(t, committed))
	if res.outputs["changed"] != "true" {
		t.Errorf("changed = %q on a new profile", res.outputs["changed"])
	}
	art := res.artifacts["seccomp-profile"]
	if a, c := mustRead(t, art), mustRead(t, committed); !bytes.Equal(a, c) {
		t.Errorf("the artifact %s is not the profile written:\n%s\n%s", art, a, c)
	}

	// The gate passes on the committed profile, with the binary given.
	res = r.run(t, map[string]string{"profile": "seccomp/app.json", "command": command, "install": binary})
	if res.failed || res.outputs["changed"] != "false" || strings.Contains(res.stdout, "::error") {
		t.Fatalf("check on the committed profile: failed %v, changed %q:\n%s", res.failed, res.outputs["changed"], res.stdout)
	}

	// A profile without getitimer: the gate fails with an annotation on the
	// profile's line, and the merged profile is still uploaded.
	p, _ := readSpecProfile(t, committed)
	if err := os.WriteFile(committed, indented(t, without(t, p, "getitimer")), 0o644); err != nil {
		t.Fatal(err)
	}
	res = r.run(t, map[string]string{"profile": "seccomp/app.json", "command": command, "install": binary})
	if !res.failed || res.outputs["changed"] != "true" {
		t.Fatalf("check without getitimer passed:\n%s", res.stdout)
	}
	var annotation string
	for _, line := range strings.Split(res.stdout, "\n") {
		if strings.HasPrefix(line, "::error file=seccomp/app.json,line=") && strings.Contains(line, `"getitimer" is allowed by`) {
			annotation = line
		}
	}
	if annotation == "" {
		t.Errorf("no annotation for getitimer on seccomp/app.json:\n%s", res.stdout)
	}
	if !slices.Contains(readProfile(t, res.artifacts["seccomp-profile"]), "getitimer") {
		t.Error("the uploaded profile lacks getitimer")
	}

	// The same as SARIF.
	res = r.run(t, map[string]string{"profile": "seccomp/app.json", "command": command, "install": binary, "report": "sarif", "artifact": ""})
	if !res.failed || len(res.artifacts) != 0 {
		t.Fatalf("sarif check: failed %v, artifacts %v", res.failed, res.artifacts)
	}
	var sarif struct {
		Version string
		Runs    []struct {
			Results []struct{ Message struct{ Text string } }
		}
	}
	if err := json.Unmarshal(mustRead(t, res.outputs["sarif"]), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 {
		t.Fatalf("sarif output %s: %v", res.outputs["sarif"], err)
	}
	if !slices.ContainsFunc(sarif.Runs[0].Results, func(r struct{ Message struct{ Text string } }) bool {
		return strings.Contains(r.Message.Text, "getitimer")
	}) {
		t.Errorf("no SARIF result names getitimer: %+v", sarif.Runs[0].Results)
	}

	// Inputs that contradict each other stop at once, with an error the runner shows.
	res = r.run(t, map[string]string{"profile": "seccomp/app.json", "command": "true", "docker-run": "x", "install": binary})
	if !res.failed || !strings.Contains(res.stdout, "::error title=syscage::set command or docker-run, not both") {
		t.Errorf("command and docker-run together:\n%s", res.stdout)
	}
	res = r.run(t, map[string]string{"profile": "seccomp/none.json", "command": "true", "install": binary})
	if !res.failed || !strings.Contains(res.stdout, "seccomp/none.json does not exist: run the action once with mode merge") {
		t.Errorf("check without a committed profile:\n%s", res.stdout)
	}
}

// The action's Docker path: its runtime script already registered in the
// daemon's daemon.json (as after the action's restart of Docker on a runner), a
// container recorded through it, then merged and gated.
func TestActionDocker(t *testing.T) {
	testenv.RequireRoot(t)
	r := newActionRun(t)
	work := filepath.Join(r.temp, "syscage")
	t.Cleanup(func() {
		// The recorder the action's hook started leaves nothing behind either.
		var cfg struct{ PinDir string }
		if data, err := os.ReadFile(filepath.Join(work, "hook.json")); err == nil {
			json.Unmarshal(data, &cfg)
		}
		(&hookEnv{runDir: filepath.Join(work, "run"), log: filepath.Join(work, "hook.log"), pinDir: cfg.PinDir}).waitRecorderGone(t)
	})
	d := rt.StartDocker(t, map[string]string{"syscage": filepath.Join(work, "bin", "syscage-runtime")})
	wl := workload.Build(t, t.TempDir(), workload.Static)
	image := d.Image(t, map[string]string{"/bin/workload": wl})
	r.env = []string{"DOCKER_HOST=" + d.Host}
	run := "--rm --network none " + image + " /bin/workload calls"

	res := r.run(t, map[string]string{"profile": "seccomp/web.json", "docker-run": run, "mode": "merge", "install": binary})
	if res.failed {
		t.Fatalf("merge run failed:\n%s", res.stdout)
	}
	if !strings.Contains(res.stdout, "Docker has the runtime syscage already") {
		t.Errorf("the runtime was not found registered:\n%s", res.stdout)
	}
	names := readProfile(t, filepath.Join(r.workspace, "seccomp", "web.json"))
	wantAll(t, "docker", names)
	res = r.run(t, map[string]string{"profile": "seccomp/web.json", "docker-run": run, "install": binary})
	if res.failed || res.outputs["changed"] != "false" {
		t.Fatalf("check on the recorded profile: failed %v, changed %q:\n%s", res.failed, res.outputs["changed"], res.stdout)
	}
	// The profile replays.
	out, err := d.Command(t.Context(), "", "run", "--rm", "--network", "none", "--security-opt", "seccomp="+filepath.Join(r.workspace, "seccomp", "web.json"), image, "/bin/workload", "calls").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Errorf("under the recorded profile: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
