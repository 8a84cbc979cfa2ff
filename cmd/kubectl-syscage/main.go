// Command kubectl-syscage is the kubectl plugin of syscage: it installs the node
// agent, records workloads across the cluster, and applies and verifies their
// seccomp profiles, talking only to the API server.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], stdStreams()))
}
