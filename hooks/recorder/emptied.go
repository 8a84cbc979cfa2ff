package recorder

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/bpf/cgroups"
)

// emptied tells the recorder the moment a tracked container's cgroup empties: the
// kernel reports a change of cgroup.events ("populated 0") to inotify. The profile
// is then written while the runtime tears the container down, so that the
// poststop hook, which asks for it a few milliseconds later, mostly finds it
// written (make bench: BenchmarkHook, flush steps). The watch loop's poll stays as
// the fallback where inotify fails.
type emptied struct {
	f    *os.File
	done chan struct{}

	mu  sync.Mutex
	wds map[int]*container
}

// watchEmptied starts watching, calling ended with each container whose cgroup
// emptied; nil if inotify is not available.
func watchEmptied(log *slog.Logger, ended func(*container)) *emptied {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		log.Debug("not watching cgroups with inotify: they are polled", "err", err)
		return nil
	}
	e := &emptied{f: os.NewFile(uintptr(fd), "inotify"), done: make(chan struct{}), wds: map[int]*container{}}
	go e.read(log, ended)
	return e
}

// add watches the container's cgroup.events.
func (e *emptied) add(c *container) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	wd, err := unix.InotifyAddWatch(int(e.f.Fd()), filepath.Join(c.dir, "cgroup.events"), unix.IN_MODIFY)
	if err == nil {
		e.wds[wd] = c
	}
}

// read calls ended with each container whose cgroup.events says it emptied, until
// close.
func (e *emptied) read(log *slog.Logger, ended func(*container)) {
	defer close(e.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.PathMax))
	for {
		n, err := e.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				log.Debug("inotify", "err", err)
			}
			return
		}
		var gone []*container
		e.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			c := e.wds[int(ev.Wd)]
			switch {
			case c == nil:
			case ev.Mask&unix.IN_IGNORED != 0: // the cgroup was removed
				delete(e.wds, int(ev.Wd))
				gone = append(gone, c)
			case !cgroups.Populated(c.dir):
				delete(e.wds, int(ev.Wd))
				unix.InotifyRmWatch(int(e.f.Fd()), uint32(ev.Wd))
				gone = append(gone, c)
			}
		}
		e.mu.Unlock()
		for _, c := range gone {
			ended(c)
		}
	}
}

// close stops watching, and waits for a profile being written.
func (e *emptied) close() {
	if e == nil {
		return
	}
	e.f.Close()
	<-e.done
}
