// Command knd is Knative Serving in one binary: `knd server` runs the control
// plane and the serving system, `knd kubectl` talks to it.
package main

import (
	"fmt"
	"os"
	"path/filepath"

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
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
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
