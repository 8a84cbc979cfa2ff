// Package recorder is the one recorder process on a host (`syscage-recorder`,
// or `syscage daemon`) that the hook starts on demand: it loads the BPF
// programs, tracks each container a hook asks it to, writes its profile when
// its cgroup empties or its poststop hook asks, keeps what the next recorder
// needs to take over if it dies, and exits once idle. The node agent and
// verify serve hooks with it too, with recorders and decisions of their own.
package recorder
