// Package bpf owns the kernel side of syscage: the BPF recorder that sets, for each
// tracked cgroup, one bit per syscall number made by its tasks, with native and
// compat (32-bit) calls kept apart, and a small API to load it, track and untrack
// cgroups and read what they called. The objects are compiled ahead of time by
// bpf2go (see gen.go) and embedded, so nothing is compiled at run time.
package bpf
