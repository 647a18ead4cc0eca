package controlplane

import (
	"math/big"
	"net"
	"slices"
	"testing"

	certutil "k8s.io/client-go/util/cert"
)

// TestServingCertificateFollowsTheAddresses: the API server's certificate
// is issued again when it does not name an address it must (the pod
// network's may change between starts), and kept while it does.
func TestServingCertificateFollowsTheAddresses(t *testing.T) {
	p := PKI{Dir: t.TempDir()}
	a, b := net.ParseIP("198.18.0.1"), net.ParseIP("198.18.4.1")
	names := []string{"kubernetes.default.svc"}
	sans := func() []net.IP {
		certs, err := certutil.CertsFromFile(p.ServingCert())
		if err != nil {
			t.Fatal(err)
		}
		return certs[0].IPAddresses
	}
	has := func(ips []net.IP, ip net.IP) bool { return slices.ContainsFunc(ips, ip.Equal) }
	if err := p.ensure([]net.IP{a}, names); err != nil {
		t.Fatal(err)
	}
	first := sans()
	if !has(first, a) {
		t.Fatalf("certificate names %v, not %s", first, a)
	}
	if err := p.ensure([]net.IP{a}, names); err != nil {
		t.Fatal(err)
	}
	serial := mustSerial(t, p)
	if err := p.ensure([]net.IP{a}, names); err != nil {
		t.Fatal(err)
	}
	if mustSerial(t, p).Cmp(serial) != 0 {
		t.Error("a certificate that names every address was issued again")
	}
	if err := p.ensure([]net.IP{b}, names); err != nil {
		t.Fatal(err)
	}
	if got := sans(); !has(got, b) || mustSerial(t, p).Cmp(serial) == 0 {
		t.Errorf("after the address changed to %s the certificate names %v", b, got)
	}
}

func mustSerial(t *testing.T, p PKI) *big.Int {
	t.Helper()
	certs, err := certutil.CertsFromFile(p.ServingCert())
	if err != nil {
		t.Fatal(err)
	}
	return certs[0].SerialNumber
}
