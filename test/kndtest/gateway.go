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
// and closed) and the body.
func (s *Server) Request(t testing.TB, method, host, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", s.GatewayPort, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := GatewayClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading the body: %v", method, host, path, err)
	}
	return resp, string(b)
}
