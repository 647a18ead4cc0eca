// Package v1 holds the part of Istio's networking.istio.io API that knd's
// gateway serves without a mesh: VirtualService, with the fields routing
// needs. Fields knd does not serve are left out of the schema on purpose,
// so that the API server's strict field validation (kubectl's default)
// refuses them by name instead of knd ignoring them. The same schema is
// served as v1alpha3, v1beta1 and v1 (pkg/install), as Istio does.
// +kubebuilder:object:generate=true
// +groupName=networking.istio.io
package v1

import (
	"github.com/knd-dev/knd/pkg/apis/duck"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	SchemeGroupVersion = schema.GroupVersion{Group: "networking.istio.io", Version: "v1"}
	SchemeBuilder      = &scheme.Builder{GroupVersion: SchemeGroupVersion}
	AddToScheme        = SchemeBuilder.AddToScheme
)

func init() { SchemeBuilder.Register(&VirtualService{}, &VirtualServiceList{}) }

// VirtualService routes the requests for its hosts by rules tried in order.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vs,categories=istio-io;networking-istio-io
// +kubebuilder:printcolumn:name="Gateways",type=string,JSONPath=`.spec.gateways`
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualServiceSpec `json:"spec"`
	// +optional
	Status duck.Status `json:"status,omitempty"`
}

// VirtualServiceSpec is the routing of a set of hosts.
type VirtualServiceSpec struct {
	// Hosts this VirtualService routes: names as clients send them in
	// Host (a leading "*." matches any subdomain; a name without a dot is
	// a Service of the VirtualService's namespace).
	Hosts []string `json:"hosts,omitempty"`
	// Gateways that apply the routes; knd's gateway answers to the
	// Knative ingress and local gateway names and to "mesh" (the
	// default when empty).
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// HTTP rules, tried in order; the first that matches routes.
	// +optional
	HTTP []HTTPRoute `json:"http,omitempty"`
}

// HTTPRoute is one rule: conditions, then what to do with a request that
// meets them.
type HTTPRoute struct {
	// +optional
	Name string `json:"name,omitempty"`
	// Match conditions; any one of them matching is enough. None: every
	// request matches.
	// +optional
	Match []HTTPMatchRequest `json:"match,omitempty"`
	// Destinations, chosen by weight.
	// +optional
	Route []HTTPRouteDestination `json:"route,omitempty"`
	// Redirect answers with a redirect instead of routing.
	// +optional
	Redirect *HTTPRedirect `json:"redirect,omitempty"`
	// Rewrite changes the request's authority or path before it is routed.
	// +optional
	Rewrite *HTTPRewrite `json:"rewrite,omitempty"`
	// Timeout for the whole request, e.g. "10s".
	// +optional
	Timeout string `json:"timeout,omitempty"`
	// Retries: knd retries requests that never reached a pod on its own,
	// whatever this says.
	// +optional
	Retries *HTTPRetry `json:"retries,omitempty"`
	// Fault delays or aborts a share of the requests.
	// +optional
	Fault *HTTPFaultInjection `json:"fault,omitempty"`
	// Mirror sends a copy of each request to another destination, whose
	// answer is dropped.
	// +optional
	Mirror *Destination `json:"mirror,omitempty"`
	// MirrorPercentage is the share of requests mirrored (default 100).
	// +optional
	MirrorPercentage *Percent `json:"mirrorPercentage,omitempty"`
	// Headers to change on the request and the response.
	// +optional
	Headers *Headers `json:"headers,omitempty"`
}

// HTTPMatchRequest is a set of conditions that must all hold.
type HTTPMatchRequest struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	URI *StringMatch `json:"uri,omitempty"`
	// +optional
	Scheme *StringMatch `json:"scheme,omitempty"`
	// +optional
	Method *StringMatch `json:"method,omitempty"`
	// +optional
	Authority *StringMatch `json:"authority,omitempty"`
	// Headers, by lower-cased name.
	// +optional
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
	// WithoutHeaders must not match.
	// +optional
	WithoutHeaders map[string]StringMatch `json:"withoutHeaders,omitempty"`
	// IgnoreURICase makes the uri match case-insensitive.
	// +optional
	IgnoreURICase bool `json:"ignoreUriCase,omitempty"`
	// Gateways this condition applies on.
	// +optional
	Gateways []string `json:"gateways,omitempty"`
}

// StringMatch is one of exact, prefix and regex (RE2, whole string).
type StringMatch struct {
	// +optional
	Exact string `json:"exact,omitempty"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// +optional
	Regex string `json:"regex,omitempty"`
}

// HTTPRouteDestination is a destination with its share of the requests.
type HTTPRouteDestination struct {
	Destination Destination `json:"destination"`
	// Weight is the destination's share (all of them when there is one).
	// +optional
	Weight int32 `json:"weight,omitempty"`
	// +optional
	Headers *Headers `json:"headers,omitempty"`
}

// Destination is a host knd knows: its own gateway (route again by the
// rewritten authority), a Revision or a Knative Service, by their
// in-cluster names.
type Destination struct {
	Host string `json:"host"`
	// +optional
	Port *PortSelector `json:"port,omitempty"`
}

// PortSelector names a port by number.
type PortSelector struct {
	// +optional
	Number uint32 `json:"number,omitempty"`
}

// HTTPRedirect answers with a redirect to the same request with these parts replaced.
type HTTPRedirect struct {
	// +optional
	URI string `json:"uri,omitempty"`
	// +optional
	Authority string `json:"authority,omitempty"`
	// +optional
	Port uint32 `json:"port,omitempty"`
	// +optional
	Scheme string `json:"scheme,omitempty"`
	// RedirectCode is the status (default 301).
	// +optional
	RedirectCode uint32 `json:"redirectCode,omitempty"`
}

// HTTPRewrite replaces the authority, and the path or the prefix a uri
// match matched.
type HTTPRewrite struct {
	// +optional
	URI string `json:"uri,omitempty"`
	// +optional
	Authority string `json:"authority,omitempty"`
}

// HTTPRetry is accepted for compatibility.
type HTTPRetry struct {
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// +optional
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// +optional
	RetryOn string `json:"retryOn,omitempty"`
}

// HTTPFaultInjection delays or aborts requests.
type HTTPFaultInjection struct {
	// +optional
	Delay *Delay `json:"delay,omitempty"`
	// +optional
	Abort *Abort `json:"abort,omitempty"`
}

// Delay holds a share of the requests for a fixed time before routing.
type Delay struct {
	FixedDelay string `json:"fixedDelay"`
	// +optional
	Percentage *Percent `json:"percentage,omitempty"`
}

// Abort answers a share of the requests with a status instead of routing.
type Abort struct {
	HTTPStatus int32 `json:"httpStatus"`
	// +optional
	Percentage *Percent `json:"percentage,omitempty"`
}

// Percent is a share in percent, 0 to 100.
type Percent struct {
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Value float64 `json:"value"`
}

// Headers are changes to the request and to the response.
type Headers struct {
	// +optional
	Request *HeaderOperations `json:"request,omitempty"`
	// +optional
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations set (replace), add (append) and remove headers.
type HeaderOperations struct {
	// +optional
	Set map[string]string `json:"set,omitempty"`
	// +optional
	Add map[string]string `json:"add,omitempty"`
	// +optional
	Remove []string `json:"remove,omitempty"`
}

// VirtualServiceList is a list of VirtualServices.
//
// +kubebuilder:object:root=true
type VirtualServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualService `json:"items"`
}
