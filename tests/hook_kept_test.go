package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/tests/internal/rt"
)

// With keepLoaded, the recorder's idle exit leaves its programs loaded and
// pinned, attached to nothing; the next container's recorder loads nothing and
// records with them; `syscage-hook daemon --cleanup` removes them (and the env's
// own cleanup then checks that nothing at all is left).
func TestHookKeepLoaded(t *testing.T) {
	e := newHookEnv(t, func(cfg map[string]any) {
		cfg["keepLoaded"] = true
		cfg["idleExit"] = "100ms"
	})
	t.Cleanup(func() { e.cleanupKept(t) })
	dir, spec := rt.Bundle(t, []string{"true"}, nil)
	h := specs.Hook{Path: hookBinary, Args: []string{"syscage-hook", "hook", "--config", e.config}}
	spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{h}, Poststop: []specs.Hook{h}}
	spec.Annotations = map[string]string{"io.syscage.record": "kept"}
	rt.WriteSpec(t, dir, spec)

	var programs [][]string
	for run := range 2 {
		os.Remove(filepath.Join(e.profiles, "kept.json"))
		if res := rt.RuncRun(t, dir); res.ExitCode != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, res.ExitCode, res.Stderr)
		}
		if names := e.profile(t, "kept"); !slices.Contains(names, "execve") {
			t.Errorf("run %d: profile %v lacks the entrypoint's execve", run, names)
		}
		e.waitIdleExit(t)
		kept, _ := filepath.Glob(filepath.Join(e.pinDir, "recorder-*", "progs", "sys_enter"))
		if len(kept) != 1 {
			t.Fatalf("run %d: after the idle exit, kept programs %v, want one sys_enter", run, kept)
		}
		if links, _ := filepath.Glob(filepath.Join(e.pinDir, "recorder-*", "links", "*")); len(links) > 0 {
			t.Errorf("run %d: links %v left: the kept programs are attached with nothing to record", run, links)
		}
		if _, err := os.Stat(e.runDir); err == nil {
			t.Errorf("run %d: %s left after the idle exit", run, e.runDir)
		}
		m := programsRE.FindAllStringSubmatch(e.logText(t), -1)
		if len(m) != run+1 {
			t.Fatalf("run %d: %d recorders started, want %d:\n%s", run, len(m), run+1, e.logText(t))
		}
		programs = append(programs, []string{m[run][1]})
	}
	if !slices.Equal(programs[0], programs[1]) {
		t.Errorf("the second recorder loaded programs %v, not the kept %v", programs[1], programs[0])
	}
	if !reusedRE.MatchString(e.logText(t)) {
		t.Errorf("no recorder says it reused the kept programs:\n%s", e.logText(t))
	}
}

var reusedRE = regexp.MustCompile(`msg="recorder started".* reused=true`)
