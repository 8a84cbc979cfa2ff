// Command syscage-agent is syscage's Kubernetes node agent, the one binary of the
// image that `kubectl syscage install` runs as a privileged DaemonSet: it records
// the containers the SyscallRecordings select on its node, publishes its node's
// results, and writes the SyscallProfiles into the kubelet's seccomp directory.
// It is the only syscage binary that links a Kubernetes client (client-go), so
// that syscage-hook, which runs on every runc call, stays small.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	buildversion "github.com/syscage/syscage/cmd/internal/version"
	"github.com/syscage/syscage/hooks/agent"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	if err := newCmd().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

type options struct {
	node, seccompDir, runDir, probeAddr, kubeconfig string
	reportRefused, debug                            bool
}

func newCmd() *cobra.Command {
	opts := &options{}
	cmd := &cobra.Command{
		Use:   "syscage-agent",
		Short: "Run syscage's Kubernetes node agent (in the DaemonSet that `kubectl syscage install` creates)",
		Long: `Run the node agent: record the containers the SyscallRecordings select on this
node, from their first instruction when the node's runtime runs the syscage hook
(containerd with syscage-runc as its runc), publish this node's results in a
SyscallNodeResult of its own for each recording, and write the SyscallProfiles
into the kubelet's seccomp directory, below its syscage/ subdirectory only. It
runs in a pod, with the pod's service account (or --kubeconfig).`,
		Version:       versionString(),
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if opts.debug {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			cfg, err := restConfig(opts.kubeconfig)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return agent.Run(ctx, agent.Options{
				Node: opts.node, SeccompDir: opts.seccompDir, RunDir: opts.runDir,
				Config: cfg, Log: log, ReportRefused: opts.reportRefused, ProbeAddr: opts.probeAddr,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.node, "node", os.Getenv("NODE_NAME"), "this node's `NAME` (default $NODE_NAME)")
	f.StringVar(&opts.seccompDir, "seccomp-dir", "/var/lib/kubelet/seccomp", "the kubelet's seccomp `DIR`, as mounted in the agent")
	f.StringVar(&opts.runDir, "run-dir", "/run/syscage", "the host's /run/syscage, as mounted in the agent: the hook's socket and the node's selection")
	f.StringVar(&opts.probeAddr, "probe-addr", ":9765", "serve the readiness probe (/readyz) at `ADDR` (\"\" for none)")
	f.StringVar(&opts.kubeconfig, "kubeconfig", "", "a kubeconfig `FILE` to reach the API server with, instead of the pod's service account")
	f.BoolVar(&opts.reportRefused, "report-refused", false, "count the calls a recorded container's own filter refuses: costs every syscall of every process on the node ~90 ns while one such container is recorded")
	f.BoolVar(&opts.debug, "debug", false, "log at level debug")
	return cmd
}

// restConfig is the pod's service account (client-go re-reads its token, which
// the kubelet rotates), or a kubeconfig.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("the pod's service account: %w (outside a pod, pass --kubeconfig FILE)", err)
	}
	return cfg, nil
}

func versionString() string { return buildversion.String(version) }
