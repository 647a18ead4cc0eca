package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	"github.com/knd-dev/knd/pkg/customroute"
)

// Custom routes' rules (VirtualServices, HTTPRoutes), served on the
// net/http path: the event loop hands every request for a host a custom
// route claims to net/http.

const (
	// maxHops bounds how often rules may send a request back to the
	// gateway (a rewrite to another host); past it the answer is 508.
	maxHops = 4
	// maxMirrors bounds mirrored copies in flight; past it a copy is not
	// made (a mirror must never slow the request it copies).
	maxMirrors = 256
	// maxMirroredBody is the largest request body that is mirrored.
	maxMirroredBody = 1 << 20
	// mirrorTimeout bounds a mirrored copy.
	mirrorTimeout = 30 * time.Second
)

// serveCustom serves r by the first rule that matches it; with none, the
// answer is Envoy's: a 404 without a body.
func (g *Gateway) serveCustom(w http.ResponseWriter, r *http.Request, rules []*customroute.Rule, hops int) {
	if !g.serveMatching(w, r, rules, hops) {
		notFound(w)
	}
}

// notFound is Envoy's answer when no route matches: a 404 without a body.
func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNotFound)
}

// serveMatching serves r by the first of rules that matches it, and says
// whether one did.
func (g *Gateway) serveMatching(w http.ResponseWriter, r *http.Request, rules []*customroute.Rule, hops int) bool {
	for _, rule := range rules {
		if ok, prefix := rule.Match(r); ok {
			g.applyRule(w, r, rule, prefix, hops)
			return true
		}
	}
	return false
}

// applyRule does what a matching rule says, in Envoy's order: timeout,
// fault, redirect, rewrite, header changes, mirror, route.
func (g *Gateway) applyRule(w http.ResponseWriter, r *http.Request, rule *customroute.Rule, uriPrefix string, hops int) {
	if rule.Timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), rule.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	if rule.Delay > 0 && customroute.Chance(rule.DelayPercent) {
		t := time.NewTimer(rule.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			if r.Context().Err() == context.DeadlineExceeded {
				http.Error(w, "request timeout", http.StatusGatewayTimeout)
			}
			return
		}
	}
	if rule.AbortStatus != 0 && customroute.Chance(rule.AbortPercent) {
		http.Error(w, "fault filter abort", rule.AbortStatus)
		return
	}
	if rd := rule.Redirect; rd != nil {
		redirect(w, r, rd, uriPrefix)
		return
	}
	if rw := rule.Rewrite; rw != nil {
		if rw.Host != "" {
			r.Host = rw.Host
		}
		if rw.Path != "" {
			r.URL.Path = customroute.RewritePath(r.URL.Path, uriPrefix, rw.Path, rw.ReplacePrefix)
			r.URL.RawPath = ""
		}
	}
	dest := rule.Pick()
	switch {
	case dest == nil:
		notFound(w)
		return
	case dest.Host == "":
		http.Error(w, "the route's backend is not one knd can serve", http.StatusInternalServerError)
		return
	}
	var response []*istiov1.HeaderOperations
	for _, h := range []*istiov1.Headers{rule.Headers, dest.Headers} {
		if h != nil {
			editHeaders(r.Header, h.Request)
			if h.Response != nil {
				response = append(response, h.Response)
			}
		}
	}
	if len(response) > 0 {
		w = &headerEditor{ResponseWriter: w, ops: response}
	}
	if rule.Mirror != nil && customroute.Chance(rule.MirrorPercent) {
		g.mirror(r, rule.Mirror.Host, rule.Namespace, rule.MissingStatus)
	}
	g.toDestination(w, r, dest.Host, rule.Namespace, rule.MissingStatus, hops)
}

// toDestination sends r where a rule's destination host points: back to
// the gateway (route again by the request's authority), to a revision, or
// to a Knative Service, by their in-cluster names. ns is the
// VirtualService's namespace, for short names; missing is the status when
// the destination does not exist.
func (g *Gateway) toDestination(w http.ResponseWriter, r *http.Request, host, ns string, missing, hops int) {
	if istiov1.IsGatewayHost(host) {
		if hops >= maxHops {
			http.Error(w, fmt.Sprintf("routing loop: VirtualServices sent the request back to the gateway %d times", maxHops+1), http.StatusLoopDetected)
			return
		}
		g.route(w, r, hops+1)
		return
	}
	name, namespace := customroute.ServiceOf(host, ns)
	t := g.table.Load()
	if t.revisions[revisionKey{namespace, name}] {
		g.forward(w, r, hostEntry{}, g.revision(namespace, name))
		return
	}
	entry, rev, code, msg := g.lookup([]byte(name+"."+namespace+".svc.cluster.local"), []byte(r.Header.Get(TagHeader)))
	if rev == nil {
		if code == http.StatusNotFound {
			code, msg = missing, fmt.Sprintf("no Revision or Knative Service %s/%s: the destination %q of a VirtualService does not exist", namespace, name, host)
		}
		http.Error(w, msg, code)
		return
	}
	g.forward(w, r, entry, rev)
}

// redirect answers with the request's URL, parts replaced as rd says, and
// no body.
func redirect(w http.ResponseWriter, r *http.Request, rd *customroute.Redirect, uriPrefix string) {
	scheme := rd.Scheme
	if scheme == "" {
		scheme = "http"
	}
	host := r.Host
	if rd.Host != "" {
		host = rd.Host
	}
	if rd.Port != 0 {
		host, _ = splitPort(host)
		if !(scheme == "http" && rd.Port == 80) && !(scheme == "https" && rd.Port == 443) {
			host = fmt.Sprintf("%s:%d", host, rd.Port)
		}
	}
	target := r.URL.RequestURI()
	if rd.Path != "" {
		target = customroute.RewritePath(r.URL.Path, uriPrefix, rd.Path, rd.ReplacePrefix)
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
	}
	w.Header().Set("Location", scheme+"://"+host+target)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(rd.Code)
}

// mirror sends a copy of r to host, with "-shadow" added to its authority
// as Istio does, and drops the answer. Bodies over maxMirroredBody, or of
// unknown length, are not mirrored.
func (g *Gateway) mirror(r *http.Request, host, ns string, missing int) {
	if r.ContentLength < 0 || r.ContentLength > maxMirroredBody {
		return
	}
	select {
	case g.mirrors <- struct{}{}:
	default:
		return // too many copies in flight
	}
	var body []byte
	if r.ContentLength > 0 {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, r.ContentLength)); err != nil {
			<-g.mirrors
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	m := r.Clone(ctx)
	m.Host = shadowHost(r.Host)
	m.Body = http.NoBody
	if body != nil {
		m.Body = io.NopCloser(bytes.NewReader(body))
	}
	go func() {
		defer func() { <-g.mirrors }()
		defer cancel()
		g.toDestination(&discard{header: http.Header{}}, m, host, ns, missing, maxHops)
	}()
}

// shadowHost is the authority of a mirrored copy: its host with "-shadow".
func shadowHost(h string) string {
	host, port := splitPort(h)
	return host + "-shadow" + port
}

// splitPort splits an authority into its host and its ":port" ("" when it
// has none; an IPv6 literal's colons are the host's).
func splitPort(h string) (host, port string) {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		return h[:i], h[i:]
	}
	return h, ""
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// discard is a response nobody reads: a mirrored copy's.
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// editHeaders applies a VirtualService's header changes: set replaces,
// add appends, remove deletes.
func editHeaders(h http.Header, ops *istiov1.HeaderOperations) {
	if ops == nil {
		return
	}
	for k, v := range ops.Set {
		h.Set(k, v)
	}
	for k, v := range ops.Add {
		h.Add(k, v)
	}
	for _, k := range ops.Remove {
		h.Del(k)
	}
}

// editResponseHeaders is editHeaders for a response: a removed header
// stays removed (net/http would otherwise add a Content-Type or Date of
// its own).
func editResponseHeaders(h http.Header, ops *istiov1.HeaderOperations) {
	editHeaders(h, ops)
	for _, k := range ops.Remove {
		h[http.CanonicalHeaderKey(k)] = nil
	}
}

// headerEditor changes a response's headers as it starts.
type headerEditor struct {
	http.ResponseWriter
	ops     []*istiov1.HeaderOperations
	started bool
}

func (e *headerEditor) start() {
	if !e.started {
		e.started = true
		for _, ops := range e.ops {
			editResponseHeaders(e.ResponseWriter.Header(), ops)
		}
	}
}

func (e *headerEditor) WriteHeader(code int) {
	if code >= 200 {
		e.start()
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *headerEditor) Write(b []byte) (int, error) {
	e.start()
	return e.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack underneath.
func (e *headerEditor) Unwrap() http.ResponseWriter { return e.ResponseWriter }
