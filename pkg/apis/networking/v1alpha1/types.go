// Package v1alpha1 holds the networking.internal.knative.dev/v1alpha1 API:
// ClusterDomainClaim.
// +kubebuilder:object:generate=true
// +groupName=networking.internal.knative.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	SchemeGroupVersion = schema.GroupVersion{Group: "networking.internal.knative.dev", Version: "v1alpha1"}
	SchemeBuilder      = &scheme.Builder{GroupVersion: SchemeGroupVersion}
	AddToScheme        = SchemeBuilder.AddToScheme
)

func init() { SchemeBuilder.Register(&ClusterDomainClaim{}, &ClusterDomainClaimList{}) }

// ClusterDomainClaim gives one namespace the right to map a domain (its name).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=cdc,categories=knative-internal;networking
type ClusterDomainClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ClusterDomainClaimSpec `json:"spec,omitempty"`
}

// ClusterDomainClaimSpec names the namespace that may use the domain.
type ClusterDomainClaimSpec struct {
	Namespace string `json:"namespace"`
}

// +kubebuilder:object:root=true

// ClusterDomainClaimList is a list of ClusterDomainClaims.
type ClusterDomainClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterDomainClaim `json:"items"`
}
