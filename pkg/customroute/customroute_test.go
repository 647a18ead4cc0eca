package customroute

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func parse(t testing.TB, manifest string) istiov1.VirtualService {
	t.Helper()
	var vs istiov1.VirtualService
	if err := yaml.UnmarshalStrict([]byte(manifest), &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

const rules = `
metadata: {name: r, namespace: example}
spec:
  hosts: [shop.example.org, "*.wild.example.org", short]
  http:
  - name: by-header
    match:
    - headers: {wid: {prefix: a}}
    rewrite: {authority: a-helloworld-go.example.example.com}
    route: [{destination: {host: istio-ingressgateway.istio-system.svc.cluster.local}}]
  - match:
    - uri: {prefix: /api/}
      method: {exact: POST}
    - uri: {regex: "/v[0-9]+/items"}
      queryParams: {debug: {exact: "1"}}
    rewrite: {uri: /v2/}
    route: [{destination: {host: hello-00002.example.svc.cluster.local:80}}]
  - match:
    - withoutHeaders: {cookie: {}}
      uri: {exact: /Login}
      ignoreUriCase: true
    redirect: {authority: login.example.org, redirectCode: 302}
  - match:
    - gateways: [some-other/gateway]
    route: [{destination: {host: never}}]
  - route: [{destination: {host: fallback}}]
`

// TestRulesMatchInOrder: the first rule whose conditions hold is the one,
// each condition kind as Istio reads it.
func TestRulesMatchInOrder(t *testing.T) {
	tab := Compile([]istiov1.VirtualService{parse(t, rules)}, nil)
	for _, tc := range []struct {
		method, target, host string
		header               map[string]string
		rule                 int
		prefix               string
	}{
		{"GET", "/", "shop.example.org", map[string]string{"wid": "abc"}, 0, ""},
		{"GET", "/", "shop.example.org", map[string]string{"wid": "b"}, 4, ""},
		{"POST", "/api/x", "shop.example.org", nil, 1, "/api/"},
		{"GET", "/api/x", "shop.example.org", nil, 4, ""},
		{"GET", "/v12/items?debug=1", "x.wild.example.org", nil, 1, ""},
		{"GET", "/v12/items?debug=0", "x.wild.example.org", nil, 4, ""},
		{"GET", "/v12/items/more?debug=1", "x.wild.example.org", nil, 4, ""},
		{"GET", "/LOGIN", "short.example.svc.cluster.local", nil, 2, ""},
		{"GET", "/login", "short.example.svc.cluster.local", map[string]string{"Cookie": "s=1"}, 4, ""},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		r.Host = tc.host
		for k, v := range tc.header {
			r.Header.Set(k, v)
		}
		got := -1
		var prefix string
		for _, rule := range tab.Rules(tc.host) {
			if ok, p := rule.Match(r); ok {
				got, prefix = rule.Index, p
				break
			}
		}
		if got != tc.rule || prefix != tc.prefix {
			t.Errorf("%s %s %s %v: rule %d (prefix %q), want %d (%q)", tc.method, tc.host, tc.target, tc.header, got, prefix, tc.rule, tc.prefix)
		}
	}
	if tab.Has("other.example.org") || tab.Has("wild.example.org") || !tab.HasBytes([]byte("a.b.wild.example.org")) {
		t.Error("hosts: only the listed names and subdomains of the wildcard are claimed")
	}
}

// TestCompileRefusesWhatCannotBeServed names the field of the first problem.
func TestCompileRefusesWhatCannotBeServed(t *testing.T) {
	for _, tc := range []struct{ http, want string }{
		{`[{match: [{uri: {regex: "(("}}], route: [{destination: {host: a}}]}]`, `spec.http[0].match[0].uri.regex: "((" is not an RE2 expression`},
		{`[{match: [{headers: {x: {exact: a, prefix: b}}}], route: [{destination: {host: a}}]}]`, `spec.http[0].match[0].headers.x.exact, prefix and regex: only one of them may be set`},
		{`[{route: [{destination: {host: a}}], redirect: {authority: b}}]`, `spec.http[0].redirect: a rule cannot have both route and redirect`},
		{`[{match: [{uri: {exact: /}}]}]`, `spec.http[0].route: a rule needs a route or a redirect`},
		{`[{route: [{destination: {host: a}}], timeout: soon}]`, `spec.http[0].timeout: "soon" is not a duration`},
		{`[{redirect: {authority: b, redirectCode: 200}}]`, `spec.http[0].redirect.redirectCode: 200 is not a redirect status`},
		{`[{fault: {abort: {httpStatus: 99}}}]`, `spec.http[0].fault.abort.httpStatus: 99 is not an HTTP status`},
	} {
		vs := parse(t, "metadata: {name: x, namespace: y}\nspec: {hosts: [h.example.org], http: "+tc.http+"}")
		_, err := CompileOne(&vs)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to start with %q", tc.http, err, tc.want)
		}
		if Compile([]istiov1.VirtualService{vs}, nil).Has("h.example.org") {
			t.Errorf("%s: a VirtualService with a problem is served", tc.http)
		}
	}
}

// TestOnlyKndsGateways: a VirtualService for other gateways is not served;
// none listed means "mesh", which knd's gateway is.
func TestOnlyKndsGateways(t *testing.T) {
	other := parse(t, `{metadata: {name: a, namespace: n}, spec: {hosts: [a.org], gateways: [istio-system/other], http: [{route: [{destination: {host: x}}]}]}}`)
	mesh := parse(t, `{metadata: {name: b, namespace: n}, spec: {hosts: [b.org], http: [{route: [{destination: {host: x}}]}]}}`)
	local := parse(t, `{metadata: {name: c, namespace: n}, spec: {hosts: [c.org], gateways: [knative-local-gateway], http: [{route: [{destination: {host: x}}]}]}}`)
	tab := Compile([]istiov1.VirtualService{other, mesh, local}, nil)
	if tab.Has("a.org") || !tab.Has("b.org") || !tab.Has("c.org") {
		t.Errorf("served: a.org %v (want false), b.org %v, c.org %v (want true)", tab.Has("a.org"), tab.Has("b.org"), tab.Has("c.org"))
	}
}

// TestOlderVirtualServiceFirst: two VirtualServices for one host are tried
// oldest first, whatever order the API lists them in.
func TestOlderVirtualServiceFirst(t *testing.T) {
	older := parse(t, `{metadata: {name: z, namespace: n}, spec: {hosts: [h.org], http: [{route: [{destination: {host: old}}]}]}}`)
	newer := parse(t, `{metadata: {name: a, namespace: n}, spec: {hosts: [h.org], http: [{route: [{destination: {host: new}}]}]}}`)
	older.CreationTimestamp = metav1.NewTime(time.Unix(100, 0))
	newer.CreationTimestamp = metav1.NewTime(time.Unix(200, 0))
	r := Compile([]istiov1.VirtualService{newer, older}, nil).Rules("h.org")
	if len(r) != 2 || r[0].Route[0].Host != "old" {
		t.Fatalf("rules %v, want the older VirtualService's first", r)
	}
}

// TestPickFollowsWeights: a 20/80 split over 10,000 picks lands within 2 %.
func TestPickFollowsWeights(t *testing.T) {
	vs := parse(t, `{metadata: {name: w, namespace: n}, spec: {hosts: [h.org], http: [{route: [{destination: {host: a}, weight: 20}, {destination: {host: b}, weight: 80}]}]}}`)
	rules, err := CompileOne(&vs)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range 10000 {
		if rules[0].Pick().Host == "a" {
			n++
		}
	}
	if n < 1800 || n > 2200 {
		t.Errorf("%d of 10000 picks went to the 20 %% destination", n)
	}
}

func TestRewritePathAndServiceOf(t *testing.T) {
	for _, tc := range []struct {
		path, prefix, to string
		replacePrefix    bool
		want             string
	}{
		{"/api/users", "/api/", "/v2/", true, "/v2/users"},
		{"/api/users", "/api", "/", true, "/users"},
		{"/api", "/api", "", true, "/"},
		{"/api/users", "", "/v2", true, "/v2"},
		{"/api/users", "/api/", "/v2", false, "/v2"},
	} {
		if got := RewritePath(tc.path, tc.prefix, tc.to, tc.replacePrefix); got != tc.want {
			t.Errorf("RewritePath(%q, %q, %q, %v) = %q, want %q", tc.path, tc.prefix, tc.to, tc.replacePrefix, got, tc.want)
		}
	}
	for host, want := range map[string][2]string{
		"hello-00001.example.svc.cluster.local": {"hello-00001", "example"},
		"hello.other.svc":                       {"hello", "other"},
		"hello.other":                           {"hello", "other"},
		"hello":                                 {"hello", "vsns"},
	} {
		if n, ns := ServiceOf(host, "vsns"); n != want[0] || ns != want[1] {
			t.Errorf("ServiceOf(%q) = %s, %s; want %v", host, n, ns, want)
		}
	}
}

// BenchmarkMatch: the 10th rule of one of 100 VirtualServices, the
// matcher's cost on a request for that host.
func BenchmarkMatch(b *testing.B) {
	var vss []istiov1.VirtualService
	for i := range 100 {
		var http strings.Builder
		for j := range 10 {
			http.WriteString("{match: [{uri: {prefix: /p" + strconv.Itoa(j) + "/}, headers: {x-user: {exact: u" + strconv.Itoa(j) + "}}}], route: [{destination: {host: d}}]},")
		}
		vss = append(vss, parse(b, "metadata: {name: v"+strconv.Itoa(i)+", namespace: n}\nspec: {hosts: [h"+strconv.Itoa(i)+".example.org], http: ["+http.String()+"]}"))
	}
	tab := Compile(vss, nil)
	r := httptest.NewRequest("GET", "/p9/item", nil)
	r.Host = "h57.example.org"
	r.Header.Set("X-User", "u9")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		found := false
		for _, rule := range tab.Rules("h57.example.org") {
			if ok, _ := rule.Match(r); ok {
				found = rule.Index == 9
				break
			}
		}
		if !found {
			b.Fatal("the 10th rule did not match")
		}
	}
}
