package cli

import (
	"fmt"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func newRouteCommand(p *Params) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "route",
		Aliases: []string{"routes"},
		Short:   "List and describe service routes",
	}
	cmd.AddCommand(newRouteListCommand(p), newRouteDescribeCommand(p))
	return cmd
}

func newRouteListCommand(p *Params) *cobra.Command {
	var output string
	var noHeaders bool
	cmd := &cobra.Command{
		Use:     "list [NAME]",
		Aliases: []string{"ls"},
		Short:   "List routes",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			list := &servingv1.RouteList{}
			if _, err := listSorted(cmd.Context(), p, list, &list.Items, nameArg(args)); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if done, err := printedOtherwise(out, list, len(list.Items), output, "No routes found."); done {
				return err
			}
			t := newTable(out, !noHeaders, withNamespace(p.allNamespaces, "NAMESPACE", "NAME", "URL", "READY")...)
			for _, r := range list.Items {
				ready, _ := readyColumns(r.Status.Status)
				t.row(withNamespace(p.allNamespaces, r.Namespace, r.Name, r.Status.URL, ready)...)
			}
			return t.flush()
		},
	}
	p.addAllNamespacesFlag(cmd)
	addOutputFlags(cmd, &output, &noHeaders)
	return cmd
}

func newRouteDescribeCommand(p *Params) *cobra.Command {
	var output string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show details of a route",
		Args:  singleName("route describe"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			route := &servingv1.Route{}
			if err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]}, route); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output != "" {
				return printObject(out, route, output)
			}
			d := newDescriber(out)
			describeMetadata(d, &route.ObjectMeta)
			d.attr("URL", route.Status.URL)
			if svc := route.Labels[servingv1.ServiceLabelKey]; svc != "" {
				d.attr("Service", svc)
			}
			d.blank()
			d.section("Traffic Targets")
			for _, t := range route.Status.Traffic {
				name := t.RevisionName
				if ptr.Deref(t.LatestRevision, false) {
					name = fmt.Sprintf("@latest (%s)", t.RevisionName)
				}
				if t.Tag != "" {
					name += " #" + t.Tag
				}
				d.line("  %3d%%  %s", ptr.Deref(t.Percent, 0), name)
				if t.Tag != "" && t.URL != "" {
					sub := newDescriber(out)
					sub.inset = "        "
					sub.attr("URL", t.URL)
					sub.flush()
				}
			}
			d.blank()
			d.conditions(route.Status.Conditions, verbose)
			return nil
		},
	}
	addOutputFlags(cmd, &output, nil)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "More output.")
	return cmd
}
