package hooks

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/syscage/syscage/bpf"
)

// The host's recorder keeps, in its run directory, one file per container it
// tracks (containers/ID.json): what a recorder that takes over from one that died
// needs to finish the recording, and then how the recording ended, until the
// container's poststop hook asks.

const stateDir = "containers"

// resultTTL is how long a finished recording's outcome waits for its poststop
// hook (runtimes call it right after the container is gone) before it is dropped.
const resultTTL = time.Minute

// saved is one container's file.
type saved struct {
	Container string      `json:"container"`
	CgroupID  uint64      `json:"cgroupId"`
	CgroupDir string      `json:"cgroupDir"`
	Target    Target      `json:"target"`
	Start     bpf.StartAt `json:"start"`
	Recorder  int         `json:"recorder"`       // the pid recording it
	Pins      string      `json:"pins,omitempty"` // where its recording is pinned; "" nowhere
	// Set once the recording is finished.
	Done  bool      `json:"done,omitempty"`
	Error string    `json:"error,omitempty"` // why no profile was written
	Ended time.Time `json:"ended,omitzero"`
}

// statePath is a container's file. Runtime IDs are names already (hex, or
// letters, digits and -_.); any other is hashed.
func statePath(runDir, id string) string {
	name := id
	if !validName(id) {
		sum := sha256.Sum256([]byte(id))
		name = "sha256-" + hex.EncodeToString(sum[:])
	}
	return filepath.Join(runDir, stateDir, name+".json")
}

// hasState reports whether a recorder tracked the container (and its poststop
// hook has not yet asked how that ended).
func hasState(runDir, id string) bool {
	_, err := os.Lstat(statePath(runDir, id))
	return err == nil
}

func (c *container) saved() saved {
	s := saved{Container: c.id, CgroupID: c.cgroupID, CgroupDir: c.dir, Target: *c.target, Start: c.start,
		Recorder: os.Getpid(), Pins: c.pins, Done: c.done, Ended: c.ended}
	if c.err != nil {
		s.Error = c.err.Error()
	}
	return s
}

// save writes a container's file atomically. Only the process must be survived, not
// the host (the run directory is a tmpfs): no fsync.
func saveState(runDir string, s saved) error {
	path := statePath(runDir, s.Container)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("saving the state of %s: %w", s.Container, err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := path + ".tmp-" + hex.EncodeToString(rnd[:])
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving the state of %s: %w", s.Container, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving the state of %s: %w", s.Container, err)
	}
	return nil
}

// loadStates reads every container's file; unreadable ones are returned as
// errors and removed.
func loadStates(runDir string) ([]saved, []error) {
	dir := filepath.Join(runDir, stateDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("reading %s: %w", dir, err)}
	}
	var out []saved
	var errs []error
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !strings.HasSuffix(e.Name(), ".json") {
			os.Remove(path) // a temporary file of a recorder that died writing it
			continue
		}
		data, err := os.ReadFile(path)
		var s saved
		if err == nil {
			err = json.Unmarshal(data, &s)
		}
		if err == nil && (s.Container == "" || statePath(runDir, s.Container) != path) {
			err = errors.New("names no container, or another one")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w: removed", path, err))
			os.Remove(path)
			continue
		}
		out = append(out, s)
	}
	return out, errs
}

// ErrorSuffix names the note written beside where a profile would have gone when
// it could not be written, saying why; the next profile written removes it.
const ErrorSuffix = ".error"

type errorReport struct {
	Container string    `json:"container"`
	Profile   string    `json:"profile"`
	Error     string    `json:"error"`
	Time      time.Time `json:"time"`
}

// writeErrorFile writes NAME.json.error beside t's profile.
func writeErrorFile(t *Target, container string, cause error) error {
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return fmt.Errorf("writing %s%s: %w", t.Path(), ErrorSuffix, err)
	}
	root, err := os.OpenRoot(t.Dir)
	if err != nil {
		return fmt.Errorf("writing %s%s: %w", t.Path(), ErrorSuffix, err)
	}
	defer root.Close()
	data, err := json.MarshalIndent(errorReport{Container: container, Profile: t.Path(), Error: cause.Error(), Time: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	return WriteIn(root, t.File+ErrorSuffix, append(data, '\n'))
}

// notWritten is the error a poststop hook returns for a profile that was not
// written, and that the .error note says too.
func notWritten(t *Target, container string, cause error) error {
	if werr := writeErrorFile(t, container, cause); werr != nil {
		return fmt.Errorf("the profile of container %s was not written to %s: %w (and the note of why could not be written either: %w)", container, t.Path(), cause, werr)
	}
	return fmt.Errorf("the profile of container %s was not written to %s: %w (see %s%s)", container, t.Path(), cause, t.Path(), ErrorSuffix)
}
