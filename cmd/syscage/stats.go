package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/syscage/syscage/profile"
)

type statsOptions struct {
	format string
	host   hostOptions
}

func newStatsCmd() *cobra.Command {
	opts := &statsOptions{}
	cmd := &cobra.Command{
		Use:   "stats FILE...",
		Short: "Count the syscalls a profile allows per architecture, against containerd's default",
		Long: `For each architecture a profile lists, count the syscalls it allows (whatever
the arguments, and for some arguments only) out of all the architecture has, and
compare with containerd's default profile: how many fewer it allows, and how many
it allows that the default does not.`,
		Example: `  syscage stats app.json`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStats(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, args)
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", "text", "text or json")
	opts.host.register(cmd)
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// archStats are the counts of one architecture.
type archStats struct {
	Arch        specs.Arch `json:"arch"`
	Allowed     int        `json:"allowed"`
	Conditional int        `json:"conditional"`
	Total       int        `json:"total"`
	// Default* compare with containerd's default profile; absent when syscage
	// does not ship it for the architecture.
	Default          *int     `json:"default,omitempty"`
	ReductionPercent *float64 `json:"reductionPercent,omitempty"`
	BeyondDefault    []string `json:"beyondDefault,omitempty"`
}

type fileStats struct {
	File          string      `json:"file"`
	DefaultAction string      `json:"defaultAction"`
	Arches        []archStats `json:"arches"`
}

func runStats(_ context.Context, stdout, _ io.Writer, opts *statsOptions, args []string) error {
	if opts.format != "text" && opts.format != "json" {
		return fmt.Errorf("--format %q: use text or json", opts.format)
	}
	var all []fileStats
	for _, path := range args {
		n, err := readProfile(path, &opts.host)
		if err != nil {
			return err
		}
		s, err := statsOf(n)
		if err != nil {
			return err
		}
		all = append(all, s)
	}
	if opts.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	for i, s := range all {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "%s: every other syscall gets %s\n", s.File, s.DefaultAction)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "arch\tallowed\tfor some args\tof\tcontainerd default\treduction\tbeyond default\t")
		for _, a := range s.Arches {
			def, red, beyond := "-", "-", "-"
			if a.Default != nil {
				def = fmt.Sprint(*a.Default)
				red = fmt.Sprintf("%.1f%%", *a.ReductionPercent)
				beyond = fmt.Sprint(len(a.BeyondDefault))
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t\n", a.Arch, a.Allowed, a.Conditional, a.Total, def, red, beyond)
		}
		tw.Flush()
		for _, a := range s.Arches {
			if len(a.BeyondDefault) > 0 {
				fmt.Fprintf(stdout, "%s: allowed beyond containerd's default: %v\n", a.Arch, a.BeyondDefault)
			}
		}
	}
	return nil
}

func statsOf(n profile.Named) (fileStats, error) {
	p := n.Profile
	s := fileStats{File: n.Name, DefaultAction: profile.Verdict{Action: p.DefaultAction, Errno: errnoOf(p)}.String()}
	arches := p.Architectures
	if len(arches) == 0 {
		arches = nativeFallback()
	}
	for _, arch := range arches {
		tab, err := profile.TableFor(arch)
		if err != nil {
			continue
		}
		always, cond, err := profile.Allowed(p, arch)
		if err != nil {
			return s, err
		}
		a := archStats{Arch: arch, Allowed: len(always), Conditional: len(cond), Total: tab.Len()}
		if ref := containerdDefault(arch); ref != nil {
			ra, rc, _ := profile.Allowed(ref, arch)
			def := len(ra) + len(rc)
			mine := len(always) + len(cond)
			for _, name := range append(always, cond...) {
				if !slices.Contains(ra, name) && !slices.Contains(rc, name) {
					a.BeyondDefault = append(a.BeyondDefault, name)
				}
			}
			// Argument-level width counts too: clone allowed whatever its flags is
			// clone(CLONE_NEWUSER) beyond the default, though both allow "clone".
			widened := 0
			for _, name := range always {
				if slices.Contains(rc, name) {
					a.BeyondDefault = append(a.BeyondDefault, name+"(any arguments)")
					widened++
				}
			}
			// Clip refuses a profile that allows by default: its width is the
			// names above.
			if _, dropped, err := profile.Clip(n.Name, p, "containerd's default", ref); err == nil {
				for _, d := range dropped {
					if len(d.Args) > 0 && slices.Contains(cond, d.Name) {
						a.BeyondDefault = append(a.BeyondDefault, d.String())
						widened++
					}
				}
			}
			red := 0.0
			if def > 0 {
				red = 100 * float64(def-mine-widened) / float64(def)
			}
			a.Default, a.ReductionPercent = &def, &red
			slices.Sort(a.BeyondDefault)
		}
		s.Arches = append(s.Arches, a)
	}
	return s, nil
}

func errnoOf(p *specs.LinuxSeccomp) uint {
	switch {
	case p.DefaultErrnoRet != nil:
		return *p.DefaultErrnoRet
	case p.DefaultAction == specs.ActErrno || p.DefaultAction == specs.ActTrace:
		return 1
	}
	return 0
}
