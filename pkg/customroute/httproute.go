package customroute

import (
	"fmt"
	"sort"
	"strings"

	"github.com/knd-dev/knd/pkg/apis/gatewayapi"
	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Gateway API HTTPRoutes of knd's Gateway, compiled into the same rules as
// VirtualServices: one Rule per match of each route rule, ordered for a
// host as the Gateway API's precedence says.

// Attached says whether an HTTPRoute names knd's Gateway as a parent.
func Attached(hr *gatewayv1.HTTPRoute) bool {
	for _, p := range hr.Spec.ParentRefs {
		if gatewayapi.IsKndGateway(p, hr.Namespace) {
			return true
		}
	}
	return false
}

// BackendProblem says what is wrong with a backendRef knd cannot serve, in
// the Gateway API's reasons: "" when it can, else InvalidKind (a kind
// other than a Service, a Knative Service or a Revision) or
// RefNotPermitted (another namespace: knd has no ReferenceGrants).
func BackendProblem(ref gatewayv1.BackendObjectReference, routeNamespace string) (reason, msg string) {
	group, kind := "", "Service"
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	switch {
	case group == "" && kind == "Service", group == "serving.knative.dev" && (kind == "Service" || kind == "Revision"):
	default:
		return string(gatewayv1.RouteReasonInvalidKind), fmt.Sprintf("backendRef %s: kind %s of group %q is not a Service, a Knative Service or a Revision", ref.Name, kind, group)
	}
	if ref.Namespace != nil && string(*ref.Namespace) != routeNamespace {
		return string(gatewayv1.RouteReasonRefNotPermitted), fmt.Sprintf("backendRef %s: namespace %s is not the route's (knd has no ReferenceGrants)", ref.Name, *ref.Namespace)
	}
	return "", ""
}

// BackendHost is the in-cluster host a backendRef stands for, "" when knd
// cannot serve it.
func BackendHost(ref gatewayv1.BackendObjectReference, routeNamespace string) string {
	if reason, _ := BackendProblem(ref, routeNamespace); reason != "" {
		return ""
	}
	return strings.ToLower(string(ref.Name)) + "." + routeNamespace + ".svc.cluster.local"
}

// httpRule is a compiled HTTPRoute rule match with what orders it.
type httpRule struct {
	rule *Rule
	key  precedence
}

// precedence orders the matches for one host: exact paths first, then the
// longest prefixes, a method, more header and query matches; ties go to
// the older route, then by namespace/name, then rule and match order.
type precedence struct {
	pathKind, pathLen, method, headers, query int
	created                                   int64
	name                                      string
	rule, match                               int
}

func (a precedence) before(b precedence) bool {
	for _, d := range [][2]int{{a.pathKind, b.pathKind}, {a.pathLen, b.pathLen}, {a.method, b.method}, {a.headers, b.headers}, {a.query, b.query}} {
		if d[0] != d[1] {
			return d[0] > d[1]
		}
	}
	if a.created != b.created {
		return a.created < b.created
	}
	if a.name != b.name {
		return a.name < b.name
	}
	if a.rule != b.rule {
		return a.rule < b.rule
	}
	return a.match < b.match
}

// CompileHTTPRoute compiles an HTTPRoute's rules, or says what is wrong
// with the first that cannot be served, by field path.
func CompileHTTPRoute(hr *gatewayv1.HTTPRoute) ([]*Rule, error) {
	rules, err := compileHTTPRoute(hr)
	if err != nil {
		return nil, err
	}
	out := make([]*Rule, len(rules))
	for i := range rules {
		out[i] = rules[i].rule
	}
	return out, nil
}

func compileHTTPRoute(hr *gatewayv1.HTTPRoute) ([]httpRule, error) {
	var out []httpRule
	for i := range hr.Spec.Rules {
		hrule := &hr.Spec.Rules[i]
		base, err := compileHTTPRule(hr, hrule)
		if err != nil {
			return nil, fmt.Errorf("spec.rules[%d].%w", i, err)
		}
		base.Index = i
		matches := hrule.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for j := range matches {
			m, key, err := compileHTTPMatch(&matches[j])
			if err != nil {
				return nil, fmt.Errorf("spec.rules[%d].matches[%d].%w", i, j, err)
			}
			r := *base
			r.matches = []match{m}
			key.created, key.name, key.rule, key.match = hr.CreationTimestamp.UnixNano(), hr.Namespace+"/"+hr.Name, i, j
			out = append(out, httpRule{rule: &r, key: key})
		}
	}
	return out, nil
}

func compileHTTPRule(hr *gatewayv1.HTTPRoute, h *gatewayv1.HTTPRouteRule) (*Rule, error) {
	r := &Rule{Namespace: hr.Namespace, Service: hr.Name, MissingStatus: 500}
	headers, err := applyFilters(r, h.Filters, hr.Namespace, "filters")
	if err != nil {
		return nil, err
	}
	r.Headers = headers
	for j, b := range h.BackendRefs {
		weight := int32(1)
		if b.Weight != nil {
			weight = *b.Weight
		}
		d := Destination{Host: BackendHost(b.BackendObjectReference, hr.Namespace), Weight: weight}
		if d.Headers, err = applyFilters(nil, b.Filters, hr.Namespace, fmt.Sprintf("backendRefs[%d].filters", j)); err != nil {
			return nil, err
		}
		r.Route = append(r.Route, d)
	}
	if len(r.Route) == 0 && r.Redirect == nil {
		// No backend: the Gateway API wants a 500.
		r.Route = []Destination{{Host: ""}}
	}
	if t := h.Timeouts; t != nil && t.Request != nil {
		if r.Timeout, err = duration(string(*t.Request)); err != nil {
			return nil, fmt.Errorf("timeouts.request: %w", err)
		}
	}
	return r, nil
}

// applyFilters applies a rule's (r non-nil) or a backend's filters and
// returns their header changes.
func applyFilters(r *Rule, filters []gatewayv1.HTTPRouteFilter, ns, field string) (*istiov1.Headers, error) {
	var h *istiov1.Headers
	for k, f := range filters {
		path := fmt.Sprintf("%s[%d]", field, k)
		switch f.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
			if h == nil {
				h = &istiov1.Headers{}
			}
			h.Request = headerOps(f.RequestHeaderModifier)
		case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			if h == nil {
				h = &istiov1.Headers{}
			}
			h.Response = headerOps(f.ResponseHeaderModifier)
		case gatewayv1.HTTPRouteFilterRequestRedirect, gatewayv1.HTTPRouteFilterURLRewrite, gatewayv1.HTTPRouteFilterRequestMirror:
			if r == nil {
				return nil, fmt.Errorf("%s.type: %s is served on a rule, not on a backendRef", path, f.Type)
			}
			if err := applyRuleFilter(r, &f, ns); err != nil {
				return nil, fmt.Errorf("%s.%w", path, err)
			}
		default:
			return nil, fmt.Errorf("%s.type: knd's gateway does not serve %s filters", path, f.Type)
		}
	}
	return h, nil
}

func applyRuleFilter(r *Rule, f *gatewayv1.HTTPRouteFilter, ns string) error {
	switch {
	case f.RequestRedirect != nil:
		rd := f.RequestRedirect
		r.Redirect = &Redirect{Code: 302}
		if rd.Scheme != nil {
			r.Redirect.Scheme = *rd.Scheme
		}
		if rd.Hostname != nil {
			r.Redirect.Host = string(*rd.Hostname)
		}
		if rd.Port != nil {
			r.Redirect.Port = uint32(*rd.Port)
		}
		if rd.StatusCode != nil {
			r.Redirect.Code = *rd.StatusCode
		}
		r.Redirect.Path, r.Redirect.ReplacePrefix = pathModifier(rd.Path)
	case f.URLRewrite != nil:
		r.Rewrite = &Rewrite{}
		if f.URLRewrite.Hostname != nil {
			r.Rewrite.Host = string(*f.URLRewrite.Hostname)
		}
		r.Rewrite.Path, r.Rewrite.ReplacePrefix = pathModifier(f.URLRewrite.Path)
	case f.RequestMirror != nil:
		host := BackendHost(f.RequestMirror.BackendRef, ns)
		if host == "" {
			_, msg := BackendProblem(f.RequestMirror.BackendRef, ns)
			return fmt.Errorf("requestMirror.backendRef: %s", msg)
		}
		r.Mirror, r.MirrorPercent = &Destination{Host: host}, 100
		if p := f.RequestMirror.Percent; p != nil {
			r.MirrorPercent = float64(*p)
		} else if fr := f.RequestMirror.Fraction; fr != nil {
			den := int32(100)
			if fr.Denominator != nil {
				den = *fr.Denominator
			}
			r.MirrorPercent = 100 * float64(fr.Numerator) / float64(den)
		}
	}
	return nil
}

func pathModifier(m *gatewayv1.HTTPPathModifier) (path string, replacePrefix bool) {
	switch {
	case m == nil:
		return "", false
	case m.Type == gatewayv1.PrefixMatchHTTPPathModifier && m.ReplacePrefixMatch != nil:
		p := *m.ReplacePrefixMatch
		if p == "" {
			p = "/"
		}
		return p, true
	case m.ReplaceFullPath != nil:
		return *m.ReplaceFullPath, false
	}
	return "", false
}

func headerOps(f *gatewayv1.HTTPHeaderFilter) *istiov1.HeaderOperations {
	if f == nil {
		return nil
	}
	ops := &istiov1.HeaderOperations{Remove: f.Remove}
	if len(f.Set) > 0 {
		ops.Set = map[string]string{}
		for _, h := range f.Set {
			ops.Set[string(h.Name)] = h.Value
		}
	}
	if len(f.Add) > 0 {
		ops.Add = map[string]string{}
		for _, h := range f.Add {
			ops.Add[string(h.Name)] = h.Value
		}
	}
	return ops
}

func compileHTTPMatch(m *gatewayv1.HTTPRouteMatch) (match, precedence, error) {
	var out match
	var key precedence
	path := gatewayv1.HTTPPathMatch{}
	if m.Path != nil {
		path = *m.Path
	}
	kind, value := gatewayv1.PathMatchPathPrefix, "/"
	if path.Type != nil {
		kind = *path.Type
	}
	if path.Value != nil {
		value = *path.Value
	}
	sm := &istiov1.StringMatch{}
	switch kind {
	case gatewayv1.PathMatchExact:
		sm.Exact, key.pathKind = value, 3
	case gatewayv1.PathMatchRegularExpression:
		sm.Regex, key.pathKind = value, 1
	default:
		key.pathKind = 2
	}
	if kind == gatewayv1.PathMatchPathPrefix {
		out.uri = &stringMatch{kind: pathPrefix, value: value}
	} else {
		c, err := compileString(sm, false)
		if err != nil {
			return out, key, fmt.Errorf("path.%w", err)
		}
		out.uri = c
	}
	key.pathLen = len(value)
	if m.Method != nil {
		out.method, key.method = &stringMatch{kind: exact, value: string(*m.Method)}, 1
	}
	for k, h := range m.Headers {
		c, err := gatewayMatch(h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression, h.Value)
		if err != nil {
			return out, key, fmt.Errorf("headers[%d].%w", k, err)
		}
		out.headers = append(out.headers, namedMatch{name: string(h.Name), m: c})
	}
	for k, q := range m.QueryParams {
		c, err := gatewayMatch(q.Type != nil && *q.Type == gatewayv1.QueryParamMatchRegularExpression, q.Value)
		if err != nil {
			return out, key, fmt.Errorf("queryParams[%d].%w", k, err)
		}
		out.query = append(out.query, namedMatch{name: string(q.Name), m: c})
	}
	key.headers, key.query = len(m.Headers), len(m.QueryParams)
	return out, key, nil
}

func gatewayMatch(isRegex bool, value string) (*stringMatch, error) {
	if isRegex {
		return compileString(&istiov1.StringMatch{Regex: value}, false)
	}
	return &stringMatch{kind: exact, value: value}, nil
}

// addHTTPRoutes adds the rules of the HTTPRoutes attached to knd's Gateway
// to t, after any VirtualService's for the same host, each host's in
// precedence order.
func (t *Table) addHTTPRoutes(hrs []gatewayv1.HTTPRoute) {
	byHost := map[string][]httpRule{}
	var any []httpRule
	for i := range hrs {
		hr := &hrs[i]
		if !Attached(hr) {
			continue
		}
		rules, err := compileHTTPRoute(hr)
		if err != nil {
			continue
		}
		if len(hr.Spec.Hostnames) == 0 {
			any = append(any, rules...)
		}
		for _, h := range hr.Spec.Hostnames {
			host := strings.ToLower(string(h))
			byHost[host] = append(byHost[host], rules...)
		}
	}
	// A route without hostnames matches every host, after the hosts' own
	// (the spec orders by hostname first).
	sortRules(any)
	for _, r := range any {
		t.anyHost = append(t.anyHost, r.rule)
	}
	wild := map[string][]*Rule{}
	for host, rules := range byHost {
		sortRules(rules)
		list := make([]*Rule, 0, len(rules)+len(t.anyHost))
		for i := range rules {
			list = append(list, rules[i].rule)
		}
		list = append(list, t.anyHost...)
		if suffix, ok := strings.CutPrefix(host, "*"); ok {
			wild[suffix] = list
		} else {
			t.exact[host] = append(t.exact[host], list...)
		}
	}
	t.addWildcards(wild)
}

func sortRules(rules []httpRule) {
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].key.before(rules[j].key) })
}
