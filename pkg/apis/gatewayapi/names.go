// Package gatewayapi names knd's place in the Gateway API: the
// GatewayClass and Gateway it publishes, whose HTTPRoutes its gateway
// serves.
package gatewayapi

import gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

const (
	// ClassName is knd's GatewayClass.
	ClassName = "knd"
	// ControllerName is what knd writes in status as the controller.
	ControllerName gatewayv1.GatewayController = "knd.dev/gateway-controller"
	// GatewayNamespace and GatewayName are knd's Gateway: routes name it
	// as their parent.
	GatewayNamespace = "knative-serving"
	GatewayName      = "knd-gateway"
	// ListenerName is the Gateway's one listener, HTTP on port 80 (knd's
	// gateway port on this machine).
	ListenerName = "http"
)

// IsKndGateway says whether a route's parentRef, in the route's namespace,
// names knd's Gateway (and its listener, when it names one).
func IsKndGateway(ref gatewayv1.ParentReference, routeNamespace string) bool {
	if ref.Group != nil && *ref.Group != gatewayv1.GroupName {
		return false
	}
	if ref.Kind != nil && *ref.Kind != "Gateway" {
		return false
	}
	ns := routeNamespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if ns != GatewayNamespace || ref.Name != GatewayName {
		return false
	}
	return ref.SectionName == nil || *ref.SectionName == ListenerName
}
