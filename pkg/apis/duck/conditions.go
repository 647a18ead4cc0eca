package duck

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionSet is a "living" condition set (upstream's apis.ConditionSet):
// Ready summarizes its dependents. Conditions not in the set are
// informational (severity Info). Each resource's set lives with its types.
// +kubebuilder:object:generate=false
type ConditionSet struct {
	dependents []ConditionType
}

// NewConditionSet returns a set whose Ready depends on deps.
func NewConditionSet(deps ...ConditionType) ConditionSet { return ConditionSet{dependents: deps} }

// Manage returns a manager of the conditions in st.
func (s ConditionSet) Manage(st *Status) *Conditions { return &Conditions{set: s, st: st} }

// Conditions edits one object's conditions.
// +kubebuilder:object:generate=false
type Conditions struct {
	set ConditionSet
	st  *Status
}

// Initialize sets Ready and every dependent that is missing to Unknown.
func (c *Conditions) Initialize() {
	for _, t := range append([]ConditionType{ConditionReady}, c.set.dependents...) {
		if c.st.GetCondition(t) == nil {
			c.set1(Condition{Type: t, Status: corev1.ConditionUnknown})
		}
	}
}

// Get returns the condition of type t, or nil.
func (c *Conditions) Get(t ConditionType) *Condition { return c.st.GetCondition(t) }

// IsTrue says whether condition t is True.
func (c *Conditions) IsTrue(t ConditionType) bool {
	cond := c.Get(t)
	return cond != nil && cond.Status == corev1.ConditionTrue
}

// MarkTrue sets t True; Ready becomes True once every dependent is.
func (c *Conditions) MarkTrue(t ConditionType) { c.mark(t, corev1.ConditionTrue, "", "") }

// MarkTrueWithReason sets t True with a reason, as for TLSNotEnabled.
func (c *Conditions) MarkTrueWithReason(t ConditionType, reason, format string, args ...any) {
	c.mark(t, corev1.ConditionTrue, reason, fmt.Sprintf(format, args...))
}

// MarkUnknown sets t Unknown; Ready becomes Unknown unless a dependent is False.
func (c *Conditions) MarkUnknown(t ConditionType, reason, format string, args ...any) {
	c.mark(t, corev1.ConditionUnknown, reason, fmt.Sprintf(format, args...))
}

// MarkFalse sets t False; Ready becomes False with the same reason.
func (c *Conditions) MarkFalse(t ConditionType, reason, format string, args ...any) {
	c.mark(t, corev1.ConditionFalse, reason, fmt.Sprintf(format, args...))
}

// Remove drops condition t.
func (c *Conditions) Remove(t ConditionType) {
	out := c.st.Conditions[:0]
	for _, cond := range c.st.Conditions {
		if cond.Type != t {
			out = append(out, cond)
		}
	}
	c.st.Conditions = out
}

func (c *Conditions) mark(t ConditionType, status corev1.ConditionStatus, reason, msg string) {
	cond := Condition{Type: t, Status: status, Reason: reason, Message: msg}
	if !c.isDependent(t) && t != ConditionReady {
		cond.Severity = SeverityInfo
	}
	c.set1(cond)
	if t == ConditionReady || !c.isDependent(t) {
		return
	}
	c.recomputeReady()
}

// recomputeReady derives Ready from the dependents: the first False one
// wins, then the first Unknown one, else True.
func (c *Conditions) recomputeReady() {
	var unknown *Condition
	for _, t := range c.set.dependents {
		d := c.Get(t)
		switch {
		case d == nil:
			if unknown == nil {
				unknown = &Condition{Type: t, Status: corev1.ConditionUnknown}
			}
		case d.Status == corev1.ConditionFalse:
			c.set1(Condition{Type: ConditionReady, Status: corev1.ConditionFalse, Reason: d.Reason, Message: d.Message})
			return
		case d.Status == corev1.ConditionUnknown && unknown == nil:
			unknown = d
		}
	}
	if unknown != nil {
		c.set1(Condition{Type: ConditionReady, Status: corev1.ConditionUnknown, Reason: unknown.Reason, Message: unknown.Message})
		return
	}
	c.set1(Condition{Type: ConditionReady, Status: corev1.ConditionTrue})
}

func (c *Conditions) isDependent(t ConditionType) bool {
	for _, d := range c.set.dependents {
		if d == t {
			return true
		}
	}
	return false
}

// set1 stores cond, keeping its transition time when nothing changed, and
// keeps conditions sorted by type as upstream does.
func (c *Conditions) set1(cond Condition) {
	cond.LastTransitionTime = metav1.Now()
	for i, old := range c.st.Conditions {
		if old.Type != cond.Type {
			continue
		}
		if old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message && old.Severity == cond.Severity {
			return
		}
		c.st.Conditions[i] = cond
		return
	}
	c.st.Conditions = append(c.st.Conditions, cond)
	sort.Slice(c.st.Conditions, func(i, j int) bool { return c.st.Conditions[i].Type < c.st.Conditions[j].Type })
}
