package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// virtualServices are the rules TestVirtualServiceRules exercises, one
// behaviour each, served for rules.vs.test.
const virtualServices = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: rules, namespace: NS}
spec:
  hosts: [rules.vs.test]
  http:
  - match: [{uri: {prefix: /inspect/}}]
    rewrite: {uri: /headers, authority: rewritten.vs.test}
    headers:
      request: {set: {x-set: "yes"}, remove: [x-drop]}
      response: {add: {x-from-vs: knd}, remove: [content-type]}
    route: [{destination: {host: main.NS.svc.cluster.local, port: {number: 80}}}]
  - match: [{headers: {x-fault: {exact: abort}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: main}}]
  - match: [{headers: {x-fault: {exact: delay}}}]
    fault: {delay: {fixedDelay: 300ms}}
    route: [{destination: {host: main}}]
  - match: [{uri: {exact: /slow}}]
    timeout: 200ms
    route: [{destination: {host: main}}]
  - match: [{uri: {exact: /mirrored}}]
    mirror: {host: shadow.NS.svc.cluster.local}
    route: [{destination: {host: main}}]
  - match: [{headers: {x-loop: {}}}]
    route: [{destination: {host: istio-ingressgateway.istio-system.svc.cluster.local}}]
  - match: [{uri: {prefix: /split}}]
    route:
    - {destination: {host: main-00001}, weight: 50}
    - {destination: {host: shadow}, weight: 50}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: missing, namespace: NS}
spec:
  hosts: [missing.vs.test]
  http:
  - route: [{destination: {host: nothing.NS.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: elsewhere, namespace: NS}
spec:
  hosts: [elsewhere.vs.test]
  gateways: [istio-system/some-other-gateway]
  http:
  - route: [{destination: {host: main}}]
`

// TestVirtualServiceRules: each VirtualService feature knd's gateway
// serves, as a client sees it, and the status that says what it serves.
func TestVirtualServiceRules(t *testing.T) {
	importTestServer(t)
	c := typedClient(t)
	ns := namespace(t, "vs-rules")
	for _, name := range []string{"main", "shadow"} {
		if err := c.Create(testContext(t), helloService(ns, name, name)); err != nil {
			t.Fatal(err)
		}
		waitService(t, c, ns, name, name+" ready", readyAt(name+"-00001"))
	}
	if out, err := knd.Kubectl(t, strings.ReplaceAll(virtualServices, "NS", ns), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	waitVS(t, c, ns, "rules", "True//")
	waitVS(t, c, ns, "missing", `False/DestinationNotFound/spec.http[0].route[0].destination.host: "nothing.`+ns+
		`.svc.cluster.local" is neither a Revision nor a Knative Service (Route) in namespace "`+ns+`"`)
	waitVS(t, c, ns, "elsewhere", "False/NotForThisGateway/none of the gateways istio-system/some-other-gateway is knd's "+
		"(knative-serving/knative-ingress-gateway, knative-serving/knative-local-gateway or mesh)")

	send := func(host, path string, header ...string) (*http.Response, string) {
		t.Helper()
		return knd.Request(t, http.MethodGet, host, path, header...)
	}

	t.Run("rewrite and headers", func(t *testing.T) {
		resp, body := send("rules.vs.test", "/inspect/", "X-Drop", "1", "X-Keep", "1")
		for _, want := range []string{"Host: rewritten.vs.test\n", "X-Set: yes\n", "X-Keep: 1\n"} {
			if resp.StatusCode != 200 || !strings.Contains(body, want) {
				t.Errorf("%d, body without %q:\n%s", resp.StatusCode, want, body)
			}
		}
		if strings.Contains(body, "X-Drop") {
			t.Errorf("x-drop reached the pod:\n%s", body)
		}
		if resp.Header.Get("X-From-Vs") != "knd" || resp.Header.Get("Content-Type") != "" {
			t.Errorf("response headers %v: want x-from-vs added and content-type removed", resp.Header)
		}
	})
	t.Run("fault abort and delay", func(t *testing.T) {
		if resp, body := send("rules.vs.test", "/", "X-Fault", "abort"); resp.StatusCode != 418 || body != "fault filter abort\n" {
			t.Errorf("abort: %d %q", resp.StatusCode, body)
		}
		start := time.Now()
		if resp, body := send("rules.vs.test", "/", "X-Fault", "delay"); resp.StatusCode != 200 || !strings.HasSuffix(body, "main\n") {
			t.Errorf("delay: %d %q", resp.StatusCode, body)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("a 300ms delay answered after %v", d)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		if resp, body := send("rules.vs.test", "/slow?ms=2000"); resp.StatusCode != http.StatusGatewayTimeout || body != "request timeout\n" {
			t.Errorf("2 s request under a 200ms timeout: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("mirror", func(t *testing.T) {
		if resp, body := send("rules.vs.test", "/mirrored"); resp.StatusCode != 200 || !strings.HasSuffix(body, "main\n") {
			t.Fatalf("mirrored request: %d %q", resp.StatusCode, body)
		}
		poll(t, 30*time.Second, "the copy in the shadow's log", func() (bool, string) {
			out, err := knd.Kubectl(t, "", "logs", "-n", ns, "-l", "serving.knative.dev/service=shadow", "-c", "user-container")
			return err == nil && strings.Contains(out, "request /mirrored\n"), out
		})
	})
	t.Run("split between a revision and a service", func(t *testing.T) {
		counts := map[string]int{}
		for range 100 {
			resp, body := send("rules.vs.test", "/split")
			counts[fmt.Sprint(resp.StatusCode, body[strings.LastIndexByte(strings.TrimSuffix(body, "\n"), ' ')+1:])]++
		}
		if counts["200main\n"] < 25 || counts["200shadow\n"] < 25 || counts["200main\n"]+counts["200shadow\n"] != 100 {
			t.Errorf("a 50/50 split over 100 requests: %v", counts)
		}
	})
	t.Run("loop", func(t *testing.T) {
		if resp, body := send("rules.vs.test", "/", "X-Loop", "1"); resp.StatusCode != http.StatusLoopDetected || !strings.HasPrefix(body, "routing loop") {
			t.Errorf("a rule that sends the request back to itself: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("no rule, missing destination, other gateway", func(t *testing.T) {
		if resp, body := send("rules.vs.test", "/nothing-matches"); resp.StatusCode != 404 || body != "" {
			t.Errorf("no rule matches: %d %q, want a 404 without a body", resp.StatusCode, body)
		}
		if resp, body := send("missing.vs.test", "/"); resp.StatusCode != 503 || !strings.Contains(body, "does not exist") {
			t.Errorf("missing destination: %d %q", resp.StatusCode, body)
		}
		if resp, body := send("elsewhere.vs.test", "/"); resp.StatusCode != 404 || !strings.Contains(body, "no Route serves host") {
			t.Errorf("a VirtualService for another gateway is served: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("unsupported field and bad rule refused", func(t *testing.T) {
		bad := "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: bad, namespace: " + ns +
			"}\nspec:\n  hosts: [bad.vs.test]\n  http:\n  - corsPolicy: {allowOrigins: [{exact: '*'}]}\n    route: [{destination: {host: main}}]\n"
		out, err := knd.Kubectl(t, bad, "apply", "-f", "-")
		if err == nil || !strings.Contains(out, `unknown field "spec.http[0].corsPolicy"`) {
			t.Errorf("a VirtualService with corsPolicy: %v\n%s", err, out)
		}
		bad = strings.Replace(bad, "corsPolicy: {allowOrigins: [{exact: '*'}]}", "match: [{uri: {regex: '(('}}]", 1)
		out, err = knd.Kubectl(t, bad, "apply", "-f", "-")
		if want := `admission webhook "validation.istio.io" denied the request: configuration is invalid: ` +
			`spec.http[0].match[0].uri.regex: "((" is not an RE2 expression: error parsing regexp: missing closing ): ` + "`^(?:(()$`"; err == nil || !strings.Contains(out, want) {
			t.Errorf("a VirtualService with a bad regex: %v\n%s\nwant %s", err, out, want)
		}
	})
}

func waitVS(t *testing.T, c client.Client, ns, name, want string) {
	t.Helper()
	poll(t, time.Minute, "VirtualService "+name+": "+want, func() (bool, string) {
		var vs istiov1.VirtualService
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &vs); err != nil {
			return false, err.Error()
		}
		got := condition(vs.Status, "Ready")
		return got == want && vs.Status.ObservedGeneration == vs.Generation, got
	})
}

// TestSessionAffinity: with knd.dev/session-affinity: cookie, a client
// keeps the revision its first answer's cookie names while that revision
// has a share of the split, and moves (with a new cookie) once it has none.
func TestSessionAffinity(t *testing.T) {
	importTestServer(t)
	c := typedClient(t)
	ns := namespace(t, "sticky")
	svc := helloService(ns, "web", "one")
	svc.Annotations = map[string]string{"knd.dev/session-affinity": "cookie"}
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "web", "web ready", readyAt("web-00001"))
	if out, err := knd.Knd(t, "service", "update", "web", "-n", ns, "--env", "GREETING=two", "--traffic", "web-00001=50,@latest=50"); err != nil {
		t.Fatalf("update: %v\n%s", err, out)
	}
	waitService(t, c, ns, "web", "50/50", func(s *servingv1.Service) bool {
		return readyAt("web-00002")(s) && len(s.Status.Traffic) == 2
	})
	host := "web." + ns + ".example.com"
	ask := func(cookie string) (greeting, set string) {
		t.Helper()
		var header []string
		if cookie != "" {
			header = []string{"Cookie", "knd-revision=" + cookie}
		}
		resp, body := knd.Request(t, http.MethodGet, host, "/", header...)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		for _, ck := range resp.Cookies() {
			if ck.Name == "knd-revision" {
				set = ck.Value
			}
		}
		f := strings.Fields(body)
		return f[len(f)-1], set
	}
	want := map[string]string{"web-00001": "one", "web-00002": "two"}
	seen := map[string]bool{}
	for range 40 {
		greeting, rev := ask("")
		if want[rev] != greeting {
			t.Fatalf("a new client was served %q with a cookie for %q", greeting, rev)
		}
		seen[rev] = true
	}
	if !seen["web-00001"] || !seen["web-00002"] {
		t.Fatalf("40 new clients all got the same revision: %v", seen)
	}
	for _, rev := range []string{"web-00001", "web-00002"} {
		for range 20 {
			if greeting, set := ask(rev); greeting != want[rev] || set != "" {
				t.Fatalf("a client of %s was served %q (new cookie %q)", rev, greeting, set)
			}
		}
	}
	if greeting, set := ask("web-00009"); want[set] != greeting {
		t.Errorf("a cookie for a revision outside the split: served %q, new cookie %q", greeting, set)
	}
	if out, err := knd.Knd(t, "service", "update", "web", "-n", ns, "--traffic", "web-00002=100"); err != nil {
		t.Fatalf("update: %v\n%s", err, out)
	}
	poll(t, 30*time.Second, "the client of web-00001 moved", func() (bool, string) {
		greeting, set := ask("web-00001")
		return greeting == "two" && set == "web-00002", greeting + " " + set
	})
}
