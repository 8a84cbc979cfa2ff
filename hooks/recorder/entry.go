package recorder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/syscage/syscage/hooks"
)

// RunDaemon is the recorder's command: with cleanup, it removes everything a
// recorder left on the host; otherwise it serves until SIGTERM (at shutdown) or
// an interrupt, writes what it has recorded, and exits. Failures are logged at
// level ERROR.
func RunDaemon(cfg *hooks.Config, log *slog.Logger, stdout io.Writer, cleanup bool, opts ServeOptions) error {
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
