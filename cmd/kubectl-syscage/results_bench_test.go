package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

// BenchmarkMergeFleet is what record does with a fleet's results once every
// node has answered: read each node's result (its profiles packed, as the
// agents publish them), then merge one profile per container name. 10 containers a node, each with a recorded profile
// (profiles/demo-*.json) and one call of ten more, so that the profiles
// differ. "anew" unpacks every profile, as record did before it shared them
// (kubeapi.Unpacker): the baseline, side by side.
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
		var published [][]byte
		for i := range nodes {
			node := fmt.Sprintf("node-%05d", i)
			nr := kubeapi.SyscallNodeResult{Spec: kubeapi.NodeResultSpec{Node: node}, Result: kubeapi.NodeRecording{Phase: kubeapi.PhaseDone}}
			for j := range 10 {
				p := *base[j%len(base)]
				p.Syscalls = append(append([]specs.LinuxSyscall(nil), p.Syscalls...), specs.LinuxSyscall{Names: []string{extra[(i+j)%len(extra)]}, Action: specs.ActAllow})
				nr.Result.Containers = append(nr.Result.Containers, kubeapi.ContainerResult{
					Pod: "fleet-" + node, PodUID: "uid-" + node, Container: fmt.Sprintf("c%d", j), ContainerID: fmt.Sprintf("%s-%d", node, j),
					From: kubeapi.FromStart, Runs: 1, Events: 1000, Profile: &p,
				})
			}
			data, err := json.Marshal(nr)
			if err != nil {
				b.Fatal(err)
			}
			published = append(published, data)
		}
		for _, shared := range []bool{false, true} {
			name := map[bool]string{false: "anew", true: "shared"}[shared]
			b.Run(fmt.Sprintf("%d/%s", nodes, name), func(b *testing.B) {
				for b.Loop() {
					var up *kubeapi.Unpacker
					if shared {
						up = &kubeapi.Unpacker{}
					}
					st := kubeapi.RecordingStatus{Nodes: map[string]kubeapi.NodeRecording{}}
					for _, data := range published {
						var nr kubeapi.SyscallNodeResult
						if err := up.UnmarshalNodeResult(data, &nr); err != nil {
							b.Fatal(err)
						}
						st.Nodes[nr.Spec.Node] = nr.Result
					}
					groups := byContainer(st)
					if _, err := mergeEach(groups, slices.Sorted(maps.Keys(groups))); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
