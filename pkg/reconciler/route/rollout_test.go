package route

import (
	"fmt"
	"testing"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"k8s.io/utils/ptr"
)

func latest(rev string, pct int64) []servingv1.TrafficTarget {
	return []servingv1.TrafficTarget{{RevisionName: rev, LatestRevision: ptr.To(true), Percent: ptr.To(pct)}}
}

func shares(tt []servingv1.TrafficTarget) string {
	s := ""
	for _, t := range tt {
		s += fmt.Sprintf("%s=%d ", t.RevisionName, *t.Percent)
	}
	return s
}

func TestRolloutSteps(t *testing.T) {
	r := &Rollout{}
	t0 := time.Unix(1000, 0)
	out, rolling, _ := r.Step(latest("a", 100), 10*time.Second, t0)
	if rolling || shares(out) != "a=100 " {
		t.Fatalf("first revision: %s rolling=%v", shares(out), rolling)
	}
	// A new revision gets 1 % at once.
	out, rolling, requeue := r.Step(latest("b", 100), 10*time.Second, t0.Add(time.Second))
	if !rolling || shares(out) != "a=99 b=1 " || requeue != time.Second {
		t.Fatalf("new revision: %s rolling=%v requeue=%s", shares(out), rolling, requeue)
	}
	// 10 s duration: 9 steps of round(99/9)=11 % every second.
	if c := r.Configurations[0]; c.StepSize != 11 || c.StepMillis != 1000 {
		t.Errorf("step %d%% every %d ms, want 11%% every 1000 ms", c.StepSize, c.StepMillis)
	}
	out, _, _ = r.Step(latest("b", 100), 10*time.Second, t0.Add(2*time.Second))
	if shares(out) != "a=88 b=12 " {
		t.Errorf("after one step: %s", shares(out))
	}
	out, rolling, _ = r.Step(latest("b", 100), 10*time.Second, t0.Add(12*time.Second))
	if rolling || shares(out) != "b=100 " {
		t.Errorf("after the duration: %s rolling=%v", shares(out), rolling)
	}
	// Without a duration nothing rolls.
	out, rolling, _ = (&Rollout{}).Step(latest("c", 100), 0, t0)
	if rolling || shares(out) != "c=100 " {
		t.Errorf("no duration: %s", shares(out))
	}
}
