package recorder

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/hooks"
)

// Cleanup removes everything the host's recorder left behind: the pins of every
// build below cfg.PinDir, the containers' state and outcomes, the lock, socket and
// pid files, the run directory and the recorder's cgroup. Recordings still pinned
// are first written as they stand, as a recorder that is stopped writes them. It
// refuses while a recorder runs. Each thing removed is reported to out.
func Cleanup(cfg *hooks.Config, log *slog.Logger, out io.Writer) error {
	_, err := os.Stat(cfg.RunDir)
	runDir := err == nil
	lockPath := filepath.Join(cfg.RunDir, "recorder.lock")
	lock, err := lockFile(lockPath, time.Second)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		pid := "?"
		if b, err := os.ReadFile(filepath.Join(cfg.RunDir, "recorder.pid")); err == nil {
			pid = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("a recorder is running (pid %s): it removes what it made itself once idle for %s; to remove it now, stop it first (kill -TERM %s), then clean up", pid, cfg.IdleExit, pid)
	}
	if err != nil {
		return err
	}
	var errs []error
	states, serrs := loadStates(cfg.RunDir)
	errs = append(errs, serrs...)
	var pins []string
	if cfg.PinDir != "" {
		pins, _ = filepath.Glob(filepath.Join(cfg.PinDir, "recorder-*"))
	}
	if len(states) > 0 || len(pins) > 0 {
		errs = append(errs, finishLeft(cfg, log, out))
	}
	removed, err := bpf.RemovePins(cfg.PinDir)
	errs = append(errs, err)
	for _, dir := range removed {
		fmt.Fprintf(out, "removed pins %s\n", dir)
	}
	for _, s := range states {
		if s.Done {
			fmt.Fprintf(out, "dropped the outcome of container %s, which its poststop hook did not ask for\n", s.Container)
		}
	}
	for _, path := range []string{filepath.Join(cfg.RunDir, hooks.StateDir), cfg.Socket(), filepath.Join(cfg.RunDir, "recorder.pid")} {
		if _, err := os.Lstat(path); err == nil {
			errs = append(errs, os.RemoveAll(path))
			fmt.Fprintf(out, "removed %s\n", path)
		}
	}
	unlock(lock, lockPath)
	if err := os.Remove(cfg.RunDir); err == nil && runDir {
		fmt.Fprintf(out, "removed %s\n", cfg.RunDir)
	}
	if mnt, err := cgroups.Mount(); err == nil {
		dir := filepath.Join(mnt, cfg.RecorderCgroup())
		if _, err := os.Stat(dir); err == nil {
			if err := os.Remove(dir); err != nil {
				errs = append(errs, fmt.Errorf("removing the recorder's cgroup %s (is a process still in it? see its cgroup.procs): %w", dir, err))
			} else {
				fmt.Fprintf(out, "removed cgroup %s\n", dir)
			}
		}
	}
	return errors.Join(errs...)
}

// finishLeft takes over what a recorder that died left and writes every recording
// as it stands.
func finishLeft(cfg *hooks.Config, log *slog.Logger, out io.Writer) error {
	rec, pinErr, err := openHostRecorder(cfg, log)
	if err != nil {
		return fmt.Errorf("taking over the recordings left: %w", err)
	}
	d := &Daemon{cfg: cfg, log: log, rec: rec, keep: true, containers: map[string]*container{}, pins: rec.Takeover().Dir}
	d.adopt(pinErr)
	for _, c := range d.containers {
		if c.lost != nil {
			fmt.Fprintf(out, "container %s: %v\n", c.id, c.err)
		}
	}
	for _, c := range d.tracked() {
		d.finish(c)
		if c.err != nil {
			fmt.Fprintf(out, "container %s: %v\n", c.id, c.err)
		} else {
			fmt.Fprintf(out, "container %s: wrote %s as recorded so far\n", c.id, c.target.Path())
		}
	}
	tk := rec.Takeover()
	for _, dir := range tk.Stale {
		fmt.Fprintf(out, "removed pins %s\n", dir)
	}
	_, err = os.Stat(tk.Dir)
	if err := rec.Close(); err != nil {
		return err
	}
	if err == nil && len(tk.Tracked) > 0 {
		fmt.Fprintf(out, "removed pins %s\n", tk.Dir)
	}
	return nil
}
