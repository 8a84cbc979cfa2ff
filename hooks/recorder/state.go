package recorder

import (
	"crypto/rand"
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
	"github.com/syscage/syscage/hooks"
)

// resultTTL is how long a finished recording's outcome waits for its poststop
// hook (runtimes call it right after the container is gone) before it is dropped.
const resultTTL = time.Minute

// saved is one container's file.
type saved struct {
	Container string       `json:"container"`
	CgroupID  uint64       `json:"cgroupId"`
	CgroupDir string       `json:"cgroupDir"`
	Target    hooks.Target `json:"target"`
	Start     bpf.StartAt  `json:"start"`
	Recorder  int          `json:"recorder"`       // the pid recording it
	Pins      string       `json:"pins,omitempty"` // where its recording is pinned; "" nowhere
	// Set once the recording is finished.
	Done  bool      `json:"done,omitempty"`
	Error string    `json:"error,omitempty"` // why no profile was written
	Ended time.Time `json:"ended,omitzero"`
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
	path := hooks.StatePath(runDir, s.Container)
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
	dir := filepath.Join(runDir, hooks.StateDir)
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
		if err == nil && (s.Container == "" || hooks.StatePath(runDir, s.Container) != path) {
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
