package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// BenchmarkColdStartPath breaks a cold start into its hops, from watch
// events seen by the benchmark: request sent → Deployment scaled →
// ReplicaSet scaled → Pod created → bound → running → Ready → response.
// Each figure is the p50 time from the request; keep -benchtime small
// (each iteration waits for the revision to scale to zero).
func BenchmarkColdStartPath(b *testing.B) {
	cs := knd.Clientset(b)
	shortGracePeriod(b)
	const ns = "bench-coldpath"
	benchService(b, ns, "path", map[string]string{"autoscaling.knative.dev/window": "6s"})
	gw := fmt.Sprintf("http://127.0.0.1:%d/", knd.GatewayPort)
	hops := map[string][]time.Duration{}
	order := []string{"deployment scaled", "replicaset scaled", "pod created", "pod bound", "pod running", "pod ready", "response"}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		waitForNoPods(b, ns)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		seen := map[string]time.Duration{}
		var mu sync.Mutex
		var start time.Time
		mark := func(hop string) {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := seen[hop]; !ok && !start.IsZero() {
				seen[hop] = time.Since(start)
			}
		}
		watches := []func() (watch.Interface, error){
			func() (watch.Interface, error) { return cs.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{}) },
			func() (watch.Interface, error) { return cs.AppsV1().ReplicaSets(ns).Watch(ctx, metav1.ListOptions{}) },
			func() (watch.Interface, error) { return cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{}) },
		}
		var wg sync.WaitGroup
		for _, mk := range watches {
			w, err := mk()
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				defer w.Stop()
				for ev := range w.ResultChan() {
					switch o := ev.Object.(type) {
					case *appsv1.Deployment:
						if ptr.Deref(o.Spec.Replicas, 0) > 0 {
							mark("deployment scaled")
						}
					case *appsv1.ReplicaSet:
						if ptr.Deref(o.Spec.Replicas, 0) > 0 {
							mark("replicaset scaled")
						}
					case *corev1.Pod:
						if o.DeletionTimestamp != nil {
							continue
						}
						mark("pod created")
						if o.Spec.NodeName != "" {
							mark("pod bound")
						}
						if len(o.Status.ContainerStatuses) > 0 && o.Status.ContainerStatuses[0].State.Running != nil {
							mark("pod running")
						}
						for _, c := range o.Status.Conditions {
							if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
								mark("pod ready")
							}
						}
					}
				}
			})
		}
		time.Sleep(200 * time.Millisecond) // let the watches' initial events pass
		mu.Lock()
		start = time.Now()
		mu.Unlock()
		b.StartTimer()
		if err := get(gw, "path.bench-coldpath.example.com"); err != nil {
			b.Fatal(err)
		}
		mark("response")
		b.StopTimer()
		time.Sleep(300 * time.Millisecond) // late watch events
		cancel()
		wg.Wait()
		for hop, d := range seen {
			hops[hop] = append(hops[hop], d)
		}
	}
	var lines []string
	for _, hop := range order {
		d := hops[hop]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		if len(d) > 0 {
			lines = append(lines, fmt.Sprintf("%-18s p50 %6.1f ms (n=%d)", hop, ms(d[len(d)/2]), len(d)))
		}
	}
	b.Logf("cold start path, time from the request:\n%s", strings.Join(lines, "\n"))
}
