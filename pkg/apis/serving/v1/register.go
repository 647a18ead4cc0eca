// Package v1 holds the serving.knative.dev/v1 API: Service, Configuration,
// Revision and Route.
// +kubebuilder:object:generate=true
// +groupName=serving.knative.dev
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	SchemeGroupVersion = schema.GroupVersion{Group: "serving.knative.dev", Version: "v1"}
	SchemeBuilder      = &scheme.Builder{GroupVersion: SchemeGroupVersion}
	AddToScheme        = SchemeBuilder.AddToScheme
)

func init() {
	SchemeBuilder.Register(&Service{}, &ServiceList{}, &Configuration{}, &ConfigurationList{},
		&Revision{}, &RevisionList{}, &Route{}, &RouteList{})
}
