package gateway

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// retryTransport sends a bodiless request to another ready pod when its
// pod refused the connection and no attempt wrote the request anywhere
// (http.Transport itself retries a request on a new connection when a
// pooled one fails): nothing reached a pod, so the retry is safe. This
// covers the moment between a pod's process ending (deletion, crash) and
// the gateway hearing about it from the API.
type retryTransport struct {
	base http.RoundTripper
	h2c  http.RoundTripper // for revisions whose port is named h2c
}

const maxRetries = 3

func (rt *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t, ok := req.Context().Value(targetKey{}).(*target)
	base := rt.base
	if ok && t.rev.isH2C() {
		base = rt.h2c
	}
	// The transport closes a request body on error, so only bodiless
	// requests can be sent again.
	ok = ok && (req.Body == nil || req.Body == http.NoBody)
	var wrote atomic.Bool
	if ok {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteHeaders: func() { wrote.Store(true) },
		}))
	}
	resp, err := base.RoundTrip(req)
	for attempt := 0; ok && err != nil && attempt < maxRetries && notSent(err) && !wrote.Load() && req.Context().Err() == nil; attempt++ {
		t.rev.forget(t.pod)
		p, release, aerr := t.rev.acquire(req.Context(), nil)
		if aerr != nil {
			return nil, err
		}
		t.release()
		t.pod, t.release, t.addr = p, release, p.addr
		req.URL.Host = p.addr
		resp, err = base.RoundTrip(req)
	}
	return resp, err
}

// notSent says whether err happened while connecting, before any byte of
// the request left.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// notWrittenError is a pod connection's failure before any byte of the
// request was written to it.
type notWrittenError struct{ error }

func (e notWrittenError) Unwrap() error { return e.error }
