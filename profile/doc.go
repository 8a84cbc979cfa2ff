// Package profile owns what a seccomp profile is: syscall sets, per-architecture
// syscall name tables, the OCI seccomp JSON model and the operations on it.
//
// It imports only github.com/opencontainers/runtime-spec and the standard library, so
// the recorder, the CLI and the OCI hooks can all share it without dragging each
// other's dependencies along.
package profile
