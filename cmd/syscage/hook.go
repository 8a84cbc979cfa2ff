package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/hooks/recorder"
)

type hookOptions struct {
	config string
}

// setup reads the hook config and opens its log.
func (o *hookOptions) setup(cmd *cobra.Command, root *rootOptions) (*hooks.Config, *slog.Logger, func(), error) {
	cfg, err := hooks.Load(o.config)
	if err != nil {
		return nil, nil, nil, err
	}
	log, done := hooks.OpenLog(cfg, cmd.ErrOrStderr(), root.debug)
	return cfg, log, done, nil
}

func newHookCmd(root *rootOptions) *cobra.Command {
	opts := &hookOptions{}
	cmd := &cobra.Command{
		Use:   "hook",
		Short: "Run as an OCI hook: record containers annotated io.syscage.record=NAME",
		Long: `Run as an OCI hook (hooks.d, or config.json "hooks") at the prestart and
poststop stages, with the container's state on stdin. A container annotated
io.syscage.record=NAME is recorded from the moment its tasks run under their
seccomp filter (or from its entrypoint's exec without one), and its profile is
written to <profilesDir>/NAME.json when it stops, merged with earlier runs
(NAME;replace starts afresh). The annotation of containers/oci-seccomp-bpf-hook,
io.containers.trace-syscall=of:/abs/out.json[;if:/abs/in.json], is honoured for
paths inside the config's compatDirs. Containers without either are left alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, done, err := opts.setup(cmd, root)
			if err != nil {
				return err
			}
			defer done()
			// The whole CLI has the recorder in it: `syscage daemon`.
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			return hooks.Hook(cmd.InOrStdin(), hooks.HookOptions{Config: cfg, ConfigPath: opts.config, Log: log, Debug: root.debug, Recorder: []string{exe, "daemon"}})
		},
	}
	cmd.Flags().StringVar(&opts.config, "config", "", "hook config `FILE` (default "+hooks.DefaultConfigPath+", defaults if absent)")
	return cmd
}

func newDaemonCmd(root *rootOptions) *cobra.Command {
	opts := &hookOptions{}
	var cleanup bool
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the recorder that serves every hooked container (started by the hook)",
		Long: `Run the recorder that serves every hooked container. The hook starts it on
demand, and it exits once idle for the config's idleExit, leaving nothing behind.
It pins what it records in the config's pinDir, so that if it dies the kernel goes
on recording and the next recorder takes over.

--cleanup removes everything a recorder left on the host (pins, state, its cgroup),
writing first, as they stand, the profiles of recordings still pinned.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, done, err := opts.setup(cmd, root)
			if err != nil {
				return err
			}
			defer done()
			return recorder.RunDaemon(cfg, log, cmd.OutOrStdout(), cleanup, recorder.ServeOptions{})
		},
	}
	cmd.Flags().StringVar(&opts.config, "config", "", "hook config `FILE`")
	cmd.Flags().BoolVar(&cleanup, "cleanup", false, "remove everything a recorder left on this host, and exit")
	return cmd
}
