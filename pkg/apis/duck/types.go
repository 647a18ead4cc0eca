// Package duck holds the status shapes shared by every Knative resource:
// conditions, observed generation and addresses.
// +kubebuilder:object:generate=true
package duck

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionType is the type of a condition, such as Ready.
type ConditionType string

// ConditionSeverity is "" (an error) for Ready and the conditions it depends
// on, and Info or Warning for informational ones such as Revision Active.
type ConditionSeverity string

const (
	ConditionReady ConditionType     = "Ready"
	SeverityError  ConditionSeverity = ""
	SeverityInfo   ConditionSeverity = "Info"
)

// Condition is one aspect of a resource's state.
type Condition struct {
	Type   ConditionType          `json:"type"`
	Status corev1.ConditionStatus `json:"status"`
	// +optional
	Severity ConditionSeverity `json:"severity,omitempty"`
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
}

// Status is the part of status every resource has.
type Status struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Addressable names where a resource can be reached inside the cluster.
type Addressable struct {
	// +optional
	Name *string `json:"name,omitempty"`
	// +optional
	URL string `json:"url,omitempty"`
	// +optional
	CACerts *string `json:"CACerts,omitempty"`
	// +optional
	Audience *string `json:"audience,omitempty"`
}

// KReference points at another object, possibly in another namespace.
type KReference struct {
	Kind string `json:"kind"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// +optional
	Group string `json:"group,omitempty"`
}

// GetCondition returns the condition of type t, or nil.
func (s *Status) GetCondition(t ConditionType) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}
