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
// waits for (make bench: BenchmarkHook, cold). Of it, cilium/ebpf reading the
// kernel's BTF (for the CO-RE relocations and the tp_btf attach points) takes
// ~13 ms, and each program's relocations and verification ~4-10 ms. So the BTF is
// read in the background from the start of Open, the maps are made meanwhile,
// and the programs are then loaded at once, each in a goroutine of its own.

// readKernelBTF starts reading the kernel's BTF, once, for the programs Open loads.
func (r *Recorder) readKernelBTF() {
	if r.kernel != nil {
		return
	}
	r.kernel = btf.NewCache()
	kernel := r.kernel
	go kernel.Kernel() // an error shows again, and is reported, where the programs load
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
	if r.kernel != nil {
		waited := time.Now()
		r.kernel.Kernel()
		r.steps.KernelBTF = time.Since(waited)
	}
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
	kernel := r.kernel
	if kernel == nil {
		kernel = btf.NewCache()
	}
	// The programs read only vmlinux's types: given those alone, cilium/ebpf does
	// not read and search every loaded module's BTF as well for their relocations.
	vmlinux, err := kernel.Kernel()
	if err != nil {
		return nil, fmt.Errorf("loading %s: reading the kernel's BTF: %w", name, err)
	}
	opts := &ebpf.CollectionOptions{MapReplacements: r.objs.maps.replacements(), Cache: kernel, Programs: ebpf.ProgramOptions{KernelTypes: vmlinux}}
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
