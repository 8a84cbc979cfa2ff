//go:build linux

package bpf

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
)

// setArgSpecs hands the argument specs to the programs as constants, so that the
// kernel and syscage's profile model read one table.
func setArgSpecs(spec *ebpf.CollectionSpec, opts Options) error {
	if len(opts.ArgSpecs) > MaxArgSpecs {
		return fmt.Errorf("%d argument specs: the recorder takes at most %d", len(opts.ArgSpecs), MaxArgSpecs)
	}
	var specs [MaxArgSpecs]recorderArgSpec
	for i, a := range opts.ArgSpecs {
		if a.Kind < ArgOne || a.Kind > ArgMem || a.Index0 > 5 || a.Index1 > 5 {
			return fmt.Errorf("argument spec %d: %+v: kind 1-3, indexes 0-5", i, a)
		}
		specs[i] = recorderArgSpec{Kind: uint32(a.Kind), Idx0: a.Index0, Idx1: a.Index1, Mask0: a.Mask0, Mask1: a.Mask1}
	}
	var of [NumABIs][1024]uint8
	for abi, m := range opts.ArgSyscalls {
		for nr, si := range m {
			if nr < 0 || nr >= len(of[abi]) || si < 0 || si >= len(opts.ArgSpecs) {
				return fmt.Errorf("argument spec of %s syscall %d: spec %d of %d, or number out of range", ABI(abi), nr, si, len(opts.ArgSpecs))
			}
			of[abi][nr] = uint8(si + 1)
		}
	}
	if err := spec.Variables["arg_specs"].Set(specs); err != nil {
		return fmt.Errorf("setting arg_specs: %w", err)
	}
	if err := spec.Variables["arg_spec_of"].Set(of); err != nil {
		return fmt.Errorf("setting arg_spec_of: %w", err)
	}
	return nil
}

// readArgs fills out.Args from the record's small values and the slot's entries in
// arg_values.
func (r *Recorder) readArgs(slot uint32, rec *recorderRecord, out *Recording) error {
	add := func(abi, si int, v uint64) {
		if out.Args[abi] == nil {
			out.Args[abi] = map[int]ArgValues{}
		}
		a := out.Args[abi][si]
		a.Values = append(a.Values, v)
		out.Args[abi][si] = a
	}
	for abi := range rec.Small {
		for si, bits := range rec.Small[abi] {
			for v := uint64(0); bits != 0; v++ {
				if bits&1 != 0 {
					add(abi, si, v)
				}
				bits >>= 1
			}
		}
	}
	var k recorderArgKey
	var n uint32
	it := r.objs.ArgValues.Iterate()
	for it.Next(&k, &n) {
		if k.Slot == slot && int(k.Abi) < int(NumABIs) && int(k.Spec) < MaxArgSpecs {
			add(int(k.Abi), int(k.Spec), k.Value)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading arg_values: %w", err)
	}
	for abi := range rec.Any {
		for si := 0; si < MaxArgSpecs; si++ {
			if rec.Any[abi]&(1<<si) != 0 {
				if out.Args[abi] == nil {
					out.Args[abi] = map[int]ArgValues{}
				}
				a := out.Args[abi][si]
				a.Any = true
				out.Args[abi][si] = a
			}
		}
	}
	for abi := range out.Args {
		for si, a := range out.Args[abi] {
			slices.Sort(a.Values)
			a.Values = slices.Compact(a.Values)
			out.Args[abi][si] = a
		}
	}
	return nil
}

// clearArgs removes a slot's argument values.
func (r *Recorder) clearArgs(slot uint32) error {
	return deleteSlot[recorderArgKey, uint32](r.objs.ArgValues, "arg_values", func(k recorderArgKey) bool { return k.Slot == slot })
}
