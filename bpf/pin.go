//go:build linux

package bpf

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// A recorder opened with Options.PinDir keeps its maps in bpffs, and its links too
// while a cgroup is tracked, so that the kernel goes on recording whatever happens
// to the process that loaded it, and the next recorder takes the recordings over.
//
// The pins of one build live in PinDir/recorder-<hash of the object and its
// constants>: a binary built from another object never reads maps laid out for
// another, and removes them instead (Takeover.Lost says what that cost).

// ErrPinning wraps a failure to keep the recorder in bpffs: a caller may record
// without pins rather than not at all.
var ErrPinning = errors.New("pinning the recorder")

// Takeover is what Open found in the pin directory.
type Takeover struct {
	// Dir is this build's pin directory.
	Dir string
	// Tracked are the cgroups a recorder that is gone was recording. They are
	// tracked by this one now, with everything they made since they were tracked,
	// before the other recorder died and after.
	Tracked []uint64
	// Stale are pin directories removed because nothing in them was tracked.
	Stale []string
	// Lost says why recordings found pinned could not be taken over.
	Lost []string
}

type pinState struct {
	root, dir string
	resumed   bool // the maps are those of a recorder that is gone
	reused    bool // and the programs too: nothing was loaded (Options.KeepLoaded)
	takeover  Takeover
}

const buildPrefix = "recorder-"

// Takeover returns what Open found pinned; the zero value without Options.PinDir.
func (r *Recorder) Takeover() Takeover {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pins == nil {
		return Takeover{}
	}
	t := r.pins.takeover
	t.Tracked = slices.Clone(t.Tracked)
	return t
}

// Reused reports whether Open found the programs loaded and pinned
// (Options.KeepLoaded), so that it loaded nothing into the kernel.
func (r *Recorder) Reused() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pins != nil && r.pins.reused
}

// buildName names the pin directory of this object with these constants.
func buildName(spec *ebpf.CollectionSpec) string {
	h := sha256.New()
	h.Write(_RecorderBytes)
	var names []string
	for name, v := range spec.Variables {
		if v.Constant() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(h, "%s=%x;", name, spec.Variables[name].Value)
	}
	return buildPrefix + hex.EncodeToString(h.Sum(nil))[:16]
}

// pinnableMaps returns the maps of the objects struct by their name in the
// collection, each as its field. Maps the programs may only read (.rodata) are left
// out: they are built again from the spec, and their values are in the pin
// directory's name.
func (r *Recorder) pinnableMaps() map[string]**ebpf.Map {
	out := r.objs.maps.byName()
	for name := range out {
		if ms := r.spec.Maps[name]; ms == nil || ms.Flags&unix.BPF_F_RDONLY_PROG != 0 {
			delete(out, name)
		}
	}
	return out
}

// links returns the recorder's links by the name of their program.
func (r *Recorder) links() map[string]*link.Link {
	return map[string]*link.Link{"sys_enter": &r.enter, "sched_process_exec": &r.exec, "sys_exit": &r.exit}
}

// load loads the collection into r.objs: afresh, or, with Options.PinDir, over the
// maps a recorder that is gone left pinned with cgroups still tracked.
func (r *Recorder) load() error {
	if r.opts.PinDir == "" {
		if err := r.loadSpec(nil); err != nil {
			return explainLoad(err)
		}
		return nil
	}
	p := &pinState{root: r.opts.PinDir}
	if err := mountPins(p.root); err != nil {
		return fmt.Errorf("%w in %s: %w", ErrPinning, p.root, err)
	}
	p.dir = filepath.Join(p.root, buildName(r.spec))
	p.takeover.Dir = p.dir
	p.removeOtherBuilds()
	progs := filepath.Join(p.dir, "progs")
	if r.opts.KeepLoaded {
		ok, err := r.loadKept(p)
		if ok {
			r.pins, p.resumed, p.reused = p, true, true
			return nil
		}
		if err != nil {
			// Kept programs that cannot be used are loaded afresh (the maps, and what
			// they record, are still taken over below).
			os.RemoveAll(progs)
		}
		r.readKernelBTF()
	} else {
		// Kept by a recorder configured otherwise: freed with their last reference.
		os.RemoveAll(progs)
	}
	repl, err := r.pinnedMaps(p)
	if err != nil {
		p.takeover.Lost = append(p.takeover.Lost, err.Error())
		os.RemoveAll(p.dir)
	}
	loadErr := r.loadSpec(repl)
	for _, m := range repl {
		m.Close() // LoadAndAssign holds clones
	}
	if loadErr != nil && repl != nil {
		p.takeover.Lost = append(p.takeover.Lost, fmt.Sprintf("the pins in %s do not fit this build (%v): removed", p.dir, loadErr))
		os.RemoveAll(p.dir)
		repl = nil
		loadErr = r.loadSpec(nil)
	}
	if loadErr != nil {
		return explainLoad(loadErr)
	}
	r.pins = p
	if r.opts.KeepLoaded {
		if err := r.pinPrograms(); err != nil {
			return err
		}
	}
	if repl != nil {
		p.resumed = true
		return nil
	}
	began := time.Now()
	defer func() { r.steps.Pins = time.Since(began) }()
	maps := filepath.Join(p.dir, "maps")
	if err := os.MkdirAll(maps, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrPinning, err)
	}
	for name, m := range r.pinnableMaps() {
		if err := (*m).Pin(filepath.Join(maps, pinName(name))); err != nil {
			os.RemoveAll(p.dir)
			return fmt.Errorf("%w: map %s in %s: %w", ErrPinning, name, maps, err)
		}
	}
	return nil
}

// keptPrograms are the programs (and the read-only map they were loaded with) that
// Options.KeepLoaded pins in the build's "progs" directory, by their name there.
func (r *Recorder) keptPrograms() map[string]any {
	return map[string]any{"sys_enter": &r.objs.SysEnter, "sched_process_exec": &r.objs.SchedProcessExec, "rodata": &r.objs.Rodata}
}

// pinPrograms pins the loaded programs for the next recorder (Options.KeepLoaded).
func (r *Recorder) pinPrograms() error {
	dir := filepath.Join(r.pins.dir, "progs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrPinning, err)
	}
	for name, obj := range r.keptPrograms() {
		path := filepath.Join(dir, name)
		os.Remove(path)
		var err error
		switch o := obj.(type) {
		case **ebpf.Program:
			err = (*o).Pin(path)
		case **ebpf.Map:
			err = (*o).Pin(path)
		}
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("%w: program %s in %s: %w", ErrPinning, name, dir, err)
		}
	}
	if r.sysExit == nil {
		return nil
	}
	return r.pinSysExit()
}

// pinSysExit pins sys_exit once loaded, beside the others (Options.KeepLoaded).
func (r *Recorder) pinSysExit() error {
	if r.pins == nil || !r.opts.KeepLoaded {
		return nil
	}
	path := filepath.Join(r.pins.dir, "progs", "sys_exit")
	os.Remove(path)
	if err := r.sysExit.Pin(path); err != nil {
		return fmt.Errorf("%w: program sys_exit: %w", ErrPinning, err)
	}
	return nil
}

// loadKept loads, instead of the spec, the programs and maps a recorder with
// Options.KeepLoaded left pinned: nothing is loaded into the kernel, so neither
// the kernel's BTF nor the verifier is paid for. It returns false, and nothing
// loaded, where nothing is kept.
func (r *Recorder) loadKept(p *pinState) (bool, error) {
	progs := filepath.Join(p.dir, "progs")
	if _, err := os.Stat(progs); err != nil {
		return false, nil
	}
	fail := func(err error) (bool, error) {
		r.objs.close()
		r.objs = objects{}
		return false, err
	}
	for name, obj := range r.keptPrograms() {
		path := filepath.Join(progs, name)
		var err error
		switch o := obj.(type) {
		case **ebpf.Program:
			*o, err = ebpf.LoadPinnedProgram(path, nil)
		case **ebpf.Map:
			*o, err = ebpf.LoadPinnedMap(path, nil)
		}
		if err != nil {
			return fail(fmt.Errorf("loading the kept program %s: %w", name, err))
		}
	}
	for name, m := range r.pinnableMaps() {
		var err error
		if *m, err = ebpf.LoadPinnedMap(filepath.Join(p.dir, "maps", pinName(name)), nil); err != nil {
			return fail(fmt.Errorf("loading the kept map %s: %w", name, err))
		}
	}
	// The globals, over the kept .bss: a map replaced loads nothing.
	var vars struct {
		Generation *ebpf.Variable `ebpf:"generation"`
		TooDeep    *ebpf.Variable `ebpf:"too_deep"`
		NoCache    *ebpf.Variable `ebpf:"no_cache"`
	}
	if err := r.spec.LoadAndAssign(&vars, &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{".bss": r.objs.Bss}}); err != nil {
		return fail(fmt.Errorf("the kept .bss: %w", err))
	}
	r.objs.Generation, r.objs.TooDeep, r.objs.NoCache = vars.Generation, vars.TooDeep, vars.NoCache
	if prog, err := ebpf.LoadPinnedProgram(filepath.Join(progs, "sys_exit"), nil); err == nil {
		r.sysExit = prog
	}
	return true, nil
}

// pinnedMaps loads the maps pinned in p.dir if a cgroup is tracked there. Pins
// with nothing tracked are stale (their recorder died idle) and removed.
func (r *Recorder) pinnedMaps(p *pinState) (map[string]*ebpf.Map, error) {
	if _, err := os.Stat(p.dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if n := countTracked(p.dir); n <= 0 {
		os.RemoveAll(p.dir)
		p.takeover.Stale = append(p.takeover.Stale, p.dir)
		return nil, nil
	}
	repl := map[string]*ebpf.Map{}
	for name := range r.pinnableMaps() {
		m, err := ebpf.LoadPinnedMap(filepath.Join(p.dir, "maps", pinName(name)), nil)
		if err != nil {
			for _, m := range repl {
				m.Close()
			}
			return nil, fmt.Errorf("the pins in %s lack map %s (%v): the recordings there are lost", p.dir, name, err)
		}
		repl[name] = m
	}
	return repl, nil
}

// pinName is the file a map is pinned as: bpffs refuses names with a dot (.bss).
func pinName(mapName string) string { return strings.ReplaceAll(mapName, ".", "_") }

// countTracked counts the cgroups tracked in the pins of dir, -1 if it cannot tell.
// It reads keys as bytes, so it works for a build of another layout too.
func countTracked(dir string) int {
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "maps", "tracked"), nil)
	if err != nil {
		return -1
	}
	defer m.Close()
	key, next := make([]byte, m.KeySize()), make([]byte, m.KeySize())
	n := 0
	for err = m.NextKey(nil, key); err == nil; err = m.NextKey(key, next) {
		n++
		copy(key, next)
	}
	if !errors.Is(err, ebpf.ErrKeyNotExist) {
		return -1
	}
	return n
}

// removeOtherBuilds removes the pins of other builds: their maps may be laid out
// otherwise, so this build cannot read what they recorded.
func (p *pinState) removeOtherBuilds() {
	entries, _ := os.ReadDir(p.root)
	for _, e := range entries {
		dir := filepath.Join(p.root, e.Name())
		if dir == p.dir || !strings.HasPrefix(e.Name(), buildPrefix) {
			continue
		}
		n := countTracked(dir)
		os.RemoveAll(dir)
		if n == 0 {
			p.takeover.Stale = append(p.takeover.Stale, dir)
			continue
		}
		p.takeover.Lost = append(p.takeover.Lost, fmt.Sprintf("%s held the recordings of another build of syscage, which this one cannot read (a binary replaced while it recorded): removed", dir))
	}
}

// resume takes over the state of the recorder whose maps were loaded: the tracked
// cgroups, their slots and modes, the generation, and the pinned links.
func (r *Recorder) resume() error {
	p := r.pins
	if p == nil || !p.resumed {
		return nil
	}
	if err := r.objs.Generation.Get(&r.gen); err != nil {
		return fmt.Errorf("reading generation: %w", err)
	}
	used := map[uint32]bool{}
	var cg uint64
	var slot uint32
	it := r.objs.Tracked.Iterate()
	for it.Next(&cg, &slot) {
		var rec recorderRecord
		if err := r.objs.Records.Lookup(slot, &rec); err != nil {
			return fmt.Errorf("reading record %d: %w", slot, err)
		}
		r.slots[cg] = slot
		r.modes[cg] = TrackOptions{Start: StartAt(rec.Start), ExactRefusals: rec.Flags&flagExactRefusals != 0}
		used[slot] = true
		p.takeover.Tracked = append(p.takeover.Tracked, cg)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading tracked: %w", err)
	}
	r.free = slices.DeleteFunc(r.free, func(s uint32) bool { return used[s] })
	for name, l := range r.links() {
		pl, err := link.LoadPinnedLink(filepath.Join(p.dir, "links", name), nil)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: loading link %s: %w", ErrPinning, name, err)
		}
		*l = pl
	}
	if r.enter == nil && r.exec != nil {
		// Died between its two attachments: attach both again.
		r.unpinLink("sched_process_exec")
		r.exec.Close()
		r.exec = nil
	}
	if len(r.slots) == 0 {
		return nil
	}
	if err := r.attach(); err != nil {
		return err
	}
	return r.syncExit()
}

// pinLink pins a link the recorder just attached.
func (r *Recorder) pinLink(name string, l link.Link) error {
	if r.pins == nil {
		return nil
	}
	dir := filepath.Join(r.pins.dir, "links")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrPinning, err)
	}
	path := filepath.Join(dir, name)
	os.Remove(path) // left by a recorder that died
	if err := l.Pin(path); err != nil {
		return fmt.Errorf("%w: link %s: %w", ErrPinning, name, err)
	}
	return nil
}

// unpinLink removes a link's pin before it is closed, so that closing detaches it.
func (r *Recorder) unpinLink(name string) {
	if r.pins != nil {
		os.Remove(filepath.Join(r.pins.dir, "links", name))
	}
}

// unpinLinks removes the pins of every link once nothing is tracked: closing them
// then detaches the programs. With cgroups tracked (Close while recording) the
// pins stay, and the programs go on recording for the next recorder.
func (r *Recorder) unpinLinks() {
	if r.pins != nil && len(r.slots) == 0 {
		os.RemoveAll(filepath.Join(r.pins.dir, "links"))
	}
}

// removePins removes this build's pin directory once nothing is tracked, and the
// pin root with it if that is empty.
func (r *Recorder) removePins() error {
	p := r.pins
	if p == nil || len(r.slots) > 0 {
		return nil
	}
	if r.opts.KeepLoaded {
		// Kept for the next recorder, attached to nothing (the links are unpinned).
		r.pins = nil
		return nil
	}
	r.pins = nil
	err := os.RemoveAll(p.dir)
	os.Remove(p.root) // only if empty, and not a mount point
	if err != nil {
		return fmt.Errorf("removing pins: %w", err)
	}
	return nil
}

// linkProgramIDs returns the ids of the programs behind the recorder's links, which
// after a takeover are those the recorder that is gone loaded.
func (r *Recorder) linkProgramIDs() []ebpf.ProgramID {
	var ids []ebpf.ProgramID
	for _, l := range r.links() {
		if *l == nil {
			continue
		}
		if info, err := (*l).Info(); err == nil {
			ids = append(ids, info.Program)
		}
	}
	return ids
}

// RemovePins removes everything recorders left pinned below root, whatever build
// they were (the recorder-* directories): their links detach, and their maps are freed with the last reference.
// It returns the directories it removed.
func RemovePins(root string) ([]string, error) {
	if !isFS(root, unix.BPF_FS_MAGIC) {
		return nil, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), buildPrefix) {
			continue // not a recorder's (a bpffs root has its own iterators)
		}
		dir := filepath.Join(root, e.Name())
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir)
	}
	os.Remove(root)
	return removed, errors.Join(errs...)
}

// mountPins makes root, a directory on a bpf filesystem. Where none is mounted it
// mounts one: at /sys/fs/bpf (an empty directory of sysfs until then) for a root
// below it, or at root itself.
func mountPins(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		anc := root
		for {
			if _, serr := os.Stat(anc); serr == nil || anc == "/" {
				break
			}
			anc = filepath.Dir(anc)
		}
		if !isFS(anc, unix.SYSFS_MAGIC) {
			return fmt.Errorf("creating %s: %w", root, err)
		}
		if err := unix.Mount("bpf", anc, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("no bpf filesystem is mounted at %s, and mounting one failed: %w (mount one with 'mount -t bpf bpf %s')", anc, err, anc)
		}
		if err := os.MkdirAll(root, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", root, err)
		}
	}
	if isFS(root, unix.BPF_FS_MAGIC) {
		return nil
	}
	if err := unix.Mount("bpf", root, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("%s is not on a bpf filesystem, and mounting one there failed: %w (mount one with 'mount -t bpf bpf %s')", root, err, root)
	}
	return nil
}

func isFS(path string, magic int64) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && int64(st.Type) == magic
}
