// Command syscage records the system calls of a command or container with eBPF and
// turns them into seccomp profiles.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/syscage/syscage/hooks"
)

func main() {
	// Installed as syscage-runc (a link), syscage is a runtime wrapper.
	hooks.RuncMain()
	if err := run(context.Background(), os.Args[1:]); err != nil {
		var ec exitCodeError
		if !errors.As(err, &ec) {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		os.Exit(int(ec))
	}
}

func run(ctx context.Context, args []string) error {
	root := newRootCmd()
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// exitCodeError ends syscage with a status that was already explained, such as the
// exit status of a recorded command.
type exitCodeError int

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
