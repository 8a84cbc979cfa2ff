//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// Loading the recorder is most of what the first container of an idle period
// waits for (make bench: BenchmarkHook, cold). The kernel types the programs'
// CO-RE relocations need are read (kerneltypes.go, ~0.3 ms) from the start of Open,
// and the programs are then loaded at once, each in a goroutine of its own.

// kernelBTF is what the programs are relocated against: the few kernel types
// they read, or, where those could not be read, the kernel's whole BTF.
type kernelBTF struct {
	read    chan struct{} // closed once the kernel's structs are read
	structs *kernelStructs
	readErr error

	once  sync.Once
	types *btf.Spec  // the trimmed types
	full  error      // why the whole BTF is read instead
	cache *btf.Cache // the whole BTF, then
}

// readKernelBTF starts reading the kernel's structs the programs read, once per
// recorder: from the start of Open, before the object is parsed.
func (r *Recorder) readKernelBTF() {
	if r.kernel != nil {
		return
	}
	k := &kernelBTF{read: make(chan struct{})}
	r.kernel = k
	go func() {
		defer close(k.read)
		k.structs, k.readErr = readKernelStructs(btfPath)
	}()
}

// kernelTypes waits for the kernel's structs and trims them to what the
// programs declare (r.spec must be set), once: they serve sys_exit's load too,
// when first needed. Where they cannot be had, the whole BTF is read instead.
func (r *Recorder) kernelTypes() *kernelBTF {
	r.readKernelBTF()
	k := r.kernel
	k.once.Do(func() {
		<-k.read
		if k.full = k.readErr; k.full == nil {
			k.types, k.full = k.structs.Trim(r.spec.Types)
			k.structs.Close()
			k.structs = nil
		}
		if k.full != nil {
			k.cache = btf.NewCache()
		}
	})
	return k
}

// dropKernelBTF unmaps the kernel's BTF where Open fails before the programs
// were relocated against it.
func (r *Recorder) dropKernelBTF() {
	if k := r.kernel; k != nil {
		k.once.Do(func() {
			<-k.read
			if k.structs != nil {
				k.structs.Close()
				k.structs = nil
			}
			k.full, k.cache = errors.New("the recorder failed to open"), btf.NewCache()
		})
	}
}

// loadSpec loads the maps, but those in repl, then the programs against them:
// sys_enter and sched_process_exec, and sys_exit where Options.ReportRefused asks
// for it, so that the first recording that needs it does not wait for it.
func (r *Recorder) loadSpec(repl map[string]*ebpf.Map) error {
	began := time.Now()
	if err := r.spec.LoadAndAssign(&r.objs.maps, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		r.closeLoaded()
		return err
	}
	r.steps.Maps = time.Since(began)
	waited := time.Now()
	k := r.kernelTypes()
	r.steps.KernelBTF, r.steps.FullBTF = time.Since(waited), k.full
	loaded := time.Now()
	defer func() { r.steps.Programs = time.Since(loaded) }()
	progs := map[string]**ebpf.Program{"sys_enter": &r.objs.SysEnter, "sched_process_exec": &r.objs.SchedProcessExec}
	if r.opts.ReportRefused {
		progs["sys_exit"] = &r.sysExit
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for name, dst := range progs {
		wg.Go(func() {
			prog, err := r.loadProgram(name)
			mu.Lock()
			defer mu.Unlock()
			*dst = prog
			errs = append(errs, err)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		r.closeLoaded()
		return err
	}
	return nil
}

// closeLoaded closes what a load that failed half way made.
func (r *Recorder) closeLoaded() {
	r.objs.close()
	r.objs = objects{}
	if r.sysExit != nil {
		r.sysExit.Close()
		r.sysExit = nil
	}
}

// loadProgram loads one program against the maps already loaded.
func (r *Recorder) loadProgram(name string) (*ebpf.Program, error) {
	var obj struct {
		Prog *ebpf.Program `ebpf:"prog"`
	}
	ps := r.spec.Programs[name]
	if ps == nil {
		return nil, fmt.Errorf("loading %s: no such program in the object", name)
	}
	// A spec of its own for each goroutine: the maps' specs are only read, as
	// every map is replaced by one loaded already.
	spec := *r.spec
	spec.Programs = map[string]*ebpf.ProgramSpec{"prog": ps.Copy()}
	k := r.kernelTypes()
	opts := &ebpf.CollectionOptions{MapReplacements: r.objs.maps.replacements(), Programs: ebpf.ProgramOptions{KernelTypes: k.types}}
	if k.types == nil {
		// The programs read only vmlinux's types: given those alone, cilium/ebpf does
		// not read and search every loaded module's BTF as well for their relocations.
		vmlinux, err := k.cache.Kernel()
		if err != nil {
			return nil, fmt.Errorf("loading %s: reading the kernel's BTF: %w", name, err)
		}
		opts.Cache, opts.Programs.KernelTypes = k.cache, vmlinux
	}
	if err := spec.LoadAndAssign(&obj, opts); err != nil {
		return nil, fmt.Errorf("loading %s: %w", name, err)
	}
	return obj.Prog, nil
}

// OpenSteps says what each step of Open took.
func (r *Recorder) OpenSteps() OpenSteps {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.steps
}
