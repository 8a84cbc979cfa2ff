package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/syscage/syscage/oci/artifact"
)

// artifactOptions say where a profile artifact lives: a registry, or an OCI
// image layout directory.
type artifactOptions struct {
	layout    string
	plainHTTP bool
}

func (a *artifactOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.layout, "oci-layout", "", "use the OCI image layout `DIR` instead of a registry (REF is then TAG, TAG@DIGEST or @DIGEST)")
	f.BoolVar(&a.plainHTTP, "plain-http", false, "talk to the registry over HTTP, not HTTPS (a registry on loopback)")
	cmd.MarkFlagDirname("oci-layout")
}

func (a *artifactOptions) options() artifact.Options {
	return artifact.Options{Layout: a.layout, PlainHTTP: a.plainHTTP}
}

type pushOptions struct {
	target artifactOptions
}

func newPushCmd() *cobra.Command {
	opts := &pushOptions{}
	cmd := &cobra.Command{
		Use:   "push PROFILE REF",
		Short: "Store a seccomp profile in a registry as an OCI artifact",
		Long: `Store an OCI seccomp profile as an OCI artifact under REF, and print its digest.

The artifact is the one Kubernetes' KEP-6061 and CRI-O pull: its config has the
media type ` + artifact.MediaType + `,
and its one layer is the profile file, byte for byte, referenced by digest. The
same profile always gives the same digest. A profile a runtime would refuse is
refused; a Docker or Kubernetes profile must be converted first (syscage convert).

Credentials come from the Docker credential store (docker login, oras login).`,
		Example: `  syscage push web.json registry.example.com/profiles/web:v1
  syscage push web.json localhost:5000/profiles/web:v1 --plain-http
  syscage push web.json v1 --oci-layout ./profiles-layout`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(cmd.Context(), cmd.OutOrStdout(), opts, args[0], args[1])
		},
	}
	opts.target.register(cmd)
	return cmd
}

func runPush(ctx context.Context, stdout io.Writer, opts *pushOptions, path, ref string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	desc, err := artifact.Push(ctx, ref, path, data, opts.target.options())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, desc.Digest)
	return err
}
