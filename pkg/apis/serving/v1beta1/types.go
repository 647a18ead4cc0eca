// Package v1beta1 holds the serving.knative.dev/v1beta1 API: DomainMapping.
// +kubebuilder:object:generate=true
// +groupName=serving.knative.dev
package v1beta1

import (
	"github.com/knd-dev/knd/pkg/apis/duck"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	SchemeGroupVersion = schema.GroupVersion{Group: "serving.knative.dev", Version: "v1beta1"}
	SchemeBuilder      = &scheme.Builder{GroupVersion: SchemeGroupVersion}
	AddToScheme        = SchemeBuilder.AddToScheme
)

func init() { SchemeBuilder.Register(&DomainMapping{}, &DomainMappingList{}) }

// DomainMapping maps a domain name (its own name) to an addressable, such as
// a Service, in the same namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dm,categories=all;knative;serving
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].reason`
type DomainMapping struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              DomainMappingSpec `json:"spec"`
	// +optional
	Status DomainMappingStatus `json:"status,omitempty"`
}

// DomainMappingSpec names the target and, optionally, a TLS secret.
type DomainMappingSpec struct {
	Ref duck.KReference `json:"ref"`
	// +optional
	TLS *SecretTLS `json:"tls,omitempty"`
}

// SecretTLS names the secret holding the certificate for the domain.
type SecretTLS struct {
	SecretName string `json:"secretName"`
}

// DomainMappingStatus is the observed state of a DomainMapping.
type DomainMappingStatus struct {
	duck.Status `json:",inline"`
	// +optional
	URL string `json:"url,omitempty"`
	// +optional
	Address *duck.Addressable `json:"address,omitempty"`
}

// +kubebuilder:object:root=true

// DomainMappingList is a list of DomainMappings.
type DomainMappingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DomainMapping `json:"items"`
}
