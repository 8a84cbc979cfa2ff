package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
)

// profileSet is what --profile names: one profile for every container of the
// pod (FILE), or one per container (DIR, holding CONTAINER.json, or NAME=FILE
// repeated).
type profileSet struct {
	// pod is the one profile, from podFile, when there is no per-container set.
	pod     *specs.LinuxSeccomp
	podFile string
	// containers and files are per container name.
	containers map[string]*specs.LinuxSeccomp
	files      map[string]string
	// what names the set in messages: the file, the directory or the list.
	what string
	// podCoverage and coverage are the counts record wrote beside the profiles
	// (FILE.coverage), where there are any.
	podCoverage *profile.Coverage
	coverage    map[string]*profile.Coverage
}

// perContainer reports whether the set has a profile per container.
func (s *profileSet) perContainer() bool { return s.pod == nil }

// names are the containers with a profile, sorted.
func (s *profileSet) names() []string { return sortedKeys(s.containers) }

// readProfiles reads --profile against a workload. want are the containers that
// need a profile from a directory (all of the template's when empty); with
// NAME=FILE, each NAME must be a container of the template. Every profile is
// checked as readProfile does, and must survive a custom resource.
func readProfiles(values []string, w *workload, want []string) (*profileSet, error) {
	if len(values) == 0 {
		return nil, errors.New("--profile: name a profile FILE, a DIR of CONTAINER.json, or NAME=FILE per container")
	}
	if len(values) == 1 {
		v := values[0]
		st, err := os.Stat(v)
		switch {
		case err == nil && st.IsDir():
			s := &profileSet{containers: map[string]*specs.LinuxSeccomp{}, files: map[string]string{}, what: v}
			if len(want) == 0 {
				want = w.containerNames()
			}
			var missing []string
			for _, c := range want {
				f := filepath.Join(v, c+".json")
				if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
					missing = append(missing, c)
					continue
				}
				s.files[c] = f
			}
			if len(missing) > 0 {
				return nil, fmt.Errorf("--profile %s: no profile for container %s of %s (%s): record them with 'kubectl syscage record %s -o %s/', or give a profile per container with --profile NAME=FILE",
					v, strings.Join(missing, ", "), w.ref, filepath.Join(v, missing[0]+".json"), w.ref, strings.TrimSuffix(v, "/"))
			}
			return s, s.read()
		case err == nil || !strings.Contains(v, "="):
			p, err := readProfile(v)
			if err != nil {
				return nil, err
			}
			if err := storable(p); err != nil {
				return nil, fmt.Errorf("--profile %s: %w", v, err)
			}
			cov, err := readCoverage(v, p)
			if err != nil {
				return nil, err
			}
			return &profileSet{pod: p, podFile: v, what: v, podCoverage: cov}, nil
		}
	}
	s := &profileSet{containers: map[string]*specs.LinuxSeccomp{}, files: map[string]string{}}
	have := w.containerNames()
	var parts []string
	for _, v := range values {
		name, file, ok := strings.Cut(v, "=")
		if !ok || name == "" || file == "" {
			return nil, fmt.Errorf("--profile %s: with several, give each as NAME=FILE, NAME a container of %s (%s)", v, w.ref, strings.Join(have, ", "))
		}
		if !slices.Contains(have, name) {
			return nil, fmt.Errorf("--profile %s: %s has no container %q; its containers are %s", v, w.ref, name, strings.Join(have, ", "))
		}
		if _, dup := s.files[name]; dup {
			return nil, fmt.Errorf("--profile %s: container %s is given a profile twice", v, name)
		}
		s.files[name] = file
		parts = append(parts, v)
	}
	s.what = strings.Join(parts, ", ")
	return s, s.read()
}

// podProfile reports whether --profile names one profile for the whole pod: a
// file, which can be read before the workload is known.
func podProfile(values []string) bool {
	if len(values) != 1 {
		return false
	}
	st, err := os.Stat(values[0])
	return (err == nil && !st.IsDir()) || (err != nil && !strings.Contains(values[0], "="))
}

// read reads the per-container files.
func (s *profileSet) read() error {
	for _, c := range sortedKeys(s.files) {
		f := s.files[c]
		p, err := readProfile(f)
		if err != nil {
			return fmt.Errorf("container %s: %w", c, err)
		}
		if err := storable(p); err != nil {
			return fmt.Errorf("--profile %s: %w", f, err)
		}
		s.containers[c] = p
		cov, err := readCoverage(f, p)
		if err != nil {
			return fmt.Errorf("container %s: %w", c, err)
		}
		if cov != nil {
			if s.coverage == nil {
				s.coverage = map[string]*profile.Coverage{}
			}
			s.coverage[c] = cov
		}
	}
	return nil
}

// readCoverage reads the coverage record wrote beside a profile file, keeping
// the calls the profile still has; nil when there is none.
func readCoverage(profileFile string, p *specs.LinuxSeccomp) (*profile.Coverage, error) {
	f := coverageFile(profileFile)
	data, err := os.ReadFile(f)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--profile %s: reading its coverage: %w", profileFile, err)
	}
	c, err := profile.ParseCoverage(f, data)
	if err != nil {
		return nil, fmt.Errorf("--profile %s: %w: fix or remove it (record writes it beside the profile)", profileFile, err)
	}
	return c.For(p), nil
}
