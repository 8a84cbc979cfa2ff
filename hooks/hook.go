package hooks

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/bpf/host"
	"github.com/syscage/syscage/oci"
)

// HookOptions configure one run of the hook.
type HookOptions struct {
	Config *Config
	// ConfigPath is passed on to a recorder the hook starts ("" for the default).
	ConfigPath string
	// Recorder is the command that runs the recorder, to which a hook that starts
	// one adds --config and --debug; empty, the one installed with the hook's own
	// executable (BesideRecorder), looked for only when one must be started.
	Recorder []string
	Log      *slog.Logger
	// Debug passes --debug on to a recorder the hook starts.
	Debug bool
	// Started is when the hook's process began its work (before its config was
	// read), for the timings logged at level debug; zero leaves that step out.
	Started time.Time
}

// RunHook handles one OCI hook invocation: the container's state on stdin. At
// prestart (or createRuntime) it has the recorder track the container and returns
// once recording is armed; at poststop it has the recorder write the profile and
// returns once it is written. A container without a recording annotation is left
// alone. It returns the profile path, if any.
func RunHook(stdin io.Reader, opts HookOptions) (string, error) {
	begin := time.Now()
	deadline := begin.Add(time.Duration(opts.Config.Timeout))
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
	var req Request
	switch st.Status {
	case specs.StateStopped:
		req = Request{Op: "flush", Container: st.ID}
	case specs.StateCreating, specs.StateCreated, "":
		if req, err = trackRequest(st); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("container %s is %q: install the hook at the prestart (or createRuntime) and poststop stages", st.ID, st.Status)
	}
	parsed := time.Now()
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
	var spawned spawnTimes
	resp, err := call(opts, req, deadline, &spawned)
	if opts.Log.Enabled(context.Background(), slog.LevelDebug) {
		// What each step of the hook's path took: the benchmark reads these.
		args := []any{"op", req.Op, "container", st.ID, "parse", parsed.Sub(begin), "call", time.Since(parsed)}
		if spawned.toAnswer > 0 {
			args = append(args, "spawnToReady", spawned.toReady, "spawnToAnswer", spawned.toAnswer)
		}
		if !opts.Started.IsZero() {
			args = append(args, "config", begin.Sub(opts.Started))
		}
		opts.Log.Debug("hook steps", args...)
	}
	if err != nil && req.Op == "flush" {
		// No recorder answered for the recording: say so beside the profile too.
		return "", NotWritten(target, st.ID, err)
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

func trackRequest(st *specs.State) (Request, error) {
	if err := host.Check(); err != nil {
		return Request{}, err
	}
	if st.Pid <= 0 {
		return Request{}, fmt.Errorf("container %s has no pid yet: install the hook at the prestart (or createRuntime) stage", st.ID)
	}
	mnt, err := cgroups.Mount()
	if err != nil {
		return Request{}, err
	}
	rel, err := cgroups.PathOf(st.Pid)
	if err != nil {
		return Request{}, err
	}
	dir := filepath.Join(mnt, rel)
	id, err := cgroups.ID(dir)
	if err != nil {
		return Request{}, err
	}
	// Under a seccomp filter the profile is what its tasks do from the moment the
	// filter is in; a container without one is recorded from its entrypoint's exec.
	start := host.StartExec
	if st.Bundle != "" {
		filtered, err := oci.BundleHasSeccomp(st.Bundle)
		if err != nil {
			return Request{}, err
		}
		if filtered {
			start = host.StartSeccomp
		}
	}
	return Request{Op: "track", Container: st.ID, Annotations: st.Annotations, CgroupID: id, CgroupDir: dir, Start: start}, nil
}

// spawnTimes are the timings of a recorder the hook started, from its spawn: to
// when it listened, and to its answer.
type spawnTimes struct{ toReady, toAnswer time.Duration }

// call sends req to the recorder, starting one if none answers, and gives up at
// deadline: a hook must never hang a container's start or stop.
func call(opts HookOptions, req Request, deadline time.Time, times *spawnTimes) (Response, error) {
	sock := opts.Config.Socket()
	spawned, spawns := false, 0
	var spawnedAt time.Time
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := roundTrip(sock, req, deadline)
		if err == nil && !resp.Retry {
			if spawned {
				times.toAnswer = time.Since(spawnedAt)
			}
			return resp, nil
		}
		lastErr = err
		if err == nil {
			lastErr = errors.New(resp.Error)
		}
		// No recorder (or one on its way out): start one. Several hooks may do so at
		// once; the recorders' lock lets one serve. One started that is gone
		// already, with none listening (it exited idle before this hook asked, on
		// a host busy enough to outlast a short idleExit), is started again, a few
		// times at most.
		gone := spawned && noRecorder(err) && spawns < 3 && !recorderAlive(opts.Config.RunDir)
		if !spawned || (err == nil && resp.Retry) || gone {
			if req.Op == "flush" && !hasState(opts.Config.RunDir, req.Container) {
				// No recorder tracked it, or one told its poststop hook already.
				return Response{}, nil
			}
			// A recorder that died left its recordings pinned: the one started
			// takes them over.
			spawnedAt = time.Now()
			ready, err := spawn(opts)
			if err != nil {
				return Response{}, err
			}
			spawned = true
			spawns++
			// Asked again as soon as the recorder listens (or exits, having lost
			// the lock to another), or as soon as another recorder listens:
			// containers started together after an idle period each start one,
			// and those that lose the lock wait for it up to a second, in case
			// its holder is on its way out.
			waitReady(ready, sock, deadline)
			times.toReady = time.Since(spawnedAt)
			continue
		}
		time.Sleep(2 * time.Millisecond)
	}
	return Response{}, fmt.Errorf("the recorder did not answer within %s (see %s): %w", time.Duration(opts.Config.Timeout), opts.Config.LogFile, lastErr)
}

// noRecorder reports whether err says that no recorder listens on the socket.
func noRecorder(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// recorderAlive reports whether a recorder holds the lock: one loading, serving
// or on its way out, which a hook waits for rather than start another.
func recorderAlive(runDir string) bool {
	f, err := os.Open(filepath.Join(runDir, "recorder.lock"))
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil
}

func roundTrip(sock string, req Request, deadline time.Time) (Response, error) {
	conn, err := net.DialTimeout("unix", sock, time.Until(deadline))
	if err != nil {
		return Response{}, err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return Response{}, err
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return Response{}, fmt.Errorf("reading the recorder's answer: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("the recorder's answer: %w", err)
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
//
// It returns the read end of a pipe whose write end only the recorder holds: it
// reads EOF once the recorder listens, or has exited.
func spawn(opts HookOptions) (*os.File, error) {
	if len(opts.Recorder) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		opts.Recorder = BesideRecorder(exe)
	}
	if _, err := os.Stat(opts.Recorder[0]); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("starting the recorder: %s is not installed: install %s beside %s (make build puts both in bin/), or the syscage CLI", opts.Recorder[0], filepath.Base(opts.Recorder[0]), "syscage-hook")
	}
	mnt, err := cgroups.Mount()
	if err != nil {
		return nil, err
	}
	// A recorder on its way out removes the cgroup: make it again.
	for try := 0; ; try++ {
		ready, err := spawnIn(opts, filepath.Join(mnt, opts.Config.RecorderCgroup()))
		if err == nil || try == 2 {
			return ready, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readyEnv names, in a recorder's environment, the descriptor it closes once it
// listens.
const readyEnv = "SYSCAGE_READY_FD"

// spawnedEnv holds, in a recorder's environment, when the hook started it (Unix
// nanoseconds), for the timings logged at level debug.
const spawnedEnv = "SYSCAGE_SPAWNED"

// Spawned returns when the hook that started this recorder did so, or zero.
func Spawned() time.Time {
	ns, err := strconv.ParseInt(os.Getenv(spawnedEnv), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// waitReady waits for the recorder's end of the pipe to close, or for a
// recorder, this one or another, to listen on sock, until deadline.
func waitReady(ready *os.File, sock string, deadline time.Time) {
	defer ready.Close()
	var b [1]byte
	for time.Now().Before(deadline) {
		next := time.Now().Add(5 * time.Millisecond)
		if next.After(deadline) {
			next = deadline
		}
		ready.SetReadDeadline(next)
		if _, err := ready.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if Listening(sock) {
			return
		}
	}
}

// Listening reports whether a recorder accepts connections on sock. The
// connection made to find out is closed at once; the recorder answers it
// "bad request" to no one.
func Listening(sock string) bool {
	conn, err := net.DialTimeout("unix", sock, 5*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// SignalReady closes the descriptor the hook that started this recorder waits on.
func SignalReady() {
	v := os.Getenv(readyEnv)
	if v == "" {
		return
	}
	os.Unsetenv(readyEnv)
	if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
		syscall.Close(fd)
	}
}

func spawnIn(opts HookOptions, dir string) (*os.File, error) {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("creating the recorder's cgroup: %w", err)
	}
	cg, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the recorder's cgroup: %w", err)
	}
	defer cg.Close()
	ready, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting the recorder: %w", err)
	}
	defer w.Close()
	args := slices.Clone(opts.Recorder[1:])
	if opts.ConfigPath != "" {
		args = append(args, "--config", opts.ConfigPath)
	}
	if opts.Debug {
		args = append(args, "--debug")
	}
	cmd := exec.Command(opts.Recorder[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(os.Environ(), readyEnv+"=3", spawnedEnv+"="+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := cmd.Start(); err != nil {
		ready.Close()
		os.Remove(dir) // made for it, unless a recorder of another hook is in it
		return nil, fmt.Errorf("starting the recorder %s: %w", opts.Recorder[0], err)
	}
	opts.Log.Info("started the recorder", "pid", cmd.Process.Pid)
	return ready, cmd.Process.Release()
}
