package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newVersionCmd(o *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of kubectl-syscage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(o.streams.Out, "kubectl-syscage", versionString())
			return err
		},
	}
}
