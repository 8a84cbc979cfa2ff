//go:build linux

package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Floor is an empty program attached to sys_enter: the cost every design that
// hooks sys_enter pays, which benchmarks measure the recorder against.
type Floor struct {
	prog *ebpf.Program
	link link.Link
}

// AttachFloor loads and attaches the empty program.
func AttachFloor() (*Floor, error) {
	spec, err := loadRecorder()
	if err != nil {
		return nil, err
	}
	var objs struct {
		Empty *ebpf.Program `ebpf:"empty"`
	}
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, explainLoad(err)
	}
	l, err := attachTracepoint("sys_enter", objs.Empty)
	if err != nil {
		objs.Empty.Close()
		return nil, fmt.Errorf("attaching the empty program: %w", err)
	}
	return &Floor{prog: objs.Empty, link: l}, nil
}

// Close detaches and unloads the program.
func (f *Floor) Close() error {
	return errors.Join(f.link.Close(), f.prog.Close())
}
