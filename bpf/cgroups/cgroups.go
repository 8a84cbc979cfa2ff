// Package cgroups finds the cgroup2 hierarchy and manages the short-lived cgroups
// syscage records in. It never assumes where cgroup2 is mounted: that is
// /sys/fs/cgroup on pure v2 hosts and /sys/fs/cgroup/unified on hybrid ones.
package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoCgroup2 is returned when no cgroup2 filesystem is mounted.
var ErrNoCgroup2 = errors.New("no cgroup2 filesystem is mounted (looked in /proc/self/mountinfo): mount one with 'mount -t cgroup2 none /sys/fs/cgroup' (or /sys/fs/cgroup/unified on a hybrid host)")

// cgroup2Magic is statfs(2)'s f_type of a cgroup2 filesystem (CGROUP2_SUPER_MAGIC).
const cgroup2Magic = 0x63677270

// usualMounts are where cgroup2 is mounted on pure v2 and on hybrid hosts, in the
// order the mount table of either lists its cgroup2 mount first.
var usualMounts = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}

// Mount returns the mount point of the cgroup2 hierarchy: one of the usual
// places if statfs says cgroup2 is mounted there, else the first cgroup2 mount
// of the mount table. The hook runs it at every container start, and the mount
// table of a host running many containers has thousands of lines, which the
// kernel formats anew at each read.
func Mount() (string, error) {
	for _, dir := range usualMounts {
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) == nil && st.Type == cgroup2Magic {
			return dir, nil
		}
	}
	return mountFromTable()
}

// mountFromTable returns the first cgroup2 mount point of /proc/self/mountinfo.
func mountFromTable() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("reading mount table: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

// parseMountinfo returns the first cgroup2 mount point in a proc(5) mountinfo table.
// Its fields: id parent major:minor root mountpoint options [optional…] - fstype source superopts.
func parseMountinfo(r io.Reader) (string, error) {
	s := bufio.NewScanner(r)
	// Overlay mounts can have lines far longer than bufio's 64 KiB default.
	s.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" {
			continue
		}
		return unescapeOctal(fields[4]), nil
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("reading mount table: %w", err)
	}
	return "", ErrNoCgroup2
}

// unescapeOctal undoes the \040-style escaping of spaces and tabs in mountinfo.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// PathOf returns the cgroup2 path of a process (the "0::/…" line of
// /proc/PID/cgroup), relative to the cgroup2 mount.
func PathOf(pid int) (string, error) {
	name := "/proc/" + strconv.Itoa(pid) + "/cgroup"
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("reading cgroup of pid %d: %w", pid, err)
	}
	p, err := parseProcCgroup(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

func parseProcCgroup(b []byte) (string, error) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if p, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			if len(p) == 0 || p[0] != '/' {
				return "", fmt.Errorf("malformed cgroup2 line %q", line)
			}
			return string(p), nil
		}
	}
	return "", errors.New("no cgroup2 (0::) line: is cgroup2 mounted?")
}

// Self returns the absolute directory of this process's own cgroup2.
func Self() (string, error) {
	mnt, err := Mount()
	if err != nil {
		return "", err
	}
	p, err := PathOf(os.Getpid())
	if err != nil {
		return "", err
	}
	return filepath.Join(mnt, p), nil
}

// ID returns the cgroup2 id of a cgroup directory: its inode number, which is what
// bpf_get_current_cgroup_id() reports for the tasks inside.
func ID(dir string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return st.Ino, nil
}

// Group is a cgroup that syscage created and will remove.
type Group struct {
	Path string // absolute directory
	ID   uint64
}

// Create makes a new, uniquely named cgroup below parent (an absolute directory).
// Empty cgroups of the same prefix whose syscage process is gone (killed before it
// could clean up) are removed on the way.
func Create(parent, prefix string) (*Group, error) {
	sweep(parent, prefix)
	for i := 0; ; i++ {
		dir := filepath.Join(parent, fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), i))
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("creating cgroup: %w", err)
		}
		id, err := ID(dir)
		if err != nil {
			os.Remove(dir)
			return nil, err
		}
		return &Group{Path: dir, ID: id}, nil
	}
}

// sweep removes prefix-PID-N cgroups under parent whose PID is no longer running.
// rmdir refuses a cgroup that still has processes, so nothing alive is touched.
func sweep(parent, prefix string) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix+"-")
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			// One try, no waiting: a cgroup still holding processes stays.
			os.Remove(filepath.Join(parent, e.Name()))
		}
	}
}

// Open opens the cgroup directory for clone3(CLONE_INTO_CGROUP)
// (syscall.SysProcAttr.UseCgroupFD), so a child starts inside it.
func (g *Group) Open() (*os.File, error) {
	f, err := os.OpenFile(g.Path, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening cgroup: %w", err)
	}
	return f, nil
}

// Populated reports whether the cgroup at dir still has processes; one that is
// removed, or cannot be read, has none.
func Populated(dir string) bool {
	p, err := (&Group{Path: dir}).Populated()
	return err == nil && p
}

// Populated reports whether any process is left in the cgroup or below it.
func (g *Group) Populated() (bool, error) {
	b, err := os.ReadFile(filepath.Join(g.Path, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("reading cgroup.events: %w", err)
	}
	return bytes.Contains(b, []byte("populated 1")), nil
}

// Kill kills every process left in the cgroup and waits up to timeout for it to
// empty. It returns how many processes were still there.
func (g *Group) Kill(timeout time.Duration) (int, error) {
	procs, _ := os.ReadFile(filepath.Join(g.Path, "cgroup.procs"))
	left := len(bytes.Fields(procs))
	if populated, err := g.Populated(); err != nil || !populated {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(g.Path, "cgroup.kill"), []byte("1"), 0); err != nil {
		return left, fmt.Errorf("killing cgroup: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		populated, err := g.Populated()
		if err != nil || !populated {
			return left, err
		}
		if time.Now().After(deadline) {
			return left, fmt.Errorf("cgroup %s still has processes %s after kill", g.Path, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Remove removes the cgroup directory (and nested cgroups its processes made).
func (g *Group) Remove() error {
	var dirs []string
	filepath.WalkDir(g.Path, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		// EBUSY for a moment after the last process exits, until it is reaped.
		for try := 0; try < 100; try++ {
			last = os.Remove(dirs[i])
			if last == nil || errors.Is(last, os.ErrNotExist) || !errors.Is(last, syscall.EBUSY) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if last != nil && !errors.Is(last, os.ErrNotExist) {
		return fmt.Errorf("removing cgroup: %w", last)
	}
	return nil
}
