package poddns

import (
	"context"
	"errors"
	"net"
	"testing"
)

// A pod's resolver, pointed at the server, finds the hosts the gateway
// routes (through its search list too) and nothing else.
func TestResolvesRoutedHosts(t *testing.T) {
	routed := map[string]bool{
		"hello.demo.svc.cluster.local": true, "hello.demo": true, "hello.demo.example.com": true,
	}
	s, err := Start("127.0.0.1:0", net.ParseIP("198.18.0.1"), func(host string) bool { return routed[host] })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.servers[0].PacketConn.LocalAddr().String()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	for _, host := range []string{"hello.demo.svc.cluster.local", "Hello.Demo.Example.Com", "hello.demo.svc.cluster.local."} {
		ips, err := r.LookupHost(context.Background(), host)
		if err != nil || len(ips) != 1 || ips[0] != "198.18.0.1" {
			t.Errorf("%s: %v %v, want [198.18.0.1]", host, ips, err)
		}
	}
	for _, host := range []string{"other.demo.svc.cluster.local", "example.org"} {
		_, err := r.LookupHost(context.Background(), host)
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			t.Errorf("%s: %v, want not found", host, err)
		}
	}
}
