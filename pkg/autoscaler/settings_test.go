package autoscaler

import (
	"testing"
	"time"

	autoscalingv1alpha1 "github.com/knd-dev/knd/pkg/apis/autoscaling/v1alpha1"
	"github.com/knd-dev/knd/pkg/apis/config"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A running revision follows config-autoscaler changes without losing its
// place: same state, new decider.
func TestSettingsChangesRebuildTheDecider(t *testing.T) {
	a := New(nil)
	pa := &autoscalingv1alpha1.PodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rev"}}
	cfg := config.Default()
	first := a.state(pa, cfg)
	if first.decider.StableWindow != 60*time.Second {
		t.Fatalf("default window %v", first.decider.StableWindow)
	}
	if again := a.state(pa, cfg); again != first || again.decider != first.decider {
		t.Fatal("unchanged settings replaced the state or its decider")
	}
	changed := config.Default()
	changed.Autoscaler.StableWindow = 6 * time.Second
	st := a.state(pa, changed)
	if st != first || st.decider.StableWindow != 6*time.Second || st.window != 6*time.Second {
		t.Errorf("after the change: same state %v, window %v", st == first, st.decider.StableWindow)
	}
	pa.Annotations = map[string]string{"autoscaling.knative.dev/window": "10s"}
	if st := a.state(pa, changed); st.decider.StableWindow != 10*time.Second {
		t.Errorf("window annotation: %v", st.decider.StableWindow)
	}
}

func TestTargetsPerMetric(t *testing.T) {
	cfg := config.Default()
	pa := &autoscalingv1alpha1.PodAutoscaler{}
	pa.Spec.ContainerConcurrency = 10
	for _, tc := range []struct {
		annotations map[string]string
		want        float64
	}{
		{nil, 7}, // containerConcurrency × 0.7
		{map[string]string{"autoscaling.knative.dev/metric": "rps"}, 140}, // rps default 200 × 0.7
		{map[string]string{"autoscaling.knative.dev/metric": "rps", "autoscaling.knative.dev/target": "50"}, 35},
		{map[string]string{"autoscaling.knative.dev/target": "50"}, 7}, // capped at containerConcurrency
		{map[string]string{"autoscaling.knative.dev/metric": "rps", "autoscaling.knative.dev/target-utilization-percentage": "50"}, 100},
	} {
		pa.Annotations = tc.annotations
		if got := settingsFor(pa, cfg).target; got != tc.want {
			t.Errorf("%v: target %v, want %v", tc.annotations, got, tc.want)
		}
	}
}

func TestPodRetention(t *testing.T) {
	cfg := config.Default()
	pa := &autoscalingv1alpha1.PodAutoscaler{}
	if got := podRetention(pa, cfg); got != 0 {
		t.Errorf("default retention %v", got)
	}
	cfg.Autoscaler.ScaleToZeroPodRetentionPeriod = time.Minute
	pa.Annotations = map[string]string{"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "90s"}
	if got := podRetention(pa, cfg); got != 90*time.Second {
		t.Errorf("annotation retention %v", got)
	}
}
