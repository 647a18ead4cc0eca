// Package scheme builds the runtime scheme every knd client uses: the
// built-in Kubernetes types and knd's serving, autoscaling and networking
// types, and the Istio and Gateway API routing types the gateway serves.
package scheme

import (
	autoscalingv1alpha1 "github.com/knd-dev/knd/pkg/apis/autoscaling/v1alpha1"
	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	networkingv1alpha1 "github.com/knd-dev/knd/pkg/apis/networking/v1alpha1"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	servingv1beta1 "github.com/knd-dev/knd/pkg/apis/serving/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// New returns a scheme with the built-in types and knd's.
func New() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, servingv1.AddToScheme, servingv1beta1.AddToScheme,
		autoscalingv1alpha1.AddToScheme, networkingv1alpha1.AddToScheme, istiov1.AddToScheme, gatewayv1.Install,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}
