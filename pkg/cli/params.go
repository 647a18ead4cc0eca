// Package cli implements knd's kn-compatible commands: service, revision,
// route and domain. Commands parse flags and call the API; printers.go
// (lists and describe layouts) and output.go (-o) turn objects into kn's
// output.
package cli

import (
	"fmt"
	"os"

	networkingv1alpha1 "github.com/knd-dev/knd/pkg/apis/networking/v1alpha1"
	"github.com/knd-dev/knd/pkg/apis/scheme"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	servingv1beta1 "github.com/knd-dev/knd/pkg/apis/serving/v1beta1"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Params are what every command shares: where the cluster is and which
// namespace to use.
type Params struct {
	// LocalKubeconfig returns the local knd server's kubeconfig, used when
	// neither --kubeconfig nor KUBECONFIG is set.
	LocalKubeconfig func() string

	kubeconfig    string
	namespace     string
	allNamespaces bool
}

// addConnectionFlags adds --kubeconfig and -n to a command group.
func (p *Params) addConnectionFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&p.kubeconfig, "kubeconfig", "", "kubectl configuration file (default: $KUBECONFIG, else the local knd server's)")
	cmd.PersistentFlags().StringVarP(&p.namespace, "namespace", "n", "", "Specify the namespace to operate in.")
}

func (p *Params) addAllNamespacesFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&p.allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces. Namespace in current context is ignored even if specified with --namespace.")
}

func (p *Params) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	switch {
	case p.kubeconfig != "":
		rules.ExplicitPath = p.kubeconfig
	case os.Getenv("KUBECONFIG") == "" && p.LocalKubeconfig != nil:
		rules.ExplicitPath = p.LocalKubeconfig()
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
}

// Namespace is -n, else the kubeconfig context's namespace, else "default".
func (p *Params) Namespace() (string, error) {
	if p.namespace != "" {
		return p.namespace, nil
	}
	ns, _, err := p.clientConfig().Namespace()
	if err != nil {
		return "", err
	}
	return ns, nil
}

// listNamespace is "" (every namespace) with -A, else Namespace().
func (p *Params) listNamespace() (string, error) {
	if p.allNamespaces {
		return "", nil
	}
	return p.Namespace()
}

var clientScheme = func() *runtime.Scheme {
	s, err := scheme.New()
	if err != nil {
		panic(err)
	}
	return s
}()

// Client connects to the cluster.
func (p *Params) Client() (client.WithWatch, error) {
	cfg, err := p.clientConfig().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot reach a cluster: %w (is `knd server` running?)", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	return client.NewWithWatch(cfg, client.Options{Scheme: clientScheme, Mapper: restMapper})
}

// restMapper knows the kinds the commands use, so that no command spends a
// discovery round trip before its first request.
var restMapper = func() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, gvk := range []schema.GroupVersionKind{
		servingv1.SchemeGroupVersion.WithKind("Service"), servingv1.SchemeGroupVersion.WithKind("Configuration"),
		servingv1.SchemeGroupVersion.WithKind("Revision"), servingv1.SchemeGroupVersion.WithKind("Route"),
		servingv1beta1.SchemeGroupVersion.WithKind("DomainMapping"),
	} {
		m.Add(gvk, meta.RESTScopeNamespace)
	}
	m.Add(networkingv1alpha1.SchemeGroupVersion.WithKind("ClusterDomainClaim"), meta.RESTScopeRoot)
	return m
}()

// NewCommands returns the service, revision, route and domain command groups.
func NewCommands(p *Params) []*cobra.Command {
	groups := []*cobra.Command{newServiceCommand(p), newRevisionCommand(p), newRouteCommand(p), newDomainCommand(p)}
	for _, g := range groups {
		p.addConnectionFlags(g)
	}
	return groups
}
