package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

// BenchmarkMergeFleet is what record does with a fleet's results once every
// node has answered: the merge over all containers (for the nodes' notes),
// then one per container name. 10 containers a node, each with a recorded
// profile (profiles/demo-*.json) and a call of its own node's, so that the
// profiles differ.
func BenchmarkMergeFleet(b *testing.B) {
	var base []*specs.LinuxSeccomp
	for _, f := range []string{"demo-sh.json", "demo-tar.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "profiles", f))
		if err != nil {
			b.Fatal(err)
		}
		p, err := profile.Parse(f, data)
		if err != nil {
			b.Fatal(err)
		}
		base = append(base, p)
	}
	extra := []string{"getpid", "gettid", "uname", "sysinfo", "futex", "nanosleep", "clock_gettime", "pipe2", "dup3", "fchdir"}
	for _, nodes := range []int{1000, 5000} {
		st := kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{}}
		for i := range nodes {
			node := fmt.Sprintf("node-%05d", i)
			n := kubeapi.NodeRecording{Phase: kubeapi.PhaseDone}
			for j := range 10 {
				p := *base[j%len(base)]
				p.Syscalls = append(append([]specs.LinuxSyscall(nil), p.Syscalls...), specs.LinuxSyscall{Names: []string{extra[(i+j)%len(extra)]}, Action: specs.ActAllow})
				n.Containers = append(n.Containers, kubeapi.ContainerResult{
					Pod: "fleet-" + node, PodUID: "uid-" + node, Container: fmt.Sprintf("c%d", j), ContainerID: fmt.Sprintf("%s-%d", node, j),
					From: kubeapi.FromStart, Runs: 1, Events: 1000, Profile: &p,
				})
			}
			st.Nodes[node] = n
		}
		b.Run(fmt.Sprint(nodes), func(b *testing.B) {
			for b.Loop() {
				if _, err := mergeRecording(st); err != nil {
					b.Fatal(err)
				}
				for _, g := range byContainer(st) {
					if _, err := mergeRecording(g); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
