// Package reconciler holds what the serving reconcilers share: condition
// sets with Knative's semantics, child names and the manager that runs them.
package reconciler

import (
	"fmt"
	"sort"

	"github.com/knd-dev/knd/pkg/apis/duck"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionSet is a "living" condition set: Ready summarizes its dependents.
// Conditions not in the set are informational (severity Info).
type ConditionSet struct {
	dependents []duck.ConditionType
}

// NewConditionSet returns a set whose Ready depends on deps.
func NewConditionSet(deps ...duck.ConditionType) ConditionSet { return ConditionSet{dependents: deps} }

// Manage returns a manager of the conditions in st.
func (s ConditionSet) Manage(st *duck.Status) *Conditions { return &Conditions{set: s, st: st} }

// Conditions edits one object's conditions.
type Conditions struct {
	set ConditionSet
	st  *duck.Status
}

// Initialize sets Ready and every dependent that is missing to Unknown.
func (c *Conditions) Initialize() {
	for _, t := range append([]duck.ConditionType{duck.ConditionReady}, c.set.dependents...) {
		if c.st.GetCondition(t) == nil {
			c.set1(duck.Condition{Type: t, Status: corev1.ConditionUnknown})
		}
	}
}

// Get returns the condition of type t, or nil.
func (c *Conditions) Get(t duck.ConditionType) *duck.Condition { return c.st.GetCondition(t) }

// IsTrue says whether condition t is True.
func (c *Conditions) IsTrue(t duck.ConditionType) bool {
	cond := c.Get(t)
	return cond != nil && cond.Status == corev1.ConditionTrue
}

// MarkTrue sets t True; Ready becomes True once every dependent is.
func (c *Conditions) MarkTrue(t duck.ConditionType) { c.mark(t, corev1.ConditionTrue, "", "") }

// MarkTrueWithReason sets t True with a reason, as for TLSNotEnabled.
func (c *Conditions) MarkTrueWithReason(t duck.ConditionType, reason, format string, args ...any) {
	c.mark(t, corev1.ConditionTrue, reason, fmt.Sprintf(format, args...))
}

// MarkUnknown sets t Unknown; Ready becomes Unknown unless a dependent is False.
func (c *Conditions) MarkUnknown(t duck.ConditionType, reason, format string, args ...any) {
	c.mark(t, corev1.ConditionUnknown, reason, fmt.Sprintf(format, args...))
}

// MarkFalse sets t False; Ready becomes False with the same reason.
func (c *Conditions) MarkFalse(t duck.ConditionType, reason, format string, args ...any) {
	c.mark(t, corev1.ConditionFalse, reason, fmt.Sprintf(format, args...))
}

// Remove drops condition t.
func (c *Conditions) Remove(t duck.ConditionType) {
	out := c.st.Conditions[:0]
	for _, cond := range c.st.Conditions {
		if cond.Type != t {
			out = append(out, cond)
		}
	}
	c.st.Conditions = out
}

func (c *Conditions) mark(t duck.ConditionType, status corev1.ConditionStatus, reason, msg string) {
	cond := duck.Condition{Type: t, Status: status, Reason: reason, Message: msg}
	if !c.isDependent(t) && t != duck.ConditionReady {
		cond.Severity = duck.SeverityInfo
	}
	c.set1(cond)
	if t == duck.ConditionReady || !c.isDependent(t) {
		return
	}
	c.recomputeReady()
}

// recomputeReady derives Ready from the dependents: the first False one
// wins, then the first Unknown one, else True.
func (c *Conditions) recomputeReady() {
	var unknown *duck.Condition
	for _, t := range c.set.dependents {
		d := c.Get(t)
		switch {
		case d == nil:
			if unknown == nil {
				unknown = &duck.Condition{Type: t, Status: corev1.ConditionUnknown}
			}
		case d.Status == corev1.ConditionFalse:
			c.set1(duck.Condition{Type: duck.ConditionReady, Status: corev1.ConditionFalse, Reason: d.Reason, Message: d.Message})
			return
		case d.Status == corev1.ConditionUnknown && unknown == nil:
			unknown = d
		}
	}
	if unknown != nil {
		c.set1(duck.Condition{Type: duck.ConditionReady, Status: corev1.ConditionUnknown, Reason: unknown.Reason, Message: unknown.Message})
		return
	}
	c.set1(duck.Condition{Type: duck.ConditionReady, Status: corev1.ConditionTrue})
}

func (c *Conditions) isDependent(t duck.ConditionType) bool {
	for _, d := range c.set.dependents {
		if d == t {
			return true
		}
	}
	return false
}

// set1 stores cond, keeping its transition time when nothing changed, and
// keeps conditions sorted by type as upstream does.
func (c *Conditions) set1(cond duck.Condition) {
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
