//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// The programs' CO-RE relocations read a few fields of two kernel structs
// (headers/core.h). cilium/ebpf would relocate them against the kernel's whole
// BTF: indexing its ~126,000 types takes 12–19 ms here, and decoding task_struct
// with every type it reaches 9–10 ms more, at every load. readKernelStructs
// reads the kernel's BTF in place, only as far as those structs and the types
// they reach, and Trim keeps of the structs only the members that the programs'
// own definitions name, with the kernel's offsets and sizes: the relocations come
// out the same (TestKernelTypesRelocateAsKernel), for well under a millisecond
// (BenchmarkKernelTypes).

// coreStructs are the kernel structs headers/core.h declares with
// preserve_access_index, by name.
var coreStructs = []string{"task_struct", "pt_regs"}

// BTF kinds (include/uapi/linux/btf.h).
const (
	kindInt      = 1
	kindPtr      = 2
	kindArray    = 3
	kindStruct   = 4
	kindUnion    = 5
	kindEnum     = 6
	kindFwd      = 7
	kindTypedef  = 8
	kindVolatile = 9
	kindConst    = 10
	kindRestrict = 11
	kindFunc     = 12
	kindProto    = 13
	kindVar      = 14
	kindDatasec  = 15
	kindFloat    = 16
	kindDeclTag  = 17
	kindTypeTag  = 18
	kindEnum64   = 19
)

// rawBTF is a kernel's BTF as it is laid out, read in place. Its types are
// indexed only as far as they are needed: a type's id is its place in the
// sequence, so finding one means stepping over every type before it.
type rawBTF struct {
	types   []byte
	strings []byte
	offsets []uint32            // of each type indexed so far in types, by id; id 0 is void
	next    int                 // where in types the first type not yet indexed starts
	named   []string            // the struct names looked for
	structs map[string][]uint32 // the ids of the structs of each name in named, among those indexed
	depth   int                 // of the types trim is in
}

// maxDepth bounds how deep trim goes: the kernel's types are a few levels deep
// on the members kept, and BTF that loops is refused rather than followed.
const maxDepth = 32

// enter counts one level more of trim, and refuses BTF that goes too deep; the
// function it returns counts it back.
func (r *rawBTF) enter(id uint32) (func(), error) {
	if r.depth >= maxDepth {
		return nil, fmt.Errorf("%w: type %d nested over %d deep", errBTF, id, maxDepth)
	}
	r.depth++
	return func() { r.depth-- }, nil
}

var errBTF = errors.New("unexpected BTF")

// parseRawBTF reads the header of a BTF blob in native byte order, and indexes
// its types until it has found a struct of each name named (or indexed them all).
// The kernel's BTF has one struct of each name the programs read (pahole
// deduplicates them; TestKernelTypesRelocateAsKernel checks the running kernel),
// early among its types: here task_struct is type 114 and pt_regs 162 of ~126,000,
// and the types their members reach are as early. Stepping over all of them took
// 1.5–4 ms of every recorder's start.
func parseRawBTF(data []byte, named []string) (*rawBTF, error) {
	le := binary.NativeEndian
	if len(data) < 24 || le.Uint16(data) != 0xeb9f {
		return nil, fmt.Errorf("%w: no BTF header in native byte order", errBTF)
	}
	hdrLen := le.Uint32(data[4:])
	typeOff, typeLen := le.Uint32(data[8:]), le.Uint32(data[12:])
	strOff, strLen := le.Uint32(data[16:]), le.Uint32(data[20:])
	body := data[min(uint64(hdrLen), uint64(len(data))):]
	if uint64(typeOff)+uint64(typeLen) > uint64(len(body)) || uint64(strOff)+uint64(strLen) > uint64(len(body)) {
		return nil, fmt.Errorf("%w: sections out of bounds", errBTF)
	}
	r := &rawBTF{
		types: body[typeOff : typeOff+typeLen], strings: body[strOff : strOff+strLen],
		offsets: make([]uint32, 1, 1024), named: named, structs: map[string][]uint32{},
	}
	for r.next < len(r.types) && len(r.structs) < len(named) {
		if err := r.indexNext(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// indexTo indexes the types up to id, or all there are.
func (r *rawBTF) indexTo(id uint32) error {
	for uint32(len(r.offsets)) <= id && r.next < len(r.types) {
		if err := r.indexNext(); err != nil {
			return err
		}
	}
	return nil
}

// indexNext indexes one type more, and notes it if it is a struct looked for.
func (r *rawBTF) indexNext() error {
	le := binary.NativeEndian
	off := r.next
	if off+12 > len(r.types) {
		return fmt.Errorf("%w: type %d truncated", errBTF, len(r.offsets))
	}
	r.offsets = append(r.offsets, uint32(off))
	info := le.Uint32(r.types[off+4:])
	vlen := int(info & 0xffff)
	kind := (info >> 24) & 0x1f
	if kind == kindStruct {
		name := r.name(le.Uint32(r.types[off:]))
		for _, n := range r.named {
			if string(name) == n {
				r.structs[n] = append(r.structs[n], uint32(len(r.offsets)-1))
			}
		}
	}
	off += 12
	switch kind {
	case kindInt, kindVar, kindDeclTag:
		off += 4
	case kindArray:
		off += 12
	case kindStruct, kindUnion, kindDatasec, kindEnum64:
		off += 12 * vlen
	case kindEnum, kindProto:
		off += 8 * vlen
	case kindPtr, kindFwd, kindTypedef, kindVolatile, kindConst, kindRestrict, kindFunc, kindFloat, kindTypeTag:
	default:
		return fmt.Errorf("%w: kind %d of type %d", errBTF, kind, len(r.offsets)-1)
	}
	r.next = off
	return nil
}

func (r *rawBTF) name(off uint32) []byte {
	if off >= uint32(len(r.strings)) {
		return nil
	}
	s := r.strings[off:]
	for i, c := range s {
		if c == 0 {
			return s[:i]
		}
	}
	return s
}

// header returns a type's name, kind, kind flag, vlen and size (or type), and
// what follows its header.
func (r *rawBTF) header(id uint32) (name string, kind uint32, flag bool, vlen int, sizeType uint32, rest []byte, err error) {
	if err := r.indexTo(id); err != nil {
		return "", 0, false, 0, 0, nil, err
	}
	if id == 0 || id >= uint32(len(r.offsets)) {
		return "", 0, false, 0, 0, nil, fmt.Errorf("%w: no type %d", errBTF, id)
	}
	le := binary.NativeEndian
	t := r.types[r.offsets[id]:]
	info := le.Uint32(t[4:])
	return string(r.name(le.Uint32(t))), (info >> 24) & 0x1f, info>>31 == 1, int(info & 0xffff), le.Uint32(t[8:]), t[12:], nil
}

// modifier says whether kind only qualifies or names another type, which CO-RE
// looks past.
func modifier(kind uint32) bool {
	return kind == kindTypedef || kind == kindVolatile || kind == kindConst || kind == kindRestrict || kind == kindTypeTag
}

// pastModifiers returns the type id names once typedefs and qualifiers are
// looked past, refusing a chain over maxDepth long (one that loops).
func (r *rawBTF) pastModifiers(id uint32) (uint32, error) {
	for range maxDepth {
		if id == 0 {
			return 0, nil
		}
		_, kind, _, _, next, _, err := r.header(id)
		if err != nil || !modifier(kind) {
			return id, err
		}
		id = next
	}
	return 0, fmt.Errorf("%w: type %d: modifiers over %d deep", errBTF, id, maxDepth)
}

// trim builds the kernel's type id as a btf.Type, keeping of each struct or union
// only the members local names (those of the program's own definition), and of
// anonymous members those that hold one. Pointers point at void: CO-RE takes any
// pointer for any other, and the programs never read through one.
func (r *rawBTF) trim(id uint32, local btf.Type) (btf.Type, error) {
	id, err := r.pastModifiers(id)
	if err != nil {
		return nil, err
	}
	if id == 0 {
		return &btf.Void{}, nil
	}
	leave, err := r.enter(id)
	if err != nil {
		return nil, err
	}
	defer leave()
	name, kind, flag, vlen, sizeType, rest, err := r.header(id)
	if err != nil {
		return nil, err
	}
	le := binary.NativeEndian
	switch kind {
	case kindInt:
		if len(rest) < 4 {
			return nil, fmt.Errorf("%w: int %d truncated", errBTF, id)
		}
		enc := btf.IntEncoding(le.Uint32(rest) >> 24 & 0xf)
		return &btf.Int{Name: name, Size: sizeType, Encoding: enc}, nil
	case kindPtr:
		return &btf.Pointer{Target: &btf.Void{}}, nil
	case kindArray:
		if len(rest) < 12 {
			return nil, fmt.Errorf("%w: array %d truncated", errBTF, id)
		}
		var elem btf.Type
		if a, ok := btf.UnderlyingType(local).(*btf.Array); ok {
			elem = a.Type
		}
		t, err := r.trim(le.Uint32(rest), elem)
		if err != nil {
			return nil, err
		}
		return &btf.Array{Index: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}, Type: t, Nelems: le.Uint32(rest[8:])}, nil
	case kindStruct, kindUnion:
		want := map[string]btf.Type{}
		for _, m := range membersOf(local) {
			want[m.Name] = m.Type
		}
		return r.trimComposite(name, kind, flag, vlen, sizeType, rest, want)
	case kindEnum, kindEnum64:
		return &btf.Enum{Name: name, Size: sizeType, Signed: flag}, nil
	case kindFwd:
		fk := btf.FwdStruct
		if flag {
			fk = btf.FwdUnion
		}
		return &btf.Fwd{Name: name, Kind: fk}, nil
	case kindFloat:
		return &btf.Float{Name: name, Size: sizeType}, nil
	}
	return nil, fmt.Errorf("%w: type %d of kind %d in a struct", errBTF, id, kind)
}

func membersOf(t btf.Type) []btf.Member {
	switch c := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		return c.Members
	case *btf.Union:
		return c.Members
	}
	return nil
}

// trimComposite keeps the members want names, and the anonymous members that hold
// one of them.
func (r *rawBTF) trimComposite(name string, kind uint32, bitfields bool, vlen int, size uint32, rest []byte, want map[string]btf.Type) (btf.Type, error) {
	if len(rest) < 12*vlen {
		return nil, fmt.Errorf("%w: %s truncated", errBTF, name)
	}
	le := binary.NativeEndian
	var members []btf.Member
	for i := range vlen {
		m := rest[12*i:]
		mname, mtype, off := string(r.name(le.Uint32(m))), le.Uint32(m[4:]), le.Uint32(m[8:])
		member := btf.Member{Name: mname, Offset: btf.Bits(off)}
		if bitfields {
			member.Offset, member.BitfieldSize = btf.Bits(off&0xffffff), btf.Bits(off>>24)
		}
		if mname != "" {
			local, ok := want[mname]
			if !ok {
				continue
			}
			t, err := r.trim(mtype, local)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", name, mname, err)
			}
			member.Type = t
			members = append(members, member)
			continue
		}
		// An anonymous struct or union: its members are the outer one's to CO-RE.
		aid, err := r.pastModifiers(mtype)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if aid == 0 {
			continue
		}
		aname, akind, aflag, avlen, asize, arest, err := r.header(aid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if akind != kindStruct && akind != kindUnion {
			continue
		}
		leave, err := r.enter(aid)
		if err != nil {
			return nil, err
		}
		t, err := r.trimComposite(aname, akind, aflag, avlen, asize, arest, want)
		leave()
		if err != nil {
			return nil, err
		}
		if len(membersOf(t)) > 0 {
			member.Type = t
			members = append(members, member)
		}
	}
	if kind == kindUnion {
		return &btf.Union{Name: name, Size: size, Members: members}, nil
	}
	return &btf.Struct{Name: name, Size: size, Members: members}, nil
}

// kernelStructs are coreStructs as a kernel's BTF has them, read in place.
type kernelStructs struct {
	path string
	data []byte // mapped
	raw  *rawBTF
}

// readKernelStructs maps the kernel's BTF at path and finds coreStructs in it.
// Close unmaps it.
func readKernelStructs(path string) (*kernelStructs, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", path, err)
	}
	raw, err := parseRawBTF(data, coreStructs)
	if err != nil {
		unix.Munmap(data)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &kernelStructs{path: path, data: data, raw: raw}, nil
}

// Close unmaps the kernel's BTF.
func (k *kernelStructs) Close() error { return unix.Munmap(k.data) }

// Trim returns the structs the programs relocate against, trimmed to what local
// (the programs' own BTF) declares of them.
func (k *kernelStructs) Trim(local *btf.Spec) (*btf.Spec, error) {
	var b btf.Builder
	for _, name := range coreStructs {
		var mine *btf.Struct
		if err := local.TypeByName(name, &mine); err != nil {
			return nil, fmt.Errorf("the programs' own struct %s: %w", name, err)
		}
		ids := k.raw.structs[name]
		if len(ids) == 0 {
			return nil, fmt.Errorf("%s: no struct %s", k.path, name)
		}
		for _, id := range ids {
			t, err := k.raw.trim(id, mine)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k.path, err)
			}
			if _, err := b.Add(t); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return b.Spec()
}

// kernelTypes reads the kernel's BTF at path and returns the structs the
// programs relocate against, trimmed to what local declares of them.
func kernelTypes(path string, local *btf.Spec) (*btf.Spec, error) {
	k, err := readKernelStructs(path)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	return k.Trim(local)
}
