package main

import (
	"log/slog"

	"github.com/spf13/cobra"

	buildversion "github.com/syscage/syscage/cmd/internal/version"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise it is
// read from the module build info.
var version = ""

func versionString() string { return buildversion.String(version) }

type rootOptions struct {
	debug bool
}

func newRootCmd() *cobra.Command {
	opts := &rootOptions{}
	cmd := &cobra.Command{
		Use:           "syscage",
		Short:         "Record the system calls of commands and containers, and turn them into seccomp profiles",
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelWarn
			if opts.debug {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})))
		},
	}
	cmd.PersistentFlags().BoolVar(&opts.debug, "debug", false, "log what syscage does to stderr")
	cmd.AddCommand(newRecordCmd(), newVerifyCmd(), newHookCmd(opts), newDaemonCmd(opts))
	cmd.AddCommand(newConvertCmd(), newMergeCmd(), newDiffCmd(), newCheckCmd(), newStatsCmd())
	cmd.AddCommand(newExecCmd(), newApplyCmd())
	cmd.AddCommand(newPushCmd(), newPullCmd())
	return cmd
}
