// Package customroute compiles VirtualServices and HTTPRoutes into the
// rules knd's gateway applies and matches requests against them. It holds
// no state beyond a compiled table, so the gateway (serving) and the
// routes' reconcilers (status) share one reading of a route.
package customroute

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Rule is one compiled rule of a VirtualService (spec.http) or an HTTPRoute
// (spec.rules, one per match).
type Rule struct {
	// Namespace and Service name the route; Index is the rule's place in
	// its list.
	Namespace, Service string
	Index              int
	matches            []match
	Route              []Destination
	Redirect           *Redirect
	Rewrite            *Rewrite
	// Timeout bounds the whole request (0: the revision's own).
	Timeout time.Duration
	Delay   time.Duration
	// DelayPercent, AbortPercent and MirrorPercent are shares in percent.
	DelayPercent  float64
	AbortStatus   int
	AbortPercent  float64
	Mirror        *Destination
	MirrorPercent float64
	Headers       *istiov1.Headers
	// MissingStatus answers a request whose destination does not exist:
	// 503 for a VirtualService (Envoy's "no healthy upstream"), 500 for an
	// HTTPRoute (the Gateway API's).
	MissingStatus int
}

// Destination is where a rule sends a request, with its weight.
type Destination struct {
	// Host is lower-cased, without a port; "" for a backend knd cannot
	// serve (the request gets a 500, as the Gateway API says).
	Host    string
	Weight  int32
	Headers *istiov1.Headers
}

// Redirect answers with the request's URL, parts replaced: those set here.
type Redirect struct {
	Scheme, Host string
	Port         uint32
	Code         int
	// Path replaces the whole path, or with ReplacePrefix the prefix a
	// path-prefix match matched.
	Path          string
	ReplacePrefix bool
}

// Rewrite changes the request before it is routed: Host, and Path as in
// Redirect.
type Rewrite struct {
	Host          string
	Path          string
	ReplacePrefix bool
}

// Table is every served rule, by host.
type Table struct {
	// anyHost are the rules of HTTPRoutes without hostnames: after each
	// host's own, and alone for hosts nothing else serves.
	anyHost []*Rule
	exact   map[string][]*Rule
	// wildcard holds "*.suffix" hosts as ".suffix", longest first.
	wildcard []wildcardHost
}

type wildcardHost struct {
	suffix string
	rules  []*Rule
}

// Empty says whether the table has no host at all.
func (t *Table) Empty() bool { return t == nil || (len(t.exact) == 0 && len(t.wildcard) == 0) }

// AnyHost are the rules for hosts that nothing else serves: those of
// HTTPRoutes without hostnames.
func (t *Table) AnyHost() []*Rule {
	if t == nil {
		return nil
	}
	return t.anyHost
}

// Rules returns the rules for a host (lower-case, without a port), in the
// order they are tried; nil when no custom route names the host.
func (t *Table) Rules(host string) []*Rule {
	if t == nil {
		return nil
	}
	if r, ok := t.exact[host]; ok {
		return r
	}
	for _, w := range t.wildcard {
		if strings.HasSuffix(host, w.suffix) {
			return w.rules
		}
	}
	return nil
}

// Has says whether some custom route names the host.
func (t *Table) Has(host string) bool { return t.Rules(host) != nil }

// HasBytes is Has for a host the gateway's event loop holds as bytes,
// without allocating.
func (t *Table) HasBytes(host []byte) bool {
	if t.Empty() {
		return false
	}
	if _, ok := t.exact[string(host)]; ok {
		return true
	}
	for _, w := range t.wildcard {
		if bytes.HasSuffix(host, []byte(w.suffix)) {
			return true
		}
	}
	return false
}

// Compile builds the table from VirtualServices and HTTPRoutes, skipping
// those not meant for knd's gateway and those with a problem (their
// reconcilers report them). The rules of several VirtualServices for one
// host are tried oldest VirtualService first, then the HTTPRoutes' in
// the Gateway API's order.
func Compile(vss []istiov1.VirtualService, hrs []gatewayv1.HTTPRoute) *Table {
	sorted := make([]*istiov1.VirtualService, 0, len(vss))
	for i := range vss {
		sorted = append(sorted, &vss[i])
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	t := &Table{exact: map[string][]*Rule{}}
	wild := map[string][]*Rule{}
	for _, vs := range sorted {
		if !istiov1.AppliesToKnd(vs.Spec.Gateways) {
			continue
		}
		rules, err := CompileOne(vs)
		if err != nil {
			continue
		}
		for _, h := range Hosts(vs) {
			if suffix, ok := strings.CutPrefix(h, "*"); ok {
				wild[suffix] = append(wild[suffix], rules...)
			} else {
				t.exact[h] = append(t.exact[h], rules...)
			}
		}
	}
	t.addWildcards(wild)
	t.addHTTPRoutes(hrs)
	return t
}

// addWildcards adds "*.suffix" hosts' rules (by ".suffix") after those
// already there, and keeps the longest suffixes first.
func (t *Table) addWildcards(wild map[string][]*Rule) {
	for i := range t.wildcard {
		if r, ok := wild[t.wildcard[i].suffix]; ok {
			t.wildcard[i].rules = append(t.wildcard[i].rules, r...)
			delete(wild, t.wildcard[i].suffix)
		}
	}
	for s, r := range wild {
		t.wildcard = append(t.wildcard, wildcardHost{suffix: s, rules: r})
	}
	sort.Slice(t.wildcard, func(i, j int) bool { return len(t.wildcard[i].suffix) > len(t.wildcard[j].suffix) })
}

// Hosts are the hosts a VirtualService claims, lower-cased; a short name
// is a Service of its namespace, as in Istio.
func Hosts(vs *istiov1.VirtualService) []string {
	var out []string
	for _, h := range vs.Spec.Hosts {
		h = strings.ToLower(h)
		if !strings.Contains(h, ".") && h != "*" {
			h += "." + vs.Namespace + ".svc.cluster.local"
		}
		out = append(out, h)
	}
	return out
}

// CompileOne compiles a VirtualService's rules, or says what is wrong with
// the first rule that cannot be served, by its field path.
func CompileOne(vs *istiov1.VirtualService) ([]*Rule, error) {
	if len(vs.Spec.Hosts) == 0 {
		return nil, fmt.Errorf("spec.hosts: a VirtualService needs at least one host")
	}
	for i, h := range vs.Spec.Hosts {
		if h == "*" || strings.Contains(strings.TrimPrefix(h, "*."), "*") {
			return nil, fmt.Errorf("spec.hosts[%d]: %q: only a leading \"*.\" wildcard is supported", i, h)
		}
	}
	var rules []*Rule
	for i := range vs.Spec.HTTP {
		r, err := compileRule(vs, i)
		if err != nil {
			return nil, fmt.Errorf("spec.http[%d].%w", i, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func compileRule(vs *istiov1.VirtualService, i int) (*Rule, error) {
	h := &vs.Spec.HTTP[i]
	r := &Rule{Namespace: vs.Namespace, Service: vs.Name, Index: i, Headers: h.Headers, MissingStatus: 503}
	if rw := h.Rewrite; rw != nil {
		// Istio's uri rewrite replaces the prefix a prefix match matched.
		r.Rewrite = &Rewrite{Host: rw.Authority, Path: rw.URI, ReplacePrefix: true}
	}
	if rd := h.Redirect; rd != nil {
		r.Redirect = &Redirect{Scheme: rd.Scheme, Host: rd.Authority, Port: rd.Port, Code: int(rd.RedirectCode), Path: rd.URI}
		if r.Redirect.Code == 0 {
			r.Redirect.Code = 301 // Envoy's
		}
	}
	for j := range h.Match {
		m, err := compileMatch(&h.Match[j])
		if err != nil {
			return nil, fmt.Errorf("match[%d].%w", j, err)
		}
		r.matches = append(r.matches, m)
	}
	switch {
	case h.Redirect != nil && len(h.Route) > 0:
		return nil, fmt.Errorf("redirect: a rule cannot have both route and redirect")
	case h.Redirect == nil && len(h.Route) == 0 && (h.Fault == nil || h.Fault.Abort == nil):
		return nil, fmt.Errorf("route: a rule needs a route or a redirect")
	}
	if h.Redirect != nil && h.Redirect.RedirectCode != 0 && (h.Redirect.RedirectCode < 300 || h.Redirect.RedirectCode > 399) {
		return nil, fmt.Errorf("redirect.redirectCode: %d is not a redirect status", h.Redirect.RedirectCode)
	}
	for j, d := range h.Route {
		if d.Destination.Host == "" {
			return nil, fmt.Errorf("route[%d].destination.host: required", j)
		}
		if d.Weight < 0 {
			return nil, fmt.Errorf("route[%d].weight: must not be negative", j)
		}
		r.Route = append(r.Route, Destination{Host: hostOnly(d.Destination.Host), Weight: d.Weight, Headers: d.Headers})
	}
	var err error
	if r.Timeout, err = duration(h.Timeout); err != nil {
		return nil, fmt.Errorf("timeout: %w", err)
	}
	if f := h.Fault; f != nil {
		if f.Delay != nil {
			if r.Delay, err = duration(f.Delay.FixedDelay); err != nil {
				return nil, fmt.Errorf("fault.delay.fixedDelay: %w", err)
			}
			r.DelayPercent = percent(f.Delay.Percentage)
		}
		if f.Abort != nil {
			if f.Abort.HTTPStatus < 200 || f.Abort.HTTPStatus > 599 {
				return nil, fmt.Errorf("fault.abort.httpStatus: %d is not an HTTP status", f.Abort.HTTPStatus)
			}
			r.AbortStatus, r.AbortPercent = int(f.Abort.HTTPStatus), percent(f.Abort.Percentage)
		}
	}
	if h.Mirror != nil {
		if h.Mirror.Host == "" {
			return nil, fmt.Errorf("mirror.host: required")
		}
		r.Mirror = &Destination{Host: hostOnly(h.Mirror.Host)}
		r.MirrorPercent = percent(h.MirrorPercentage)
	}
	return r, nil
}

// Destinations are the hosts a VirtualService sends requests to (routes
// and mirrors), each with the field path that names it.
func Destinations(vs *istiov1.VirtualService) (paths, hosts []string) {
	for i, h := range vs.Spec.HTTP {
		for j, d := range h.Route {
			paths = append(paths, fmt.Sprintf("spec.http[%d].route[%d].destination.host", i, j))
			hosts = append(hosts, hostOnly(d.Destination.Host))
		}
		if h.Mirror != nil {
			paths = append(paths, fmt.Sprintf("spec.http[%d].mirror.host", i))
			hosts = append(hosts, hostOnly(h.Mirror.Host))
		}
	}
	return paths, hosts
}

// ServiceOf splits a destination's in-cluster host (<name>, <name>.<ns>,
// <name>.<ns>.svc or <name>.<ns>.svc.cluster.local) into a name and a
// namespace; ns is the VirtualService's, for a short name.
func ServiceOf(host, ns string) (name, namespace string) {
	host = strings.TrimSuffix(strings.TrimSuffix(host, ".cluster.local"), ".svc")
	name, namespace, ok := strings.Cut(host, ".")
	if !ok {
		namespace = ns
	}
	return name, namespace
}

func hostOnly(h string) string {
	h = strings.ToLower(h)
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return h
}

func duration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as \"1.5s\"", s)
	}
	return d, nil
}

// percent is a Percent's value; none means all.
func percent(p *istiov1.Percent) float64 {
	if p == nil {
		return 100
	}
	return p.Value
}

// Chance says yes for a share of percent of the calls.
func Chance(percent float64) bool {
	return percent >= 100 || (percent > 0 && rand.Float64()*100 < percent)
}

// Pick chooses one of the rule's destinations by weight (nil without any).
func (r *Rule) Pick() *Destination {
	if len(r.Route) == 1 {
		return &r.Route[0]
	}
	var total int64
	for _, d := range r.Route {
		total += int64(d.Weight)
	}
	if total <= 0 {
		if len(r.Route) == 0 {
			return nil
		}
		return &r.Route[0]
	}
	n := rand.Int64N(total)
	for i := range r.Route {
		if n -= int64(r.Route[i].Weight); n < 0 {
			return &r.Route[i]
		}
	}
	return &r.Route[len(r.Route)-1]
}

// Match says whether a request meets one of the rule's conditions, and
// returns it (nil when the rule has none: it matches everything).
func (r *Rule) Match(req *http.Request) (ok bool, uriPrefix string) {
	if len(r.matches) == 0 {
		return true, ""
	}
	for i := range r.matches {
		if r.matches[i].matches(req) {
			if u := r.matches[i].uri; u != nil && (u.kind == prefix || u.kind == pathPrefix) {
				return true, u.value
			}
			return true, ""
		}
	}
	return false, ""
}

// RewritePath is the path a rewrite or redirect gives a request: with
// replacePrefix, newPath replaces the prefix a path-prefix match matched
// (without doubling the "/" between them), and otherwise the whole path.
func RewritePath(path, matchedPrefix, newPath string, replacePrefix bool) string {
	if !replacePrefix || matchedPrefix == "" || !strings.HasPrefix(path, matchedPrefix) {
		return newPath
	}
	rest := path[len(matchedPrefix):]
	if strings.HasSuffix(newPath, "/") && strings.HasPrefix(rest, "/") {
		rest = rest[1:]
	}
	if out := newPath + rest; out != "" {
		return out
	}
	return "/"
}

type matchKind int

const (
	exact matchKind = iota
	prefix
	regex
	present    // an empty StringMatch on a header: it only has to be there
	pathPrefix // the Gateway API's PathPrefix: whole path elements
)

type stringMatch struct {
	kind  matchKind
	value string
	re    *regexp.Regexp
}

func compileString(m *istiov1.StringMatch, fold bool) (*stringMatch, error) {
	set := 0
	out := &stringMatch{kind: present}
	if m.Exact != "" {
		set, out.kind, out.value = set+1, exact, m.Exact
	}
	if m.Prefix != "" {
		set, out.kind, out.value = set+1, prefix, m.Prefix
	}
	if m.Regex != "" {
		set, out.kind = set+1, regex
		expr := "^(?:" + m.Regex + ")$"
		if fold {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("regex: %q is not an RE2 expression: %v", m.Regex, err)
		}
		out.re = re
	}
	if set > 1 {
		return nil, fmt.Errorf("exact, prefix and regex: only one of them may be set")
	}
	if fold {
		out.value = strings.ToLower(out.value)
	}
	return out, nil
}

func (m *stringMatch) matches(s string, fold bool) bool {
	if fold && m.kind != regex {
		s = strings.ToLower(s)
	}
	switch m.kind {
	case exact:
		return s == m.value
	case prefix:
		return strings.HasPrefix(s, m.value)
	case regex:
		return m.re.MatchString(s)
	case pathPrefix:
		v := strings.TrimSuffix(m.value, "/")
		return strings.HasPrefix(s, v) && (len(s) == len(v) || s[len(v)] == '/')
	}
	return true
}

type namedMatch struct {
	name string
	m    *stringMatch
}

type match struct {
	uri, scheme, method, authority *stringMatch
	headers, query, without        []namedMatch
	foldURI                        bool
	// never: the condition names only gateways other than knd's.
	never bool
}

func compileMatch(m *istiov1.HTTPMatchRequest) (match, error) {
	var out match
	var err error
	out.foldURI = m.IgnoreURICase
	one := func(field string, s *istiov1.StringMatch, fold bool) *stringMatch {
		if s == nil || err != nil {
			return nil
		}
		var c *stringMatch
		if c, err = compileString(s, fold); err != nil {
			err = fmt.Errorf("%s.%w", field, err)
		}
		return c
	}
	out.uri = one("uri", m.URI, m.IgnoreURICase)
	out.scheme = one("scheme", m.Scheme, false)
	out.method = one("method", m.Method, false)
	out.authority = one("authority", m.Authority, true)
	named := func(field string, ms map[string]istiov1.StringMatch) []namedMatch {
		names := make([]string, 0, len(ms))
		for n := range ms {
			names = append(names, n)
		}
		sort.Strings(names)
		var list []namedMatch
		for _, n := range names {
			s := ms[n]
			if c := one(field+"."+n, &s, false); c != nil {
				list = append(list, namedMatch{name: n, m: c})
			}
		}
		return list
	}
	out.headers = named("headers", m.Headers)
	out.query = named("queryParams", m.QueryParams)
	out.without = named("withoutHeaders", m.WithoutHeaders)
	if len(m.Gateways) > 0 {
		out.never = true
		for _, g := range m.Gateways {
			if istiov1.ServedByKnd(g) {
				out.never = false
			}
		}
	}
	return out, err
}

func (m *match) matches(r *http.Request) bool {
	if m.never {
		return false
	}
	if m.uri != nil && !m.uri.matches(r.URL.Path, m.foldURI) {
		return false
	}
	if m.scheme != nil && !m.scheme.matches(scheme(r), false) {
		return false
	}
	if m.method != nil && !m.method.matches(r.Method, false) {
		return false
	}
	if m.authority != nil && !m.authority.matches(r.Host, true) {
		return false
	}
	for _, h := range m.headers {
		v, ok := r.Header[http.CanonicalHeaderKey(h.name)]
		if !ok || !h.m.matches(strings.Join(v, ","), false) {
			return false
		}
	}
	for _, h := range m.without {
		if v, ok := r.Header[http.CanonicalHeaderKey(h.name)]; ok && h.m.matches(strings.Join(v, ","), false) {
			return false
		}
	}
	if len(m.query) > 0 {
		q := r.URL.Query()
		for _, p := range m.query {
			v, ok := q[p.name]
			if !ok || !p.m.matches(v[0], false) {
				return false
			}
		}
	}
	return true
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
