package hooks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
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

// Hook runs the hook with the container's state on stdin, as this executable
// unless opts names another (the recorder, if one must be started, is started
// as it), and logs what went wrong at level ERROR.
func Hook(stdin io.Reader, opts HookOptions) error {
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		opts.Executable = exe
	}
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

// RunDaemon is the recorder's command: with cleanup, it removes everything a
// recorder left on the host; otherwise it serves until SIGTERM (at shutdown) or
// an interrupt, writes what it has recorded, and exits. Failures are logged at
// level ERROR.
func RunDaemon(cfg *Config, log *slog.Logger, stdout io.Writer, cleanup bool, opts ServeOptions) error {
	if cleanup {
		if err := Cleanup(cfg, log, stdout); err != nil {
			log.Error("cleanup", "err", err)
			return fmt.Errorf("cleanup: %w", err)
		}
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := ServeWith(ctx, cfg, log, opts); err != nil {
		log.Error("recorder", "err", err)
		return err
	}
	return nil
}
