package kndtest

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// GatewayClient is the tests' client of a gateway. It never follows a
// redirect: its target names a host only the gateway knows, and no request
// may leave the machine (not even a lookup).
var GatewayClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Request sends method path to the server's gateway with Host host and the
// given header name/value pairs, and returns the response (its body read
// and closed) and the body; a request that fails fails the test.
func (s *Server) Request(t testing.TB, method, host, path string, header ...string) (*http.Response, string) {
	t.Helper()
	resp, body, err := s.Send(method, host, path, header...)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	return resp, body
}

// Send is Request for callers that expect failures (polls while a route
// comes up): it returns the error instead.
func (s *Server) Send(method, host, path string, header ...string) (*http.Response, string, error) {
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", s.GatewayPort, path), nil)
	if err != nil {
		return nil, "", err
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := GatewayClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}
