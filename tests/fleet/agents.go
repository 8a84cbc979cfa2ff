package fleet

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/hooks/agent"
	"github.com/syscage/syscage/hooks/recorder"
	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/profiles"
)

// agentsPerConnection is how many simulated agents share an HTTP transport
// (and so one HTTP/2 connection, as long as its streams suffice): a real
// fleet has one per node; one for all would run into the API server's limit
// of streams per connection.
const agentsPerConnection = 25

// node is one simulated node: its agent, its recorder and its containers.
type node struct {
	name    string
	agent   *agent.Agent
	tracker *simTracker
	ctrs    []simCtr
	done    chan error
}

// simCtr is one simulated container of the workload's pod on a node.
type simCtr struct {
	req      recorder.AdmitRequest
	admitted bool
	initial  []call // what it makes at once: every merged profile must allow these
}

// startAgents starts an agent for each node, with its own token bound to its
// agent pod and the real agent code, and waits until every one has synced.
func (f *fleet) startAgents(ctx context.Context, cs *kubernetes.Clientset, agentPods []*corev1.Pod) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.cluster.pki.caCert)
	var transport http.RoundTripper
	f.nodes = make([]*node, len(agentPods))
	tokens := make([]string, len(agentPods))
	if err := parallel(ctx, len(agentPods), 16, func(i int) error {
		var err error
		tokens[i], err = agentToken(ctx, cs, agentPods[i])
		return err
	}); err != nil {
		return err
	}
	var err error
	if f.emptied, err = cgroups.WatchEmptied(); err != nil {
		return fmt.Errorf("watching the containers' cgroups: %w", err)
	}
	ready := make([]chan struct{}, len(agentPods))
	for i, ap := range agentPods {
		if i%agentsPerConnection == 0 {
			transport = &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
				MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second,
			}
		}
		name := ap.Spec.NodeName
		dir, mem := filepath.Join(f.dir, "nodes", name), filepath.Join(f.memDir, "nodes", name)
		n := &node{name: name, tracker: newSimTracker(), done: make(chan error, 1)}
		if err := f.makeContainers(i, n, mem); err != nil {
			return err
		}
		// The kubelet's seccomp directory, there on every node.
		if err := os.MkdirAll(filepath.Join(dir, "seccomp"), 0o755); err != nil {
			return err
		}
		ready[i] = make(chan struct{})
		a, err := agent.New(agent.Options{
			Node:       name,
			SeccompDir: filepath.Join(dir, "seccomp"),
			RunDir:     filepath.Join(mem, "run"),
			// What a pod's projected token gives an agent; client-go's default
			// rate limits, as each node's agent has its own.
			Config:   &rest.Config{Host: f.cluster.apiURL, BearerToken: tokens[i], Transport: transport},
			Log:      slog.New(f.warnings),
			Recorder: n.tracker,
			Emptied:  f.emptied,
			Ready:    ready[i],
		})
		if err != nil {
			return fmt.Errorf("the agent of %s: %w", name, err)
		}
		n.agent = a
		f.nodes[i] = n
		go func() { n.done <- a.Run(f.agentCtx) }()
	}
	for i, r := range ready {
		select {
		case <-r:
		case err := <-f.nodes[i].done:
			return fmt.Errorf("the agent of %s stopped: %v", f.nodes[i].name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Minute):
			return fmt.Errorf("the agent of %s is not ready after 5 minutes", f.nodes[i].name)
		}
	}
	return nil
}

// makeContainers prepares a node's containers: a cgroup directory each (its
// cgroup.events says whether it runs) and the calls it will make, drawn from
// the recorded profiles.
func (f *fleet) makeContainers(i int, n *node, dir string) error {
	pod := Workload + "-" + n.name
	podUID := f.podUIDs[n.name]
	for j := range f.cfg.Containers {
		id := uint64(i*f.cfg.Containers + j + 1)
		cdir := filepath.Join(dir, "cgroup", fmt.Sprintf("c%d", j))
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(cdir, "cgroup.events"), []byte("populated 1\nfrozen 0\n"), 0o644); err != nil {
			return err
		}
		calls := union(f.demos[j%len(f.demos)], f.others[(i*f.cfg.Containers+j)%len(f.others)])
		rng := rand.New(rand.NewPCG(id, 1))
		rng.Shuffle(len(calls), func(a, b int) { calls[a], calls[b] = calls[b], calls[a] })
		initial := len(calls) * 7 / 10
		// The rest come one at a time over the recording's first 80 %.
		every := max(time.Second, f.cfg.Duration*8/10/time.Duration(max(1, len(calls)-initial)))
		n.tracker.place(id, &simContainer{calls: calls, initial: initial, every: every, rate: 200})
		sum := sha256.Sum256([]byte(pod + "/" + fmt.Sprint(j)))
		name := fmt.Sprintf("c%d", j)
		n.ctrs = append(n.ctrs, simCtr{
			req: recorder.AdmitRequest{
				Container: hex.EncodeToString(sum[:]),
				Annotations: map[string]string{
					hooks.CRIContainerType: "container", hooks.CRINamespace: Namespace,
					hooks.CRIPod: pod, hooks.CRIPodUID: podUID, hooks.CRIContainerName: name,
				},
				CgroupID: id, CgroupDir: cdir,
			},
			initial: calls[:initial],
		})
	}
	return nil
}

// admitAll starts every node's containers while the recording selects them:
// each through its agent's admission, as the runtime's hook would, retried
// until the agent has seen the recording.
func (f *fleet) admitAll(ctx context.Context) error {
	return parallel(ctx, len(f.nodes), 64, func(i int) error {
		n := f.nodes[i]
		deadline := time.Now().Add(10 * time.Minute)
		for j := range n.ctrs {
			c := &n.ctrs[j]
			for !c.admitted {
				ok, err := n.agent.Admit(c.req)
				if err != nil {
					return fmt.Errorf("admitting %s on %s: %w", c.req.Annotations[hooks.CRIContainerName], n.name, err)
				}
				if c.admitted = ok; ok {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("the agent of %s did not admit container %s in 10 minutes", n.name, c.req.Annotations[hooks.CRIContainerName])
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		return nil
	})
}

// exit ends container j on every node: its cgroup is no longer populated.
func (f *fleet) exit(j int) error {
	for _, n := range f.nodes {
		if err := os.WriteFile(filepath.Join(n.ctrs[j].req.CgroupDir, "cgroup.events"), []byte("populated 0\nfrozen 0\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// stopAgents stops every agent and waits for them.
func (f *fleet) stopAgents() {
	f.stopAgentCtx()
	defer f.emptied.Close()
	var wg sync.WaitGroup
	for _, n := range f.nodes {
		if n == nil || n.agent == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-n.done:
			case <-time.After(time.Minute):
			}
		}()
	}
	wg.Wait()
}

// checkProfiles checks the plugin's merged profiles: container cJ's allows
// every call that cJ made at its start on every node (the ones the baseline,
// containerd's default, lets run at all), so that no node's part was lost.
func (f *fleet) checkProfiles(dir string) error {
	arches, err := record.Arches()
	if err != nil {
		return err
	}
	arch := arches[bpf.Native]
	tab, err := profile.TableFor(arch)
	if err != nil {
		return err
	}
	_, base, err := profiles.Baseline(profiles.DefaultBaseline)
	if err != nil {
		return err
	}
	bAlways, bCond, err := profile.Allowed(base, arch)
	if err != nil {
		return err
	}
	inBase := map[string]bool{}
	for _, n := range append(bAlways, bCond...) {
		inBase[n] = true
	}
	for j := range f.cfg.Containers {
		file := filepath.Join(dir, fmt.Sprintf("c%d.json", j))
		p, err := readProfile(file)
		if err != nil {
			return fmt.Errorf("the merged profile of container c%d: %w", j, err)
		}
		always, cond, err := profile.Allowed(p, arch)
		if err != nil {
			return err
		}
		allowed := map[string]bool{}
		for _, n := range append(always, cond...) {
			allowed[n] = true
		}
		for _, n := range f.nodes {
			for _, c := range n.ctrs[j].initial {
				name, _ := tab.Name(c.nr)
				if inBase[name] && !allowed[name] {
					return fmt.Errorf("%s does not allow %s, which container c%d made at its start on %s", file, name, j, n.name)
				}
			}
		}
	}
	return nil
}
