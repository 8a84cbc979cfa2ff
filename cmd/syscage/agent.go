package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/syscage/syscage/hooks/agent"
	"github.com/syscage/syscage/hooks/kube"
)

type agentOptions struct {
	node, seccompDir, runDir, probeAddr string
	reportRefused                       bool
}

func newAgentCmd(root *rootOptions) *cobra.Command {
	opts := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the Kubernetes node agent (in the DaemonSet that `kubectl syscage install` creates)",
		Long: `Run the node agent: record the containers the SyscallRecordings select on this
node, from their first instruction when the node's runtime runs the syscage hook
(containerd with syscage-runc as its runc), publish the results in each
recording's status, and write the SyscallProfiles into the kubelet's seccomp
directory, below its syscage/ subdirectory only. It runs in a pod, with the
pod's service account.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if root.debug {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			client, err := kube.InCluster()
			if err != nil {
				return err
			}
			client.Log = log
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return agent.Run(ctx, agent.Options{
				Node: opts.node, SeccompDir: opts.seccompDir, RunDir: opts.runDir,
				Client: client, Log: log, ReportRefused: opts.reportRefused, ProbeAddr: opts.probeAddr,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.node, "node", os.Getenv("NODE_NAME"), "this node's `NAME` (default $NODE_NAME)")
	f.StringVar(&opts.seccompDir, "seccomp-dir", "/var/lib/kubelet/seccomp", "the kubelet's seccomp `DIR`, as mounted in the agent")
	f.StringVar(&opts.runDir, "run-dir", "/run/syscage", "the host's /run/syscage, as mounted in the agent: the hook's socket and the node's selection")
	f.StringVar(&opts.probeAddr, "probe-addr", ":9765", "serve the readiness probe (/readyz) at `ADDR` (\"\" for none)")
	f.BoolVar(&opts.reportRefused, "report-refused", false, "count the calls a recorded container's own filter refuses: costs every syscall of every process on the node ~90 ns while one such container is recorded")
	return cmd
}
