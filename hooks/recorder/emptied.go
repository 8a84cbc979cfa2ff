package recorder

import (
	"log/slog"

	"github.com/syscage/syscage/bpf/cgroups"
)

// emptied tells the recorder the moment a tracked container's cgroup empties
// (cgroups.Emptied): the profile is then written while the runtime tears the
// container down, so that the poststop hook, which asks for it a few
// milliseconds later, mostly finds it written (make bench: BenchmarkHook, flush
// steps). The watch loop's poll stays as the fallback where inotify fails.
type emptied struct {
	w     *cgroups.Emptied
	ended func(*container)
}

// watchEmptied starts watching, calling ended with each container whose cgroup
// emptied; nil if inotify is not available.
func watchEmptied(log *slog.Logger, ended func(*container)) *emptied {
	w, err := cgroups.WatchEmptied()
	if err != nil {
		log.Debug("not watching cgroups with inotify: they are polled", "err", err)
		return nil
	}
	return &emptied{w: w, ended: ended}
}

// add watches the container's cgroup.
func (e *emptied) add(c *container) {
	if e != nil {
		e.w.Add(c.dir, func() { e.ended(c) })
	}
}

// close stops watching, and waits for a profile being written.
func (e *emptied) close() {
	if e != nil {
		e.w.Close()
	}
}
