package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/reconciler/manager"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// createServicesAndWait creates n Services at once in a fresh namespace and
// returns, per Service, the time from its create call to its Ready status
// as seen on a watch; all must be Ready within the given time.
func createServicesAndWait(b *testing.B, ns string, n int, within time.Duration) []time.Duration {
	benchService(b, "bench-warm", "warm", nil) // imports the image once
	scheme, _ := manager.Scheme()
	c, err := client.NewWithWatch(knd.RestConfig, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	w, err := c.Watch(ctx, &servingv1.ServiceList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	created := map[string]time.Time{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("svc-%d", i)
			svc := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
			svc.Spec.Template.Spec.Containers = []corev1.Container{{Image: "dev.local/hello:bench"}}
			t := time.Now()
			if err := c.Create(ctx, svc); err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			created[name] = t
			mu.Unlock()
		}()
	}
	readyAt := map[string]time.Time{}
	for len(readyAt) < n {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Error {
				b.Fatalf("watch: %v", ev.Object)
			}
			svc, ok := ev.Object.(*servingv1.Service)
			if !ok {
				continue
			}
			if c := svc.Status.GetCondition(duck.ConditionReady); c != nil && c.Status == corev1.ConditionTrue {
				if _, seen := readyAt[svc.Name]; !seen {
					readyAt[svc.Name] = time.Now()
				}
			}
		case <-ctx.Done():
			b.Fatalf("%d of %d services ready after %v", len(readyAt), n, within)
		}
	}
	wg.Wait()
	var out []time.Duration
	for name, t := range readyAt {
		out = append(out, t.Sub(created[name]))
	}
	return out
}

var namespaces atomic.Int64

// BenchmarkServiceReady: one Service from create to Ready, b.N times.
func BenchmarkServiceReady(b *testing.B) {
	var all []time.Duration
	for i := 0; i < b.N; i++ {
		all = append(all, createServicesAndWait(b, fmt.Sprintf("bench-one-%d", namespaces.Add(1)), 1, time.Minute)...)
	}
	b.ReportMetric(ms(p50(all)), "ms-ready-p50")
}

// BenchmarkHundredServicesReady creates 100 Services at once.
// With -v it logs the API server's writes per Service while they came up.
func BenchmarkHundredServicesReady(b *testing.B) { manyServicesReady(b, "hundred", 100, 5*time.Minute) }

// BenchmarkThousandServicesReady creates 1,000 Services at once (1,000 pod
// processes: about 8 GB).
func BenchmarkThousandServicesReady(b *testing.B) {
	manyServicesReady(b, "thousand", 1000, 20*time.Minute)
}

func manyServicesReady(b *testing.B, name string, n int, within time.Duration) {
	for i := 0; i < b.N; i++ {
		before := apiWrites(b)
		profiled := profileServer(b, 10*time.Second, name)
		d := createServicesAndWait(b, fmt.Sprintf("bench-%s-%d", name, namespaces.Add(1)), n, within)
		<-profiled
		after := apiWrites(b)
		var lines []string
		total := 0.0
		for k, v := range after {
			if w := v - before[k]; w >= float64(n)/2 {
				lines = append(lines, fmt.Sprintf("%7.1f  %s", w/float64(n), k))
				total += w
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(lines)))
		b.Logf("API writes per Service (at least 0.5): %.1f in all\n%s", total/float64(n), strings.Join(lines, "\n"))
		b.ReportMetric(ms(p50(d)), "ms-ready-p50")
		b.ReportMetric(ms(percentile(d, 0.95)), "ms-ready-p95")
		b.ReportMetric(ms(percentile(d, 1)), "ms-ready-max")
	}
}

// apiWrites reads the API server's apiserver_request_total for mutating
// verbs, by "VERB resource[/subresource]", with " (code)" when it failed.
func apiWrites(b *testing.B) map[string]float64 {
	raw, err := knd.Clientset(b).Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	label := func(line, name string) string {
		_, v, ok := strings.Cut(line, name+`="`)
		if !ok {
			return ""
		}
		v, _, _ = strings.Cut(v, `"`)
		return v
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		verb := label(line, "verb")
		if verb != "POST" && verb != "PUT" && verb != "PATCH" && verb != "DELETE" && verb != "APPLY" {
			continue
		}
		key := verb + " " + label(line, "resource")
		if sub := label(line, "subresource"); sub != "" {
			key += "/" + sub
		}
		if code := label(line, "code"); !strings.HasPrefix(code, "2") {
			key += " (" + code + ")"
		}
		var n float64
		fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &n)
		out[key] += n
	}
	return out
}
