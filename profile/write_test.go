package profile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "profile.json")
	// A file that is not ours may be more restrictive; the replacement is 0644 anyway.
	if err := os.WriteFile(path, []byte("old, longer content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
	}{
		{"overwrite", "{\"defaultAction\": \"SCMP_ACT_ERRNO\"}\n"},
		{"overwrite again, shorter", "{}\n"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteFile(path, []byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.data, string(got)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if mode := st.Mode(); mode != 0o644 {
				t.Errorf("mode = %v, want -rw-r--r--", mode)
			}
			if diff := cmp.Diff([]string{"profile.json"}, dirEntries(t, dir)); diff != "" {
				t.Errorf("directory has temporary files left (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteFileNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.json")
	if err := WriteFile(path, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "{}\n" {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
	if diff := cmp.Diff([]string{"new.json"}, dirEntries(t, dir)); diff != "" {
		t.Errorf("directory (-want +got):\n%s", diff)
	}
}

func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "isdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"missing directory", filepath.Join(dir, "missing", "p.json"), "writing " + filepath.Join(dir, "missing", "p.json")},
		{"target is a directory", filepath.Join(dir, "isdir"), "writing " + filepath.Join(dir, "isdir")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFile(tt.path, []byte("{}\n"))
			if err == nil {
				t.Fatal("WriteFile succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			// Nothing left behind: no file, no temporary.
			if diff := cmp.Diff([]string{"isdir"}, dirEntries(t, dir)); diff != "" {
				t.Errorf("directory (-want +got):\n%s", diff)
			}
			if ents := dirEntries(t, filepath.Join(dir, "isdir")); len(ents) != 0 {
				t.Errorf("isdir has %v", ents)
			}
		})
	}
}

func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "existing.json")
	if err := os.WriteFile(existing, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	readonly := filepath.Join(dir, "readonly")
	if err := os.Mkdir(readonly, 0o555); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		wantErr  string // "" for success
		needUser bool   // root bypasses permission bits, so the case cannot fail as root
	}{
		{name: "new file", path: filepath.Join(dir, "new.json")},
		{name: "existing file", path: existing},
		{
			name:    "missing directory",
			path:    filepath.Join(dir, "missing", "p.json"),
			wantErr: filepath.Join(dir, "missing", "p.json") + ": directory " + filepath.Join(dir, "missing") + " does not exist: create it first",
		},
		{
			name:    "missing grandparent",
			path:    filepath.Join(dir, "a", "b", "p.json"),
			wantErr: "does not exist: create it first",
		},
		{
			name:    "path is a directory",
			path:    dir,
			wantErr: dir + " is a directory: name a file",
		},
		{
			name:    "parent is a file",
			path:    filepath.Join(file, "p.json"),
			wantErr: filepath.Join(file, "p.json") + ": " + file + " is not a directory",
		},
		{
			name:     "read-only directory",
			path:     filepath.Join(readonly, "p.json"),
			wantErr:  "directory " + readonly + " is not writable",
			needUser: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needUser && os.Geteuid() == 0 {
				t.Skip("running as root, which may write to a read-only directory")
			}
			err := CheckWritable(tt.path)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckWritable: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("CheckWritable succeeded, want error containing %q", tt.wantErr)
			case err != nil && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
	// No probe files left behind.
	want := []string{"existing.json", "file", "readonly"}
	if diff := cmp.Diff(want, dirEntries(t, dir)); diff != "" {
		t.Errorf("directory (-want +got):\n%s", diff)
	}
	if ents := dirEntries(t, readonly); len(ents) != 0 {
		t.Errorf("readonly has %v", ents)
	}
}
