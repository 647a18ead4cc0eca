// Package v1alpha1 holds the autoscaling.internal.knative.dev/v1alpha1 API:
// PodAutoscaler.
// +kubebuilder:object:generate=true
// +groupName=autoscaling.internal.knative.dev
package v1alpha1

import (
	"github.com/knd-dev/knd/pkg/apis/duck"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	SchemeGroupVersion = schema.GroupVersion{Group: "autoscaling.internal.knative.dev", Version: "v1alpha1"}
	SchemeBuilder      = &scheme.Builder{GroupVersion: SchemeGroupVersion}
	AddToScheme        = SchemeBuilder.AddToScheme
)

func init() { SchemeBuilder.Register(&PodAutoscaler{}, &PodAutoscalerList{}) }

// PodAutoscaler scales one Revision's Deployment; its name is the revision's.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kpa;pa,categories=knative-internal;autoscaling
// +kubebuilder:printcolumn:name="DesiredScale",type=integer,JSONPath=`.status.desiredScale`
// +kubebuilder:printcolumn:name="ActualScale",type=integer,JSONPath=`.status.actualScale`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].reason`
type PodAutoscaler struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +optional
	Spec PodAutoscalerSpec `json:"spec,omitempty"`
	// +optional
	Status PodAutoscalerStatus `json:"status,omitempty"`
}

// ReachabilityType says whether the revision receives traffic from a route.
type ReachabilityType string

const (
	ReachabilityUnknown     ReachabilityType = ""
	ReachabilityReachable   ReachabilityType = "Reachable"
	ReachabilityUnreachable ReachabilityType = "Unreachable"
)

// PodAutoscalerSpec says what to scale and how.
type PodAutoscalerSpec struct {
	// +optional
	ContainerConcurrency int64                  `json:"containerConcurrency,omitempty"`
	ScaleTargetRef       corev1.ObjectReference `json:"scaleTargetRef"`
	// +optional
	Reachability ReachabilityType `json:"reachability,omitempty"`
	// +optional
	ProtocolType string `json:"protocolType,omitempty"`
}

// PodAutoscalerStatus is the observed state of a PodAutoscaler.
type PodAutoscalerStatus struct {
	duck.Status `json:",inline"`
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
	// +optional
	MetricsServiceName string `json:"metricsServiceName,omitempty"`
	// +optional
	DesiredScale *int32 `json:"desiredScale,omitempty"`
	// +optional
	ActualScale *int32 `json:"actualScale,omitempty"`
}

// +kubebuilder:object:root=true

// PodAutoscalerList is a list of PodAutoscalers.
type PodAutoscalerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PodAutoscaler `json:"items"`
}
