// Package registry runs the reference OCI registry (distribution) for end-to-end
// tests: built once from the Go module proxy into the user's cache directory,
// started per test on a loopback port with its storage in a temporary directory,
// and stopped by its pid.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/syscage/syscage/tests/testenv"
)

// Module is the registry that is built: pinned, so every machine runs the same.
const Module = "github.com/distribution/distribution/v3/cmd/registry@v3.1.2"

// Registry is a running registry.
type Registry struct {
	// Addr is its host:port on 127.0.0.1; it serves plain HTTP.
	Addr string
	// Root is its storage directory (filesystem driver), for tests that tamper
	// with what it stores.
	Root string
}

// Binary returns the registry binary, building it into the cache directory the
// first time (a few minutes on a fresh machine: it downloads the modules).
func Binary(t testing.TB) string {
	t.Helper()
	goBin := testenv.RequireCommand(t, "go")
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "syscage-test", "registry-v3.1.2")
	bin := filepath.Join(dir, "registry")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Built into a directory of its own, then renamed: a build that fails or runs
	// twice at once never leaves a half-written binary under bin.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	cmd := exec.Command(goBin, "install", Module)
	cmd.Dir = tmp // outside syscage's module: its go.mod has no say
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		testenv.Unavailable(t, "building the registry (go install %s): %v\n%s", Module, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "registry"), bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %s", Module, time.Since(start).Round(time.Second))
	return bin
}

// Start runs a registry until the test ends.
func Start(t testing.TB) *Registry {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "storage")
	// A free port: the kernel picks one, the registry then binds it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	config := filepath.Join(dir, "config.yml")
	err = os.WriteFile(config, fmt.Appendf(nil, `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, root, addr), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Tracing is on by default in v3; nothing here collects it.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the registry: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &Registry{Addr: addr, Root: root}
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("the registry exited: %v\n%s", waitErr, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("the registry did not answer on %s: %v\n%s", addr, errors.Join(err, ctx.Err()), log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// BlobPath is where the registry stores the blob of digest (sha256:HEX).
func (r *Registry) BlobPath(digest string) string {
	hex := digest[len("sha256:"):]
	return filepath.Join(r.Root, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}
