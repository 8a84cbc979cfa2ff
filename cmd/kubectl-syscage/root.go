package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	buildversion "github.com/syscage/syscage/cmd/internal/version"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise it is
// read from the module build info.
var version = ""

func versionString() string { return buildversion.String(version) }

// rootOptions are what every command shares: the kubectl connection flags and
// the streams.
type rootOptions struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	// connect makes the API clients; tests give fakes instead.
	connect func() (*clients, error)
	// interval is how often waits poll the API server.
	interval time.Duration
}

func stdStreams() genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
}

// run executes the command line and returns the exit status, having printed the
// error, if any.
func run(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	root := newRootCmd(streams)
	root.SetArgs(args)
	return exitStatus(streams.ErrOut, root.ExecuteContext(ctx))
}

// exitStatus prints err, if any, and returns the exit status it calls for.
func exitStatus(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ec exitCodeError
	if errors.As(err, &ec) {
		return int(ec)
	}
	fmt.Fprintln(stderr, "Error:", err)
	return 1
}

// exitCodeError ends kubectl-syscage with a status that was already explained,
// such as verify's 1 when calls are missing.
type exitCodeError int

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &rootOptions{
		flags:    genericclioptions.NewConfigFlags(true).WithWarningPrinter(streams),
		streams:  streams,
		interval: time.Second,
	}
	o.connect = func() (*clients, error) { return newClients(o.flags, o.interval) }
	return newRootCmdWith(o)
}

func newRootCmdWith(o *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kubectl-syscage",
		Short: "Record, apply and verify seccomp profiles of Kubernetes workloads with syscage",
		Long: `Record the system calls of a workload's containers on every node, merge them
into one seccomp profile, ship that profile to the nodes and make the workload use
it, and check live pods against a profile. The syscage agent, a DaemonSet, does
the recording on the nodes; this plugin talks only to the API server.`,
		Example: `  kubectl syscage install
  kubectl syscage record deployment/web --duration 2m -o web.json
  kubectl syscage apply deployment/web --profile web.json
  kubectl syscage verify deployment/web --profile web.json
  kubectl syscage uninstall`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// As a kubectl plugin it is called "kubectl syscage".
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl syscage"},
	}
	cmd.SetIn(o.streams.In)
	cmd.SetOut(o.streams.Out)
	cmd.SetErr(o.streams.ErrOut)
	o.flags.AddFlags(cmd.PersistentFlags())
	// No -v: kubectl users read it as verbosity.
	cmd.Flags().Bool("version", false, "print the version of kubectl-syscage")
	cmd.AddCommand(newInstallCmd(o), newRecordCmd(o), newApplyCmd(o), newVerifyCmd(o), newUninstallCmd(o), newVersionCmd(o))
	return cmd
}
