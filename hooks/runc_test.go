package hooks

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/oci"
)

func TestRuncBundle(t *testing.T) {
	tests := []struct {
		args   []string
		bundle string
		ok     bool
	}{
		{[]string{"--root", "/run/runc", "--log", "/l", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "id"}, "/b", true},
		{[]string{"create", "--bundle=/b", "id"}, "/b", true},
		{[]string{"--systemd-cgroup", "run", "-b", "/b", "id"}, "/b", true},
		{[]string{"create", "id"}, ".", true},
		{[]string{"--root", "create", "start", "id"}, "", false}, // "create" is --root's value
		{[]string{"start", "id"}, "", false},
		{[]string{"delete", "--force", "id"}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		b, ok := runcBundle(tt.args)
		if b != tt.bundle || ok != tt.ok {
			t.Errorf("runcBundle(%q) = %q, %v; want %q, %v", tt.args, b, ok, tt.bundle, tt.ok)
		}
	}
}

func TestInjectHook(t *testing.T) {
	dir := t.TempDir()
	write := func(v any) {
		b, _ := json.Marshal(v)
		os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	}
	read := func() map[string]any {
		var m map[string]any
		b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		json.Unmarshal(b, &m)
		return m
	}
	hook := specs.Hook{Path: "/usr/local/bin/syscage", Args: []string{"syscage", "hook"}}

	write(map[string]any{"ociVersion": "1.0.2", "x-unknown": 7, "annotations": map[string]string{"other": "1"}})
	if did, err := oci.InjectHook(dir, hook, WantsRecording); err != nil || did {
		t.Fatalf("container without annotation: %v, %v", did, err)
	}
	write(map[string]any{"ociVersion": "1.0.2", "x-unknown": 7, "annotations": map[string]string{Annotation: "web"},
		"hooks": map[string]any{"prestart": []any{map[string]any{"path": "/other"}}}})
	if did, err := oci.InjectHook(dir, hook, WantsRecording); err != nil || !did {
		t.Fatalf("annotated container: %v, %v", did, err)
	}
	m := read()
	if m["x-unknown"] != float64(7) || m["ociVersion"] != "1.0.2" {
		t.Errorf("other fields changed: %v", m)
	}
	hooks := m["hooks"].(map[string]any)
	if pre := hooks["prestart"].([]any); len(pre) != 2 || pre[1].(map[string]any)["path"] != hook.Path {
		t.Errorf("prestart: %v", pre)
	}
	if post := hooks["poststop"].([]any); len(post) != 1 {
		t.Errorf("poststop: %v", post)
	}
	// Twice (hooks.d added it too, or runc run after create) is once.
	if did, err := oci.InjectHook(dir, hook, WantsRecording); err != nil || did {
		t.Fatalf("second injection: %v, %v", did, err)
	}
}

func TestSelectContainer(t *testing.T) {
	kube := map[string]string{CRIContainerType: "container", CRINamespace: "ns", CRIPod: "p", CRIContainerName: "c"}
	tests := []struct {
		name    string
		c       oci.Container
		add     map[string]string
		wantErr string
	}{
		{"nothing", oci.Container{Env: []string{"PATH=/bin"}}, nil, ""},
		{"variable", oci.Container{Env: []string{"PATH=/bin", "SYSCAGE_RECORD=web"}}, map[string]string{Annotation: "web"}, ""},
		{"last wins", oci.Container{Env: []string{"SYSCAGE_RECORD=a", "SYSCAGE_RECORD=web"}}, map[string]string{Annotation: "web"}, ""},
		{"agree", oci.Container{Annotations: map[string]string{Annotation: "web"}, Env: []string{"SYSCAGE_RECORD=web"}}, nil, ""},
		{"disagree", oci.Container{Annotations: map[string]string{Annotation: "web"}, Env: []string{"SYSCAGE_RECORD=db"}}, nil, "disagree"},
		{"compat too", oci.Container{Annotations: map[string]string{CompatAnnotation: "of:/x"}, Env: []string{"SYSCAGE_RECORD=db"}}, nil, "use one"},
		{"kubernetes ignores it", oci.Container{Annotations: kube, Env: []string{"SYSCAGE_RECORD=web"}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add, err := selectContainer(tt.c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error with %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.add, add); diff != "" {
				t.Errorf("added annotations (-want +got):\n%s", diff)
			}
		})
	}
}

// The variable becomes the annotation the hook reads, in config.json, with the hook.
func TestInjectHookForEnv(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"ociVersion":"1.0.2","process":{"args":["true"],"env":["PATH=/bin","SYSCAGE_RECORD=web"]}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	hook := specs.Hook{Path: "/usr/local/bin/syscage", Args: []string{"syscage", "hook"}}
	decide := func(c oci.Container) (map[string]string, bool, error) {
		add, err := selectContainer(c)
		return add, add != nil, err
	}
	if did, err := oci.InjectHookFor(dir, hook, decide); err != nil || !did {
		t.Fatalf("%v, %v", did, err)
	}
	spec, err := oci.LoadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Annotations[Annotation] != "web" || spec.Hooks == nil || len(spec.Hooks.Prestart) != 1 {
		t.Errorf("annotations %v, hooks %+v", spec.Annotations, spec.Hooks)
	}
	if did, err := oci.InjectHookFor(dir, hook, decide); err != nil || did {
		t.Fatalf("second time: %v, %v", did, err)
	}
}

// The wrapper's refusal reaches runc's caller as the last error of runc's log.
func TestReportRuncError(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log.json")
			os.WriteFile(log, []byte(`{"level":"info","msg":"earlier","time":"2026-01-01T00:00:00Z"}`+"\n"), 0o644)
			args := []string{"--root", "/run/r", "--log", log, "--log-format=" + format, "create", "--bundle", "/b", "id"}
			if err := ReportRuncError(args, errors.New(`io.syscage.record="../x": bad`)); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(log)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			last := lines[len(lines)-1]
			if format == "text" {
				if !strings.Contains(last, `level=error msg="syscage-runc: io.syscage.record=\"../x\": bad"`) {
					t.Errorf("log: %s", data)
				}
				return
			}
			// As containerd's shim reads it: a time it parses, the level, the message.
			var entry struct {
				Level, Msg string
				Time       time.Time
			}
			if err := json.Unmarshal([]byte(last), &entry); err != nil {
				t.Fatal(err)
			}
			if entry.Level != "error" || entry.Msg != `syscage-runc: io.syscage.record="../x": bad` || entry.Time.IsZero() {
				t.Errorf("log entry: %s", last)
			}
		})
	}
	if err := ReportRuncError([]string{"create", "id"}, errors.New("x")); err != nil {
		t.Errorf("without --log: %v", err)
	}
}
