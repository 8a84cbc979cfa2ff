// Package tests holds syscage's end-to-end tests: the real binary against a real
// kernel and real container runtimes. Most need root (see internal/testenv).
package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the whole syscage; hookBinary is syscage-hook, the hot path alone
// (the hook and syscage-runc), which the hook tests install; syscage-recorder,
// the recorder the hook starts, is built beside it, as it is installed.
var binary, hookBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "syscage-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by all: one test runs the binary as an unprivileged user.
	os.Chmod(dir, 0o755)
	binary, hookBinary = filepath.Join(dir, "syscage"), filepath.Join(dir, "syscage-hook")
	recorderBinary := filepath.Join(dir, "syscage-recorder")
	for out, pkg := range map[string]string{binary: "../cmd/syscage", hookBinary: "../cmd/syscage-hook", recorderBinary: "../cmd/syscage-recorder"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	if probes.dir != "" {
		os.RemoveAll(probes.dir) // the probes built for the agreement tests
	}
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// syscage runs the built binary and returns its exit code and output.
func syscage(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running syscage %v: %v", args, err)
	}
	return res
}
