package duck

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func summary(st *Status, t ConditionType) string {
	c := st.GetCondition(t)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + "/" + c.Message + "/" + string(c.Severity)
}

// TestConditionSetReady: Ready follows the dependents as upstream's living
// condition sets do — the first False wins, then Unknown, else True — and
// informational conditions never move it.
func TestConditionSetReady(t *testing.T) {
	set := NewConditionSet("A", "B")
	var st Status
	c := set.Manage(&st)
	c.Initialize()
	if got := summary(&st, ConditionReady); got != "Unknown///" {
		t.Errorf("after Initialize, Ready = %s", got)
	}
	c.MarkTrue("A")
	c.MarkUnknown("B", "Deploying", "waiting for %s", "pods")
	if got := summary(&st, ConditionReady); got != "Unknown/Deploying/waiting for pods/" {
		t.Errorf("one Unknown: Ready = %s", got)
	}
	c.MarkFalse("B", "Failed", "it broke")
	c.MarkUnknown("Active", "Queued", "informational")
	if got := summary(&st, ConditionReady); got != "False/Failed/it broke/" {
		t.Errorf("one False: Ready = %s", got)
	}
	if got := summary(&st, "Active"); got != "Unknown/Queued/informational/Info" {
		t.Errorf("informational condition = %s", got)
	}
	c.MarkTrue("B")
	if got := summary(&st, ConditionReady); got != "True///" {
		t.Errorf("all True: Ready = %s", got)
	}
	// Marking again with the same state keeps the transition time.
	before := st.GetCondition("B").LastTransitionTime
	c.MarkTrue("B")
	if after := st.GetCondition("B").LastTransitionTime; !after.Equal(&before) {
		t.Errorf("transition time moved from %v to %v without a change", before, after)
	}
	// Conditions are kept sorted by type.
	var types []ConditionType
	for _, cond := range st.Conditions {
		types = append(types, cond.Type)
	}
	if len(types) != 4 || types[0] != "A" || types[1] != "Active" || types[2] != "B" || types[3] != ConditionReady {
		t.Errorf("condition order %v", types)
	}
	if st.GetCondition("B").Status != corev1.ConditionTrue {
		t.Error("B lost")
	}
}
