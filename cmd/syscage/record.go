package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/profile"
)

type recordOptions struct {
	output        string
	appendTo      string
	defaultAction string
	errno         uint
	start         string
	quiet         bool
	strict        bool
	limits        baselineOptions
}

func newRecordCmd() *cobra.Command {
	opts := &recordOptions{}
	cmd := &cobra.Command{
		Use:   "record [flags] -- CMD [ARGS...]",
		Short: "Run a command and write the seccomp profile of every syscall it and its children make",
		Long: `Run CMD in a cgroup of its own, record every system call CMD and all its
descendants make (in the kernel, with eBPF), and when CMD exits write the OCI
seccomp profile that allows exactly those calls: to -o FILE, merged into
--append FILE, or to stdout. syscage exits with CMD's exit status.

Processes CMD leaves running in its cgroup are killed when CMD exits.`,
		Example: `  syscage record -o app.json -- ./run-tests.sh
  syscage record --append app.json -- ./run-tests.sh --slow`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecord(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, args)
		},
	}
	// Everything after CMD belongs to CMD, with or without "--".
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "write the profile to `FILE` (atomically) instead of stdout")
	f.StringVar(&opts.appendTo, "append", "", "merge the recording into the profile in `FILE` (created if missing)")
	f.StringVar(&opts.defaultAction, "default-action", "errno", "action for syscalls not recorded: errno, kill, kill-process, kill-thread, trap, log or an SCMP_ACT_ name")
	f.UintVar(&opts.errno, "errno", 1, "errno returned by the errno default action (1 is EPERM)")
	f.StringVar(&opts.start, "start", "exec", "when recording starts: exec (at CMD's own execve) or now (including syscage's launcher)")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "print no progress or summary on stderr")
	f.BoolVar(&opts.strict, "strict", false, "allow only what was recorded, without the calls every process may need at random (rt_sigreturn, restart_syscall, exit, exit_group)")
	f.BoolVar(&opts.strict, "no-baseline", false, "the old name of --strict")
	f.MarkDeprecated("no-baseline", "use --strict (--baseline now names the profile a recording stays within)")
	opts.limits.register(cmd, true)
	cmd.RegisterFlagCompletionFunc("default-action", cobra.FixedCompletions(
		[]string{"errno", "kill", "kill-process", "kill-thread", "trap", "log"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("start", cobra.FixedCompletions([]string{"exec", "now"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

var defaultActions = map[string]specs.LinuxSeccompAction{
	"errno":        specs.ActErrno,
	"kill":         specs.ActKill,
	"kill-thread":  specs.ActKillThread,
	"kill-process": specs.ActKillProcess,
	"trap":         specs.ActTrap,
	"log":          specs.ActLog,
}

func parseDefaultAction(s string) (specs.LinuxSeccompAction, error) {
	if a, ok := defaultActions[strings.ToLower(s)]; ok {
		return a, nil
	}
	for _, a := range defaultActions {
		if string(a) == s {
			return a, nil
		}
	}
	var names []string
	for k := range defaultActions {
		names = append(names, k)
	}
	sort.Strings(names)
	return "", fmt.Errorf("--default-action %q: unknown action: use one of %s", s, strings.Join(names, ", "))
}

func runRecord(ctx context.Context, stdout, stderr io.Writer, opts *recordOptions, args []string) error {
	// The programs' object is parsed while the options are checked (the baseline
	// read among them).
	bpf.Prepare()
	// Everything that can be checked is checked before the workload runs, so a long
	// recording is never lost to a typo.
	action, err := parseDefaultAction(opts.defaultAction)
	if err != nil {
		return err
	}
	baselineName, baseline, withArgs, err := opts.limits.resolve()
	if err != nil {
		return err
	}
	if baseline != nil && (action == specs.ActAllow || action == specs.ActLog) {
		return fmt.Errorf("--default-action %s allows every call not recorded, which is wider than %s: use --baseline none with it", opts.defaultAction, baselineName)
	}
	start := bpf.StartExec
	switch opts.start {
	case "exec":
	case "now":
		start = bpf.StartNow
	default:
		return fmt.Errorf("--start %q: use exec or now", opts.start)
	}
	if opts.output != "" && opts.appendTo != "" {
		return errors.New("-o and --append both name an output: use one")
	}
	target := opts.output
	var base *specs.LinuxSeccomp
	if opts.appendTo != "" {
		target = opts.appendTo
		data, err := os.ReadFile(target)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return fmt.Errorf("--append: %w", err)
		default:
			if base, err = profile.Parse(target, data); err != nil {
				return fmt.Errorf("--append: %w", err)
			}
		}
	}
	if target != "" {
		if err := profile.CheckWritable(target); err != nil {
			return err
		}
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return fmt.Errorf("command %q not found: %w", args[0], errors.Unwrap(err))
	}
	if err := bpf.Check(); err != nil {
		return err
	}
	if _, err := cgroups.Mount(); err != nil {
		return err
	}

	loadStart := time.Now()
	r, err := record.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	slog.Debug("recorder loaded", "programs", r.ProgramIDs(), "took", time.Since(loadStart))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)

	c := exec.CommandContext(ctx, path, args[1:]...)
	c.Args[0] = args[0]
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	tty := !opts.quiet && isTerminal(stderr)
	progress := func(n int) {
		fmt.Fprintf(stderr, "\r\033[Ksyscage: recording %s: %d distinct syscalls", filepath.Base(args[0]), n)
	}
	rc := record.Command{Cmd: c, Track: bpf.TrackOptions{Start: start}, Signals: sigs, Forward: notFromTerminal}
	if tty {
		rc.Progress = progress
	}
	res, err := record.Run(r, rc)
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	slog.Debug("recorded", "armed", res.Armed, "elapsed", res.Elapsed, "stats", res.Recording.Stats)

	named, err := record.Named(res.Recording)
	if err != nil {
		return err
	}
	var prepared *profile.Baseline
	if baseline != nil {
		if prepared, err = profile.NewBaseline(baselineName, baseline); err != nil {
			return err
		}
	}
	built, err := record.Profile(res.Recording, profile.Options{
		DefaultAction: action, DefaultErrnoRet: opts.errno, Strict: opts.strict,
		Baseline: prepared,
	}, withArgs)
	if err != nil {
		return err
	}
	p, unnamed := built.Profile, built.Unnamed
	reportDropped(stderr, baselineName, built.Dropped)
	if base != nil {
		if p, err = profile.Merge(profile.Named{Name: target, Profile: base}, profile.Named{Name: "this recording", Profile: p}); err != nil {
			return err
		}
		if baseline != nil {
			var dropped []profile.Dropped
			if p, dropped, err = prepared.Clip(target, p); err != nil {
				return err
			}
			reportDropped(stderr, baselineName, dropped)
		}
	}
	data, err := profile.Marshal(p)
	if err != nil {
		return err
	}
	if target == "" {
		if _, err := stdout.Write(data); err != nil {
			return err
		}
	} else if err := profile.WriteFile(target, data); err != nil {
		return saveElsewhere(data, err)
	}

	if !opts.quiet {
		fmt.Fprintln(stderr, summary(args[0], target, res, named, base != nil))
		for _, u := range unnamed {
			fmt.Fprintf(stderr, "syscage: warning: syscall %d of %s has no name in syscage's tables: it is not in the profile\n", u.Nr, u.Arch)
		}
		if s := res.Recording.Stats; s.OutOfRange > 0 {
			fmt.Fprintf(stderr, "syscage: warning: %d syscalls had numbers beyond the recorder's range (last: %d): they are not in the profile\n", s.OutOfRange, s.LastOutOfRange)
		}
		if res.Leftover > 0 {
			fmt.Fprintf(stderr, "syscage: killed %d processes %s left running\n", res.Leftover, filepath.Base(args[0]))
		}
	}
	if len(res.Signaled) > 0 && res.Signaled[0] == os.Interrupt {
		return exitCodeError(130)
	}
	if res.ExitCode != 0 {
		return exitCodeError(res.ExitCode)
	}
	return nil
}

// saveElsewhere keeps a recording whose target could not be written.
func saveElsewhere(data []byte, cause error) error {
	f, err := os.CreateTemp("", "syscage-profile-*.json")
	if err != nil {
		return fmt.Errorf("%w (and keeping the profile elsewhere: %w)", cause, err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("%w (and keeping the profile elsewhere: %w)", cause, err)
	}
	return fmt.Errorf("%w: the profile was saved to %s instead", cause, f.Name())
}

func summary(cmdName, target string, res *record.Result, named profile.Recorded, merged bool) string {
	var parts []string
	total := 0
	for _, arch := range profile.Arches() {
		if nrs := named[arch]; len(nrs) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", profile.ShortArch(arch), len(nrs)))
			total += len(nrs)
		}
	}
	dest := "stdout"
	if target != "" {
		dest = target
		if merged {
			dest = "merged into " + target
		}
	}
	return fmt.Sprintf("syscage: %s made %d distinct syscalls (%s) in %d calls over %.1fs, exit %d → %s",
		filepath.Base(cmdName), total, strings.Join(parts, ", "), res.Recording.Stats.Events, res.Elapsed.Seconds(), res.ExitCode, dest)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// notFromTerminal decides whether to forward a signal to the recorded command. A
// Ctrl-C or Ctrl-\ at the terminal already reached the command, which shares
// syscage's foreground process group; sending it again could cut short its own
// clean-up. Signals sent to syscage alone (kill PID) are forwarded.
func notFromTerminal(sig os.Signal) bool {
	if sig != os.Interrupt && sig != syscall.SIGQUIT {
		return true
	}
	fg, err := unix.IoctlGetInt(int(os.Stdin.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return true
	}
	return fg != unix.Getpgrp()
}
