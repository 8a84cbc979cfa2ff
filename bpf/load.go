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
// CO-RE relocations need are read (kernelTypes, ~1 ms) while the maps are made,
// and the programs are then loaded at once, each in a goroutine of its own.

// kernelBTF is what the programs are relocated against: the few kernel types
// they read, or, where those could not be read, the kernel's whole BTF.
type kernelBTF struct {
	done  chan struct{}
	types *btf.Spec  // the trimmed types
	full  error      // why the whole BTF is read instead
	cache *btf.Cache // the whole BTF, then
}

// readKernelBTF starts reading the kernel's types, once per recorder: they serve
// sys_exit's load too, when first needed. r.spec must be set.
func (r *Recorder) readKernelBTF() {
	if r.kernel != nil {
		return
	}
	k := &kernelBTF{done: make(chan struct{})}
	r.kernel = k
	local := r.spec.Types
	go func() {
		defer close(k.done)
		if k.types, k.full = kernelTypes(btfPath, local); k.full != nil {
			k.cache = btf.NewCache()
			k.cache.Kernel() // an error shows again, and is reported, where the programs load
		}
	}()
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
	r.readKernelBTF()
	waited := time.Now()
	<-r.kernel.done
	r.steps.KernelBTF, r.steps.FullBTF = time.Since(waited), r.kernel.full
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
	r.readKernelBTF()
	k := r.kernel
	<-k.done
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
