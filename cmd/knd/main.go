// Command knd is Knative Serving in one binary: `knd server` runs the control
// plane and the serving system, `knd kubectl` talks to it.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/knd-dev/knd/pkg/cli"
	"github.com/knd-dev/knd/pkg/controlplane"
	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "knd",
		Short:         "Knative Serving in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), newKubectlCommand(), newKubeconfigCommand(), newImageCommand())
	root.AddCommand(cli.NewCommands(&cli.Params{
		LocalKubeconfig: func() string { return controlplane.Kubeconfig(defaultDataDir()) },
	})...)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		if errors.Is(err, syscall.ECONNREFUSED) {
			fmt.Fprintln(os.Stderr, "Is `knd server` running? Start it, or point --kubeconfig (or KUBECONFIG) at a cluster.")
		}
		os.Exit(1)
	}
}

// defaultDataDir is $KND_DATA_DIR, or ~/.knd.
func defaultDataDir() string {
	if dir := os.Getenv("KND_DATA_DIR"); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".knd"
	}
	return filepath.Join(home, ".knd")
}
