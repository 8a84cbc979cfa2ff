// Command syscage-hook is syscage's hot path alone: the OCI hook and the
// syscage-runc wrapper. A runtime runs it on every container start (the hook
// twice, the wrapper on every runc call), so it links nothing else: no CLI tree,
// no registry client, no verify, and no eBPF. The recorder the hook starts on
// demand is syscage-recorder, installed beside it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/syscage/syscage/hooks"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "devel"

func main() {
	hooks.RuncMain()
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

const usage = `usage: syscage-hook hook [--config FILE] [--debug]      the OCI hook (prestart, poststop)
       syscage-hook daemon [--config FILE] [--cleanup]    runs syscage-recorder, installed beside it
       syscage-hook --version
Installed as syscage-runc (a link), it is the runc wrapper. See syscage hook --help.`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	started := time.Now()
	if len(args) == 0 {
		return fmt.Errorf("no command\n%s", usage)
	}
	switch args[0] {
	case "--version", "version":
		fmt.Fprintln(stdout, "syscage-hook", version)
		return nil
	case "daemon":
		return execRecorder(args[1:])
	case "hook":
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
	fs := flag.NewFlagSet("syscage-hook hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "hook config `FILE` (default "+hooks.DefaultConfigPath+")")
	debug := fs.Bool("debug", false, "log at level debug")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q\n%s", fs.Args(), usage)
	}
	cfg, err := hooks.Load(*config)
	if err != nil {
		return err
	}
	log, done := hooks.OpenLog(cfg, stderr, *debug)
	defer done()
	return hooks.Hook(stdin, hooks.HookOptions{Config: cfg, ConfigPath: *config, Log: log, Debug: *debug, Started: started})
}

// execRecorder becomes the recorder installed beside this executable
// (hooks.BesideRecorder), with args: `syscage-hook daemon --cleanup` as before
// the recorder had a binary of its own.
func execRecorder(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	rec := hooks.BesideRecorder(exe)
	argv := append([]string{filepath.Base(rec[0])}, rec[1:]...)
	err = syscall.Exec(rec[0], append(argv, args...), os.Environ())
	return fmt.Errorf("running %s: %w (install %s beside %s)", rec[0], err, hooks.RecorderName, exe)
}
