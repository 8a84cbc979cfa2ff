package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/profiles"
)

// DefaultConfigPath is read when the hook is given no --config.
const DefaultConfigPath = "/etc/syscage/hook.json"

// Config is the hook's own configuration: the only place that says where profiles
// may be written. Annotations, which whoever creates a container controls, can only
// pick a name inside these directories.
type Config struct {
	// ProfilesDir receives io.syscage.record=NAME as NAME.json.
	ProfilesDir string `json:"profilesDir"`
	// CompatDirs are the directories io.containers.trace-syscall's of: and if:
	// paths may lie in (the annotation of containers/oci-seccomp-bpf-hook).
	CompatDirs []string `json:"compatDirs"`
	// LogFile is where the hook and the recorder log, besides the hook's stderr.
	LogFile string `json:"logFile"`
	// RunDir holds the recorder's socket, lock and pid files, and what it
	// records each container for (containers/ID.json).
	RunDir string `json:"runDir"`
	// PinDir is the directory of the recorder's own on a bpf filesystem (mounted
	// at /sys/fs/bpf if none is) where it pins its maps and links, so that the
	// kernel goes on recording if the recorder dies and the next one, started by
	// the next hook, takes over. "" records without pins: a recorder that dies
	// loses what it recorded, and the poststop hook says so.
	PinDir string `json:"pinDir"`
	// KeepLoaded keeps the programs loaded, pinned in PinDir but attached to
	// nothing, across the recorder's idle exit, so that the next recorder loads
	// nothing and the first container of an idle period starts sooner. What stays
	// is the programs and the maps (see the README for their kernel memory); no
	// syscall pays anything, as nothing is attached. `syscage-recorder
	// --cleanup` removes them. Needs PinDir.
	KeepLoaded bool `json:"keepLoaded,omitempty"`
	// IdleExit is how long the recorder waits with nothing to record before it
	// exits; 0 keeps it running (as a service, so no container waits for it to load).
	IdleExit Duration `json:"idleExit"`
	// Timeout bounds everything the hook waits for.
	Timeout Duration `json:"timeout"`
	// ReportRefused writes NAME.json.denied beside a profile: the calls the filter
	// in force refused while the container was recorded. Off by default: while
	// such a container is recorded, every syscall on the host costs ~90 ns more (a
	// sys_exit program), and nothing cheaper can tell refusals on this kernel
	// (fexit on the seccomp path is refused without ftrace trampolines).
	ReportRefused *bool `json:"reportRefused,omitempty"`
	// Baseline is the profile every written profile stays within: containerd
	// (the default), docker, none, or the absolute path of an OCI profile.
	Baseline string `json:"baseline,omitempty"`
	// Args is "record" (the default: allow only the argument values seen) or
	// "none" (allow recorded syscalls by name).
	Args string `json:"args,omitempty"`
}

// ProfileOptions are what the recorder builds profiles with: the baseline loaded,
// and whether argument values are kept.
func (c *Config) ProfileOptions() (profile.Options, bool, error) {
	v := c.Baseline
	if v == "" {
		v = profiles.DefaultBaseline
	}
	name, base, err := profiles.Baseline(v)
	if err != nil {
		return profile.Options{}, false, fmt.Errorf("baseline: %w", err)
	}
	withArgs, err := c.withArgs()
	if err != nil {
		return profile.Options{}, false, err
	}
	var opts profile.Options
	if base != nil {
		if opts.Baseline, err = profile.NewBaseline(name, base); err != nil {
			return profile.Options{}, false, fmt.Errorf("baseline: %w", err)
		}
	}
	return opts, withArgs, nil
}

func (c *Config) withArgs() (bool, error) {
	withArgs, err := profile.ParseArgsMode(c.Args)
	if err != nil {
		return false, fmt.Errorf("args %w", err)
	}
	return withArgs, nil
}

// ShippedBaseline reports whether the baseline is one syscage ships, which parses
// (its tests say so) and never changes while a recorder runs.
func (c *Config) ShippedBaseline() bool {
	return c.Baseline == "" || slices.Contains(profiles.BaselineNames, c.Baseline)
}

// Refused reports whether refused calls are counted (off unless asked for).
func (c *Config) Refused() bool { return c.ReportRefused != nil && *c.ReportRefused }

// Duration is a time.Duration written as "30s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// DefaultConfig is what an absent config file means.
func DefaultConfig() *Config {
	return &Config{
		ProfilesDir: "/var/lib/syscage/profiles",
		CompatDirs:  []string{"/var/lib/syscage/profiles"},
		LogFile:     "/var/log/syscage/hook.log",
		RunDir:      "/run/syscage",
		PinDir:      "/sys/fs/bpf/syscage",
		IdleExit:    Duration(30 * time.Second),
		Timeout:     Duration(2 * time.Second),
	}
}

// LoadConfig reads the config at path over the defaults. A missing file at the
// default path means the defaults; a missing file that was named explicitly is an
// error.
func LoadConfig(path string, explicit bool) (*Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hook config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, fmt.Errorf("hook config %s: %w", path, err)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("hook config %s: %w", path, err)
	}
	return cfg, nil
}

func (c *Config) validate() error {
	for name, p := range map[string]string{"profilesDir": c.ProfilesDir, "runDir": c.RunDir} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%s %q must be an absolute path", name, p)
		}
	}
	if c.PinDir != "" && !filepath.IsAbs(c.PinDir) {
		return fmt.Errorf("pinDir %q must be an absolute path (or empty for none)", c.PinDir)
	}
	if c.KeepLoaded && c.PinDir == "" {
		return errors.New("keepLoaded needs a pinDir to keep the programs in")
	}
	if c.LogFile != "" && !filepath.IsAbs(c.LogFile) {
		return fmt.Errorf("logFile %q must be an absolute path (or empty for none)", c.LogFile)
	}
	for i, d := range c.CompatDirs {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("compatDirs[%d] %q must be an absolute path", i, d)
		}
	}
	if c.Timeout <= 0 {
		return errors.New("timeout must be positive, e.g. \"2s\"")
	}
	if c.Baseline != "" && !slices.Contains(profiles.BaselineNames, c.Baseline) && !filepath.IsAbs(c.Baseline) {
		return fmt.Errorf("baseline %q: use containerd, docker, none or the absolute path of an OCI profile", c.Baseline)
	}
	if c.ShippedBaseline() {
		// Parsed by the recorder, not by each hook (a hook runs twice per container).
		_, err := c.withArgs()
		return err
	}
	if _, _, err := c.ProfileOptions(); err != nil {
		return err
	}
	return nil
}

// Socket is where the recorder listens.
func (c *Config) Socket() string { return filepath.Join(c.RunDir, socketName) }

const socketName = "recorder.sock"
