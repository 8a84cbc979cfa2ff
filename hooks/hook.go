package hooks

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/oci"
)

// HookOptions configure one run of the hook.
type HookOptions struct {
	Config *Config
	// ConfigPath is passed on to a recorder the hook starts ("" for the default).
	ConfigPath string
	// Executable is the syscage binary that runs the recorder.
	Executable string
	Log        *slog.Logger
}

// RunHook handles one OCI hook invocation: the container's state on stdin. At
// prestart (or createRuntime) it has the recorder track the container and returns
// once recording is armed; at poststop it has the recorder write the profile and
// returns once it is written. A container without a recording annotation is left
// alone. It returns the profile path, if any.
func RunHook(stdin io.Reader, opts HookOptions) (string, error) {
	deadline := time.Now().Add(time.Duration(opts.Config.Timeout))
	st, err := oci.ReadState(stdin)
	if err != nil {
		return "", err
	}
	target, err := ParseAnnotations(st.Annotations, opts.Config)
	// A Kubernetes container is the node agent's to record, if it selects it.
	agentDir := KubernetesRunDir(opts.Config.RunDir)
	kube := errors.Is(err, ErrNoAnnotation) && kubernetesSelected(st.Annotations, agentDir)
	if errors.Is(err, ErrNoAnnotation) && !kube {
		return "", nil
	}
	if err != nil && !kube {
		return "", err
	}
	var req request
	switch st.Status {
	case specs.StateStopped:
		req = request{Op: "flush", Container: st.ID}
	case specs.StateCreating, specs.StateCreated, "":
		if req, err = trackRequest(st); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("container %s is %q: install the hook at the prestart (or createRuntime) and poststop stages", st.ID, st.Status)
	}
	if kube {
		// Only the agent records these; without one (it was uninstalled or is
		// restarting) the container runs unrecorded rather than not at all.
		resp, err := roundTrip(filepath.Join(agentDir, socketName), req, deadline)
		if err == nil && resp.Error != "" {
			err = errors.New(resp.Error)
		}
		if err != nil {
			opts.Log.Warn("the node agent did not record this container", "op", req.Op, "container", st.ID, "err", err)
			return "", nil
		}
		opts.Log.Info("hook", "op", req.Op, "container", st.ID, "recorded", resp.Tracked)
		return resp.Profile, nil
	}
	resp, err := call(opts, req, deadline)
	if err != nil && req.Op == "flush" {
		// No recorder answered for the recording: say so beside the profile too.
		return "", notWritten(target, st.ID, err)
	}
	if err != nil {
		return "", err
	}
	if resp.Error != "" {
		return "", errors.New(resp.Error)
	}
	opts.Log.Info("hook", "op", req.Op, "container", st.ID, "profile", target.Path())
	return resp.Profile, nil
}

func trackRequest(st *specs.State) (request, error) {
	if err := bpf.Check(); err != nil {
		return request{}, err
	}
	if st.Pid <= 0 {
		return request{}, fmt.Errorf("container %s has no pid yet: install the hook at the prestart (or createRuntime) stage", st.ID)
	}
	mnt, err := cgroups.Mount()
	if err != nil {
		return request{}, err
	}
	rel, err := cgroups.PathOf(st.Pid)
	if err != nil {
		return request{}, err
	}
	dir := filepath.Join(mnt, rel)
	id, err := cgroups.ID(dir)
	if err != nil {
		return request{}, err
	}
	// Under a seccomp filter the profile is what its tasks do from the moment the
	// filter is in; a container without one is recorded from its entrypoint's exec.
	start := bpf.StartExec
	if st.Bundle != "" {
		spec, err := oci.LoadSpec(st.Bundle)
		if err != nil {
			return request{}, err
		}
		if oci.HasSeccomp(spec) {
			start = bpf.StartSeccomp
		}
	}
	return request{Op: "track", Container: st.ID, Annotations: st.Annotations, CgroupID: id, CgroupDir: dir, Start: start}, nil
}

// call sends req to the recorder, starting one if none answers, and gives up at
// deadline: a hook must never hang a container's start or stop.
func call(opts HookOptions, req request, deadline time.Time) (response, error) {
	sock := opts.Config.Socket()
	spawned := false
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := roundTrip(sock, req, deadline)
		if err == nil && !resp.Retry {
			return resp, nil
		}
		lastErr = err
		if err == nil {
			lastErr = errors.New(resp.Error)
		}
		// No recorder (or one on its way out): start one. Several hooks may do so at
		// once; the recorders' lock lets one serve.
		if !spawned || (err == nil && resp.Retry) {
			if req.Op == "flush" && !hasState(opts.Config.RunDir, req.Container) {
				// No recorder tracked it, or one told its poststop hook already.
				return response{}, nil
			}
			// A recorder that died left its recordings pinned: the one started
			// takes them over.
			if err := spawn(opts); err != nil {
				return response{}, err
			}
			spawned = true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return response{}, fmt.Errorf("the recorder did not answer within %s (see %s): %w", time.Duration(opts.Config.Timeout), opts.Config.LogFile, lastErr)
}

func roundTrip(sock string, req request, deadline time.Time) (response, error) {
	conn, err := net.DialTimeout("unix", sock, time.Until(deadline))
	if err != nil {
		return response{}, err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return response{}, err
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return response{}, fmt.Errorf("reading the recorder's answer: %w", err)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return response{}, fmt.Errorf("the recorder's answer: %w", err)
	}
	return resp, nil
}

// RecorderCgroup is the cgroup the recorder lives in, below the cgroup2 root and
// outside every container's, so no container's teardown can take it along.
const RecorderCgroup = "syscage-recorder"

// RecorderCgroup is the cgroup of this config's recorder: RecorderCgroup for the
// default run directory, and one of its own for any other (a test's), so that
// recorders of different configs never share, or remove, each other's.
func (c *Config) RecorderCgroup() string {
	if c.RunDir == DefaultConfig().RunDir {
		return RecorderCgroup
	}
	sum := sha256.Sum256([]byte(c.RunDir))
	return RecorderCgroup + "-" + hex.EncodeToString(sum[:4])
}

// spawn starts a recorder in its own session and cgroup, detached from the hook:
// its stdio is /dev/null, so the runtime waiting on the hook's output does not
// wait on the recorder.
func spawn(opts HookOptions) error {
	mnt, err := cgroups.Mount()
	if err != nil {
		return err
	}
	// A recorder on its way out removes the cgroup: make it again.
	for try := 0; ; try++ {
		err := spawnIn(opts, filepath.Join(mnt, opts.Config.RecorderCgroup()))
		if err == nil || try == 2 {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func spawnIn(opts HookOptions, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating the recorder's cgroup: %w", err)
	}
	cg, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("opening the recorder's cgroup: %w", err)
	}
	defer cg.Close()
	args := []string{"daemon"}
	if opts.ConfigPath != "" {
		args = append(args, "--config", opts.ConfigPath)
	}
	cmd := exec.Command(opts.Executable, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the recorder: %w", err)
	}
	opts.Log.Info("started the recorder", "pid", cmd.Process.Pid)
	return cmd.Process.Release()
}
