// Package gateway is knd's data plane: one HTTP hop from the client to a
// revision's pod. It does the jobs of upstream's ingress (routing by Host
// and tag, weighted splits), activator (holding requests while a revision
// has no ready pod) and queue-proxy (containerConcurrency, timeouts,
// Knative headers). Routes, revisions and ready pods come from the
// Kubernetes API, so it works the same against a real cluster.
package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/knd-dev/knd/pkg/apis/config"
	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	"github.com/knd-dev/knd/pkg/apis/podport"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	servingv1beta1 "github.com/knd-dev/knd/pkg/apis/serving/v1beta1"
	"github.com/knd-dev/knd/pkg/configstore"
	"github.com/knd-dev/knd/pkg/customroute"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Headers upstream sets for the pod and never takes from clients.
const (
	RevisionHeader  = "Knative-Serving-Revision"
	NamespaceHeader = "Knative-Serving-Namespace"
	TagHeader       = "Knative-Serving-Tag"
)

// Options configure a gateway.
type Options struct {
	RestConfig *rest.Config
	Scheme     *runtime.Scheme
	Config     *configstore.Store
	// Address is where the gateway listens, e.g. 127.0.0.1:8080.
	Address string
	// OnColdStart is told at once when a request waits for a revision
	// that has no ready pod (the autoscaler scales it from zero).
	OnColdStart func(namespace, revision string)
	// MetricsAddress, when set, serves Prometheus metrics at /metrics.
	MetricsAddress string
	// PodAddress, when set, is where pods reach the gateway: the host's
	// address on the pod network, port 80, where Service names resolve
	// (poddns). Its requests take the net/http path.
	PodAddress string
	// MaxConnections caps the client connections held at once (0:
	// DefaultMaxConnections of the process's descriptor limit).
	MaxConnections int
}

// Gateway routes requests to revisions.
type Gateway struct {
	opts  Options
	ln    net.Listener
	podLn net.Listener // nil without Options.PodAddress
	table atomic.Pointer[table]
	// custom holds the VirtualServices' rules (custom.go).
	custom atomic.Pointer[customroute.Table]
	// mirrors bounds the mirrored copies of requests in flight.
	mirrors chan struct{}
	proxy   *httputil.ReverseProxy
	cache   cache.Cache
	kick    chan struct{}
	stats   *metrics
	// slow takes the connections the net/http server serves (listen.go).
	slow *connQueue
	// clients counts the client connections on both paths.
	clients clientLimit

	mu        sync.Mutex
	revisions map[revisionKey]*revision
}

type targetKey struct{}

// New listens on opts.Address; Run serves.
func New(opts Options) (*Gateway, error) {
	ln, err := net.Listen("tcp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{opts: opts, ln: ln, kick: make(chan struct{}, 1), mirrors: make(chan struct{}, maxMirrors), revisions: map[revisionKey]*revision{}, stats: newMetrics()}
	g.clients.max = int64(opts.MaxConnections)
	if g.clients.max <= 0 {
		var nofile unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
			ln.Close()
			return nil, err
		}
		g.clients.max = int64(DefaultMaxConnections(nofile.Cur))
	}
	if opts.PodAddress != "" {
		podLn, err := net.Listen("tcp", opts.PodAddress)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("gateway on the pod network: %w", err)
		}
		g.podLn = limitedListener{Listener: podLn, limit: &g.clients}
	}
	g.table.Store(&table{hosts: map[string]hostEntry{}})
	g.custom.Store(&customroute.Table{})
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        10000,
		MaxIdleConnsPerHost: 1000,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	// Revisions whose port is named h2c get HTTP/2 without TLS.
	h2c := transport.Clone()
	h2c.Protocols = new(http.Protocols)
	h2c.Protocols.SetUnencryptedHTTP2(true)
	g.proxy = &httputil.ReverseProxy{
		Transport: &retryTransport{base: transport, h2c: h2c},
		// The default FlushInterval: a response of unknown length (streamed,
		// server-sent events) is flushed as it comes; one of known length
		// goes out in as few writes as possible (flushing every write cost
		// a sixth of the gateway's CPU in syscalls).
		BufferPool: &copyBuffers,
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(*target)
			pr.SetURL(&url.URL{Scheme: "http", Host: t.addr})
			pr.Out.Host = pr.In.Host
			if t.rewriteHost != "" {
				pr.Out.Host = t.rewriteHost
				pr.Out.Header.Set("K-Original-Host", pr.In.Host)
			}
			pr.SetXForwarded()
			pr.Out.Header.Set("Forwarded", forwarded(pr.Out.Header.Get("X-Forwarded-For"), pr.In.Host))
			pr.Out.Header.Set(RevisionHeader, t.revision)
			pr.Out.Header.Set(NamespaceHeader, t.namespace)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if timedOut(r.Context()) {
				http.Error(w, "request timeout", http.StatusGatewayTimeout)
				return
			}
			if t, ok := r.Context().Value(targetKey{}).(*target); ok && t.body != nil && t.body.failed() != nil {
				// The client's fault (a malformed chunk, a body cut short),
				// not the revision's.
				http.Error(w, fmt.Sprintf("malformed request body: %v", t.body.failed()), http.StatusBadRequest)
				return
			}
			if r.Context().Err() != nil {
				return // the client went away
			}
			http.Error(w, fmt.Sprintf("error reaching revision: %v", err), http.StatusBadGateway)
		},
	}
	return g, nil
}

// Addr is where the gateway listens.
func (g *Gateway) Addr() *net.TCPAddr { return g.ln.Addr().(*net.TCPAddr) }

type target struct {
	namespace, revision, addr, rewriteHost string
	rev                                    *revision
	pod                                    *pod
	release                                func()
	body                                   *clientBody // nil for a request without one
}

// clientBody remembers why reading a client's request body failed.
type clientBody struct {
	io.ReadCloser
	err atomic.Pointer[error]
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (b *clientBody) failed() error {
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Run watches Routes, Revisions and revision pods and serves until ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	hasRevision, err := labels.NewRequirement(servingv1.RevisionLabelKey, selection.Exists, nil)
	if err != nil {
		return err
	}
	c, err := cache.New(g.opts.RestConfig, cache.Options{
		Scheme: g.opts.Scheme,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.NewSelector().Add(*hasRevision)},
		},
	})
	if err != nil {
		return err
	}
	g.cache = c
	for _, obj := range []client.Object{&servingv1.Route{}, &servingv1.Revision{}, &corev1.Pod{}, &servingv1beta1.DomainMapping{}, &istiov1.VirtualService{}, &gatewayv1.HTTPRoute{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { g.resyncSoon() },
			UpdateFunc: func(_, _ any) { g.resyncSoon() },
			DeleteFunc: func(any) { g.resyncSoon() },
		}); err != nil {
			return err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	g.resync(ctx)
	go g.resyncLoop(ctx)
	return g.serve(ctx)
}

// serve answers requests on the gateway's listener (and metrics on theirs)
// until ctx ends, then drains.
func (g *Gateway) serve(ctx context.Context) error {
	g.slow = newConnQueue(g.ln.Addr())
	// The same limits as the event loop's: a head within headerTime, and
	// keep-alive connections closed after keepAliveIdle (ServeHTTP bounds
	// each response's writes by the revision's timeout).
	srv := &http.Server{Handler: g, ReadHeaderTimeout: headerTime, IdleTimeout: keepAliveIdle, MaxHeaderBytes: 1 << 20,
		Protocols: new(http.Protocols), ConnContext: connContext}
	// HTTP/1.1 (connections the event loop hands over), and HTTP/2
	// without TLS for clients that know (h2c prior knowledge).
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	fast, err := newLoop(g)
	if err != nil {
		return err
	}
	errs := make(chan error, 3)
	go func() { errs <- srv.Serve(g.slow) }()
	if g.podLn != nil {
		go func() { errs <- srv.Serve(g.podLn) }()
	}
	go fast.run()
	if g.opts.MetricsAddress != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", g.stats.handler())
		msrv := &http.Server{Addr: g.opts.MetricsAddress, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- msrv.ListenAndServe() }()
		defer msrv.Close()
	}
	select {
	case <-ctx.Done():
		// The loop stops accepting and finishes what it holds; net/http
		// too, with what the loop may still hand it meanwhile.
		fast.stop()
		shutdown, cancel := context.WithTimeout(context.Background(), drainTime)
		defer cancel()
		err := srv.Shutdown(shutdown)
		<-fast.done
		return err
	case err := <-errs:
		fast.stop()
		<-fast.done
		return err
	}
}

func (g *Gateway) resyncSoon() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

func (g *Gateway) resyncLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
			g.resync(ctx)
		}
	}
}

// resync rebuilds the host table and every revision's pods and settings.
func (g *Gateway) resync(ctx context.Context) {
	var routes servingv1.RouteList
	var revs servingv1.RevisionList
	var pods corev1.PodList
	var mappings servingv1beta1.DomainMappingList
	var vss istiov1.VirtualServiceList
	var hrs gatewayv1.HTTPRouteList
	for _, l := range []struct {
		list client.ObjectList
		what string
	}{{&mappings, "domain mappings"}, {&routes, "routes"}, {&revs, "revisions"}, {&pods, "pods"},
		{&vss, "virtual services"}, {&hrs, "HTTP routes"}} {
		// Read-only views of the cache: copying every object on every event
		// cost more CPU than routing itself during bulk creation.
		if err := g.cache.List(ctx, l.list, client.UnsafeDisableDeepCopy); err != nil {
			klog.ErrorS(err, "gateway: listing "+l.what)
			return
		}
	}
	t := buildTable(routes.Items, mappings.Items)
	t.revisions = make(map[revisionKey]bool, len(revs.Items))
	for i := range revs.Items {
		t.revisions[revisionKey{revs.Items[i].Namespace, revs.Items[i].Name}] = true
	}
	g.table.Store(t)
	g.custom.Store(customroute.Compile(vss.Items, hrs.Items))
	ready := map[revisionKey]map[string]string{}
	for i := range pods.Items {
		p := &pods.Items[i]
		addr := podAddress(p)
		if addr == "" || p.DeletionTimestamp != nil || !podReady(p) {
			continue
		}
		key := revisionKey{p.Namespace, p.Labels[servingv1.RevisionLabelKey]}
		if ready[key] == nil {
			ready[key] = map[string]string{}
		}
		ready[key][p.Name] = addr
	}
	for i := range revs.Items {
		rev := &revs.Items[i]
		r := g.revision(rev.Namespace, rev.Name)
		r.mu.Lock()
		r.concurrency = int(ptr.Deref(rev.Spec.ContainerConcurrency, 0))
		r.h2c.Store(len(rev.Spec.Containers) > 0 && len(rev.Spec.Containers[0].Ports) > 0 && rev.Spec.Containers[0].Ports[0].Name == "h2c")
		if rev.Spec.TimeoutSeconds != nil && *rev.Spec.TimeoutSeconds > 0 {
			r.timeout = time.Duration(*rev.Spec.TimeoutSeconds) * time.Second
		}
		r.responseStart = time.Duration(ptr.Deref(rev.Spec.ResponseStartTimeoutSeconds, 0)) * time.Second
		r.idle = time.Duration(ptr.Deref(rev.Spec.IdleTimeoutSeconds, 0)) * time.Second
		r.mu.Unlock()
	}
	exists := t.revisions
	g.mu.Lock()
	all := make(map[revisionKey]*revision, len(g.revisions))
	for k, r := range g.revisions {
		// Forget deleted revisions once nothing has used them for a minute.
		if st := r.stats(); !exists[k] && st.InFlight == 0 && st.Queued == 0 && time.Since(st.LastRequest) > time.Minute {
			delete(g.revisions, k)
			continue
		}
		all[k] = r
	}
	g.mu.Unlock()
	for key, r := range all {
		r.setPods(ready[key])
	}
}

// podAddress is where a ready pod listens: its IP and knd's published
// port, or the serving container's port on a real cluster.
func podAddress(p *corev1.Pod) string {
	if p.Status.PodIP == "" {
		return ""
	}
	if port := p.Annotations[podport.Annotation]; port != "" {
		return net.JoinHostPort(p.Status.PodIP, port)
	}
	for _, c := range p.Spec.Containers {
		if len(c.Ports) > 0 {
			return net.JoinHostPort(p.Status.PodIP, fmt.Sprint(c.Ports[0].ContainerPort))
		}
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// revisionKey is a revision's namespace and name.
type revisionKey struct{ namespace, name string }

func (g *Gateway) revision(ns, name string) *revision {
	key := revisionKey{ns, name}
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.revisions[key]
	if !ok {
		r = newRevision(ns, name, g.stats)
		g.revisions[key] = r
	}
	return r
}

// Routes says whether the gateway routes host (lower-case, without a
// port), by a Route or a VirtualService.
func (g *Gateway) Routes(host string) bool {
	_, ok := g.table.Load().hosts[host]
	return ok || g.custom.Load().Has(host)
}

// Stats reports a revision's load, for the autoscaler.
func (g *Gateway) Stats(ns, name string) Stats { return g.revision(ns, name).stats() }

// PodReadiness takes the node agent's word (in the same process) that a
// revision's pod at addr became ready or not, before its status reaches
// the API.
func (g *Gateway) PodReadiness(ns, revision, pod, addr string, ready bool) {
	g.revision(ns, revision).podReadiness(pod, addr, ready)
}

// lookup finds the revision that serves a host (lower-cased, without its
// port) and Knative-Serving-Tag header; on failure, rev is nil and code
// and msg say why.
func (g *Gateway) lookup(host, tag []byte) (entry hostEntry, rev *revision, code int, msg string) {
	entry, ok := g.table.Load().hosts[string(host)]
	if !ok {
		return entry, nil, http.StatusNotFound, fmt.Sprintf("no Route serves host %q", host)
	}
	revName := pick(entry.route.splits[g.trafficName(entry, tag)])
	if revName == "" {
		return entry, nil, http.StatusServiceUnavailable, fmt.Sprintf("Route %s/%s has no ready revision", entry.route.namespace, entry.route.name)
	}
	return entry, g.revision(entry.route.namespace, revName), 0, ""
}

// trafficName is the traffic a request for entry's host takes: the host's
// own, or with tag-header-based-routing the tag its Knative-Serving-Tag
// names.
func (g *Gateway) trafficName(entry hostEntry, tag []byte) string {
	if len(tag) > 0 && entry.name == "" && g.opts.Config.Get().Features.Enabled(config.TagHeaderBasedRouting) {
		if _, ok := entry.route.splits[string(tag)]; ok {
			return string(tag)
		}
	}
	return entry.name
}

// ServeHTTP routes one request the fast path handed over, or one from an
// HTTP/2 client.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// net/http drops a Content-Length sent with Transfer-Encoding
		// without a trace, so every request with a transfer coding closes
		// its connection after the answer, as RFC 9112 §6.1 wants for
		// those with both (the loop answers those 400 itself).
		w.Header().Set("Connection", "close")
	}
	g.route(w, r, 0)
}

// route serves r by the VirtualService rules for its host, or else by the
// Route that serves the host. hops counts how often a VirtualService sent
// the request back to the gateway.
func (g *Gateway) route(w http.ResponseWriter, r *http.Request, hops int) {
	host, tag := hostKey([]byte(r.Host)), []byte(r.Header.Get(TagHeader))
	if rules := g.custom.Load().Rules(string(host)); rules != nil {
		g.serveCustom(w, r, rules, hops)
		return
	}
	var entry hostEntry
	var rev *revision
	var code int
	var msg string
	if p := pickOf(r, host, tag); p != nil {
		entry, rev = p.entry, p.rev
	} else {
		entry, rev, code, msg = g.lookup(host, tag)
	}
	if rev == nil {
		// HTTPRoutes without hostnames serve the hosts nothing else does.
		if code != http.StatusNotFound || !g.serveMatching(w, r, g.custom.Load().AnyHost(), hops) {
			http.Error(w, msg, code)
		}
		return
	}
	if entry.route.sticky {
		rev = g.stick(w, r, entry, tag, rev)
	}
	g.forward(w, r, entry, rev)
}

// forward sends r to a pod of rev, waiting for one if need be, within the
// revision's limits.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, entry hostEntry, rev *revision) {
	rev.mu.Lock()
	timeout, responseStart, idle := rev.timeout, rev.responseStart, rev.idle
	rev.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	start := time.Now()
	// A client that stops reading must not hold the handler past the
	// request's timeout (and the answer that says so).
	_ = http.NewResponseController(w).SetWriteDeadline(start.Add(timeout + 5*time.Second))
	series := rev.metrics()
	rec := &statusRecorder{ResponseWriter: w}
	w = rec
	defer func() {
		if rec.code != 0 {
			series.observe(rec.code, time.Since(start))
		}
	}()
	var cold atomic.Bool
	series.queued.Inc()
	p, release, err := rev.acquire(ctx, func() {
		cold.Store(true)
		series.colds.Inc()
		if g.opts.OnColdStart != nil {
			g.opts.OnColdStart(rev.namespace, rev.name)
		}
	})
	series.queued.Dec()
	if cold.Load() && err == nil {
		series.coldStart.Observe(time.Since(start).Seconds())
	}
	switch {
	case errors.Is(err, errQueueFull):
		http.Error(w, fmt.Sprintf("revision %s/%s is overloaded: %v", rev.namespace, rev.name, err), http.StatusServiceUnavailable)
		return
	case errors.Is(err, context.DeadlineExceeded):
		http.Error(w, "request timeout", http.StatusGatewayTimeout)
		return
	case err != nil:
		return // the client went away
	}
	t := &target{namespace: rev.namespace, revision: rev.name, addr: p.addr, rewriteHost: entry.rewriteHost,
		rev: rev, pod: p, release: release}
	if r.Body != nil && r.Body != http.NoBody {
		t.body = &clientBody{ReadCloser: r.Body}
		r.Body = t.body
	}
	defer func() { t.release() }() // a retry may have moved the request to another pod
	// responseStartTimeoutSeconds and idleTimeoutSeconds count from here,
	// once a pod has the request.
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	dog := startWatchdog(responseStart, idle, func() { cancelCause(errRequestTimeout) })
	defer dog.stop()
	rec.onWrite = dog.wrote
	r.Header.Del(RevisionHeader)
	r.Header.Del(NamespaceHeader)
	defer func() {
		// The proxy aborts a response whose copy failed. When that was the
		// request's timeout and the body's length was not declared, the
		// body ends with `request timeout` instead, as upstream's does, and
		// the response is ended properly.
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler || !timedOut(ctx) || rec.Header().Get("Content-Length") != "" {
				panic(p)
			}
			_, _ = io.WriteString(rec, "request timeout")
		}
	}()
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, targetKey{}, t)))
}

// timedOut says whether a request's context ended by one of its revision's
// timeouts.
func timedOut(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(context.Cause(ctx), errRequestTimeout)
}

// bufferPool recycles the proxies' copy buffers: without it every request
// allocates 32 KiB, and in a process holding the API server's heap the
// garbage collector, not the proxy, sets the throughput.
type bufferPool struct{ pool sync.Pool }

// copyBuffers serve the reverse proxy.
var copyBuffers bufferPool

func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }

// forwarded is the Forwarded header (RFC 7239) for a request from client
// addresses xff for host.
func forwarded(xff, host string) string { return string(appendForwarded(nil, xff, host)) }

func appendForwarded(b []byte, xff, host string) []byte {
	b = append(b, "for="...)
	b = appendQuoted(b, xff)
	b = append(b, ";proto=http;host="...)
	return appendQuoted(b, host)
}

// appendQuoted is strconv.AppendQuote, without its per-rune work for the
// plain ASCII that addresses and host names are.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// hostKey is the lower-cased host of a Host header, without its port.
func hostKey(h []byte) []byte {
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[i:], ']') < 0 {
		h = h[:i]
	}
	h = bytes.TrimSuffix(bytes.TrimPrefix(h, []byte("[")), []byte("]"))
	for _, c := range h {
		if 'A' <= c && c <= 'Z' {
			return bytes.ToLower(h)
		}
	}
	return h
}
