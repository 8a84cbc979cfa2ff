// Package fleet simulates syscage on a fleet of nodes against a real
// kube-apiserver and etcd (the cluster harness's binaries, tests/k8s/cluster):
// N node agents run in this one process, each the agent's own code (its
// informers, admission, publication of SyscallNodeResults, profile building)
// with a simulated recorder that serves recordings drawn from recorded
// profiles, while the real `kubectl syscage record` records a DaemonSet's pods
// on every node. It measures what the issue of fleet scale asks: API writes per
// node during a recording, the largest syscage object, etcd's size, and how long
// the plugin takes to collect and merge every node's results.
//
// `make bench-k8s FLEET_NODES=100,1000,5000` runs it; `make test` runs 100 nodes
// and checks the structural targets (no object over 256 KiB, no more than one
// write per node per 5 s).
package fleet
