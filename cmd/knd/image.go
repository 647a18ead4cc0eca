package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/knd-dev/knd/pkg/node/docker"
	"github.com/knd-dev/knd/pkg/node/image"
	"github.com/spf13/cobra"
)

func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage the images pods run from (the node's local store)"}
	var dataDir, ref string
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", defaultDataDir(), "knd's data directory")
	importCmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Load a docker save or OCI layout tarball, or wrap an executable as a one-layer image",
		Example: `  docker save hello:latest -o hello.tar && knd image import hello.tar
  go build -o hello ./cmd/hello && knd image import hello --name ko.local/hello:v1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := image.Open(filepath.Join(dataDir, "images"))
			if err != nil {
				return err
			}
			imgs, err := store.Import(args[0], ref)
			if err != nil {
				return err
			}
			for _, im := range imgs {
				fmt.Fprintf(cmd.OutOrStdout(), "imported %s@%s\n", im.Ref, im.Digest)
			}
			// The docker provider runs what the engine has: keep it current.
			loaded, err := docker.LoadIntoEngine(cmd.Context(), store, imgs)
			if loaded && err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "loaded into the Docker engine too")
			}
			return err
		},
	}
	importCmd.Flags().StringVar(&ref, "name", "", "reference to store the image under (default for an executable: ko.local/<file>:latest)")
	listCmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the images in the local store",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := image.Open(filepath.Join(dataDir, "images"))
			if err != nil {
				return err
			}
			imgs, err := store.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "REFERENCE\tDIGEST\tSIZE")
			for _, im := range imgs {
				fmt.Fprintf(w, "%s\t%s\t%.1fMB\n", im.Ref, im.Digest[:min(len(im.Digest), 19)], float64(im.Size)/1e6)
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(importCmd, listCmd)
	return cmd
}
