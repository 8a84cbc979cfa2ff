// Package seccomp compiles OCI runtime-spec seccomp profiles (specs.LinuxSeccomp)
// into classic-BPF seccomp filters, in pure Go, and installs them right before an
// execve. It owns the filter's semantics: which rule wins, what an unknown name or
// architecture does, how 64-bit arguments are compared. Those follow what runc and
// libseccomp do, so that a profile tried with `syscage exec` behaves as it will in a
// container; where they differ from the runtime-spec's text, the doc of Compile says
// so.
package seccomp
