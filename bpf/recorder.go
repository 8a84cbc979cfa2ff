//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/bpf/host"
)

// ABI is the syscall table a call was made through.
type ABI int

const (
	// Native is the kernel's own table (x86_64, aarch64, …).
	Native ABI = iota
	// Compat is the 32-bit table of a 64-bit kernel: i386 on x86_64, arm on arm64.
	Compat
	// X32 is x86_64's ILP32 table (numbers recorded without the x32 bit).
	X32
	// NumABIs is the number of ABIs a recording keeps apart.
	NumABIs
)

func (a ABI) String() string {
	switch a {
	case Native:
		return "native"
	case Compat:
		return "compat"
	case X32:
		return "x32"
	}
	return "abi(" + strconv.Itoa(int(a)) + ")"
}

// StartAt says from which moment the syscalls of a tracked cgroup count (see
// package host, which the hook links instead of this one).
type StartAt = host.StartAt

const (
	StartNow     = host.StartNow
	StartExec    = host.StartExec
	StartSeccomp = host.StartSeccomp
)

// ErrNotSupported is returned when the kernel lacks something the recorder needs.
var ErrNotSupported = host.ErrNotSupported

// ErrPermission is returned when the process may not load BPF programs.
var ErrPermission = host.ErrPermission

// btfPath is where the kernel exposes its BTF; a variable for tests.
var btfPath = host.BTFPath

// Options configure a Recorder.
type Options struct {
	// ExecSyscalls holds the numbers of execve and execveat in each ABI (-1 where an
	// ABI lacks one). StartExec keeps the execve that started the workload with them.
	ExecSyscalls [NumABIs][2]int32
	// ArgSpecs say which argument values to record for the syscalls that
	// ArgSyscalls names; see ArgSpec.
	ArgSpecs []ArgSpec
	// ArgSyscalls maps, per ABI, a syscall number to its index in ArgSpecs.
	ArgSyscalls [NumABIs]map[int]int
	// ReportRefused counts, for StartSeccomp cgroups, the calls their seccomp
	// filter refused (Recording.Denied). It attaches a program to sys_exit while
	// such a cgroup is tracked, which costs every syscall on the host ~90 ns more;
	// Open loads that program with the others (without it, only a cgroup tracked
	// with TrackOptions.ExactRefusals loads it, when first tracked).
	ReportRefused bool
	// PinDir, if set, is a directory on a bpf filesystem (mounted if need be) where
	// the recorder keeps its maps, and its links while a cgroup is tracked: the kernel
	// goes on recording if the process dies, and the next recorder opened with the
	// same PinDir takes the recordings over (see Takeover). Close removes the pins
	// once nothing is tracked.
	PinDir string
	// KeepLoaded, with PinDir, pins the programs too, and leaves them and the maps
	// pinned when Close finds nothing tracked, attached to nothing: the next
	// recorder opened with the same PinDir loads nothing (Reused), which spares it
	// the kernel's BTF and the verifier. RemovePins removes them.
	KeepLoaded bool
	// DetachAfter keeps the programs attached this long after the last cgroup is
	// untracked, so that a cgroup tracked soon after (the next container) does not
	// attach them again: attaching costs ~0.5 ms, and ~15 ms within an RCU grace
	// period of the detach. Meanwhile every syscall on the host pays what an
	// untracked one does (make bench: BenchmarkSyscallCost). Close detaches at once.
	DetachAfter time.Duration
}

// ArgKind says how a spec turns a call's arguments into the value recorded.
type ArgKind uint32

const (
	// ArgOne records Args[Index0] & Mask0.
	ArgOne ArgKind = iota + 1
	// ArgPair records (Args[Index0] & Mask0) in the low 32 bits and
	// (Args[Index1] & Mask1) in the high 32 bits.
	ArgPair
	// ArgMem records the 64-bit word that Args[Index0] points to, & Mask0: clone3's
	// clone_args.flags, which a seccomp filter cannot see but a recorder can.
	ArgMem
)

// ArgSpec is what to record of one syscall's arguments.
type ArgSpec struct {
	Kind           ArgKind
	Index0, Index1 uint8
	Mask0, Mask1   uint64
}

// MaxArgSpecs is how many ArgSpecs a recorder takes.
const MaxArgSpecs = 16

// ArgCap is how many distinct values of 64 or more a recording keeps per spec and
// ABI; past it the spec is recorded as any value (ArgValues.Any).
const ArgCap = 64

// ArgValues are the values of one spec that a cgroup's calls were made with.
type ArgValues struct {
	Values []uint64 // sorted
	Any    bool     // more than ArgCap values, or the kernel's table was full
}

// Recording is what a tracked cgroup made so far.
type Recording struct {
	// Syscalls holds, per ABI, the sorted numbers seen.
	Syscalls [NumABIs][]int
	// Noted holds, per ABI and number, the calls a seccomp filter refused
	// (StartSeccomp with refusals asked for: they never reach sys_enter, so they
	// are not in Syscalls) and the calls made from the watch list.
	Noted [NumABIs]map[int]Noted
	// Args holds, per ABI and index in Options.ArgSpecs, the argument values seen.
	Args  [NumABIs]map[int]ArgValues
	Stats Stats
}

// Noted is what was seen of one call beyond its bit.
type Noted struct {
	Refused uint64 // times the seccomp filter in force refused it
	Watched uint64 // times it was made while on the watch list
	Pid     uint32 // the first process that made it
	Comm    string // and its name
}

// TrackOptions say how a cgroup is recorded.
type TrackOptions struct {
	Start StartAt
	// Watch lists, per ABI, numbers whose calls are counted with the first process
	// that made them.
	Watch [NumABIs][]int
	// ExactRefusals tells refused calls per task, exactly, even for a syscall the
	// filter allows with some arguments and refuses with others. It attaches
	// sys_exit and costs the cgroup's tasks a helper call per syscall.
	ExactRefusals bool
}

// Stats are the counters kept beside a recording, so that loss is measured.
type Stats struct {
	Events         uint64 // syscalls recorded
	BeforeStart    uint64 // syscalls made in the cgroup before recording started
	OutOfRange     uint64 // syscalls whose number does not fit the bitmap
	LastOutOfRange int64  // the last such number
	TooDeep        uint64 // host-wide: cgroups nested deeper than the ancestor search
	NoCache        uint64 // host-wide: cgroups whose lookup could not be cached
}

// Recorder is one loaded set of programs and maps serving any number of cgroups.
// Programs are attached only while at least one cgroup is tracked.
type Recorder struct {
	mu      sync.Mutex
	objs    objects
	enter   link.Link
	exec    link.Link
	exit    link.Link // sys_exit: see Options.ReportRefused
	opts    Options
	spec    *ebpf.CollectionSpec // to load sys_exit when first needed
	sysExit *ebpf.Program
	slots   map[uint64]uint32 // cgroup id → slot
	modes   map[uint64]TrackOptions
	free    []uint32
	gen     uint32
	pins    *pinState   // with Options.PinDir
	detachT *time.Timer // pending detach (Options.DetachAfter)
	kernel  *kernelBTF  // the kernel types programs are loaded against
	steps   OpenSteps
}

// OpenSteps is what each step of Open took, for the timings a caller logs.
type OpenSteps struct {
	Spec      time.Duration // parsing the object, setting its constants
	Maps      time.Duration // making the maps (or loading those pinned)
	KernelBTF time.Duration // waiting for the kernel's types, read meanwhile
	FullBTF   error         // why the kernel's whole BTF was read, if it was
	Programs  time.Duration // relocating and verifying the programs, at once
	Pins      time.Duration // pinning the maps
}

// objects is the part of the collection the recorder loads at once (sys_exit
// with it where Options.ReportRefused asks for it, or when first needed), and the
// benchmark-only program never. The maps are loaded first, then each program in a
// goroutine of its own against them.
type objects struct {
	programs
	maps
}

type programs struct {
	SysEnter         *ebpf.Program `ebpf:"sys_enter"`
	SchedProcessExec *ebpf.Program `ebpf:"sched_process_exec"`
}

type maps struct {
	Denied       *ebpf.Map      `ebpf:"denied"`
	Entered      *ebpf.Map      `ebpf:"entered"`
	ArgValues    *ebpf.Map      `ebpf:"arg_values"`
	LastArg      *ebpf.Map      `ebpf:"last_arg"`
	Tracked      *ebpf.Map      `ebpf:"tracked"`
	Records      *ebpf.Map      `ebpf:"records"`
	SlotCounters *ebpf.Map      `ebpf:"slot_counters"`
	CgroupCache  *ebpf.Map      `ebpf:"cgroup_cache"`
	L1Cache      *ebpf.Map      `ebpf:"l1_cache"`
	Bss          *ebpf.Map      `ebpf:".bss"`
	Rodata       *ebpf.Map      `ebpf:".rodata"`
	Generation   *ebpf.Variable `ebpf:"generation"`
	TooDeep      *ebpf.Variable `ebpf:"too_deep"`
	NoCache      *ebpf.Variable `ebpf:"no_cache"`
}

// byName returns the maps by their name in the collection, each as its field.
func (m *maps) byName() map[string]**ebpf.Map {
	out := map[string]**ebpf.Map{}
	v := reflect.ValueOf(m).Elem()
	mapType := reflect.TypeFor[*ebpf.Map]()
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.Type == mapType {
			out[f.Tag.Get("ebpf")] = v.Field(i).Addr().Interface().(**ebpf.Map)
		}
	}
	return out
}

// replacements are the loaded maps, for loading programs against them.
func (m *maps) replacements() map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	for name, f := range m.byName() {
		out[name] = *f
	}
	return out
}

func (o *objects) close() error {
	var errs []error
	for _, p := range []*ebpf.Program{o.SysEnter, o.SchedProcessExec} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	for _, m := range o.maps.byName() {
		if *m != nil {
			errs = append(errs, (*m).Close())
		}
	}
	return errors.Join(errs...)
}

// Check reports, without loading anything, why this host cannot record: missing
// privileges or missing kernel BTF.
func Check() error { return host.CheckBTF(btfPath) }

// preparedSpec is the programs' object, parsed ahead of Open by Prepare.
type preparedSpec struct {
	done chan struct{} // closed once spec and err are set
	spec *ebpf.CollectionSpec
	err  error
}

var prepared struct {
	sync.Mutex
	next *preparedSpec
}

// Prepare starts parsing the programs' object (~1 ms) in the background, for the
// next Open to take: a process that will open the recorder (the hook's, started
// for a container that waits for it) calls it first thing, so that the parse
// runs beside its own start (its config, log and lock).
func Prepare() {
	prepared.Lock()
	defer prepared.Unlock()
	if prepared.next != nil {
		return
	}
	p := &preparedSpec{done: make(chan struct{})}
	prepared.next = p
	// One goroutine, not two: the process's own start must not wait for a core.
	go func() {
		p.spec, p.err = loadRecorder()
		close(p.done)
		warmFeatures()
	}()
}

// warmFeatures has cilium/ebpf ask the kernel, once per process, what loading
// the recorder will make it ask (is there a BPF token, may objects be named,
// which BTF kinds load, may an array be mapped, do bpf-to-bpf calls and
// bpf_probe_read_kernel load), by making a map and a program as small as can ask
// it: ~10 syscalls that the load then need not wait for. Whatever fails here,
// the load asks again.
func warmFeatures() {
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "syscage.warm", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1,
		Flags: unix.BPF_F_MMAPABLE, Key: u32, Value: u32,
	})
	if err == nil {
		m.Close()
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "syscage_warm", Type: ebpf.SocketFilter, License: "GPL",
		Instructions: asm.Instructions{
			asm.Call.Label("warm_sub"),
			asm.Return(),
			asm.FnGetPrandomU32.Call().WithSymbol("warm_sub"),
			asm.Return(),
		},
	})
	if err == nil {
		p.Close()
	}
}

// takeSpec returns the object Prepare parsed, once, or parses it now.
func takeSpec() (*ebpf.CollectionSpec, error) {
	prepared.Lock()
	p := prepared.next
	prepared.next = nil
	prepared.Unlock()
	if p == nil {
		return loadRecorder()
	}
	<-p.done
	return p.spec, p.err
}

// Open loads the recorder into the kernel. Nothing is attached until Track.
func Open(opts Options) (*Recorder, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	// RLIMIT_MEMLOCK is left alone: the recorder needs Linux 6.2 or later
	// (bpf_loop), which charges BPF memory to the memory cgroup (since 5.11).
	// cilium/ebpf's rlimit package would also probe the kernel in the init of every
	// process that links it, which is every hook's exec: 0.8 ms, twice per container.

	began := time.Now()
	r := &Recorder{slots: make(map[uint64]uint32), modes: make(map[uint64]TrackOptions), opts: opts}
	if !opts.KeepLoaded {
		// Loading programs needs the kernel's types (their CO-RE relocations): read
		// while the object is parsed and the maps made.
		r.readKernelBTF()
	}
	opened := false
	defer func() {
		if !opened {
			r.dropKernelBTF()
		}
	}()
	spec, err := takeSpec()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["exec_nr"].Set(opts.ExecSyscalls); err != nil {
		return nil, fmt.Errorf("setting exec_nr: %w", err)
	}
	if err := setArgSpecs(spec, opts); err != nil {
		return nil, err
	}
	dropMapTypes(spec)
	r.spec = spec
	r.steps.Spec = time.Since(began)
	err = r.load()
	if err != nil {
		r.closeLoaded()
		return nil, err
	}
	for i := int(r.objs.Records.MaxEntries()) - 1; i >= 0; i-- {
		r.free = append(r.free, uint32(i))
	}
	if err := r.resume(); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	opened = true
	return r, nil
}

// explainLoad turns a load failure into the cause a user can act on.
func explainLoad(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("loading the recorder: %w (run as root, or with CAP_BPF and CAP_PERFMON): %w", ErrPermission, err)
	}
	if e := features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnLoop); e != nil {
		return fmt.Errorf("kernel lacks bpf_loop for raw tracepoints (Linux 6.2 or later is needed): %w", ErrNotSupported)
	}
	return fmt.Errorf("loading the recorder: %w", err)
}

// MaxCgroups is how many cgroups one recorder can track at once.
func (r *Recorder) MaxCgroups() int { return int(r.objs.Records.MaxEntries()) }

// Track starts recording the cgroup2 with the given id, and every cgroup below it.
func (r *Recorder) Track(cgroupID uint64, start StartAt) error {
	return r.TrackWith(cgroupID, TrackOptions{Start: start})
}

// TrackWith is Track with options.
func (r *Recorder) TrackWith(cgroupID uint64, opts TrackOptions) error {
	start := opts.Start
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.objs.Tracked == nil {
		return errors.New("recorder is closed")
	}
	if _, ok := r.slots[cgroupID]; ok {
		return fmt.Errorf("cgroup %d is already tracked", cgroupID)
	}
	if len(r.free) == 0 {
		return fmt.Errorf("tracking cgroup %d: all %d slots in use", cgroupID, r.MaxCgroups())
	}
	slot := r.free[len(r.free)-1]
	r.stopDetach()

	// A fresh record before the cgroup becomes visible to BPF. A fresh epoch,
	// never 0 (what an unused last_arg entry or counter holds): random, so that no
	// recorder, this one or one taking over its pins, gives a slot an epoch a CPU's
	// last_arg or counters may still hold for it. Each CPU zeroes its counters of
	// the slot when it finds them of another epoch.
	rec := recorderRecord{Start: uint32(start), Epoch: rand.Uint32() | 1}
	if err := setWatch(&rec, opts); err != nil {
		return fmt.Errorf("tracking cgroup %d: %w", cgroupID, err)
	}
	if err := r.objs.Records.Put(slot, rec); err != nil {
		return fmt.Errorf("resetting record %d: %w", slot, err)
	}
	if err := r.clearDenied(slot); err != nil {
		return err
	}
	if err := r.clearArgs(slot); err != nil {
		return err
	}
	if err := r.objs.Tracked.Update(cgroupID, slot, ebpf.UpdateNoExist); err != nil {
		return fmt.Errorf("tracking cgroup %d: %w", cgroupID, err)
	}
	r.free = r.free[:len(r.free)-1]
	r.slots[cgroupID] = slot
	r.modes[cgroupID] = opts
	if err := r.bump(); err != nil {
		r.untrackLocked(cgroupID)
		return err
	}
	if err := r.attach(); err != nil {
		r.untrackLocked(cgroupID)
		return err
	}
	if err := r.syncExit(); err != nil {
		r.untrackLocked(cgroupID)
		return err
	}
	return nil
}

// dropMapTypes leaves the maps' key and value types out of what is loaded, but
// where the kernel needs them (task storage): cilium/ebpf loads each map's types
// as BTF of its own, one marshalling and one BPF_BTF_LOAD per map, ~1 ms of every
// recorder's start. The maps' layout is fixed by the object all the same, and
// only bpftool's dumps would show them typed.
func dropMapTypes(spec *ebpf.CollectionSpec) {
	for _, m := range spec.Maps {
		if m.Type != ebpf.TaskStorage {
			m.Key, m.Value = nil, nil
		}
	}
}

// counters returns each CPU's counters of a slot given out with epoch; a CPU
// that has not counted for it since holds those of an earlier epoch, or none.
func (r *Recorder) counters(slot, epoch uint32) ([]recorderCounters, error) {
	var chunks []recorderCounterChunk
	if err := r.objs.SlotCounters.Lookup(slot/counterChunk, &chunks); err != nil {
		return nil, fmt.Errorf("reading counters %d: %w", slot, err)
	}
	var out []recorderCounters
	for _, c := range chunks {
		if c.C[slot%counterChunk].Epoch == epoch {
			out = append(out, c.C[slot%counterChunk])
		}
	}
	return out, nil
}

// counterChunk is how many slots' counters share a per-CPU value (COUNTER_CHUNK).
const counterChunk = uint32(len(recorderCounterChunk{}.C))

func possibleCPUs() int {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return 1
	}
	return n
}

// bump invalidates every cgroup's cached answer after tracked changed. L1 entries
// keep only the low 16 bits of the generation, so when those wrap L1 is cleared
// first: an entry from 65536 generations ago must not look current.
func (r *Recorder) bump() error {
	r.gen++
	if r.gen&0xffff == 0 {
		if err := r.clearL1(); err != nil {
			return err
		}
	}
	if err := r.objs.Generation.Set(r.gen); err != nil {
		return fmt.Errorf("setting generation: %w", err)
	}
	return nil
}

func (r *Recorder) clearL1() error {
	if err := r.objs.L1Cache.Put(uint32(0), make([]recorderL1, possibleCPUs())); err != nil {
		return fmt.Errorf("clearing l1_cache: %w", err)
	}
	return nil
}

// attachTracepoint attaches a program to the raw tracepoint of that name.
func attachTracepoint(name string, p *ebpf.Program) (link.Link, error) {
	return link.AttachRawTracepoint(link.RawTracepointOptions{Name: name, Program: p})
}

func (r *Recorder) attach() error {
	if r.enter != nil {
		return nil
	}
	// exec first: were sys_enter first, a cgroup in StartExec could see its execve
	// entered with nothing yet armed to keep it.
	exec, err := attachTracepoint("sched_process_exec", r.objs.SchedProcessExec)
	if err != nil {
		return fmt.Errorf("attaching sched_process_exec: %w", err)
	}
	enter, err := attachTracepoint("sys_enter", r.objs.SysEnter)
	if err != nil {
		exec.Close()
		return fmt.Errorf("attaching sys_enter: %w", err)
	}
	r.exec, r.enter = exec, enter
	return errors.Join(r.pinLink("sched_process_exec", exec), r.pinLink("sys_enter", enter))
}

// syncExit attaches sys_exit while refusals are asked for and some cgroup is
// recorded from its seccomp start, and only then: it costs every syscall on the
// host a second dispatch.
func (r *Recorder) syncExit() error {
	want := false
	for _, m := range r.modes {
		want = want || m.ExactRefusals || r.opts.ReportRefused && m.Start == StartSeccomp
	}
	switch {
	case want && r.exit == nil:
		if err := r.loadExit(); err != nil {
			return err
		}
		l, err := attachTracepoint("sys_exit", r.sysExit)
		if err != nil {
			return fmt.Errorf("attaching sys_exit: %w", err)
		}
		r.exit = l
		return r.pinLink("sys_exit", l)
	case !want && r.exit != nil:
		r.unpinLink("sys_exit")
		err := r.exit.Close()
		r.exit = nil
		return err
	}
	return nil
}

// Record flags, as in recorder.bpf.c.
const (
	flagWatch         = 1
	flagExactRefusals = 2
)

func setWatch(rec *recorderRecord, opts TrackOptions) error {
	if opts.ExactRefusals {
		rec.Flags |= flagExactRefusals
	}
	for abi, nrs := range opts.Watch {
		for _, nr := range nrs {
			if nr < 0 || nr >= len(rec.Watch[abi])*64 {
				return fmt.Errorf("watch: %s syscall %d is out of the recorder's range", ABI(abi), nr)
			}
			rec.Watch[abi][nr/64] |= 1 << (nr % 64)
			rec.Flags |= flagWatch
		}
	}
	return nil
}

// loadExit loads sys_exit against the maps already in use, if Open did not (see
// Options.ReportRefused): recording a command does not pay for its verification.
func (r *Recorder) loadExit() error {
	if r.sysExit != nil {
		return nil
	}
	prog, err := r.loadProgram("sys_exit")
	if err != nil {
		return err
	}
	r.sysExit = prog
	return r.pinSysExit()
}

// clearDenied removes a slot's noted calls.
func (r *Recorder) clearDenied(slot uint32) error {
	return deleteSlot[recorderDeniedKey, recorderNoted](r.objs.Denied, "denied", func(k recorderDeniedKey) bool { return k.Slot == slot })
}

// deleteSlot deletes the entries of a hash keyed by slot whose key mine says
// belongs to the slot being cleared.
func deleteSlot[K, V any](m *ebpf.Map, name string, mine func(K) bool) error {
	var k K
	var v V
	var stale []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		if mine(k) {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clearing %s: %w", name, err)
		}
	}
	return nil
}

func (r *Recorder) detach() error {
	r.unpinLinks()
	var errs []error
	if r.enter != nil {
		errs = append(errs, r.enter.Close())
		r.enter = nil
	}
	if r.exec != nil {
		errs = append(errs, r.exec.Close())
		r.exec = nil
	}
	if r.exit != nil {
		errs = append(errs, r.exit.Close())
		r.exit = nil
	}
	return errors.Join(errs...)
}

// Attached reports whether the programs are attached (some cgroup is tracked).
func (r *Recorder) Attached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.enter != nil
}

// Read returns what the cgroup made so far; recording goes on.
func (r *Recorder) Read(cgroupID uint64) (*Recording, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	slot, ok := r.slots[cgroupID]
	if !ok {
		return nil, fmt.Errorf("cgroup %d is not tracked", cgroupID)
	}
	var rec recorderRecord
	if err := r.objs.Records.Lookup(slot, &rec); err != nil {
		return nil, fmt.Errorf("reading record %d: %w", slot, err)
	}
	perCPU, err := r.counters(slot, rec.Epoch)
	if err != nil {
		return nil, err
	}
	out := &Recording{}
	for abi := range rec.Bits {
		for w, word := range rec.Bits[abi] {
			for b := 0; word != 0; b++ {
				if word&1 != 0 {
					out.Syscalls[abi] = append(out.Syscalls[abi], w*64+b)
				}
				word >>= 1
			}
		}
	}
	for _, c := range perCPU {
		out.Stats.Events += c.Events
		out.Stats.BeforeStart += c.BeforeStart
		out.Stats.OutOfRange += c.OutOfRange
		if c.OutOfRange > 0 {
			out.Stats.LastOutOfRange = c.LastOutOfRange
		}
	}
	var dk recorderDeniedKey
	var n recorderNoted
	it := r.objs.Denied.Iterate()
	for it.Next(&dk, &n) {
		if dk.Slot != slot || int(dk.Abi) >= int(NumABIs) {
			continue
		}
		if out.Noted[dk.Abi] == nil {
			out.Noted[dk.Abi] = map[int]Noted{}
		}
		out.Noted[dk.Abi][int(dk.Nr)] = Noted{Refused: n.Refused, Watched: n.Watched, Pid: n.Pid, Comm: cString(n.Comm[:])}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading denied: %w", err)
	}
	if err := r.readArgs(slot, &rec, out); err != nil {
		return nil, err
	}
	if err := r.objs.TooDeep.Get(&out.Stats.TooDeep); err != nil {
		return nil, fmt.Errorf("reading too_deep: %w", err)
	}
	if err := r.objs.NoCache.Get(&out.Stats.NoCache); err != nil {
		return nil, fmt.Errorf("reading no_cache: %w", err)
	}
	return out, nil
}

// Untrack stops recording the cgroup and frees its slot; the programs are detached
// when no cgroup is left. Read first: the recording is gone afterwards.
func (r *Recorder) Untrack(cgroupID uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.slots[cgroupID]; !ok {
		return fmt.Errorf("cgroup %d is not tracked", cgroupID)
	}
	return r.untrackLocked(cgroupID)
}

func (r *Recorder) untrackLocked(cgroupID uint64) error {
	slot := r.slots[cgroupID]
	delete(r.slots, cgroupID)
	delete(r.modes, cgroupID)
	r.free = append(r.free, slot)
	errs := []error{r.objs.Tracked.Delete(cgroupID)}
	if errors.Is(errs[0], ebpf.ErrKeyNotExist) {
		errs[0] = nil
	}
	errs = append(errs, r.bump(), r.syncExit(), r.clearDenied(slot), r.clearArgs(slot))
	if len(r.slots) == 0 {
		errs = append(errs, r.detachLater())
	}
	return errors.Join(errs...)
}

// detachLater detaches now, or after Options.DetachAfter if nothing is tracked by
// then.
func (r *Recorder) detachLater() error {
	if r.opts.DetachAfter <= 0 {
		return r.detach()
	}
	r.stopDetach()
	var t *time.Timer
	t = time.AfterFunc(r.opts.DetachAfter, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.detachT == t { // not stopped, nor replaced, since
			r.detachT = nil
			r.detach()
		}
	})
	r.detachT = t
	return nil
}

// stopDetach cancels a pending detach.
func (r *Recorder) stopDetach() {
	if r.detachT != nil {
		r.detachT.Stop()
		r.detachT = nil
	}
}

// Close detaches and unloads everything. It is safe to call more than once. A
// recorder with Options.PinDir that still tracks cgroups leaves its pins: they go
// on recording for the next recorder to take over.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopDetach()
	err := errors.Join(r.detach(), r.objs.close())
	if r.sysExit != nil {
		err = errors.Join(err, r.sysExit.Close())
		r.sysExit = nil
	}
	err = errors.Join(err, r.removePins())
	r.pins = nil
	r.objs = objects{}
	r.slots = map[uint64]uint32{}
	r.modes = map[uint64]TrackOptions{}
	return err
}

// ProgramIDs returns the kernel ids of the loaded programs, so that tests can prove
// they are gone after Close.
func (r *Recorder) ProgramIDs() []ebpf.ProgramID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []ebpf.ProgramID
	for _, p := range []*ebpf.Program{r.objs.SysEnter, r.objs.SchedProcessExec, r.sysExit} {
		if p == nil {
			continue
		}
		if info, err := p.Info(); err == nil {
			if id, ok := info.ID(); ok {
				ids = append(ids, id)
			}
		}
	}
	for _, id := range r.linkProgramIDs() {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// LoadedPrograms returns those of ids still loaded in the kernel after waiting up
// to timeout: the kernel frees a program an RCU grace period after its last link
// and file descriptor are gone. Tests use it to prove nothing was left behind.
func LoadedPrograms(ids []ebpf.ProgramID, timeout time.Duration) []ebpf.ProgramID {
	deadline := time.Now().Add(timeout)
	for {
		var left []ebpf.ProgramID
		for _, id := range ids {
			if p, err := ebpf.NewProgramFromID(id); err == nil {
				p.Close()
				left = append(left, id)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
