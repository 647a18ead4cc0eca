package main

import (
	"fmt"
	"os"

	"github.com/knd-dev/knd/pkg/controlplane"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/plugin"
	"k8s.io/kubectl/pkg/cmd/util"
)

// newKubectlCommand embeds the real kubectl, pointed at the local server
// unless KUBECONFIG or --kubeconfig say otherwise.
func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl [args...]",
		Short:              "Run kubectl against the local knd server",
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if os.Getenv("KUBECONFIG") == "" {
				os.Setenv("KUBECONFIG", controlplane.Kubeconfig(defaultDataDir()))
			}
			streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
			kubectl := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
				PluginHandler: kubectlcmd.NewDefaultPluginHandler(plugin.ValidPluginFilenamePrefixes),
				Arguments:     append([]string{"kubectl"}, args...),
				ConfigFlags: genericclioptions.NewConfigFlags(true).WithDeprecatedPasswordFlag().
					WithDiscoveryBurst(300).WithDiscoveryQPS(50.0).WithWarningPrinter(streams),
				IOStreams: streams,
			})
			kubectl.SetArgs(args)
			if err := cli.RunNoErrOutput(kubectl); err != nil {
				util.CheckErr(err)
			}
			return nil
		},
	}
}

func newKubeconfigCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the path of the local server's admin kubeconfig",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := controlplane.Kubeconfig(dataDir)
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("no kubeconfig at %s: has `knd server --data-dir %s` run?", path, dataDir)
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "where knd server keeps its state")
	return cmd
}
