package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
)

// httpRoutes are the tutorial's VirtualService scenarios as Gateway API
// HTTPRoutes of knd's Gateway, and the other filters, for hr.test hosts.
const httpRoutes = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: canary, namespace: NS}
spec:
  parentRefs: [{name: knd-gateway, namespace: knative-serving}]
  hostnames: [canary.hr.test]
  rules:
  - matches: [{headers: [{name: wid, type: RegularExpression, value: "a.*"}]}]
    backendRefs: [{name: web-00001, port: 80}]
  - matches: [{headers: [{name: wid, value: b}]}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-set, value: "yes"}]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-from-route, value: knd}]}
    backendRefs: [{name: web-00002, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {hostname: new.hr.test, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
  - matches: [{path: {type: PathPrefix, value: /inspect}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: rewritten.hr.test, path: {type: ReplaceFullPath, replaceFullPath: /headers}}
    backendRefs: [{group: serving.knative.dev, kind: Service, name: web}]
  - matches: [{path: {type: Exact, value: /inspect/exact}}]
    backendRefs: [{name: web-00002, port: 80}]
  - matches: [{path: {value: /mirrored}, method: GET}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: web-00002, port: 80}}
    backendRefs: [{name: web-00001, port: 80}]
  - matches: [{path: {value: /split}}]
    backendRefs: [{name: web-00001, port: 80, weight: 1}, {name: web-00002, port: 80, weight: 1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: any-host, namespace: NS}
spec:
  parentRefs: [{name: knd-gateway, namespace: knative-serving}]
  rules:
  - matches: [{path: {type: Exact, value: /hr-test-any-host}}]
    backendRefs: [{name: web-00002, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken, namespace: NS}
spec:
  parentRefs: [{name: knd-gateway, namespace: knative-serving}]
  hostnames: [broken.hr.test]
  rules:
  - backendRefs: [{name: nothing, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cors, namespace: NS}
spec:
  parentRefs: [{name: knd-gateway, namespace: knative-serving}]
  hostnames: [cors.hr.test]
  rules:
  - filters: [{type: CORS, cors: {allowOrigins: ["https://a.example"]}}]
    backendRefs: [{name: web, port: 80}]
`

// TestHTTPRoutes: the Gateway API's routing on knd's gateway, the
// tutorial's scenarios among them, and the status of the Gateway, its
// class and the routes.
func TestHTTPRoutes(t *testing.T) {
	importTestServer(t)
	c := typedClient(t)
	ns := namespace(t, "hr-test")
	if err := c.Create(testContext(t), helloService(ns, "web", "one")); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "web", "web ready", readyAt("web-00001"))
	if out, err := knd.Knd(t, "service", "update", "web", "-n", ns, "--env", "GREETING=two", "--traffic", "web-00001=100,@latest=0"); err != nil {
		t.Fatalf("update: %v\n%s", err, out)
	}
	waitService(t, c, ns, "web", "web-00002 ready", readyAt("web-00002"))
	if out, err := knd.Kubectl(t, strings.ReplaceAll(httpRoutes, "NS", ns), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	routeStatus := func(name string) string {
		var hr gatewayv1.HTTPRoute
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &hr); err != nil {
			return err.Error()
		}
		var parts []string
		for _, p := range hr.Status.Parents {
			for _, typ := range []string{"Accepted", "ResolvedRefs"} {
				if cnd := meta.FindStatusCondition(p.Conditions, typ); cnd != nil && cnd.ObservedGeneration == hr.Generation {
					parts = append(parts, fmt.Sprintf("%s %s/%s/%s %s", p.ControllerName, typ, cnd.Status, cnd.Reason, cnd.Message))
				}
			}
		}
		return strings.Join(parts, "; ")
	}
	for name, want := range map[string]string{
		"any-host": "knd.dev/gateway-controller Accepted/True/Accepted ; knd.dev/gateway-controller ResolvedRefs/True/ResolvedRefs ",
		"canary":   "knd.dev/gateway-controller Accepted/True/Accepted ; knd.dev/gateway-controller ResolvedRefs/True/ResolvedRefs ",
		"broken":   "knd.dev/gateway-controller Accepted/True/Accepted ; knd.dev/gateway-controller ResolvedRefs/False/BackendNotFound backendRef nothing: no Revision or Knative Service of that name in namespace " + ns,
		"cors":     "knd.dev/gateway-controller Accepted/False/UnsupportedValue spec.rules[0].filters[0].type: knd's gateway does not serve CORS filters; knd.dev/gateway-controller ResolvedRefs/True/ResolvedRefs ",
	} {
		poll(t, time.Minute, "HTTPRoute "+name+" status", func() (bool, string) {
			got := routeStatus(name)
			return got == want, got
		})
	}
	poll(t, 30*time.Second, "knd's Gateway programmed with the routes attached", func() (bool, string) {
		var gw gatewayv1.Gateway
		var class gatewayv1.GatewayClass
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "knative-serving", Name: "knd-gateway"}, &gw); err != nil {
			return false, err.Error()
		}
		if err := c.Get(context.Background(), client.ObjectKey{Name: "knd"}, &class); err != nil {
			return false, err.Error()
		}
		ok := meta.IsStatusConditionTrue(gw.Status.Conditions, "Programmed") && meta.IsStatusConditionTrue(class.Status.Conditions, "Accepted") &&
			len(gw.Status.Listeners) == 1 && gw.Status.Listeners[0].AttachedRoutes >= 4
		return ok, fmt.Sprintf("%+v %+v", gw.Status, class.Status)
	})

	send := func(host, method, path string, header ...string) (*http.Response, string) {
		t.Helper()
		return knd.Request(t, method, host, path, header...)
	}
	greeting := func(body string) string {
		f := strings.Fields(body)
		if len(f) == 0 {
			return ""
		}
		return f[len(f)-1]
	}
	poll(t, 30*time.Second, "the gateway serves canary.hr.test", func() (bool, string) {
		resp, body := send("canary.hr.test", "GET", "/", "wid", "abc")
		return resp.StatusCode == 200 && greeting(body) == "one", fmt.Sprint(resp.StatusCode, body)
	})
	t.Run("headers pick revisions", func(t *testing.T) {
		resp, body := send("canary.hr.test", "GET", "/headers", "wid", "b")
		if greeting(body) == "two" || !strings.Contains(body, "X-Set: yes\n") || resp.Header.Get("X-From-Route") != "knd" {
			t.Errorf("wid b: %d %v\n%s", resp.StatusCode, resp.Header, body)
		}
		if _, body := send("canary.hr.test", "GET", "/", "wid", "b"); greeting(body) != "two" {
			t.Errorf("wid b answered %q", body)
		}
		if resp, body := send("canary.hr.test", "GET", "/", "wid", "c"); resp.StatusCode != 404 || body != "" {
			t.Errorf("no rule matches: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("redirect and rewrite", func(t *testing.T) {
		resp, _ := send("canary.hr.test", "GET", "/old/page?x=1")
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "http://new.hr.test/new/page?x=1" {
			t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := send("canary.hr.test", "GET", "/oldies"); resp.StatusCode != 404 {
			t.Errorf("a PathPrefix matches whole path elements: /oldies answered %d", resp.StatusCode)
		}
		_, body := send("canary.hr.test", "GET", "/inspect/more")
		if !strings.Contains(body, "Host: rewritten.hr.test\n") || !strings.Contains(body, "Knative-Serving-Revision: web-00001\n") {
			t.Errorf("rewrite to the Knative Service's traffic:\n%s", body)
		}
		if _, body := send("canary.hr.test", "GET", "/inspect/exact"); greeting(body) != "two" {
			t.Errorf("an Exact path before a longer PathPrefix's rule: %q", body)
		}
	})
	t.Run("mirror and split", func(t *testing.T) {
		if resp, body := send("canary.hr.test", "POST", "/mirrored"); resp.StatusCode != 404 {
			t.Errorf("a GET-only match took a POST: %d %q", resp.StatusCode, body)
		}
		if _, body := send("canary.hr.test", "GET", "/mirrored"); greeting(body) != "one" {
			t.Fatalf("mirrored request answered %q", body)
		}
		poll(t, 30*time.Second, "the copy in web-00002's log", func() (bool, string) {
			out, err := knd.Kubectl(t, "", "logs", "-n", ns, "-l", servingv1.RevisionLabelKey+"=web-00002", "-c", "user-container")
			return err == nil && strings.Contains(out, "request /mirrored\n"), out
		})
		counts := map[string]int{}
		for range 100 {
			_, body := send("canary.hr.test", "GET", "/split")
			counts[greeting(body)]++
		}
		if counts["one"] < 25 || counts["two"] < 25 || counts["one"]+counts["two"] != 100 {
			t.Errorf("a 1:1 split over 100 requests: %v", counts)
		}
	})
	t.Run("a route without hostnames", func(t *testing.T) {
		for _, host := range []string{"anything.hr.test", "canary.hr.test"} {
			if _, body := send(host, "GET", "/hr-test-any-host"); greeting(body) != "two" {
				t.Errorf("%s: %q", host, body)
			}
		}
		if resp, body := send("anything.hr.test", "GET", "/"); resp.StatusCode != 404 || !strings.Contains(body, "no Route serves host") {
			t.Errorf("a path the route does not match, on a host nothing serves: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("broken and refused routes", func(t *testing.T) {
		if resp, body := send("broken.hr.test", "GET", "/"); resp.StatusCode != 500 || !strings.Contains(body, "does not exist") {
			t.Errorf("a missing backend: %d %q, want the Gateway API's 500", resp.StatusCode, body)
		}
		if resp, body := send("cors.hr.test", "GET", "/"); resp.StatusCode != 404 || !strings.Contains(body, "no Route serves host") {
			t.Errorf("a route knd does not accept is served: %d %q", resp.StatusCode, body)
		}
	})
}
