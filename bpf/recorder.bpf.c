//go:build ignore
// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/*
 * The syscall recorder: one bitmap of syscall numbers per tracked cgroup, set in the
 * kernel at sys_enter. Nothing is sent to user space per syscall, so nothing can be
 * lost; user space reads the bitmaps when it wants them.
 *
 * Cost model. Attaching anything to sys_enter puts every task on the host on the
 * traced syscall path (~90 ns); that is the floor. On top of it, every syscall on the
 * host must learn whether its cgroup (or an ancestor) is tracked. Measured on x86_64
 * with return-thunk mitigations, each helper call costs ~20 ns while an inlined map
 * lookup costs ~5 ns, so the answer is looked up in three levels:
 *   L1  a per-CPU, direct-mapped array keyed by the cgroup's id: one inlined lookup,
 *       no helper call besides finding the current cgroup's id;
 *   L2  an LRU hash keyed by the cgroup's id (one more helper call), which absorbs
 *       L1 collisions;
 *   the walk over the cgroup's ancestors in the tracked hash, once per cgroup.
 * Cached answers -- tracked slot or "not tracked" -- are stamped with a generation
 * that user space bumps whenever the tracked set changes, so a cgroup created inside
 * a tracked one (nested containers) is found on its first syscall.
 *
 * Cost of loading. The programs never load a pointer from a kernel struct (such as
 * task->cgroups->dfl_cgrp): for each such load the verifier searches the kernel's
 * whole BTF by name, up to four times (whether the field is trusted, or RCU), which
 * was over half of what loading the recorder cost the kernel. The current cgroup is
 * known by its id, from helpers, instead. And the programs are raw tracepoints, not
 * tp_btf ones: a tp_btf program names its attach point by a type id of the kernel's
 * BTF, which cilium/ebpf finds only by indexing all of it (~13 ms per load). The
 * registers come from bpf_task_pt_regs, as BTF pointers, and the few kernel fields
 * read are relocated against the structs kerneltypes.go reads.
 */

#include "core.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_SLOTS 1024
/* Syscall numbers per ABI; larger ones are counted in out_of_range. */
#define NR_BITS 1024
#define NR_WORDS (NR_BITS / 64)
/* Deepest cgroup2 nesting searched for a tracked ancestor (the kernel allows more,
 * but no runtime nests that deep; a deeper cgroup is counted in too_deep). */
#define MAX_LEVELS 32

enum abi {
	ABI_NATIVE = 0,
	ABI_COMPAT = 1, /* 32-bit syscalls of a 64-bit kernel: i386 on x86_64, arm on arm64 */
	ABI_X32 = 2,
	ABI_COUNT = 3,
};

enum start {
	START_NOW = 0,     /* record from the moment the cgroup is tracked */
	START_EXEC = 1,    /* record from the first successful execve in the cgroup */
	START_SECCOMP = 2, /* record only tasks that run under a seccomp filter */
};

enum record_flags {
	/* Count the calls in watch, with the first process that made them (verify,
	 * complain mode: the calls the profile under test would refuse). */
	FLAG_WATCH = 1,
	/* Tell refused calls exactly, per task, rather than by "never entered in this
	 * cgroup" (verify, enforce mode: socket(AF_INET) refused by an argument
	 * condition while socket(AF_UNIX) was allowed). Costs a helper call a syscall. */
	FLAG_EXACT_REFUSALS = 2,
};

/* Argument recording. A few syscalls decide by an argument what they can reach
 * (namespaces, socket families, ioctl requests, W+X memory): for those, user space
 * passes a spec per syscall number (arg_spec_of, arg_specs), and the values seen
 * are recorded per cgroup and ABI. Values below 64 are a bit in the record, which
 * costs no helper call; larger ones go into arg_values, at most ARG_CAP distinct
 * ones per spec, after which the spec is recorded as "any value" (any). */
#define MAX_ARG_SPECS 16
#define ARG_CAP 64

enum arg_kind {
	ARG_ONE = 1,  /* value = arg[idx0] & mask0 */
	ARG_PAIR = 2, /* value = (arg[idx0] & mask0) | (arg[idx1] & mask1) << 32 */
	ARG_MEM = 3,  /* value = *(u64 *)arg[idx0] & mask0: clone3's clone_args.flags */
};

struct arg_spec {
	__u32 kind; /* enum arg_kind; 0: unused */
	__u8 idx0;
	__u8 idx1;
	__u16 _pad;
	__u64 mask0;
	__u64 mask1;
};

/* One tracked cgroup: what was recorded, and when recording starts. */
struct record {
	__u32 start;   /* enum start, written by user space before tracking */
	__u32 armed;   /* START_EXEC: set by the first exec in the cgroup */
	__u32 pending; /* START_EXEC: execve variants entered before arming, bit abi*2+i */
	__u32 flags;   /* enum record_flags, written by user space before tracking */
	__u64 bits[ABI_COUNT][NR_WORDS];
	__u64 watch[ABI_COUNT][NR_WORDS];
	__u64 small[ABI_COUNT][MAX_ARG_SPECS]; /* argument values < 64 seen, as bits */
	__u32 nvals[ABI_COUNT][MAX_ARG_SPECS]; /* distinct values >= 64 in arg_values */
	__u32 any[ABI_COUNT];                  /* bit per spec: too many values to keep */
	__u32 epoch;                           /* set by user space at each track: stamps last_arg */
	__u32 _pad2;
};

/* Per-CPU counters of a slot, so loss is measured rather than assumed. Each CPU
 * zeroes its own when it finds them stamped with an epoch not the slot's (a slot
 * given out again), so user space never writes them, and they can share a per-CPU
 * value in chunks: a per-CPU array allocates each element apart, which for one
 * element per slot took ~0.5 ms of every recorder's start. */
struct counters {
	__u64 events;         /* syscalls recorded */
	__u64 before_start;   /* syscalls in the cgroup before recording started */
	__u64 out_of_range;   /* numbers >= NR_BITS (or negative): not in the bitmap */
	__s64 last_out_of_range;
	__u32 epoch; /* the record's epoch these count for */
	__u32 _pad;
};

/* 16 slots a chunk: 64 allocations (~30 µs), and a slot's read copies 640 bytes
 * per CPU (the agent reads each container's every publication). */
#define COUNTER_CHUNK 16
_Static_assert(MAX_SLOTS % COUNTER_CHUNK == 0, "slots fill whole chunks");

struct counter_chunk {
	struct counters c[COUNTER_CHUNK];
};

/* L1 entries are one u64, so a concurrent writer can never be read half-written:
 * bits 63-32 the low 32 bits of the cgroup id (the kernfs inode number, unique among
 * live cgroups), bits 31-16 the low 16 bits of the generation, bits 15-0 slot+1
 * (0: not tracked). User space clears L1 whenever the low 16 bits of the generation
 * wrap, so a stale entry can never match. */
#define L1_BITS 10
#define L1_ENTRIES (1 << L1_BITS)
_Static_assert(MAX_SLOTS < 0xffff, "slot+1 must fit 16 bits");

/* One per-CPU value holding every entry: allocated once, not once per entry. */
struct l1 {
	__u64 e[L1_ENTRIES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l1);
} l1_cache SEC(".maps");

/* Value cached for every cgroup that made a syscall while the recorder was attached. */
struct cached {
	__u32 generation;
	__s32 slot; /* -1: neither this cgroup nor an ancestor is tracked */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u64);   /* cgroup2 id (inode of its directory) */
	__type(value, __u32); /* slot in records and counters */
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct record);
} records SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SLOTS / COUNTER_CHUNK);
	__type(key, __u32); /* slot / COUNTER_CHUNK */
	__type(value, struct counter_chunk);
} slot_counters SEC(".maps");

/* L2. An entry of a cgroup that is gone is evicted in time by those of live ones;
 * ids are never reused while the host runs (kernfs ids carry a generation). */
#define L2_ENTRIES 8192

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L2_ENTRIES);
	__type(key, __u64);   /* cgroup2 id */
	__type(value, struct cached);
} cgroup_cache SEC(".maps");

/* Calls noted per cgroup: refused by the seccomp filter in force (they never reach
 * sys_enter, so they would be missing from a profile without a word), or made
 * while on the watch list. */
struct denied_key {
	__u32 slot;
	__u16 abi;
	__u16 nr;
};

struct noted {
	__u64 refused;
	__u64 watched;
	__u32 pid; /* the first process that made the call */
	__u32 _pad;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	/* Entries are rare, and preallocating 16384 of them took ~2 ms of every load. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct denied_key);
	__type(value, struct noted);
} denied SEC(".maps");

struct arg_key {
	__u32 slot;
	__u16 abi;
	__u16 spec;
	__u64 value;
};

/* The last large value each CPU recorded, with the slot's epoch: a program that
 * makes the same call over and over (the same ioctl on the same terminal) finds
 * it here with an inlined lookup instead of a hash lookup (a helper call) each
 * time. The epoch changes whenever a slot is given out again, so a reused slot
 * never finds a value of the cgroup before it. */
struct last_arg {
	struct arg_key key;
	__u32 epoch;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct last_arg);
} last_arg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct arg_key);
	__type(value, __u32);
} arg_values SEC(".maps");

/* FLAG_EXACT_REFUSALS: the call a task entered and has not yet left, (abi<<16|nr)+1. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} entered SEC(".maps");

static __always_inline void note(__u32 slot, int abi, long nr, int refused)
{
	struct denied_key dk = {.slot = slot, .abi = abi, .nr = nr};
	struct noted *n = bpf_map_lookup_elem(&denied, &dk);
	if (!n) {
		struct noted fresh = {.pid = bpf_get_current_pid_tgid() >> 32};
		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
		bpf_map_update_elem(&denied, &dk, &fresh, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&denied, &dk);
		if (!n)
			return;
	}
	if (refused)
		__sync_fetch_and_add(&n->refused, 1);
	else
		__sync_fetch_and_add(&n->watched, 1);
}

/* Bumped by user space after every change to tracked. */
__u32 generation;
/* Host-wide: cgroups deeper than MAX_LEVELS, and failed cache allocations. */
__u64 too_deep;
__u64 no_cache;

/* execve and execveat per ABI (-1 where absent), set by user space from its tables. */
volatile const __s32 exec_nr[ABI_COUNT][2] = {{-1, -1}, {-1, -1}, {-1, -1}};

/* The argument spec of each syscall number per ABI, as index+1 (0: none), and the
 * specs themselves, set by user space from profile.ArgSpecs. */
volatile const __u8 arg_spec_of[ABI_COUNT][NR_BITS] = {};
volatile const struct arg_spec arg_specs[MAX_ARG_SPECS] = {};

/* Kernel ABI constants, cited from the kernel headers named. */
#define X32_SYSCALL_BIT 0x40000000 /* arch/x86/include/uapi/asm/unistd.h */
#define TS_COMPAT 0x0002           /* arch/x86/include/asm/thread_info.h */
#define PSR_MODE32_BIT 0x10        /* arch/arm64/include/uapi/asm/ptrace.h */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct ancestor_search {
	__u64 self; /* the current cgroup's id */
	int slot;   /* of the deepest tracked ancestor seen so far, or -1 */
	int end;    /* 0: still walking; SEARCH_SELF or SEARCH_MOVED once done */
};

enum { SEARCH_SELF = 1, SEARCH_MOVED = 2 };

/* One step of the ancestor search, from the root down to the cgroup itself, so
 * the deepest tracked ancestor wins; in a bpf_loop callback so the verifier checks
 * it once instead of once per unrolled level (that took ~7 ms of every load). */
static long check_ancestor(__u32 level, void *arg)
{
	struct ancestor_search *a = arg;
	__u64 id = bpf_get_current_ancestor_cgroup_id(level);
	if (!id) {
		/* Below the current cgroup: the task was moved while this walked. */
		a->end = SEARCH_MOVED;
		return 1;
	}
	__u32 *s = bpf_map_lookup_elem(&tracked, &id);
	if (s)
		a->slot = *s;
	if (id == a->self) {
		a->end = SEARCH_SELF;
		return 1;
	}
	return 0;
}

/* slot_of_l2 answers from the LRU hash, or by walking the ancestors. *keep is
 * cleared where the answer is of no cgroup in particular, and must not be cached. */
static __always_inline int slot_of_l2(__u64 id, __u32 gen, int *keep)
{
	struct cached *c = bpf_map_lookup_elem(&cgroup_cache, &id);
	if (c && c->generation == gen)
		return c->slot;

	/* Slow path: once per cgroup and generation. gen was read before the walk, so a
	 * concurrent change to tracked leaves this entry stale, never wrong. */
	struct ancestor_search a = {.self = id, .slot = -1};
	bpf_loop(MAX_LEVELS, check_ancestor, &a, 0);
	if (a.end == SEARCH_MOVED) {
		*keep = 0;
		return a.slot;
	}
	if (a.end == 0)
		__sync_fetch_and_add(&too_deep, 1); /* its ancestors down to MAX_LEVELS-1 */

	struct cached fresh = {.generation = gen, .slot = a.slot};
	if (bpf_map_update_elem(&cgroup_cache, &id, &fresh, BPF_ANY))
		__sync_fetch_and_add(&no_cache, 1);
	return a.slot;
}

/* slot_of returns the slot of the current task's cgroup or of its nearest tracked
 * ancestor, or -1. */
static __always_inline int slot_of(void)
{
	__u32 gen = generation;
	__u64 id = bpf_get_current_cgroup_id();
	/* Fibonacci hashing: ids are sequential inode numbers. */
	__u32 key = (__u32)((id * 0x9E3779B97F4A7C15ULL) >> (64 - L1_BITS));
	__u64 want = (id << 32) | ((__u64)(gen & 0xffff) << 16);
	__u32 zero = 0;
	struct l1 *l1 = bpf_map_lookup_elem(&l1_cache, &zero);
	__u64 *e = l1 ? &l1->e[key & (L1_ENTRIES - 1)] : 0;
	if (e) {
		__u64 v = *e;
		if ((v & ~0xffffULL) == want)
			return (int)(v & 0xffff) - 1;
	}
	int keep = 1;
	int slot = slot_of_l2(id, gen, &keep);
	if (e && keep)
		*e = want | (__u64)(slot + 1);
	return slot;
}

/* abi_of computes the ABI without a branch: the verifier then walks what follows
 * once for all ABIs, not once for each, which was a third of what it did for
 * sys_enter (1,715 instructions then, 1,152 now: ~1 ms of every recorder's
 * start). */
static __always_inline int abi_of(struct task_struct *task, long *nr)
{
#if defined(__TARGET_ARCH_x86)
	/* Set on entry through int 0x80 / sysenter / 32-bit syscall, whatever the
	 * binary's bitness: the kernel uses the ia32 table for exactly these calls. */
	/* ABI_COMPAT where TS_COMPAT is set; else ABI_X32 where a number that is not
	 * negative has the x32 bit (cleared then); else ABI_NATIVE. */
	__u32 compat = (task->thread_info.status / TS_COMPAT) & 1;
	__u64 x32 = (~compat & 1) & (~((__u64)*nr >> 63) & 1) & (((__u64)*nr / X32_SYSCALL_BIT) & 1);
	*nr &= ~(long)(x32 * X32_SYSCALL_BIT);
	return (int)(compat * ABI_COMPAT + x32 * ABI_X32);
#elif defined(__TARGET_ARCH_arm64)
	/* AArch32 state in the saved PSTATE: what compat_user_mode() tests. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	return (int)((regs->pstate / PSR_MODE32_BIT) & 1) * ABI_COMPAT;
#else
	return ABI_NATIVE;
#endif
}

static __always_inline void set_bit(struct record *rec, int abi, long nr)
{
	if (abi < 0 || abi >= ABI_COUNT)
		return;
	__u64 *word = &rec->bits[abi][(nr >> 6) & (NR_WORDS - 1)];
	__u64 bit = 1ULL << (nr & 63);
	/* Test first: once a syscall is known, its word stays shared in every CPU's
	 * cache instead of bouncing between them on each call. */
	if (!(*word & bit))
		__sync_fetch_and_or(word, bit);
}

/* arg_of reads argument i of the syscall being entered, as the kernel's
 * syscall_get_arguments() does (arch/x86/include/asm/syscall.h,
 * arch/arm64/include/asm/syscall.h). 32-bit ABIs pass 32-bit registers. */
static __always_inline __u64 arg_of(struct pt_regs *regs, int abi, int i)
{
#if defined(__TARGET_ARCH_x86)
	if (abi == ABI_COMPAT) {
		switch (i) {
		case 0: return (__u32)regs->bx;
		case 1: return (__u32)regs->cx;
		case 2: return (__u32)regs->dx;
		case 3: return (__u32)regs->si;
		case 4: return (__u32)regs->di;
		default: return (__u32)regs->bp;
		}
	}
	switch (i) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	case 3: return regs->r10;
	case 4: return regs->r8;
	default: return regs->r9;
	}
#elif defined(__TARGET_ARCH_arm64)
	__u64 v;
	switch (i) {
	case 0: v = regs->orig_x0; break;
	case 1: v = regs->regs[1]; break;
	case 2: v = regs->regs[2]; break;
	case 3: v = regs->regs[3]; break;
	case 4: v = regs->regs[4]; break;
	default: v = regs->regs[5]; break;
	}
	return abi == ABI_COMPAT ? (__u32)v : v;
#else
	return 0;
#endif
}

/* record_arg notes the value of spec si that the call entered with. */
static __always_inline void record_arg(struct record *rec, __u32 slot, int abi, __u32 si, struct task_struct *task)
{
	if (abi < 0 || abi >= ABI_COUNT || si >= MAX_ARG_SPECS)
		return;
	__u32 kind = arg_specs[si].kind;
	/* The registers the call entered with, which the kernel passes the tracepoint. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 v = arg_of(regs, abi, arg_specs[si].idx0);
	if (kind == ARG_MEM) {
		__u64 flags = 0;
		/* A bad pointer leaves flags 0; the kernel then fails the call with EFAULT. */
		bpf_probe_read_user(&flags, sizeof(flags), (void *)v);
		v = flags;
	}
	v &= arg_specs[si].mask0;
	if (kind == ARG_PAIR)
		v = (v & 0xffffffffULL) | ((arg_of(regs, abi, arg_specs[si].idx1) & arg_specs[si].mask1) << 32);
	if (v < 64) {
		__u64 bit = 1ULL << v;
		if (!(rec->small[abi][si] & bit))
			__sync_fetch_and_or(&rec->small[abi][si], bit);
		return;
	}
	if (rec->any[abi] & (1U << si))
		return;
	struct arg_key k = {.slot = slot, .abi = abi, .spec = si, .value = v};
	__u32 zero = 0;
	struct last_arg *last = bpf_map_lookup_elem(&last_arg, &zero);
	if (last && last->epoch == rec->epoch && last->key.slot == slot && last->key.abi == abi &&
	    last->key.spec == si && last->key.value == v)
		return;
	if (bpf_map_lookup_elem(&arg_values, &k)) {
		if (last) {
			last->key = k;
			last->epoch = rec->epoch;
		}
		return;
	}
	if (rec->nvals[abi][si] >= ARG_CAP) {
		__sync_fetch_and_or(&rec->any[abi], 1U << si);
		return;
	}
	__u32 one = 1;
	long err = bpf_map_update_elem(&arg_values, &k, &one, BPF_NOEXIST);
	if (err == 0)
		__sync_fetch_and_add(&rec->nvals[abi][si], 1);
	else if (err != -17 /* EEXIST: another CPU was first */)
		__sync_fetch_and_or(&rec->any[abi], 1U << si); /* the table is full */
}

SEC("raw_tp/sys_enter")
int sys_enter(__u64 *ctx)
{
	long nr = (long)ctx[1]; /* ctx[0] is the registers: see record_arg */
	int slot = slot_of();
	if (slot < 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();

	__u32 key = slot;
	struct record *rec = bpf_map_lookup_elem(&records, &key);
	__u32 chunk_key = key / COUNTER_CHUNK;
	struct counter_chunk *chunk = bpf_map_lookup_elem(&slot_counters, &chunk_key);
	if (!rec || !chunk)
		return 0;
	struct counters *cnt = &chunk->c[key & (COUNTER_CHUNK - 1)];
	if (cnt->epoch != rec->epoch) {
		/* This CPU's first call of the slot since it was given out. */
		cnt->events = cnt->before_start = cnt->out_of_range = 0;
		cnt->last_out_of_range = 0;
		cnt->epoch = rec->epoch;
	}

	int abi = abi_of(task, &nr);
	if (rec->start == START_EXEC && !rec->armed) {
		/* The execve that starts the workload is part of what it needs; remember it
		 * here and keep it only when the exec succeeds (sched_process_exec). */
		for (int i = 0; i < 2; i++)
			if (nr == exec_nr[abi][i])
				__sync_fetch_and_or(&rec->pending, 1U << (abi * 2 + i));
		cnt->before_start++;
		return 0;
	}
	if (rec->start == START_SECCOMP && task->seccomp.mode == 0) {
		cnt->before_start++;
		return 0;
	}
	if (nr < 0 || nr >= NR_BITS) {
		cnt->out_of_range++;
		cnt->last_out_of_range = nr;
		return 0;
	}
	set_bit(rec, abi, nr);
	cnt->events++;
	if (abi >= 0 && abi < ABI_COUNT) {
		__u8 si = arg_spec_of[abi][nr & (NR_BITS - 1)];
		if (si)
			record_arg(rec, key, abi, si - 1, task);
	}
	if (rec->flags) {
		if ((rec->flags & FLAG_WATCH) && (rec->watch[abi][(nr >> 6) & (NR_WORDS - 1)] & (1ULL << (nr & 63))))
			note(slot, abi, nr, 0);
		if (rec->flags & FLAG_EXACT_REFUSALS) {
			__u32 *e = bpf_task_storage_get(&entered, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (e)
				*e = ((__u32)abi << 16 | (__u32)nr) + 1;
		}
	}
	return 0;
}

SEC("raw_tp/sched_process_exec")
int sched_process_exec(__u64 *ctx)
{
	int slot = slot_of();
	if (slot < 0)
		return 0;
	__u32 key = slot;
	struct record *rec = bpf_map_lookup_elem(&records, &key);
	if (!rec || rec->start != START_EXEC || rec->armed)
		return 0;

	__u32 pending = rec->pending;
	for (int abi = 0; abi < ABI_COUNT; abi++)
		for (int i = 0; i < 2; i++) {
			__s32 nr = exec_nr[abi][i];
			if ((pending & (1U << (abi * 2 + i))) && nr >= 0 && nr < NR_BITS)
				set_bit(rec, abi, nr);
		}
	rec->armed = 1;
	return 0;
}

/* A call a seccomp filter refused skips sys_enter but reaches sys_exit with an
 * errno. In a START_SECCOMP cgroup every call that ran under the filter set its
 * bit at sys_enter, so a failing call whose bit is still unset was refused.
 * fexit on __secure_computing would see refusals exactly and only in filtered
 * tasks, but kernels without ftrace trampolines (like these VMs') refuse fentry;
 * sys_exit costs every syscall on the host a second dispatch (~90 ns), so it is
 * attached only while such a cgroup is tracked and refusals are asked for. */
SEC("raw_tp/sys_exit")
int sys_exit(__u64 *ctx)
{
	long ret = (long)ctx[1];
	if (ret >= 0 || ret < -4095)
		return 0;
	int slot = slot_of();
	if (slot < 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 key = slot;
	struct record *rec = bpf_map_lookup_elem(&records, &key);
	if (!rec || rec->start != START_SECCOMP || task->seccomp.mode == 0)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
#if defined(__TARGET_ARCH_x86)
	long nr = (long)regs->orig_ax;
#elif defined(__TARGET_ARCH_arm64)
	long nr = regs->syscallno;
#else
	return 0;
#endif
	int abi = abi_of(task, &nr);
	if (nr < 0 || nr >= NR_BITS || abi < 0 || abi >= ABI_COUNT)
		return 0;
	if (rec->flags & FLAG_EXACT_REFUSALS) {
		__u32 *e = bpf_task_storage_get(&entered, task, 0, 0);
		int ran = e && *e == (((__u32)abi << 16 | (__u32)nr) + 1);
		if (e)
			*e = 0;
		if (ran)
			return 0;
	} else if (rec->bits[abi][(nr >> 6) & (NR_WORDS - 1)] & (1ULL << (nr & 63))) {
		return 0;
	}
	note(slot, abi, nr, 1);
	return 0;
}

/* The floor of this design, for benchmarks only: the cost of any program at all on
 * sys_enter. Never attached by the recorder. */
SEC("raw_tp/sys_enter")
int empty(__u64 *ctx)
{
	return 0;
}
