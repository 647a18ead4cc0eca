package customroute

import (
	"net/http/httptest"
	"strings"
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

func parseRoute(t *testing.T, manifest string) gatewayv1.HTTPRoute {
	t.Helper()
	var hr gatewayv1.HTTPRoute
	if err := yaml.UnmarshalStrict([]byte(manifest), &hr); err != nil {
		t.Fatal(err)
	}
	return hr
}

// TestHTTPRoutePrecedence: for one host, an Exact path goes first, then the
// longest PathPrefix, then the match with a method and more headers,
// across routes; a route that is not attached to knd's Gateway is not.
func TestHTTPRoutePrecedence(t *testing.T) {
	a := parseRoute(t, `
metadata: {name: a, namespace: ns1}
spec:
  parentRefs: [{name: knd-gateway, namespace: knative-serving}]
  hostnames: [h.org]
  rules:
  - backendRefs: [{name: catchall}]
  - matches: [{path: {value: /api}}]
    backendRefs: [{name: api}]
  - matches: [{path: {value: /api}, method: POST, headers: [{name: x-v, value: "2"}]}]
    backendRefs: [{name: api-post}]`)
	b := parseRoute(t, `
metadata: {name: b, namespace: ns1}
spec:
  parentRefs: [{name: knd-gateway, namespace: knative-serving, sectionName: http}]
  hostnames: [h.org, "*.wild.org"]
  rules:
  - matches: [{path: {type: Exact, value: /api}}]
    backendRefs: [{name: exact, namespace: ns1}]
  - matches: [{path: {value: /api/v1/}}]
    backendRefs: [{name: v1}]`)
	other := parseRoute(t, `
metadata: {name: o, namespace: ns1}
spec:
  parentRefs: [{name: some-gateway}]
  hostnames: [other.org]
  rules: [{backendRefs: [{name: x}]}]`)
	tab := Compile(nil, []gatewayv1.HTTPRoute{a, b, other})
	for _, tc := range []struct{ method, path, header, want string }{
		{"GET", "/api", "", "exact"},
		{"GET", "/api/v1/users", "", "v1"},
		{"GET", "/api/v1", "", "v1"},
		{"GET", "/api/v2", "", "api"},
		{"POST", "/api/v2", "2", "api-post"},
		{"POST", "/api/v2", "3", "api"},
		{"GET", "/apis", "", "catchall"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.header != "" {
			r.Header.Set("X-V", tc.header)
		}
		got := ""
		for _, rule := range tab.Rules("h.org") {
			if ok, _ := rule.Match(r); ok {
				got = strings.SplitN(rule.Route[0].Host, ".", 2)[0]
				break
			}
		}
		if got != tc.want {
			t.Errorf("%s %s (x-v %q): %q, want %q", tc.method, tc.path, tc.header, got, tc.want)
		}
	}
	if !tab.Has("x.wild.org") || tab.Has("other.org") {
		t.Errorf("hosts: x.wild.org %v (want true), other.org %v (want false)", tab.Has("x.wild.org"), tab.Has("other.org"))
	}
}

// TestHTTPRouteFilters: filters become the rule's redirect, rewrite,
// header changes and mirror; backends knd cannot serve become a 500.
func TestHTTPRouteFilters(t *testing.T) {
	hr := parseRoute(t, `
metadata: {name: f, namespace: ns1}
spec:
  parentRefs: [{name: knd-gateway, namespace: knative-serving}]
  hostnames: [h.org]
  rules:
  - filters:
    - {type: RequestRedirect, requestRedirect: {scheme: https, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}
  - filters:
    - {type: URLRewrite, urlRewrite: {hostname: in.org, path: {type: ReplaceFullPath, replaceFullPath: /x}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: shadow}, fraction: {numerator: 1, denominator: 4}}}
    backendRefs:
    - name: web
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-a, value: "1"}], remove: [x-b]}}]
  - backendRefs: [{kind: ConfigMap, name: cm}]`)
	rules, err := CompileHTTPRoute(&hr)
	if err != nil {
		t.Fatal(err)
	}
	if rd := rules[0].Redirect; rd == nil || rd.Code != 302 || rd.Scheme != "https" || rd.Path != "/new" || !rd.ReplacePrefix {
		t.Errorf("redirect %+v", rd)
	}
	if rw := rules[1].Rewrite; rw == nil || rw.Host != "in.org" || rw.Path != "/x" || rw.ReplacePrefix {
		t.Errorf("rewrite %+v", rw)
	}
	if m := rules[1].Mirror; m == nil || m.Host != "shadow.ns1.svc.cluster.local" || rules[1].MirrorPercent != 25 {
		t.Errorf("mirror %+v at %v %%", m, rules[1].MirrorPercent)
	}
	if h := rules[1].Route[0].Headers; h == nil || h.Request.Add["x-a"] != "1" || h.Request.Remove[0] != "x-b" {
		t.Errorf("backend headers %+v", h)
	}
	if d := rules[2].Route[0]; d.Host != "" || rules[2].MissingStatus != 500 {
		t.Errorf("a ConfigMap backend: %+v", d)
	}
	if reason, _ := BackendProblem(hr.Spec.Rules[2].BackendRefs[0].BackendObjectReference, "ns1"); reason != "InvalidKind" {
		t.Errorf("a ConfigMap backend's problem: %q", reason)
	}
}

// TestHTTPRouteWithoutHostnames: its rules serve every host, after a host's
// own routes' rules, and alone for hosts no route names.
func TestHTTPRouteWithoutHostnames(t *testing.T) {
	own := parseRoute(t, `
metadata: {name: own, namespace: ns1}
spec:
  parentRefs: [{name: knd-gateway, namespace: knative-serving}]
  hostnames: [h.org]
  rules: [{matches: [{path: {value: /a}}], backendRefs: [{name: own}]}]`)
	any := parseRoute(t, `
metadata: {name: any, namespace: ns1}
spec:
  parentRefs: [{name: knd-gateway, namespace: knative-serving}]
  rules: [{matches: [{path: {type: Exact, value: /a}}], backendRefs: [{name: any}]}, {matches: [{path: {value: /b}}], backendRefs: [{name: any-b}]}]`)
	tab := Compile(nil, []gatewayv1.HTTPRoute{own, any})
	first := func(rules []*Rule, path string) string {
		for _, rule := range rules {
			if ok, _ := rule.Match(httptest.NewRequest("GET", path, nil)); ok {
				return strings.SplitN(rule.Route[0].Host, ".", 2)[0]
			}
		}
		return ""
	}
	for _, tc := range []struct {
		rules      []*Rule
		path, want string
	}{
		{tab.Rules("h.org"), "/a", "own"}, // the host's own route first, though the other's path is Exact
		{tab.Rules("h.org"), "/b", "any-b"},
		{tab.AnyHost(), "/a", "any"},
		{tab.AnyHost(), "/c", ""},
	} {
		if got := first(tc.rules, tc.path); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.path, got, tc.want)
		}
	}
	if tab.Has("other.org") {
		t.Error("a route without hostnames claims every host; it should only serve those nothing else does")
	}
}
