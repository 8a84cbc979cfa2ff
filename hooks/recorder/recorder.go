package recorder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/profile"
)

// container is one tracked container.
type container struct {
	id       string
	cgroupID uint64
	dir      string // its cgroup2 directory
	target   *hooks.Target
	start    bpf.StartAt
	pins     string // where its recording is pinned ("" nowhere)
	lost     error  // taken over without its recording: why
	once     sync.Once
	err      error
	// Once finished, the host's recorder keeps the outcome for the poststop hook.
	done  bool
	ended time.Time
}

// Daemon is the one recorder that serves every traced container on the host.
type Daemon struct {
	cfg  *hooks.Config
	log  *slog.Logger
	rec  *bpf.Recorder
	opts ServeOptions

	// keep: this is the host's recorder, which saves what it tracks in the run
	// directory, so that another takes over if it dies, and keeps each outcome
	// for the poststop hook.
	keep bool
	pins string // where the recorder is pinned ("" nowhere)
	// emptied finishes a container the moment its cgroup empties (nil: polled).
	emptied *emptied

	mu         sync.Mutex
	containers map[string]*container
	conns      int
	closing    bool
	idleSince  time.Time

	// The profile options of a shipped baseline, parsed once (see profileOptions).
	shipped struct {
		once     sync.Once
		opts     profile.Options
		withArgs bool
		err      error
	}
}

// profileOptions are the config's, parsed once for a shipped baseline; a baseline
// file is read again for each profile, as the user may change it.
func (d *Daemon) profileOptions() (profile.Options, bool, error) {
	if !d.cfg.ShippedBaseline() {
		return d.cfg.ProfileOptions()
	}
	s := &d.shipped
	s.once.Do(func() { s.opts, s.withArgs, s.err = d.cfg.ProfileOptions() })
	return s.opts, s.withArgs, s.err
}

// ServeOptions let a caller other than the host-wide recorder (syscage verify)
// serve hooks with its own recorder and do its own thing with each recording.
type ServeOptions struct {
	// Recorder serves the containers; nil opens one, closed on return.
	Recorder *bpf.Recorder
	// Track adds to how a container is tracked (the hook decides Start).
	Track func(opts *bpf.TrackOptions)
	// Finish receives each container's recording instead of it being written as a
	// profile. It runs before the container's poststop hook returns.
	Finish func(container string, rec *bpf.Recording) error
	// Ready, if set, is closed once the socket accepts connections.
	Ready chan<- struct{}
	// Admit receives each Kubernetes container (one without a recording
	// annotation, sent by a hook because the node's selection names its
	// namespace). The node agent decides there whether to record it and, if so,
	// tracks it itself, returning true; the daemon keeps no state for it. Without
	// Admit such containers are refused.
	Admit func(AdmitRequest) (bool, error)
	// Started is when the process began its work, for the timings logged at
	// level debug; zero leaves them out.
	Started time.Time
}

// AdmitRequest is a Kubernetes container a hook asks to have recorded, before
// its first instruction.
type AdmitRequest struct {
	Container   string // the runtime's container ID
	Annotations map[string]string
	CgroupID    uint64
	CgroupDir   string
	Start       bpf.StartAt
}

// Serve runs the recorder until it has been idle for cfg.IdleExit. If another
// recorder holds the lock, it returns nil at once: that one serves.
func Serve(ctx context.Context, cfg *hooks.Config, log *slog.Logger) error {
	return ServeWith(ctx, cfg, log, ServeOptions{})
}

// ServeWith is Serve with options.
func ServeWith(ctx context.Context, cfg *hooks.Config, log *slog.Logger, opts ServeOptions) error {
	lockPath := filepath.Join(cfg.RunDir, "recorder.lock")
	lock, err := lockServing(lockPath, cfg.Socket())
	if errors.Is(err, syscall.EWOULDBLOCK) {
		log.Debug("another recorder is running", "err", err)
		if opts.Recorder == nil {
			leaveCgroup(cfg, log)
		}
		return nil
	}
	if err != nil {
		return err
	}
	d := &Daemon{cfg: cfg, log: log, opts: opts, keep: opts.Recorder == nil, containers: map[string]*container{}, idleSince: time.Now()}
	defer func() {
		// Everything the recorder made goes, the lock last: a recorder that takes it
		// next finds nothing of this one's.
		if d.rec != nil && opts.Recorder == nil {
			if err := d.rec.Close(); err != nil {
				log.Error("closing the recorder", "err", err)
			}
		}
		if d.keep {
			os.Remove(filepath.Join(cfg.RunDir, hooks.StateDir)) // if no outcome waits for a hook
		}
		unlock(lock, lockPath)
		os.Remove(cfg.RunDir) // if nothing else is in it
		if opts.Recorder == nil {
			leaveCgroup(cfg, log)
		}
	}()

	// Stopped before the recorder is closed (deferred above, so run after).
	d.emptied = watchEmptied(log, d.finish)
	defer d.emptied.close()

	var opened time.Time
	// Once the first request is answered (the hook that started the recorder):
	// what that request should not wait for.
	var first sync.Once
	firstServed := func() {}
	if opts.Recorder != nil {
		d.rec = opts.Recorder
	} else {
		removeStaleCgroup(cfg, log)
		if !opts.Started.IsZero() {
			args := []any{"locked", time.Since(opts.Started)}
			if spawned := hooks.Spawned(); !spawned.IsZero() {
				args = append(args, "spawnToMain", opts.Started.Sub(spawned))
			}
			log.Debug("recorder steps", args...)
		}
		// The shipped baseline, which every profile is built within, is parsed once
		// the hook that started this recorder has been answered, rather than in
		// the first container's poststop. (Go's collector no longer needs putting
		// off over the load: it allocates 0.7 MB, short of the first collection's
		// 4 MB, since the kernel's BTF is read in place.)
		firstServed = func() {
			first.Do(func() {
				if d.cfg.ShippedBaseline() {
					go d.profileOptions()
				}
			})
		}
		var pinErr error
		began := time.Now()
		if d.rec, pinErr, err = openHostRecorder(cfg, log); err != nil {
			return err
		}
		opened = time.Now()
		st := d.rec.OpenSteps()
		if st.FullBTF != nil {
			log.Warn("read the kernel's whole BTF, which is slower: its few types the programs need could not be read alone", "err", st.FullBTF)
		}
		log.Debug("recorder steps", "open", opened.Sub(began), "reused", d.rec.Reused(),
			"spec", st.Spec, "maps", st.Maps, "kernelBTF", st.KernelBTF, "programs", st.Programs, "pins", st.Pins)
		d.pins = d.rec.Takeover().Dir
		d.adopt(pinErr)
	}

	sock := cfg.Socket()
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sock, err)
	}
	defer os.Remove(sock)
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("securing %s: %w", sock, err)
	}
	pidFile := filepath.Join(cfg.RunDir, "recorder.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	defer os.Remove(pidFile)

	// Idle from now, not from before the load: a load longer than idleExit (a
	// busy host, a short idleExit) must not see the recorder exit before the hook
	// that started it has asked.
	d.mu.Lock()
	d.idleSince = time.Now()
	d.mu.Unlock()
	// The hook that started this recorder asks as soon as it listens, and is
	// served meanwhile: the log line asks the kernel about each program (0.6 ms).
	hooks.SignalReady()
	if !opened.IsZero() {
		log.Debug("recorder steps", "openToReady", time.Since(opened))
	}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		log.Info("recorder started", "pid", os.Getpid(), "socket", sock, "programs", d.rec.ProgramIDs(), "pins", d.pins, "reused", d.rec.Reused())
	}()
	defer func() { <-logged }()
	if opts.Ready != nil {
		close(opts.Ready)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.watch(ctx, ln)

	var wg sync.WaitGroup
	for {
		conn, err := ln.Accept()
		if err != nil {
			break // closed by watch when idle, or by ctx
		}
		d.mu.Lock()
		d.conns++
		d.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.serveConn(conn)
			firstServed()
			d.mu.Lock()
			d.conns--
			d.idleSince = time.Now()
			d.mu.Unlock()
		}()
	}
	wg.Wait()
	// Whatever is still tracked (the daemon was stopped) is written as it stands;
	// the outcomes stay in the run directory for the poststop hooks.
	for _, c := range d.tracked() {
		d.finish(c)
	}
	log.Info("recorder exiting", "pid", os.Getpid())
	return nil
}

// detachAfter is how long the host's recorder stays attached after its last
// container: containers started one after another (a CI job's) are tracked
// without attaching again each time (see bpf.Options.DetachAfter).
const detachAfter = time.Second

// openHostRecorder opens the host's recorder with its pins; where pinning fails it
// records without, and says so.
func openHostRecorder(cfg *hooks.Config, log *slog.Logger) (*bpf.Recorder, error, error) {
	opts := bpf.Options{ReportRefused: cfg.Refused(), PinDir: cfg.PinDir, KeepLoaded: cfg.KeepLoaded, DetachAfter: detachAfter}
	rec, err := record.OpenWith(opts)
	if !errors.Is(err, bpf.ErrPinning) {
		return rec, nil, err
	}
	log.Error("recording without pins: if this recorder dies, what it recorded is lost", "pinDir", cfg.PinDir, "err", err)
	opts.PinDir, opts.KeepLoaded = "", false
	rec, err2 := record.OpenWith(opts)
	return rec, err, err2
}

// tracked returns the containers not yet finished.
func (d *Daemon) tracked() []*container {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*container
	for _, c := range d.containers {
		if !c.done {
			out = append(out, c)
		}
	}
	return out
}

// adopt takes over what a recorder that is gone left in the run directory: the
// containers it tracked go on being recorded from the pins, or, if their pins are
// gone, are reported lost; the outcomes it kept wait for their hooks.
func (d *Daemon) adopt(pinErr error) {
	states, errs := loadStates(d.cfg.RunDir)
	for _, err := range errs {
		d.log.Error("the state of a container", "err", err)
	}
	tk := d.rec.Takeover()
	for _, dir := range tk.Stale {
		d.log.Info("removed stale pins", "dir", dir)
	}
	pinned := map[uint64]bool{}
	for _, cg := range tk.Tracked {
		pinned[cg] = true
	}
	var lost []*container
	for _, s := range states {
		target := s.Target
		c := &container{id: s.Container, cgroupID: s.CgroupID, dir: s.CgroupDir, target: &target, start: s.Start, pins: s.Pins, done: s.Done, ended: s.Ended}
		switch {
		case s.Done:
			if s.Error != "" {
				c.err = errors.New(s.Error)
			}
			c.once.Do(func() {})
		case pinned[s.CgroupID] && s.Pins == tk.Dir:
			delete(pinned, s.CgroupID)
			d.log.Info("took over a recording", "container", c.id, "from", s.Recorder, "cgroup", c.dir, "profile", target.Path())
			if err := saveState(d.cfg.RunDir, c.saved()); err != nil {
				d.log.Error("saving state", "container", c.id, "err", err)
			}
		default:
			c.lost = lostReason(s, tk, pinErr)
			lost = append(lost, c)
		}
		d.containers[c.id] = c
		if !c.done {
			d.emptied.add(c)
		}
	}
	for cg := range pinned {
		d.log.Warn("a cgroup was recorded by a recorder that is gone, for no container it saved: dropped", "cgroup", cg)
		if err := d.rec.Untrack(cg); err != nil {
			d.log.Error("untracking", "cgroup", cg, "err", err)
		}
	}
	for _, msg := range tk.Lost {
		d.log.Error("pins of a recorder that is gone could not be taken over", "err", msg)
	}
	for _, c := range lost {
		d.finish(c)
	}
}

func lostReason(s saved, tk bpf.Takeover, pinErr error) error {
	var why string
	switch {
	case s.Pins == "":
		why = "it recorded without pins (pinDir is empty in the hook config, or pinning failed: see the log)"
	case pinErr != nil:
		why = fmt.Sprintf("its pins could not be read: %v", pinErr)
	case len(tk.Lost) > 0:
		why = strings.Join(tk.Lost, "; ")
	default:
		why = fmt.Sprintf("its pins in %s are gone", s.Pins)
	}
	return fmt.Errorf("the recording was lost: the recorder that made it (pid %d) died, and %s", s.Recorder, why)
}

// removeStaleCgroup removes the recorder cgroup a recorder that died left, unless
// this recorder runs in it.
func removeStaleCgroup(cfg *hooks.Config, log *slog.Logger) {
	mnt, err := cgroups.Mount()
	if err != nil {
		return
	}
	dir := filepath.Join(mnt, cfg.RecorderCgroup())
	if self, err := cgroups.Self(); err != nil || self == dir {
		return
	}
	if _, err := os.Stat(dir); err == nil && !cgroups.Populated(dir) {
		if err := os.Remove(dir); err == nil {
			log.Info("removed the cgroup of a recorder that is gone", "cgroup", dir)
		}
	}
}

// leaveCgroup moves the recorder to the cgroup2 root and removes its own cgroup,
// so that nothing of it is left once it exits. A recorder that lost the race for
// the lock may still be on its way out of it, so removal is retried briefly; one
// that serves keeps it, and then it stays.
func leaveCgroup(cfg *hooks.Config, log *slog.Logger) {
	self, err := cgroups.Self()
	if err != nil || filepath.Base(self) != cfg.RecorderCgroup() {
		return
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(self), "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		log.Error("leaving the recorder's cgroup", "cgroup", self, "err", err)
		return
	}
	// Another recorder still in it (one serving, where this one lost the lock)
	// removes it when it leaves.
	if err := (&cgroups.Group{Path: self}).Remove(); err != nil && !cgroups.Populated(self) {
		log.Error("removing the recorder's cgroup", "cgroup", self, "err", err)
	}
}

// watch writes the profile of each container whose cgroup has emptied, and closes
// the listener once the recorder has been idle long enough.
func (d *Daemon) watch(ctx context.Context, ln net.Listener) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			ln.Close()
			return
		case <-tick.C:
		}
		d.mu.Lock()
		var done []*container
		for id, c := range d.containers {
			switch {
			case !c.done && !cgroups.Populated(c.dir):
				done = append(done, c)
			case c.done && time.Since(c.ended) > resultTTL:
				// Its poststop hook never asked.
				delete(d.containers, id)
				os.Remove(hooks.StatePath(d.cfg.RunDir, id))
			}
		}
		idle := d.cfg.IdleExit > 0 && len(d.containers) == 0 && d.conns == 0 && time.Since(d.idleSince) >= time.Duration(d.cfg.IdleExit)
		if idle {
			d.closing = true
		}
		d.mu.Unlock()
		for _, c := range done {
			d.finish(c)
		}
		if idle {
			ln.Close()
			return
		}
	}
}

func (d *Daemon) serveConn(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req hooks.Request
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	var resp hooks.Response
	if err != nil {
		resp.Error = fmt.Sprintf("bad request: %v", err)
	} else {
		resp = d.handle(req)
	}
	b, _ := json.Marshal(resp)
	conn.Write(append(b, '\n'))
}

func (d *Daemon) handle(req hooks.Request) hooks.Response {
	switch req.Op {
	case "track":
		return d.track(req)
	case "flush":
		d.mu.Lock()
		c := d.containers[req.Container]
		d.mu.Unlock()
		if c == nil {
			// Written already (its cgroup emptied first), or never tracked.
			return hooks.Response{}
		}
		d.finishFor(c, true)
		d.mu.Lock()
		if d.containers[req.Container] == c {
			delete(d.containers, req.Container)
		}
		d.idleSince = time.Now()
		d.mu.Unlock()
		if d.keep {
			os.Remove(hooks.StatePath(d.cfg.RunDir, c.id))
		}
		if c.err != nil {
			return hooks.Response{Error: c.err.Error()}
		}
		return hooks.Response{Profile: c.target.Path()}
	}
	return hooks.Response{Error: fmt.Sprintf("unknown op %q", req.Op)}
}

func (d *Daemon) track(req hooks.Request) hooks.Response {
	began := time.Now()
	// The hook checked the annotation already; the recorder, which writes as root,
	// checks again against its own config.
	target, err := hooks.ParseAnnotations(req.Annotations, d.cfg)
	switch {
	case errors.Is(err, hooks.ErrNoAnnotation) && d.opts.Admit != nil:
		tracked, err := d.opts.Admit(AdmitRequest{Container: req.Container, Annotations: req.Annotations, CgroupID: req.CgroupID, CgroupDir: req.CgroupDir, Start: req.Start})
		if err != nil {
			return hooks.Response{Error: err.Error()}
		}
		return hooks.Response{Tracked: tracked}
	case errors.Is(err, hooks.ErrNoAnnotation):
		return hooks.Response{Error: fmt.Sprintf("container %s asks for no recording, and this recorder serves no node agent", req.Container)}
	case err != nil:
		return hooks.Response{Error: err.Error()}
	case d.opts.Admit != nil:
		return hooks.Response{Error: fmt.Sprintf("container %s asks for a recording into a file, which the node agent's recorder does not write: the host's recorder does (its socket is %s)", req.Container, hooks.DefaultConfig().Socket())}
	default:
		if err := checkTarget(target); err != nil {
			return hooks.Response{Error: err.Error()}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return hooks.Response{Retry: true, Error: "recorder is exiting"}
	}
	if c, ok := d.containers[req.Container]; ok {
		if !c.done && c.cgroupID == req.CgroupID {
			// Asked again: the recorder first asked died before it answered, and this
			// one took the container over.
			return hooks.Response{Profile: target.Path(), Tracked: true}
		}
		if !c.done {
			return hooks.Response{Error: fmt.Sprintf("container %s is already being recorded", req.Container)}
		}
		// An outcome no poststop hook asked for, of an earlier container by this ID.
		delete(d.containers, req.Container)
	}
	topts := bpf.TrackOptions{Start: req.Start}
	if d.opts.Track != nil {
		d.opts.Track(&topts)
	}
	c := &container{id: req.Container, cgroupID: req.CgroupID, dir: req.CgroupDir, target: target, start: req.Start, pins: d.pins}
	checked := time.Now()
	// The state, which lets the next recorder finish the recording if this one
	// dies, is saved while the maps are updated, and the hook is answered once
	// both are done. A recorder that dies before it answers leaves a state of an
	// untracked cgroup (reported lost, then tracked anew), or a tracked cgroup
	// with no state (dropped, then tracked anew): either way the hook asks the
	// next recorder, and the container has run nothing yet.
	var saveErr error
	var saved time.Duration
	var wg sync.WaitGroup
	if d.keep {
		wg.Go(func() {
			saveErr = saveState(d.cfg.RunDir, c.saved())
			saved = time.Since(checked)
		})
	}
	attached := d.rec.Attached()
	err = d.rec.TrackWith(req.CgroupID, topts)
	maps := time.Since(checked)
	wg.Wait()
	if err == nil && saveErr != nil {
		if uerr := d.rec.Untrack(req.CgroupID); uerr != nil {
			d.log.Error("untracking", "container", req.Container, "err", uerr)
		}
		err = saveErr
	}
	if err != nil {
		if d.keep {
			os.Remove(hooks.StatePath(d.cfg.RunDir, c.id))
		}
		return hooks.Response{Error: err.Error()}
	}
	d.log.Debug("track steps", "container", req.Container, "check", checked.Sub(began), "state", saved, "maps", maps, "both", time.Since(checked), "attach", !attached)
	d.containers[req.Container] = c
	d.emptied.add(c)
	d.log.Info("recording", "container", req.Container, "cgroup", req.CgroupDir, "start", req.Start, "profile", target.Path())
	return hooks.Response{Profile: target.Path(), Tracked: true}
}

// finish writes a container's profile and stops tracking it, once.
func (d *Daemon) finish(c *container) { d.finishFor(c, false) }

// finishFor is finish; asked is true where the container's poststop hook asked,
// which is answered at once: a profile written is not saved as an outcome for it
// then, and its state is removed instead. A recorder that dies before the profile
// is written leaves the state and the pins, and the next one finishes it; one that
// dies after leaves neither, and the hook, asking again, is told nothing is left
// to write. A failure is saved, so that the hook asking again is told of it.
func (d *Daemon) finishFor(c *container, asked bool) {
	c.once.Do(func() {
		if c.lost != nil {
			c.err = c.lost
		} else {
			c.err = d.write(c)
			began := time.Now()
			if err := d.rec.Untrack(c.cgroupID); err != nil && c.err == nil {
				c.err = err
			}
			d.log.Debug("untrack steps", "container", c.id, "untrack", time.Since(began), "detached", !d.rec.Attached())
		}
		if c.err != nil && d.opts.Finish == nil {
			c.err = hooks.NotWritten(c.target, c.id, c.err)
		}
		if c.err != nil {
			d.log.Error("writing profile", "container", c.id, "profile", c.target.Path(), "err", c.err)
		}
		d.mu.Lock()
		c.done, c.ended = true, time.Now()
		if !d.keep {
			delete(d.containers, c.id)
		}
		d.idleSince = time.Now()
		d.mu.Unlock()
		if d.keep && asked && c.err == nil {
			os.Remove(hooks.StatePath(d.cfg.RunDir, c.id))
		} else if d.keep {
			if err := saveState(d.cfg.RunDir, c.saved()); err != nil {
				d.log.Error("saving state", "container", c.id, "err", err)
			}
		}
	})
}

func (d *Daemon) write(c *container) error {
	began := time.Now()
	rec, err := d.rec.Read(c.cgroupID)
	if err != nil {
		return err
	}
	read := time.Now()
	if d.opts.Finish != nil {
		return d.opts.Finish(c.id, rec)
	}
	popts, withArgs, err := d.profileOptions()
	if err != nil {
		return err
	}
	built, err := record.Profile(rec, popts, withArgs)
	if err != nil {
		return err
	}
	p, unnamed := built.Profile, built.Unnamed
	if len(unnamed) > 0 || rec.Stats.OutOfRange > 0 {
		d.log.Warn("syscalls left out of the profile", "container", c.id, "unnamed", unnamed, "outOfRange", rec.Stats.OutOfRange)
	}
	t := c.target
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(t.Dir)
	if err != nil {
		return err
	}
	defer root.Close()
	inputs := []profile.Named{}
	for _, name := range []string{t.Base, mergeFile(t)} {
		if name == "" {
			continue
		}
		data, err := root.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) && name == mergeFile(t) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", filepath.Join(t.Dir, name), err)
		}
		prev, err := profile.Parse(filepath.Join(t.Dir, name), data)
		if err != nil {
			return err
		}
		inputs = append(inputs, profile.Named{Name: filepath.Join(t.Dir, name), Profile: prev})
	}
	// The recording alone is in normal form and within the baseline already
	// (FromRecorded did both); merged with an earlier profile, it is brought back
	// within the baseline, which that profile may exceed.
	merged, err := p, error(nil)
	if len(inputs) > 0 {
		inputs = append(inputs, profile.Named{Name: "the recording of " + c.id, Profile: p})
		merged, err = profile.Merge(inputs...)
		if err == nil && popts.Baseline != nil {
			var dropped []profile.Dropped
			merged, dropped, err = popts.Baseline.Clip(t.Path(), merged)
			built.Dropped = append(built.Dropped, dropped...)
		}
	}
	if err != nil {
		// Keep the recording rather than lose it to the conflict.
		data, _ := profile.Marshal(p)
		if werr := hooks.WriteIn(root, t.File+".unmerged", data); werr != nil {
			return errors.Join(err, werr)
		}
		return fmt.Errorf("%w: this run was written to %s.unmerged", err, t.Path())
	}
	data, err := profile.Marshal(merged)
	if err != nil {
		return err
	}
	builtAt := time.Now()
	wroteAt := builtAt
	defer func() {
		d.log.Debug("flush steps", "container", c.id, "read", read.Sub(began), "build", builtAt.Sub(read), "write", wroteAt.Sub(builtAt), "reports", time.Since(wroteAt))
	}()
	if err := hooks.WriteIn(root, t.File, data); err != nil {
		return err
	}
	wroteAt = time.Now()
	if err := root.Remove(t.File + hooks.ErrorSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := d.writeDenials(root, c, rec); err != nil {
		return err
	}
	baseName := ""
	if popts.Baseline != nil {
		baseName = popts.Baseline.Name
	}
	if err := writeDropped(root, t.File+".dropped", baseName, built.Dropped); err != nil {
		return err
	}
	if len(built.Dropped) > 0 {
		d.log.Warn("recorded calls the baseline refuses, left out of the profile", "container", c.id, "profile", t.Path(), "baseline", baseName, "dropped", dropStrings(built.Dropped), "keep", "set \"baseline\": \"none\" in the hook config")
	}
	d.log.Info("profile written", "container", c.id, "profile", t.Path(), "syscalls", len(rec.Syscalls[bpf.Native]), "events", rec.Stats.Events)
	return nil
}

// checkTarget refuses, before the container starts, a profile path that could not
// be written: through a symbolic link or onto something other than a file.
func checkTarget(t *hooks.Target) error {
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return fmt.Errorf("profiles directory: %w", err)
	}
	root, err := os.OpenRoot(t.Dir)
	if err != nil {
		return fmt.Errorf("profiles directory: %w", err)
	}
	defer root.Close()
	for _, name := range []string{t.File, t.Base} {
		if name == "" {
			continue
		}
		fi, err := root.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist) && name == t.File:
		case err != nil:
			return fmt.Errorf("%s (from %s): %w", filepath.Join(t.Dir, name), t.From, err)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s (from %s) is not a regular file (a symbolic link?): refusing to write through it", filepath.Join(t.Dir, name), t.From)
		}
	}
	return nil
}

// DeniedSuffix names the report, beside a profile, of the calls the filter in force
// refused while the container was recorded; it is removed when there were none.
const DeniedSuffix = ".denied"

type deniedReport struct {
	Container string          `json:"container"`
	Note      string          `json:"note"`
	Denied    []record.Denial `json:"denied"`
}

func (d *Daemon) writeDenials(root *os.Root, c *container, rec *bpf.Recording) error {
	name := c.target.File + DeniedSuffix
	denials, err := record.Denials(rec)
	if err != nil {
		return err
	}
	if len(denials) == 0 {
		if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	d.log.Warn("the seccomp filter in force refused calls: they are not in the profile", "container", c.id, "denied", denials)
	data, err := json.MarshalIndent(deniedReport{
		Container: c.id,
		Note:      "calls the container's seccomp filter refused while it was recorded: they never ran, so the profile does not allow them; record with a more permissive filter if the workload needs them",
		Denied:    denials,
	}, "", "  ")
	if err != nil {
		return err
	}
	return hooks.WriteIn(root, name, append(data, '\n'))
}

func mergeFile(t *hooks.Target) string {
	if t.Merge {
		return t.File
	}
	return ""
}

// lockServing is lockFile for a recorder: it waits up to a second for a
// recorder on its way out to let go, and gives up (EWOULDBLOCK) as soon as
// another recorder listens on sock. Containers started together after an idle
// period each start a recorder; one takes the lock and serves, and the others
// go at once rather than wait for the lock, outlive the hooks that started
// them (which ask the one that listens), and take the lock when it exits.
func lockServing(path, sock string) (*os.File, error) {
	return lockWhile(path, time.Second, func() bool { return !hooks.Listening(sock) })
}

// lockFile takes an exclusive lock on path, waiting up to wait for a recorder that
// is exiting to let go of it. A recorder removes the file before it lets go, so a
// lock taken on a file no longer at path is let go and taken again.
func lockFile(path string, wait time.Duration) (*os.File, error) {
	return lockWhile(path, wait, nil)
}

// lockWhile is lockFile that also gives up, with EWOULDBLOCK, once keepWaiting
// (if set) says so.
func lockWhile(path string, wait time.Duration, keepWaiting func() bool) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("run dir: %w", err)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if errors.Is(err, fs.ErrNotExist) && time.Now().Before(deadline) {
			continue // the directory went with the recorder that left
		}
		if err != nil {
			return nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			fi, ferr := f.Stat()
			pi, perr := os.Stat(path)
			if ferr == nil && perr == nil && os.SameFile(fi, pi) {
				return f, nil
			}
			f.Close()
			continue
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) || keepWaiting != nil && !keepWaiting() {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unlock removes the lock file, then lets go of it.
func unlock(f *os.File, path string) {
	os.Remove(path)
	f.Close()
}

// DroppedSuffix names the report, beside a profile, of the recorded calls its
// baseline refuses, left out of it; it is removed when there were none.
const DroppedSuffix = ".dropped"

type droppedReport struct {
	Baseline string   `json:"baseline"`
	Note     string   `json:"note"`
	Dropped  []string `json:"dropped"`
}

func dropStrings(d []profile.Dropped) []string {
	out := make([]string, len(d))
	for i, x := range d {
		out[i] = x.String()
	}
	return out
}

func writeDropped(root *os.Root, name, baseline string, dropped []profile.Dropped) error {
	if len(dropped) == 0 {
		if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err := json.MarshalIndent(droppedReport{
		Baseline: baseline,
		Note:     "recorded calls the baseline refuses, left out of the profile; to keep them, set \"baseline\": \"none\" in the hook config",
		Dropped:  dropStrings(dropped),
	}, "", "  ")
	if err != nil {
		return err
	}
	return hooks.WriteIn(root, name, append(data, '\n'))
}
