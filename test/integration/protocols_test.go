package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// HTTP/2 without TLS reaches a revision whose port is named h2c; clients
// may speak h2c to the gateway; protocol upgrades (as websockets use) pass
// through both ways.
func TestH2CAndUpgradesPassThrough(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "gateway-protocols")
	c := typedClient(t)
	h2 := helloService(ns, "h2", "h2c")
	h2.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "h2c", ContainerPort: 8080}}
	plain := helloService(ns, "plain", "http1")
	if err := c.Create(testContext(t), h2); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(testContext(t), plain); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "h2", "ready", readyAt("h2-00001"))
	waitService(t, c, ns, "plain", "ready", readyAt("plain-00001"))

	if code, body, err := viaGateway("h2.gateway-protocols.example.com", "/proto", nil); code != 200 || body != "HTTP/2.0\n" {
		t.Errorf("h2c revision saw %q (%d, %v), want HTTP/2.0", body, code, err)
	}
	if code, body, err := viaGateway("plain.gateway-protocols.example.com", "/proto", nil); code != 200 || body != "HTTP/1.1\n" {
		t.Errorf("plain revision saw %q (%d, %v), want HTTP/1.1", body, code, err)
	}

	// A client speaking HTTP/2 with prior knowledge.
	h2cClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: func() *http.Protocols {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		return p
	}()}}
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/proto", knd.GatewayPort), nil)
	req.Host = "plain.gateway-protocols.example.com"
	resp, err := h2cClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "HTTP/1.1\n" {
		t.Errorf("h2c client: %s, body %q", resp.Proto, body)
	}

	// An upgraded connection echoes what the client sends.
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", knd.GatewayPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /upgrade HTTP/1.1\r\nHost: plain.gateway-protocols.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
		t.Fatalf("upgrade answered %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		fmt.Fprint(conn, msg)
		if got, err := br.ReadString('\n'); got != msg {
			t.Errorf("echo of %q: %q %v", msg, got, err)
		}
	}
}

// A streamed response reaches the client as the revision writes it, not
// when it ends.
func TestStreamingResponsePassesThrough(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "gateway-streaming")
	c := typedClient(t)
	if err := c.Create(testContext(t), helloService(ns, "stream", "streaming")); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "stream", "ready", readyAt("stream-00001"))
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/stream?n=3&ms=700", knd.GatewayPort), nil)
	req.Host = "stream.gateway-streaming.example.com"
	start := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	firstAfter := time.Since(start)
	if err != nil || first != "chunk 0\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	rest, err := io.ReadAll(br)
	total := time.Since(start)
	if err != nil || string(rest) != "chunk 1\nchunk 2\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	// The last chunk is written 1.4 s after the first.
	if total < 1400*time.Millisecond || firstAfter > total-time.Second {
		t.Errorf("first line after %v, whole response after %v: not streamed", firstAfter, total)
	}
}
