package v1

import (
	"github.com/knd-dev/knd/pkg/apis/duck"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Service manages the whole lifecycle of an application: it owns a
// Configuration (which stamps out Revisions) and a Route (which sends traffic
// to them).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kservice;ksvc,categories=all;knative;serving
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="LatestCreated",type=string,JSONPath=`.status.latestCreatedRevisionName`
// +kubebuilder:printcolumn:name="LatestReady",type=string,JSONPath=`.status.latestReadyRevisionName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].reason`
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +optional
	Spec ServiceSpec `json:"spec,omitempty"`
	// +optional
	Status ServiceStatus `json:"status,omitempty"`
}

// ServiceSpec is a Configuration's template plus a Route's traffic.
type ServiceSpec struct {
	ConfigurationSpec `json:",inline"`
	RouteSpec         `json:",inline"`
}

// ServiceStatus mirrors the status of the Service's Configuration and Route.
type ServiceStatus struct {
	duck.Status               `json:",inline"`
	ConfigurationStatusFields `json:",inline"`
	RouteStatusFields         `json:",inline"`
}

// +kubebuilder:object:root=true

// ServiceList is a list of Services.
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Service `json:"items"`
}

// Configuration keeps the desired state of an application's code and
// configuration; every change of its template stamps out a new Revision.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=config;cfg,categories=all;knative;serving
// +kubebuilder:printcolumn:name="LatestCreated",type=string,JSONPath=`.status.latestCreatedRevisionName`
// +kubebuilder:printcolumn:name="LatestReady",type=string,JSONPath=`.status.latestReadyRevisionName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].reason`
type Configuration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +optional
	Spec ConfigurationSpec `json:"spec,omitempty"`
	// +optional
	Status ConfigurationStatus `json:"status,omitempty"`
}

// ConfigurationSpec holds the template of the Revisions to create.
type ConfigurationSpec struct {
	// +optional
	Template RevisionTemplateSpec `json:"template"`
}

// ConfigurationStatusFields are shared by Configuration and Service status.
type ConfigurationStatusFields struct {
	// +optional
	LatestReadyRevisionName string `json:"latestReadyRevisionName,omitempty"`
	// +optional
	LatestCreatedRevisionName string `json:"latestCreatedRevisionName,omitempty"`
}

// ConfigurationStatus is the observed state of a Configuration.
type ConfigurationStatus struct {
	duck.Status               `json:",inline"`
	ConfigurationStatusFields `json:",inline"`
}

// +kubebuilder:object:root=true

// ConfigurationList is a list of Configurations.
type ConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Configuration `json:"items"`
}

// RevisionTemplateSpec is the metadata and spec of the Revisions a
// Configuration creates.
type RevisionTemplateSpec struct {
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +optional
	Spec RevisionSpec `json:"spec,omitempty"`
}

// Revision is an immutable snapshot of code and configuration.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rev,categories=all;knative;serving
// +kubebuilder:printcolumn:name="Config Name",type=string,JSONPath=`.metadata.labels['serving\.knative\.dev/configuration']`
// +kubebuilder:printcolumn:name="K8s Service Name",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Generation",type=string,JSONPath=`.metadata.labels['serving\.knative\.dev/configurationGeneration']`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].reason`
// +kubebuilder:printcolumn:name="Actual Replicas",type=integer,JSONPath=`.status.actualReplicas`
// +kubebuilder:printcolumn:name="Desired Replicas",type=integer,JSONPath=`.status.desiredReplicas`
type Revision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +optional
	Spec RevisionSpec `json:"spec,omitempty"`
	// +optional
	Status RevisionStatus `json:"status,omitempty"`
}

// RevisionSpec is a pod spec plus the serving settings of the revision.
type RevisionSpec struct {
	corev1.PodSpec `json:",inline"`
	// ContainerConcurrency is the most requests one pod serves at once; 0
	// means no limit.
	// +optional
	ContainerConcurrency *int64 `json:"containerConcurrency,omitempty"`
	// TimeoutSeconds is the longest a request may take.
	// +optional
	TimeoutSeconds *int64 `json:"timeoutSeconds,omitempty"`
	// ResponseStartTimeoutSeconds is the longest to wait for the first byte.
	// +optional
	ResponseStartTimeoutSeconds *int64 `json:"responseStartTimeoutSeconds,omitempty"`
	// IdleTimeoutSeconds is the longest a response may go without a write.
	// +optional
	IdleTimeoutSeconds *int64 `json:"idleTimeoutSeconds,omitempty"`
}

// ContainerStatus records the digest an image tag resolved to.
type ContainerStatus struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	ImageDigest string `json:"imageDigest,omitempty"`
}

// RevisionStatus is the observed state of a Revision.
type RevisionStatus struct {
	duck.Status `json:",inline"`
	// +optional
	LogURL string `json:"logUrl,omitempty"`
	// +optional
	ContainerStatuses []ContainerStatus `json:"containerStatuses,omitempty"`
	// +optional
	InitContainerStatuses []ContainerStatus `json:"initContainerStatuses,omitempty"`
	// +optional
	ActualReplicas *int32 `json:"actualReplicas,omitempty"`
	// +optional
	DesiredReplicas *int32 `json:"desiredReplicas,omitempty"`
}

// +kubebuilder:object:root=true

// RevisionList is a list of Revisions.
type RevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Revision `json:"items"`
}

// Route sends traffic to Revisions, by percent and by tag.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rt,categories=all;knative;serving
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].reason`
type Route struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +optional
	Spec RouteSpec `json:"spec,omitempty"`
	// +optional
	Status RouteStatus `json:"status,omitempty"`
}

// RouteSpec lists where traffic goes.
type RouteSpec struct {
	// +optional
	Traffic []TrafficTarget `json:"traffic,omitempty"`
}

// TrafficTarget sends a percent of traffic, and optionally a tagged URL, to a
// revision or to a configuration's latest ready revision.
type TrafficTarget struct {
	// +optional
	Tag string `json:"tag,omitempty"`
	// +optional
	RevisionName string `json:"revisionName,omitempty"`
	// +optional
	ConfigurationName string `json:"configurationName,omitempty"`
	// +optional
	LatestRevision *bool `json:"latestRevision,omitempty"`
	// +optional
	Percent *int64 `json:"percent,omitempty"`
	// URL is set in status for tagged targets.
	// +optional
	URL string `json:"url,omitempty"`
}

// RouteStatusFields are shared by Route and Service status.
type RouteStatusFields struct {
	// +optional
	URL string `json:"url,omitempty"`
	// +optional
	Address *duck.Addressable `json:"address,omitempty"`
	// +optional
	Traffic []TrafficTarget `json:"traffic,omitempty"`
}

// RouteStatus is the observed state of a Route.
type RouteStatus struct {
	duck.Status       `json:",inline"`
	RouteStatusFields `json:",inline"`
}

// +kubebuilder:object:root=true

// RouteList is a list of Routes.
type RouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Route `json:"items"`
}
