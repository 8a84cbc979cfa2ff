package cgroups

import (
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An Emptied watcher tells the moment a watched cgroup empties: the kernel
// reports a change of cgroup.events ("populated 0") to inotify, with no poll
// behind it. The host recorder writes a container's profile then, while the
// runtime tears it down; the node agent publishes the exit without reading
// every container's cgroup.events every second.
type Emptied struct {
	f    *os.File
	done chan struct{}

	mu      sync.Mutex
	watches map[int]watch // by watch descriptor
	byDir   map[string]int
}

// watch is a cgroup watched, and what to call when it empties.
type watch struct {
	dir   string
	ended func()
}

// WatchEmptied starts a watcher; it fails where inotify is not available (the
// caller then polls Populated).
func WatchEmptied() (*Emptied, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	e := &Emptied{f: os.NewFile(uintptr(fd), "inotify"), done: make(chan struct{}), watches: map[int]watch{}, byDir: map[string]int{}}
	go e.read()
	return e, nil
}

// Add calls ended, once and from the watcher's goroutine, when the cgroup dir
// empties or is removed. A cgroup empty already is not reported: check
// Populated after Add.
func (e *Emptied) Add(dir string, ended func()) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	wd, err := unix.InotifyAddWatch(int(e.f.Fd()), filepath.Join(dir, "cgroup.events"), unix.IN_MODIFY)
	if err != nil {
		return err
	}
	e.watches[wd], e.byDir[dir] = watch{dir, ended}, wd
	return nil
}

// Remove stops watching dir, if it is watched.
func (e *Emptied) Remove(dir string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if wd, ok := e.byDir[dir]; ok {
		e.forget(dir, wd)
		unix.InotifyRmWatch(int(e.f.Fd()), uint32(wd))
	}
}

func (e *Emptied) forget(dir string, wd int) {
	delete(e.watches, wd)
	delete(e.byDir, dir)
}

// read calls the ended function of each cgroup whose cgroup.events says it
// emptied, until Close.
func (e *Emptied) read() {
	defer close(e.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.PathMax))
	for {
		n, err := e.f.Read(buf)
		if err != nil {
			return // closed; anything else is left to the caller's poll
		}
		var gone []func()
		e.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			wd := int(ev.Wd)
			w, ok := e.watches[wd]
			switch {
			case !ok:
			case ev.Mask&unix.IN_IGNORED != 0: // the cgroup was removed
				e.forget(w.dir, wd)
				gone = append(gone, w.ended)
			case !Populated(w.dir):
				e.forget(w.dir, wd)
				unix.InotifyRmWatch(int(e.f.Fd()), uint32(wd))
				gone = append(gone, w.ended)
			}
		}
		e.mu.Unlock()
		for _, ended := range gone {
			ended()
		}
	}
}

// Close stops watching, and waits for the ended functions being called.
func (e *Emptied) Close() {
	if e == nil {
		return
	}
	e.f.Close()
	<-e.done
}
