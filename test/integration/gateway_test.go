package integration

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv1alpha1 "github.com/knd-dev/knd/pkg/apis/autoscaling/v1alpha1"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// viaGateway sends GET path to the gateway with the given Host and
// headers (one value each).
func viaGateway(host, path string, header http.Header) (int, string, error) {
	var pairs []string
	for k := range header {
		pairs = append(pairs, k, header.Get(k))
	}
	resp, body, err := knd.Send(http.MethodGet, host, path, pairs...)
	if resp == nil {
		return 0, "", err
	}
	return resp.StatusCode, body, err
}

// setConfig changes knative-serving ConfigMap keys for one test.
func setConfig(t *testing.T, name string, data map[string]string) {
	t.Helper()
	cms := knd.Clientset(t).CoreV1().ConfigMaps("knative-serving")
	cm, err := cms.Get(testContext(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]*string{}
	for k, v := range data {
		if prev, ok := cm.Data[k]; ok {
			old[k] = &prev
		} else {
			old[k] = nil
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[k] = v
	}
	if _, err := cms.Update(testContext(t), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cm, err := cms.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		for k, v := range old {
			if v == nil {
				delete(cm.Data, k)
			} else {
				cm.Data[k] = *v
			}
		}
		if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	})
}

func TestGatewayRoutesByHostTagAndWeight(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "gateway-routing")
	c := typedClient(t)
	if err := c.Create(testContext(t), helloService(ns, "web", "one")); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "web", "ready at 00001", readyAt("web-00001"))
	updateService(t, c, ns, "web", func(s *servingv1.Service) {
		s.Spec.Template.Spec.Containers[0].Env[0].Value = "two"
		s.Spec.Traffic = []servingv1.TrafficTarget{
			{Tag: "old", RevisionName: "web-00001", Percent: ptr.To[int64](40)},
			{Tag: "new", LatestRevision: ptr.To(true), Percent: ptr.To[int64](60)},
		}
	})
	waitService(t, c, ns, "web", "40/60 split", func(s *servingv1.Service) bool {
		return readyAt("web-00002")(s) && len(s.Status.Traffic) == 2 && s.Status.Traffic[1].RevisionName == "web-00002"
	})
	greeting := func(host string, h http.Header) string {
		code, body, err := viaGateway(host, "/", h)
		if err != nil || code != 200 {
			t.Fatalf("GET %s: %d %q %v", host, code, body, err)
		}
		return strings.Fields(body)[3]
	}
	// Tag hosts, and the tag's cluster-local name.
	poll(t, 30*time.Second, "gateway sees the tags", func() (bool, string) {
		code, body, _ := viaGateway("old-web.gateway-routing.example.com", "/", nil)
		return code == 200, body
	})
	for host, want := range map[string]string{
		"old-web.gateway-routing.example.com": "one", "new-web.gateway-routing.example.com": "two",
		"old-web.gateway-routing.svc.cluster.local": "one",
	} {
		for range 5 {
			if got := greeting(host, nil); got != want {
				t.Errorf("%s answered %q, want %q", host, got, want)
			}
		}
	}
	// The default split over every cluster-local spelling and the external host.
	counts := map[string]int{}
	hosts := []string{"web.gateway-routing.example.com", "web.gateway-routing", "web.gateway-routing.svc", "web.gateway-routing.svc.cluster.local"}
	const n = 2000
	for i := range n {
		counts[greeting(hosts[i%len(hosts)], nil)]++
	}
	if share := float64(counts["one"]) / n; share < 0.36 || share > 0.44 {
		t.Errorf("40/60 split over %d requests: %v (%.1f%% to 00001)", n, counts, share*100)
	}
	// Unknown hosts get 404 with a reason.
	code, body, err := viaGateway("nope.gateway-routing.example.com", "/", nil)
	if err != nil || code != 404 || body != "no Route serves host \"nope.gateway-routing.example.com\"\n" {
		t.Errorf("unknown host: %d %q %v", code, body, err)
	}
	// Header-based tag routing, once enabled; an unknown tag falls back to the split.
	setConfig(t, "config-features", map[string]string{"tag-header-based-routing": "Enabled"})
	poll(t, 10*time.Second, "tag header honoured", func() (bool, string) {
		for range 20 {
			if g := greeting("web.gateway-routing.example.com", http.Header{"Knative-Serving-Tag": {"old"}}); g != "one" {
				return false, g
			}
		}
		return true, ""
	})
	seen := map[string]bool{}
	for range 50 {
		seen[greeting("web.gateway-routing.example.com", http.Header{"Knative-Serving-Tag": {"nosuchtag"}})] = true
	}
	if !seen["one"] || !seen["two"] {
		t.Errorf("an unknown tag should fall back to the split; saw %v", seen)
	}
	// The requests above are counted in the gateway's metrics.
	code, body, err = httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", knd.MetricsPort))
	if err != nil || code != 200 || !regexp.MustCompile(`knd_gateway_requests_total\{code="200",namespace="gateway-routing",revision="web-00001"\} \d{3}`).MatchString(body) {
		t.Errorf("metrics: %d %v\n%.2000s", code, err, body)
	}
	// Headers the pod receives: Knative's own (never the client's), forwarding headers.
	code, body, err = viaGateway("new-web.gateway-routing.example.com", "/headers", http.Header{"Knative-Serving-Revision": {"forged"}})
	if err != nil || code != 200 {
		t.Fatalf("headers through gateway: %d %q %v", code, body, err)
	}
	for _, want := range []string{"Host: new-web.gateway-routing.example.com\n", "Knative-Serving-Revision: web-00002\n",
		"Knative-Serving-Namespace: gateway-routing\n", "X-Forwarded-For: 127.0.0.1\n", "X-Forwarded-Proto: http\n",
		"Forwarded: for=\"127.0.0.1\";proto=http;host=\"new-web.gateway-routing.example.com\"\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("the pod did not get %q; it got:\n%s", want, body)
		}
	}
	if strings.Contains(body, "forged") {
		t.Errorf("a client's Knative-Serving-Revision reached the pod:\n%s", body)
	}
}

func TestScaleToZeroAndBackLosesNothing(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "gateway-zero")
	c := typedClient(t)
	setConfig(t, "config-autoscaler", map[string]string{"scale-to-zero-grace-period": "1s"})
	svc := helloService(ns, "sleepy", "zzz")
	svc.Spec.Template.Annotations = map[string]string{"autoscaling.knative.dev/window": "6s"}
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "sleepy", "ready", readyAt("sleepy-00001"))
	var pa autoscalingv1alpha1.PodAutoscaler
	poll(t, 90*time.Second, "scaled to zero", func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "sleepy-00001"}, &pa); err != nil {
			return false, err.Error()
		}
		pods := readyPods(t, ns, "serving.knative.dev/revision=sleepy-00001")
		return ptr.Deref(pa.Status.DesiredScale, -1) == 0 && ptr.Deref(pa.Status.ActualScale, -1) == 0 && len(pods) == 0,
			fmt.Sprintf("desired %v actual %v pods %d", ptr.Deref(pa.Status.DesiredScale, -1), ptr.Deref(pa.Status.ActualScale, -1), len(pods))
	})
	var rev servingv1.Revision
	if err := c.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: "sleepy-00001"}, &rev); err != nil {
		t.Fatal(err)
	}
	if got := condition(rev.Status.Status, "Active"); got != "False/NoTraffic/The target is not receiving traffic." {
		t.Errorf("revision Active %s", got)
	}
	if got := condition(rev.Status.Status, "Ready"); got != "True//" {
		t.Errorf("a revision at zero stays Ready; got %s", got)
	}
	out, err := knd.Kubectl(t, "", "get", "kpa", "-n", ns, "sleepy-00001")
	if err != nil || !regexp.MustCompile(`sleepy-00001\s+0\s+0\s+False\s+NoTraffic`).MatchString(out) {
		t.Errorf("kubectl get kpa:\n%s", out)
	}

	// 20 concurrent requests at zero: all are held, then served.
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := viaGateway("sleepy.gateway-zero.example.com", "/", nil)
			if err != nil || code != 200 || !strings.HasPrefix(body, "hello from sleepy-00001-deployment-") {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("20 requests from zero served in %s", time.Since(start).Round(time.Millisecond))
	if len(failures) > 0 {
		t.Errorf("%d of 20 requests failed from zero: %v", len(failures), failures)
	}
}

func TestContainerConcurrencyIsNeverExceeded(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "gateway-cc")
	c := typedClient(t)
	svc := helloService(ns, "single", "one-at-a-time")
	svc.Spec.Template.Spec.ContainerConcurrency = ptr.To[int64](1)
	svc.Spec.Template.Spec.Containers[0].Env = append(svc.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "MAX_CONCURRENCY", Value: "1"})
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "single", "ready", readyAt("single-00001"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := viaGateway("single.gateway-cc.example.com", "/slow?ms=20", nil)
			if err != nil || code != 200 {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of 30 requests failed with containerConcurrency 1: %v", len(failures), failures)
	}
}

// prober sends a steady stream of requests to host until stopped and
// counts the ones that failed.
type prober struct {
	host     string
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	total    int
	failures []string
}

func startProber(host string) *prober {
	p := &prober{host: host, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		deadline := time.Now().Add(3 * time.Minute) // bounded even if never stopped
		for time.Now().Before(deadline) {
			select {
			case <-p.stop:
				return
			default:
			}
			code, body, err := viaGateway(p.host, "/", nil)
			p.mu.Lock()
			p.total++
			if err != nil || code != 200 {
				p.failures = append(p.failures, fmt.Sprintf("%d %q %v", code, body, err))
			}
			p.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

func (p *prober) finish(t *testing.T) {
	t.Helper()
	close(p.stop)
	<-p.done
	t.Logf("prober: %d requests, %d failed", p.total, len(p.failures))
	if len(p.failures) > 0 {
		t.Errorf("%d of %d requests failed, first: %v", len(p.failures), p.total, p.failures[:min(5, len(p.failures))])
	}
}

func TestNoRequestLostOnRolloutAndPodDeletion(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "gateway-steady")
	c := typedClient(t)
	svc := helloService(ns, "steady", "v1")
	svc.Spec.Template.Annotations = map[string]string{"autoscaling.knative.dev/min-scale": "2"}
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "steady", "ready", readyAt("steady-00001"))
	poll(t, time.Minute, "two pods", func() (bool, string) {
		n := len(readyPods(t, ns, "serving.knative.dev/revision=steady-00001"))
		return n == 2, fmt.Sprint(n)
	})
	p := startProber("steady.gateway-steady.example.com")

	// Delete one of the two pods.
	victim := readyPods(t, ns, "serving.knative.dev/revision=steady-00001")[0]
	if err := knd.Clientset(t).CoreV1().Pods(ns).Delete(testContext(t), victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "replacement pod", func() (bool, string) {
		pods := readyPods(t, ns, "serving.knative.dev/revision=steady-00001")
		return len(pods) == 2 && pods[0].Name != victim.Name && pods[1].Name != victim.Name, fmt.Sprint(len(pods))
	})

	// A new revision replaces the old one, then traffic moves 50/50 and back.
	updateService(t, c, ns, "steady", func(s *servingv1.Service) { s.Spec.Template.Spec.Containers[0].Env[0].Value = "v2" })
	waitService(t, c, ns, "steady", "v2 ready", readyAt("steady-00002"))
	updateService(t, c, ns, "steady", func(s *servingv1.Service) {
		s.Spec.Traffic = []servingv1.TrafficTarget{
			{RevisionName: "steady-00001", Percent: ptr.To[int64](50)},
			{RevisionName: "steady-00002", Percent: ptr.To[int64](50)},
		}
	})
	waitService(t, c, ns, "steady", "50/50", func(s *servingv1.Service) bool {
		return s.Status.ObservedGeneration == s.Generation && len(s.Status.Traffic) == 2
	})
	updateService(t, c, ns, "steady", func(s *servingv1.Service) {
		s.Spec.Traffic = []servingv1.TrafficTarget{{RevisionName: "steady-00001", Percent: ptr.To[int64](0)},
			{RevisionName: "steady-00002", Percent: ptr.To[int64](100)}}
	})
	waitService(t, c, ns, "steady", "0/100", func(s *servingv1.Service) bool {
		return s.Status.ObservedGeneration == s.Generation && len(s.Status.Traffic) == 2 && ptr.Deref(s.Status.Traffic[1].Percent, 0) == 100
	})
	time.Sleep(time.Second) // keep probing across the switch
	p.finish(t)
}

// TestThousandRequestsIntoZero sends 1,000 concurrent requests to a
// revision at zero with containerConcurrency 1: every one is held, then
// served, and no pod ever has two at once.
func TestThousandRequestsIntoZero(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "gateway-burst")
	c := typedClient(t)
	svc := helloService(ns, "burst", "x")
	svc.Spec.Template.Annotations = map[string]string{"autoscaling.knative.dev/max-scale": "5", "autoscaling.knative.dev/initial-scale": "0"}
	svc.Spec.Template.Spec.ContainerConcurrency = ptr.To[int64](1)
	svc.Spec.Template.Spec.Containers[0].Env = append(svc.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "MAX_CONCURRENCY", Value: "1"})
	setConfig(t, "config-autoscaler", map[string]string{"allow-zero-initial-scale": "true"})
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "burst", "ready at zero", readyAt("burst-00001"))
	if pods := readyPods(t, ns, "serving.knative.dev/revision=burst-00001"); len(pods) != 0 {
		t.Fatalf("initial-scale 0 started %d pods", len(pods))
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := viaGateway("burst.gateway-burst.example.com", "/slow?ms=5", nil)
			if err != nil || code != 200 {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("1,000 requests from zero served in %s", time.Since(start).Round(time.Millisecond))
	if len(failures) > 0 {
		t.Errorf("%d of 1000 failed, first: %v", len(failures), failures[:min(5, len(failures))])
	}
}

func TestRevisionTimeouts(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "gateway-timeouts")
	c := typedClient(t)
	slowStart := helloService(ns, "slow-start", "x")
	slowStart.Spec.Template.Spec.ResponseStartTimeoutSeconds = ptr.To[int64](1)
	total := helloService(ns, "total", "x")
	total.Spec.Template.Spec.TimeoutSeconds = ptr.To[int64](1)
	for _, s := range []*servingv1.Service{slowStart, total} {
		if err := c.Create(testContext(t), s); err != nil {
			t.Fatal(err)
		}
		waitService(t, c, ns, s.Name, s.Name+" ready", readyAt(s.Name+"-00001"))
	}
	for _, host := range []string{"slow-start.gateway-timeouts.example.com", "total.gateway-timeouts.example.com"} {
		start := time.Now()
		code, body, err := viaGateway(host, "/slow?ms=4000", nil)
		if err != nil || code != 504 || body != "request timeout\n" || time.Since(start) > 3*time.Second {
			t.Errorf("%s, 4 s before the response: %d %q %v after %s; want 504 request timeout after ~1 s", host, code, body, err, time.Since(start))
		}
		if code, body, err := viaGateway(host, "/slow?ms=100", nil); err != nil || code != 200 {
			t.Errorf("%s, 100 ms: %d %q %v", host, code, body, err)
		}
	}
}
