package hooks

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

const (
	// Annotation asks for a recording: io.syscage.record=NAME writes
	// <profilesDir>/NAME.json, merged into what earlier runs of NAME recorded;
	// NAME;replace starts it afresh.
	Annotation = "io.syscage.record"
	// CompatAnnotation is containers/oci-seccomp-bpf-hook's:
	// of:/abs/out.json[;if:/abs/in.json] records into of, starting from if.
	CompatAnnotation = "io.containers.trace-syscall"
)

// validName accepts 1-128 ASCII letters, digits, '.', '_' and '-', starting with a
// letter or digit. A loop rather than a regexp: compiling the {0,127} repetition
// cost every start of the binary, hook calls included, ~0.4 ms and 1700 allocations.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Target is where a container's recording goes, within one confined directory.
type Target struct {
	Dir   string // the allowed directory everything below is relative to
	File  string // the profile, relative to Dir, never escaping it
	Base  string // a profile to start from, relative to Dir ("" for none)
	Merge bool   // merge into File's current contents, if any
	From  string // the annotation, for messages
}

// Path is the profile's full path.
func (t *Target) Path() string { return filepath.Join(t.Dir, t.File) }

// ErrNoAnnotation is returned for a container that asked for no recording.
var ErrNoAnnotation = errors.New("no recording annotation")

// ParseAnnotations finds the recording a container's annotations ask for and
// confines it to the directories cfg allows.
func ParseAnnotations(ann map[string]string, cfg *Config) (*Target, error) {
	v, ours := ann[Annotation]
	cv, compat := ann[CompatAnnotation]
	switch {
	case ours && compat:
		return nil, fmt.Errorf("both %s and %s are set: use one", Annotation, CompatAnnotation)
	case ours:
		return parseOurs(v, cfg)
	case compat:
		return parseCompat(cv, cfg)
	}
	return nil, ErrNoAnnotation
}

func parseOurs(v string, cfg *Config) (*Target, error) {
	name, opt, hasOpt := strings.Cut(v, ";")
	t := &Target{Dir: cfg.ProfilesDir, File: name + ".json", Merge: true, From: Annotation + "=" + v}
	if hasOpt {
		if opt != "replace" {
			return nil, fmt.Errorf("%s=%q: unknown option %q: the only option is \";replace\"", Annotation, v, opt)
		}
		t.Merge = false
	}
	if !validName(name) {
		return nil, fmt.Errorf("%s=%q: a profile name is 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit (no '/' or \"..\"): it becomes %s/NAME.json", Annotation, v, cfg.ProfilesDir)
	}
	return t, nil
}

func parseCompat(v string, cfg *Config) (*Target, error) {
	var of, in string
	for _, part := range strings.Split(v, ";") {
		key, val, ok := strings.Cut(part, ":")
		switch {
		case ok && key == "of" && of == "":
			of = val
		case ok && key == "if" && in == "":
			in = val
		default:
			return nil, fmt.Errorf("%s=%q: want of:/abs/out.json[;if:/abs/in.json]", CompatAnnotation, v)
		}
	}
	if of == "" {
		return nil, fmt.Errorf("%s=%q: of: is missing: want of:/abs/out.json[;if:/abs/in.json]", CompatAnnotation, v)
	}
	// Without if: the existing hook writes only what this run recorded.
	t := &Target{From: CompatAnnotation + "=" + v}
	var err error
	if t.Dir, t.File, err = confine(of, cfg.CompatDirs, "of"); err != nil {
		return nil, fmt.Errorf("%s=%q: %w", CompatAnnotation, v, err)
	}
	if in != "" {
		dir, rel, err := confine(in, cfg.CompatDirs, "if")
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", CompatAnnotation, v, err)
		}
		if dir != t.Dir {
			return nil, fmt.Errorf("%s=%q: of: and if: must lie in the same allowed directory", CompatAnnotation, v)
		}
		t.Base = rel
	}
	return t, nil
}

// confine returns the allowed directory p lies in and p relative to it. The path
// must be absolute and clean; symbolic links are dealt with when the file is
// opened, through os.Root, which refuses any that lead out of the directory.
func confine(p string, allowed []string, what string) (dir, rel string, err error) {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return "", "", fmt.Errorf("%s:%s must be an absolute, clean path", what, p)
	}
	for _, d := range allowed {
		// p is clean, so it lies inside d exactly when no element of the relative
		// path is "..": a file may well be called "..x".
		r, err := filepath.Rel(d, p)
		if err == nil && r != "." && r != ".." && !strings.HasPrefix(r, "../") {
			return d, r, nil
		}
	}
	if len(allowed) == 0 {
		return "", "", fmt.Errorf("%s:%s is refused: the hook config allows no directory for %s (set compatDirs)", what, p, CompatAnnotation)
	}
	return "", "", fmt.Errorf("%s:%s is outside the directories the hook config allows (%s)", what, p, strings.Join(allowed, ", "))
}
