package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	autoscalingv1alpha1 "github.com/knd-dev/knd/pkg/apis/autoscaling/v1alpha1"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// With `metric: rps`, a revision scales on requests per second: 20 rps
// against a target of 2 (× 0.7) asks for more pods than max-scale allows.
// When the load stops, scale-to-zero-pod-retention-period keeps the last
// pod for its duration, longer than the grace period.
func TestRPSMetricAndPodRetention(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "autoscaler-rps")
	c := typedClient(t)
	setConfig(t, "config-autoscaler", map[string]string{"scale-to-zero-grace-period": "1s"})
	svc := helloService(ns, "counted", "rps")
	svc.Spec.Template.Annotations = map[string]string{
		"autoscaling.knative.dev/metric": "rps", "autoscaling.knative.dev/target": "2",
		"autoscaling.knative.dev/max-scale": "3", "autoscaling.knative.dev/window": "6s",
		"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "15s",
	}
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "counted", "ready", readyAt("counted-00001"))

	// 20 requests per second (one every 50 ms), for at most 40 s.
	stop := make(chan struct{})
	loadDone := make(chan int)
	go func() {
		failures := 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(40 * time.Second)
		for {
			select {
			case <-stop:
				loadDone <- failures
				return
			case <-deadline:
				loadDone <- failures
				return
			case <-tick.C:
				if code, _, err := viaGateway("counted.autoscaler-rps.example.com", "/", nil); err != nil || code != 200 {
					failures++
				}
			}
		}
	}()
	var pa autoscalingv1alpha1.PodAutoscaler
	poll(t, 30*time.Second, "scaled out to max-scale on rps", func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "counted-00001"}, &pa); err != nil {
			return false, err.Error()
		}
		return ptr.Deref(pa.Status.DesiredScale, 0) == 3, fmt.Sprintf("desired %d", ptr.Deref(pa.Status.DesiredScale, 0))
	})
	close(stop)
	if failures := <-loadDone; failures > 0 {
		t.Errorf("%d requests failed under load", failures)
	}

	// Idle: down to one pod, which the retention period keeps for 15 s
	// after the revision went idle, though the grace period is 1 s.
	idle := time.Now()
	poll(t, 90*time.Second, "scaled to zero after the retention period", func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "counted-00001"}, &pa); err != nil {
			return false, err.Error()
		}
		return ptr.Deref(pa.Status.DesiredScale, -1) == 0, fmt.Sprintf("desired %d", ptr.Deref(pa.Status.DesiredScale, -1))
	})
	// The window (6 s) must pass before the revision counts as idle, then
	// the retention (15 s).
	if held := time.Since(idle); held < 15*time.Second {
		t.Errorf("the last pod went after %v, before its 15 s retention period", held.Round(time.Second))
	}
}

// TestProgressDeadlineAnnotation: a revision that never becomes ready gives
// up after its own serving.knative.dev/progress-deadline (not
// config-deployment's 600 s): the Deployment gets that deadline, the
// revision goes to zero and says it could not be activated, as upstream.
func TestProgressDeadlineAnnotation(t *testing.T) {
	importTestServer(t)
	c := typedClient(t)
	ns := namespace(t, "deadline")
	svc := helloService(ns, "never", "never ready")
	svc.Spec.Template.Annotations = map[string]string{servingv1.ProgressDeadlineAnnotation: "5s"}
	ctr := &svc.Spec.Template.Spec.Containers[0]
	ctr.Env = append(ctr.Env, corev1.EnvVar{Name: "UNHEALTHY", Value: "1"})
	ctr.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}}
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	var rev servingv1.Revision
	poll(t, 90*time.Second, "the revision timed out", func() (bool, string) {
		if err := c.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: "never-00001"}, &rev); err != nil {
			return false, err.Error()
		}
		active, res := condition(rev.Status.Status, "Active"), condition(rev.Status.Status, "ResourcesAvailable")
		return active == "False/TimedOut/The target could not be activated." &&
			res == "False/ProgressDeadlineExceeded/Initial scale was never achieved", active + " " + res
	})
	d, err := knd.Clientset(t).AppsV1().Deployments(ns).Get(testContext(t), "never-00001-deployment", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(d.Spec.ProgressDeadlineSeconds, 0); got != 5 {
		t.Errorf("progressDeadlineSeconds = %d, want 5", got)
	}
	poll(t, 30*time.Second, "the deployment at zero", func() (bool, string) {
		d, err := knd.Clientset(t).AppsV1().Deployments(ns).Get(testContext(t), "never-00001-deployment", metav1.GetOptions{})
		return err == nil && ptr.Deref(d.Spec.Replicas, 1) == 0, fmt.Sprint(err)
	})
}
