package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/syscage/syscage/oci/artifact"
	"github.com/syscage/syscage/profile"
)

type pullOptions struct {
	output string
	target artifactOptions
}

func newPullCmd() *cobra.Command {
	opts := &pullOptions{}
	cmd := &cobra.Command{
		Use:   "pull REF [-o FILE]",
		Short: "Fetch a seccomp profile stored as an OCI artifact",
		Long: `Fetch the seccomp profile of the OCI artifact REF and write it to FILE
(atomically), or to stdout.

REF is REGISTRY/REPOSITORY:TAG, REGISTRY/REPOSITORY@DIGEST, or both: a tag with a
digest pins it, and the pull fails unless the tag still names that digest.
Every blob is checked against its digest. The artifact must be a seccomp profile
(media type ` + artifact.MediaType + `, KEP-6061),
or a SeccompProfile pushed by the security-profiles-operator's spoc, which is
converted to an OCI profile. The profile must be one a runtime would accept.`,
		Example: `  syscage pull registry.example.com/profiles/web:v1 -o web.json
  syscage pull localhost:5000/profiles/web@sha256:… --plain-http
  syscage pull v1 --oci-layout ./profiles-layout`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPull(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	cmd.Flags().StringVarP(&opts.output, "output", "o", "", "write to `FILE` (atomically) instead of stdout")
	opts.target.register(cmd)
	return cmd
}

func runPull(ctx context.Context, stdout io.Writer, opts *pullOptions, ref string) error {
	if opts.output != "" {
		if err := profile.CheckWritable(opts.output); err != nil {
			return err
		}
	}
	p, err := artifact.Pull(ctx, ref, opts.target.options())
	if err != nil {
		return err
	}
	return writeOutput(stdout, opts.output, p.Data)
}
