package bench

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/node/nodetest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkPodStart creates one pod per iteration running a hello-world Go
// server and measures, from watch events, the time from the pod being bound
// to its container running and to the pod being Ready (readiness: a TCP
// probe on the pod's port, as Knative defaults it).
func BenchmarkPodStart(b *testing.B) {
	bin := nodetest.BuildTestServer(b, b.TempDir())
	if out, err := exec.Command(knd.Bin, "image", "import", bin, "--name", "dev.local/hello:bench", "--data-dir", knd.DataDir).CombinedOutput(); err != nil {
		b.Fatalf("import: %v %s", err, out)
	}
	cs := knd.Clientset(b)
	ns := "bench-pods"
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	pods := cs.CoreV1().Pods(ns)
	var toRunning, toReady, createToReady []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("hello-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			b.Fatal(err)
		}
		created := time.Now()
		_, err = pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "user-container", Image: "dev.local/hello:bench",
				Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}},
			}}},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var bound, running time.Time
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				b.Fatalf("watch: %v", ev.Object)
			}
			p := ev.Object.(*corev1.Pod)
			now := time.Now()

			if bound.IsZero() && p.Spec.NodeName != "" {
				bound = now
			}
			if running.IsZero() && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil {
				running = now
			}
			if ready(p) {
				toRunning = append(toRunning, running.Sub(bound))
				toReady = append(toReady, now.Sub(bound))
				createToReady = append(createToReady, now.Sub(created))
				break
			}
		}
		w.Stop()
		cancel()
		if len(toReady) != i+1 {
			b.Fatalf("pod %s never became Ready", name)
		}
		b.StopTimer()
		_ = pods.Delete(context.Background(), name, metav1.DeleteOptions{})
		b.StartTimer()
	}
	b.ReportMetric(ms(p50(toRunning)), "ms-bound-to-running-p50")
	b.ReportMetric(ms(p50(toReady)), "ms-bound-to-ready-p50")
	b.ReportMetric(ms(p50(createToReady)), "ms-create-to-ready-p50")
	b.ReportMetric(ms(percentile(createToReady, 0.95)), "ms-create-to-ready-p95")
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func p50(d []time.Duration) time.Duration { return percentile(d, 0.5) }

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
