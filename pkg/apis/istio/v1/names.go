package v1

import "strings"

// ServedByKnd says whether a gateway name in a VirtualService (spec or
// match) means knd's gateway: the Knative ingress and local gateways
// (with or without their namespace), and "mesh", since knd's gateway
// also carries the pods' own requests to Services.
func ServedByKnd(gateway string) bool {
	switch strings.TrimPrefix(gateway, "knative-serving/") {
	case "knative-ingress-gateway", "knative-local-gateway", "mesh":
		return true
	}
	return false
}

// AppliesToKnd says whether a VirtualService with these gateways is knd's
// to serve: none listed means "mesh", as in Istio.
func AppliesToKnd(gateways []string) bool {
	if len(gateways) == 0 {
		return true
	}
	for _, g := range gateways {
		if ServedByKnd(g) {
			return true
		}
	}
	return false
}

// gatewayHosts are the in-cluster names of the gateway Services a
// VirtualService routes to when it means "route again by the new
// authority": Istio's and Knative's, and knd's own.
var gatewayHosts = map[string]bool{
	"istio-ingressgateway.istio-system":    true,
	"knative-local-gateway.istio-system":   true,
	"knative-ingress-gateway.istio-system": true,
	"knd-gateway.knative-serving":          true,
}

// IsGatewayHost says whether a destination host (without a port) is one of
// the gateway's names: <service>.<namespace>, with or without
// .svc[.cluster.local].
func IsGatewayHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimSuffix(host, ".cluster.local"), ".svc")
	return gatewayHosts[host]
}
