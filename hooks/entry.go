package hooks

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
)

// Load reads the hook config at path, or at DefaultConfigPath (defaults if it is
// absent) when path is empty.
func Load(path string) (*Config, error) {
	if path == "" {
		return LoadConfig(DefaultConfigPath, false)
	}
	return LoadConfig(path, true)
}

// OpenLog logs to the file the hook config names, where a runtime's user will
// look; the hook's error also goes to stderr, which the runtime shows. The
// function returned closes the file.
func OpenLog(cfg *Config, stderr io.Writer, debug bool) (*slog.Logger, func()) {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	if cfg.LogFile == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil)), func() {}
	}
	os.MkdirAll(filepath.Dir(cfg.LogFile), 0o755)
	f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		fmt.Fprintf(stderr, "syscage: cannot open log file %s: %v\n", cfg.LogFile, err)
		return slog.New(slog.NewTextHandler(io.Discard, nil)), func() {}
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level})), func() { f.Close() }
}

// RecorderName is the recorder's executable, installed beside syscage-hook: the
// hook, which runs twice per container, links no eBPF, and starts it on demand.
const RecorderName = "syscage-recorder"

// Hook runs the hook with the container's state on stdin, starting, if one must
// be started, the recorder opts names or else the one installed beside this
// executable (see BesideRecorder), and logs what went wrong at level ERROR.
func Hook(stdin io.Reader, opts HookOptions) error {
	if _, err := RunHook(stdin, opts); err != nil {
		opts.Log.Error("hook", "err", err)
		return fmt.Errorf("syscage hook: %w", err)
	}
	return nil
}

// RuncMain makes this process the runc wrapper when it was started as
// syscage-runc (a link): it then never returns.
func RuncMain() {
	if filepath.Base(os.Args[0]) != RuncName {
		return
	}
	err := WrapRunc(os.Args[1:])
	fmt.Fprintln(os.Stderr, "Error: syscage-runc:", err)
	// Docker and containerd read the reason from runc's --log, not stderr.
	if lerr := ReportRuncError(os.Args[1:], err); lerr != nil {
		fmt.Fprintln(os.Stderr, "Error: syscage-runc:", lerr)
	}
	os.Exit(1)
}

// BesideRecorder is the recorder command installed with exe: RecorderName beside
// it, or else the whole syscage CLI's `syscage daemon` beside it (an
// installation from before the recorder had an executable of its own), or else
// either of them on PATH, or else RecorderName beside it, which the hook then
// reports missing.
func BesideRecorder(exe string) []string {
	dir := filepath.Dir(exe)
	rec := filepath.Join(dir, RecorderName)
	cli := filepath.Join(dir, "syscage")
	for _, cmd := range [][]string{{rec}, {cli, "daemon"}} {
		if cmd[0] == exe {
			continue
		}
		if _, err := os.Stat(cmd[0]); err == nil {
			return cmd
		}
	}
	for _, cmd := range [][]string{{RecorderName}, {"syscage", "daemon"}} {
		if path, err := exec.LookPath(cmd[0]); err == nil && path != exe {
			return append([]string{path}, cmd[1:]...)
		}
	}
	return []string{rec}
}
