package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1beta1 "github.com/knd-dev/knd/pkg/apis/serving/v1beta1"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

func newDomainCommand(p *Params) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "domain",
		Aliases: []string{"domains"},
		Short:   "Manage domain mappings",
	}
	cmd.AddCommand(newDomainCreateCommand(p), newDomainUpdateCommand(p), newDomainListCommand(p),
		newDomainDescribeCommand(p), newDomainDeleteCommand(p))
	return cmd
}

const refUsage = "Addressable target reference for Domain Mapping. You can specify a Knative service or a Knative route. " +
	"Examples: '--ref' ksvc:hello or simply '--ref' hello for a Knative service 'hello', '--ref' kroute:hello for a Knative route 'hello', " +
	"'--ref' ksvc:mysvc:mynamespace for a Knative service 'mysvc' in another namespace 'mynamespace'."

// parseRef reads --ref: NAME, ksvc:NAME, kroute:NAME, each with an optional
// :NAMESPACE.
func parseRef(ref, ns string) (duck.KReference, error) {
	parts := strings.Split(ref, ":")
	kind := "ksvc"
	if len(parts) > 1 {
		kind, parts = parts[0], parts[1:]
	}
	if len(parts) > 2 || parts[0] == "" {
		return duck.KReference{}, fmt.Errorf("invalid --ref %q: %s", ref, "expected NAME, ksvc:NAME or kroute:NAME, optionally followed by :NAMESPACE")
	}
	if len(parts) == 2 {
		ns = parts[1]
	}
	out := duck.KReference{Name: parts[0], Namespace: ns, APIVersion: "serving.knative.dev/v1"}
	switch kind {
	case "ksvc":
		out.Kind = "Service"
	case "kroute":
		out.Kind = "Route"
	default:
		return duck.KReference{}, fmt.Errorf("invalid --ref %q: unknown kind %q, expected ksvc or kroute", ref, kind)
	}
	return out, nil
}

func newDomainCreateCommand(p *Params) *cobra.Command {
	var ref, tls string
	cmd := &cobra.Command{
		Use:   "create DOMAIN --ref TARGET",
		Short: "Create a domain mapping",
		Example: `  # Map hello.example.org to the Knative service 'hello'
  knd domain create hello.example.org --ref ksvc:hello`,
		Args: singleName("domain create"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ref == "" {
				return errors.New("'domain create' requires the route name to run provided with the --ref option")
			}
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			target, err := parseRef(ref, ns)
			if err != nil {
				return err
			}
			dm := &servingv1beta1.DomainMapping{
				ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: ns},
				Spec:       servingv1beta1.DomainMappingSpec{Ref: target},
			}
			if tls != "" {
				dm.Spec.TLS = &servingv1beta1.SecretTLS{SecretName: tls}
			}
			if err := c.Create(cmd.Context(), dm); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Domain mapping '%s' created in namespace '%s'.\n", args[0], ns)
			return nil
		},
	}
	cmd.Flags().StringVar(&ref, "ref", "", refUsage)
	cmd.Flags().StringVar(&tls, "tls", "", "Enable TLS and point to the secret that holds the server certificate.")
	return cmd
}

func newDomainUpdateCommand(p *Params) *cobra.Command {
	var ref, tls string
	cmd := &cobra.Command{
		Use:   "update DOMAIN --ref TARGET",
		Short: "Update a domain mapping",
		Args:  singleName("domain update"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				dm := &servingv1beta1.DomainMapping{}
				if err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]}, dm); err != nil {
					return err
				}
				if cmd.Flags().Changed("ref") {
					target, err := parseRef(ref, ns)
					if err != nil {
						return err
					}
					dm.Spec.Ref = target
				}
				if cmd.Flags().Changed("tls") {
					dm.Spec.TLS = nil
					if tls != "" {
						dm.Spec.TLS = &servingv1beta1.SecretTLS{SecretName: tls}
					}
				}
				return c.Update(cmd.Context(), dm)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Domain mapping '%s' updated in namespace '%s'.\n", args[0], ns)
			return nil
		},
	}
	cmd.Flags().StringVar(&ref, "ref", "", refUsage)
	cmd.Flags().StringVar(&tls, "tls", "", "Enable TLS and point to the secret that holds the server certificate; \"\" disables TLS.")
	return cmd
}

func newDomainListCommand(p *Params) *cobra.Command {
	var output string
	var noHeaders bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List domain mappings",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list := &servingv1beta1.DomainMappingList{}
			if _, err := listSorted(cmd.Context(), p, list, &list.Items, ""); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if done, err := printedOtherwise(out, list, len(list.Items), output, "No domain mapping found."); done {
				return err
			}
			t := newTable(out, !noHeaders, withNamespace(p.allNamespaces, "NAMESPACE", "NAME", "URL", "READY", "KSVC")...)
			for _, dm := range list.Items {
				ready, _ := readyColumns(dm.Status.Status)
				t.row(withNamespace(p.allNamespaces, dm.Namespace, dm.Name, dm.Status.URL, ready, dm.Spec.Ref.Name)...)
			}
			return t.flush()
		},
	}
	p.addAllNamespacesFlag(cmd)
	addOutputFlags(cmd, &output, &noHeaders)
	return cmd
}

func newDomainDescribeCommand(p *Params) *cobra.Command {
	var output string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "describe DOMAIN",
		Short: "Show details of a domain mapping",
		Args:  singleName("domain describe"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			dm := &servingv1beta1.DomainMapping{}
			if err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]}, dm); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output != "" {
				return printObject(out, dm, output)
			}
			d := newDescriber(out)
			describeMetadata(d, &dm.ObjectMeta)
			d.attr("URL", dm.Status.URL)
			d.blank()
			d.section("Reference")
			d.inset = "  "
			d.attr("APIVersion", dm.Spec.Ref.APIVersion)
			d.attr("Kind", dm.Spec.Ref.Kind)
			d.attr("Name", dm.Spec.Ref.Name)
			if dm.Spec.Ref.Namespace != "" && dm.Spec.Ref.Namespace != dm.Namespace {
				d.attr("Namespace", dm.Spec.Ref.Namespace)
			}
			d.flush()
			d.inset = ""
			if dm.Spec.TLS != nil {
				d.attr("TLS Secret", dm.Spec.TLS.SecretName)
			}
			d.blank()
			d.conditions(dm.Status.Conditions, verbose)
			return nil
		},
	}
	addOutputFlags(cmd, &output, nil)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "More output.")
	return cmd
}

func newDomainDeleteCommand(p *Params) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete DOMAIN",
		Aliases: []string{"rm"},
		Short:   "Delete a domain mapping",
		Args:    singleName("domain delete"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			dm := &servingv1beta1.DomainMapping{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: args[0]}}
			if err := c.Delete(cmd.Context(), dm); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Domain mapping '%s' deleted in namespace '%s'.\n", args[0], ns)
			return nil
		},
	}
	return cmd
}
