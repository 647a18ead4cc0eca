// Package poddns is the DNS server of a node's pod network, the part of a
// cluster's DNS that pods of knd's process runtime need: every host the
// gateway routes — Knative Services' names (`<name>.<namespace>.svc.cluster.local`,
// and shorter through the pods' search list), their URLs' hosts
// (`<name>.<namespace>.example.com`, tags, domain mappings) — resolves to
// the gateway's address on the pod network. Other names do not exist: pods
// have no route off the machine.
package poddns

import (
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ttl is short: a name's answer never changes, but a Route may go.
const ttl = 5

// Server answers DNS queries over UDP and TCP.
type Server struct {
	gateway net.IP
	routes  func(host string) bool
	servers []*dns.Server
}

// Start serves on addr (the host's address on the pod network, port 53),
// answering the hosts routes says the gateway routes with gateway.
func Start(addr string, gateway net.IP, routes func(host string) bool) (*Server, error) {
	s := &Server{gateway: gateway.To4(), routes: routes}
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		udp.Close()
		return nil, err
	}
	s.servers = []*dns.Server{
		{PacketConn: udp, Handler: s},
		{Listener: tcp, Handler: s, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
	}
	for _, srv := range s.servers {
		go func() { _ = srv.ActivateAndServe() }()
	}
	return s, nil
}

// Close stops serving.
func (s *Server) Close() {
	for _, srv := range s.servers {
		_ = srv.Shutdown()
	}
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	question := q.Question[0]
	if !s.routes(strings.ToLower(strings.TrimSuffix(question.Name, "."))) {
		m.Rcode = dns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	}
	// A name of ours has an A record and nothing else (no error, no data).
	if question.Qclass == dns.ClassINET && (question.Qtype == dns.TypeA || question.Qtype == dns.TypeANY) {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
			A:   s.gateway,
		})
	}
	_ = w.WriteMsg(m)
}
