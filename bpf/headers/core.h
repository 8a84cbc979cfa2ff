/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The few kernel types recorder.bpf.c reads. Every field is relocated against the
 * running kernel's BTF (CO-RE), so this one header serves amd64 and arm64 and no
 * full vmlinux.h has to be pinned per architecture. A field that a kernel renames
 * makes the load fail with a clear relocation error, never a silent misread.
 */
#ifndef __SYSCAGE_CORE_H
#define __SYSCAGE_CORE_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef int pid_t;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct seccomp {
	int mode;
};

struct thread_info {
	unsigned long flags;
	__u32 status;
};

struct task_struct {
	struct thread_info thread_info;
	struct seccomp seccomp;
};

struct pt_regs {
#if defined(__TARGET_ARCH_arm64)
	__u64 regs[31];
	__u64 pstate;
	__u64 orig_x0;
	int syscallno;
#elif defined(__TARGET_ARCH_x86)
	unsigned long orig_ax;
	/* The argument registers: di, si, dx, r10, r8, r9 for the 64-bit ABIs, and
	 * bx, cx, dx, si, di, bp for i386 (arch/x86/include/asm/syscall.h). */
	unsigned long di, si, dx, r10, r8, r9, bx, cx, bp;
#endif
	long unused;
};

#pragma clang attribute pop

/* Map types newer than the uapi headers of older build hosts. */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_TASK_STORAGE 29
#define BPF_F_NO_PREALLOC (1U << 0)
#define BPF_LOCAL_STORAGE_GET_F_CREATE (1ULL << 0)
#define BPF_ANY 0
#define BPF_NOEXIST 1

#endif
