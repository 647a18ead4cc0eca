package bench

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	"github.com/knd-dev/knd/pkg/reconciler/manager"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BenchmarkGatewayWithVirtualServices measures what VirtualServices cost
// the hosts they do not claim, and what a claimed host costs: requests/s
// with 32 clients straight to the pod and through the gateway for a plain
// Route host, first with no VirtualService, then with 100 of 10 rules
// each for other hosts installed, alternated with direct in the same run;
// then through a VirtualService that routes to the same service.
// -benchtime 2x or more: each iteration runs every phase for 2 s.
func BenchmarkGatewayWithVirtualServices(b *testing.B) {
	pod := benchService(b, "bench-vs", "hello", nil)
	gw := fmt.Sprintf("http://127.0.0.1:%d/", knd.GatewayPort)
	const workers, d = 32, 2 * time.Second
	measure := func(host string) (direct, via float64) {
		// A connection the event loop handed to net/http (every request for
		// a VirtualService's host) stays there: each phase starts on new ones.
		benchClient.CloseIdleConnections()
		defer benchClient.CloseIdleConnections()
		for i := 0; i < b.N; i++ {
			for k := range 2 {
				url, h, into := "http://"+pod+"/", "", &direct
				if (i+k)%2 == 1 {
					url, h, into = gw, host, &via
				}
				rps, failed, err := load(url, h, workers, d)
				if failed > 0 {
					b.Fatalf("%s: %d failed requests, the first: %v", url, failed, err)
				}
				*into += rps
			}
		}
		return direct / float64(b.N), via / float64(b.N)
	}
	waitQuiet(b, knd.Pid())
	b.ResetTimer()
	direct0, plain0 := measure("hello.bench-vs.example.com")

	b.StopTimer()
	scheme, _ := manager.Scheme()
	c, err := client.New(knd.RestConfig, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	// go test runs a benchmark more than once: each run starts without them.
	defer func() {
		_ = c.DeleteAllOf(context.Background(), &istiov1.VirtualService{}, client.InNamespace("bench-vs"))
		for deadline := time.Now().Add(time.Minute); get(gw, "h99.vs.example.org") == nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for i := range 100 {
		vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "vs-" + strconv.Itoa(i), Namespace: "bench-vs"}}
		vs.Spec.Hosts = []string{"h" + strconv.Itoa(i) + ".vs.example.org"}
		for j := range 10 {
			vs.Spec.HTTP = append(vs.Spec.HTTP, istiov1.HTTPRoute{
				Match: []istiov1.HTTPMatchRequest{{URI: &istiov1.StringMatch{Prefix: "/p" + strconv.Itoa(j) + "/"},
					Headers: map[string]istiov1.StringMatch{"x-user": {Exact: "u" + strconv.Itoa(j)}}}},
				Route: []istiov1.HTTPRouteDestination{{Destination: istiov1.Destination{Host: "hello.bench-vs.svc.cluster.local"}}},
			})
		}
		vs.Spec.HTTP = append(vs.Spec.HTTP, istiov1.HTTPRoute{
			Route: []istiov1.HTTPRouteDestination{{Destination: istiov1.Destination{Host: "hello.bench-vs.svc.cluster.local"}}}})
		if err := c.Create(context.Background(), vs); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for get(gw, "h99.vs.example.org") != nil {
		if time.Now().After(deadline) {
			b.Fatal("the 100th VirtualService is not served")
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitQuiet(b, knd.Pid())
	b.StartTimer()
	direct1, plain1 := measure("hello.bench-vs.example.com")
	direct2, custom := measure("h57.vs.example.org")
	b.ReportMetric(plain0/direct0, "gateway/direct-without-vs")
	b.ReportMetric(plain1/direct1, "gateway/direct-with-100-vs")
	b.ReportMetric(custom/direct2, "vs-routed/direct")
	b.ReportMetric(plain0, "rps-gateway-without-vs")
	b.ReportMetric(plain1, "rps-gateway-with-100-vs")
	b.ReportMetric(custom, "rps-vs-routed")
}
