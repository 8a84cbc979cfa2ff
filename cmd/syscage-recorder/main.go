// Command syscage-recorder is the recorder syscage-hook starts on demand: it
// loads the BPF programs, records every hooked container on the host, writes
// their profiles, and exits once idle. It is apart from the hook so that the
// hook, which a runtime runs twice per container (and, as syscage-runc, on every
// runc call), links no eBPF and starts faster (make bench: BenchmarkHook).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/hooks/recorder"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "devel"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	started := time.Now()
	if len(args) == 1 && (args[0] == "--version" || args[0] == "version") {
		fmt.Fprintln(stdout, "syscage-recorder", version)
		return nil
	}
	fs := flag.NewFlagSet("syscage-recorder", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: syscage-recorder [--config FILE] [--debug] [--cleanup]

The recorder syscage-hook starts on demand, beside which it is installed. It
serves every hooked container on the host and exits once idle for the config's
idleExit, leaving nothing behind. With --cleanup it removes everything a
recorder left on this host (pins, state, its cgroup), writing first, as they
stand, the profiles of recordings still pinned.`)
		fs.PrintDefaults()
	}
	config := fs.String("config", "", "hook config `FILE` (default "+hooks.DefaultConfigPath+")")
	debug := fs.Bool("debug", false, "log at level debug")
	cleanup := fs.Bool("cleanup", false, "remove everything a recorder left on this host, and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see syscage-recorder --help)", fs.Args())
	}
	if !*cleanup {
		// Parsed beside the daemon's start (its config, log and lock), which a
		// container waits for.
		bpf.Prepare()
	}
	cfg, err := hooks.Load(*config)
	if err != nil {
		return err
	}
	log, done := hooks.OpenLog(cfg, stderr, *debug)
	defer done()
	return recorder.RunDaemon(cfg, log, stdout, *cleanup, recorder.ServeOptions{Started: started})
}
