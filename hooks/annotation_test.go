package hooks

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testConfig() *Config {
	c := DefaultConfig()
	c.ProfilesDir = "/p"
	c.CompatDirs = []string{"/p", "/q"}
	return c
}

func TestParseAnnotations(t *testing.T) {
	tests := []struct {
		name    string
		ann     map[string]string
		want    *Target
		wantErr string
	}{
		{"ours", map[string]string{Annotation: "web"}, &Target{Dir: "/p", File: "web.json", Merge: true, From: "io.syscage.record=web"}, ""},
		{"replace", map[string]string{Annotation: "web-1.2_x;replace"}, &Target{Dir: "/p", File: "web-1.2_x.json", From: "io.syscage.record=web-1.2_x;replace"}, ""},
		{"compat of", map[string]string{CompatAnnotation: "of:/q/sub/out.json"}, &Target{Dir: "/q", File: "sub/out.json", From: "io.containers.trace-syscall=of:/q/sub/out.json"}, ""},
		{"compat of if", map[string]string{CompatAnnotation: "of:/p/o.json;if:/p/i.json"}, &Target{Dir: "/p", File: "o.json", Base: "i.json", From: "io.containers.trace-syscall=of:/p/o.json;if:/p/i.json"}, ""},
		{"none", map[string]string{"other": "x"}, nil, "no recording annotation"},
		{"both", map[string]string{Annotation: "a", CompatAnnotation: "of:/p/a.json"}, nil, "both io.syscage.record and io.containers.trace-syscall are set: use one"},
		{"empty name", map[string]string{Annotation: ""}, nil, "a profile name is 1-128 letters"},
		{"dotdot", map[string]string{Annotation: ".."}, nil, "a profile name is 1-128 letters"},
		{"hidden", map[string]string{Annotation: ".web"}, nil, "a profile name is 1-128 letters"},
		{"too long", map[string]string{Annotation: strings.Repeat("a", 129)}, nil, "a profile name is 1-128 letters"},
		{"nul", map[string]string{Annotation: "a\x00b"}, nil, "a profile name is 1-128 letters"},
		{"bad option", map[string]string{Annotation: "a;merge"}, nil, `unknown option "merge"`},
		{"compat no of", map[string]string{CompatAnnotation: "if:/p/i.json"}, nil, "of: is missing"},
		{"compat garbage", map[string]string{CompatAnnotation: "/p/o.json"}, nil, "want of:/abs/out.json[;if:/abs/in.json]"},
		{"compat twice", map[string]string{CompatAnnotation: "of:/p/a.json;of:/p/b.json"}, nil, "want of:/abs/out.json"},
		{"compat outside", map[string]string{CompatAnnotation: "of:/etc/x.json"}, nil, "outside the directories the hook config allows (/p, /q)"},
		{"compat the dir itself", map[string]string{CompatAnnotation: "of:/p"}, nil, "outside the directories"},
		{"compat prefix trick", map[string]string{CompatAnnotation: "of:/pp/x.json"}, nil, "outside the directories"},
		{"compat unclean", map[string]string{CompatAnnotation: "of:/p/../etc/x.json"}, nil, "must be an absolute, clean path"},
		{"compat dots in a name", map[string]string{CompatAnnotation: "of:/p/..x.json"}, &Target{Dir: "/p", File: "..x.json", From: "io.containers.trace-syscall=of:/p/..x.json"}, ""},
		{"compat if elsewhere", map[string]string{CompatAnnotation: "of:/p/o.json;if:/q/i.json"}, nil, "same allowed directory"},
		{"compat if outside", map[string]string{CompatAnnotation: "of:/p/o.json;if:/etc/shadow"}, nil, "if:/etc/shadow is outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAnnotations(tt.ann, testConfig())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Error(diff)
			}
		})
	}
	cfg := testConfig()
	cfg.CompatDirs = nil
	if _, err := ParseAnnotations(map[string]string{CompatAnnotation: "of:/p/o.json"}, cfg); err == nil || !strings.Contains(err.Error(), "allows no directory") {
		t.Errorf("no compatDirs: got %v", err)
	}
}

// Whatever an annotation says, the target stays inside an allowed directory.
func FuzzParseAnnotations(f *testing.F) {
	for _, s := range []string{"web", "web;replace", "../x", "of:/p/o.json;if:/p/i.json", "of:/q/a/../b.json", "of:/p/./x"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, ours, compat string) {
		cfg := testConfig()
		for _, ann := range []map[string]string{{Annotation: ours}, {CompatAnnotation: compat}} {
			tg, err := ParseAnnotations(ann, cfg)
			if err != nil {
				continue
			}
			for _, rel := range []string{tg.File, tg.Base} {
				if rel == "" {
					continue
				}
				full := filepath.Join(tg.Dir, rel)
				if filepath.IsAbs(rel) || !strings.HasPrefix(full, tg.Dir+"/") || slices.Contains(strings.Split(rel, "/"), "..") {
					t.Fatalf("%v escapes %s: %q", ann, tg.Dir, rel)
				}
			}
		}
	})
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	if cfg, err := LoadConfig(filepath.Join(dir, "absent.json"), false); err != nil || cfg.ProfilesDir != "/var/lib/syscage/profiles" {
		t.Fatalf("absent default config: %+v, %v", cfg, err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "absent.json"), true); err == nil {
		t.Fatal("an explicitly named missing config was accepted")
	}
	for name, tt := range map[string]struct{ body, want string }{
		"relative dir":  {`{"profilesDir":"p"}`, `profilesDir "p" must be an absolute path`},
		"unknown field": {`{"profileDir":"/p"}`, `unknown field "profileDir"`},
		"bad duration":  {`{"idleExit":"soon"}`, "invalid duration"},
		"zero timeout":  {`{"timeout":"0s"}`, "timeout must be positive"},
		"relative pins": {`{"pinDir":"bpf"}`, `pinDir "bpf" must be an absolute path`},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".json")
			os.WriteFile(p, []byte(tt.body), 0o644)
			if _, err := LoadConfig(p, true); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	p := filepath.Join(dir, "ok.json")
	os.WriteFile(p, []byte(`{"profilesDir":"/x","idleExit":"5s"}`), 0o644)
	cfg, err := LoadConfig(p, true)
	if err != nil || cfg.ProfilesDir != "/x" || cfg.IdleExit.String() != "5s" || cfg.RunDir != "/run/syscage" {
		t.Fatalf("got %+v, %v", cfg, err)
	}
}
