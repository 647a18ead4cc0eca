package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// PKI names the files of the control plane's certificate authority and the
// certificates signed by it. Everything lives under <data-dir>/pki and is made
// once, on first start; later starts reuse it so kubeconfigs stay valid.
type PKI struct {
	Dir string
}

func (p PKI) path(name string) string { return filepath.Join(p.Dir, name) }

func (p PKI) CACert() string            { return p.path("ca.crt") }
func (p PKI) CAKey() string             { return p.path("ca.key") }
func (p PKI) ServingCert() string       { return p.path("apiserver.crt") }
func (p PKI) ServingKey() string        { return p.path("apiserver.key") }
func (p PKI) ServiceAccountKey() string { return p.path("sa.key") }
func (p PKI) ServiceAccountPub() string { return p.path("sa.pub") }

// ClientCert and ClientKey name the client certificate of one identity.
// etcd has a CA of its own, so that no certificate from knd's main CA (a
// kubeconfig's, the kubelet endpoint's) opens it: only the API server's
// etcd client certificate does.
func (p PKI) EtcdCACert() string     { return p.path("etcd/ca.crt") }
func (p PKI) etcdCAKey() string      { return p.path("etcd/ca.key") }
func (p PKI) EtcdServerCert() string { return p.path("etcd/server.crt") }
func (p PKI) EtcdServerKey() string  { return p.path("etcd/server.key") }
func (p PKI) EtcdClientCert() string { return p.path("etcd/apiserver-client.crt") }
func (p PKI) EtcdClientKey() string  { return p.path("etcd/apiserver-client.key") }

func (p PKI) ClientCert(id string) string { return p.path(id + ".crt") }
func (p PKI) ClientKey(id string) string  { return p.path(id + ".key") }

// identity is a client of the API server: its certificate's CN is the user
// name and its O entries are the groups.
type identity struct {
	file   string
	user   string
	groups []string
}

// Identities the control plane issues client certificates for.
var (
	adminIdentity      = identity{file: "admin", user: "knd-admin", groups: []string{"system:masters"}}
	controllerIdentity = identity{file: "controller-manager", user: "system:kube-controller-manager"}
	schedulerIdentity  = identity{file: "scheduler", user: "system:kube-scheduler"}
	// The API server presents this identity to node agents (kubectl logs, exec).
	kubeletClientIdentity = identity{file: "apiserver-kubelet-client", user: "kube-apiserver-kubelet-client", groups: []string{"system:masters"}}
)

const certValidity = 10 * 365 * 24 * time.Hour

// ensure creates whatever part of the PKI is missing.
func (p PKI) ensure(servingIPs []net.IP, servingNames []string) error {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return err
	}
	ca, err := openCA(p.CACert(), p.CAKey(), "knd-ca")
	if err != nil {
		return err
	}
	if err := p.ensureEtcd(); err != nil {
		return err
	}
	// Issued again when it does not name every address: the pod network's
	// may change between starts.
	if !names(p.ServingCert(), servingIPs, servingNames) {
		if err := ca.issue(p.ServingCert(), p.ServingKey(), pkix.Name{CommonName: "kube-apiserver"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, servingIPs, servingNames); err != nil {
			return err
		}
	}
	for _, id := range []identity{adminIdentity, controllerIdentity, schedulerIdentity, kubeletClientIdentity} {
		if err := ca.ensureIssued(p.ClientCert(id.file), p.ClientKey(id.file),
			pkix.Name{CommonName: id.user, Organization: id.groups}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil); err != nil {
			return err
		}
	}
	if !exists(p.ServiceAccountKey()) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
		if err != nil {
			return err
		}
		pubPEM, err := encodePublicKeyPEM(&key.PublicKey)
		if err != nil {
			return err
		}
		if err := keyutil.WriteKey(p.ServiceAccountKey(), keyPEM); err != nil {
			return err
		}
		if err := os.WriteFile(p.ServiceAccountPub(), pubPEM, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// authority is a CA that issues certificates.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func loadCA(certFile, keyFile string) (*authority, error) {
	certs, err := certutil.CertsFromFile(certFile)
	if err != nil {
		return nil, err
	}
	key, err := keyutil.PrivateKeyFromFile(keyFile)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", keyFile)
	}
	return &authority{cert: certs[0], key: signer}, nil
}

// IssueServing signs a serving certificate for the given loopback names; the
// webhook server and node agents use it.
func (p PKI) IssueServing(certFile, keyFile, commonName string, ips []net.IP, names []string) error {
	ca, err := loadCA(p.CACert(), p.CAKey())
	if err != nil {
		return err
	}
	return ca.issue(certFile, keyFile, pkix.Name{CommonName: commonName}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, ips, names)
}

// ensureEtcd makes etcd's CA, its serving certificate (for clients and,
// with client auth too, for its peer port) and the API server's client
// certificate.
func (p PKI) ensureEtcd() error {
	if err := os.MkdirAll(filepath.Dir(p.EtcdCACert()), 0o700); err != nil {
		return err
	}
	ca, err := openCA(p.EtcdCACert(), p.etcdCAKey(), "knd-etcd-ca")
	if err != nil {
		return err
	}
	if err := ca.ensureIssued(p.EtcdServerCert(), p.EtcdServerKey(), pkix.Name{CommonName: "knd-etcd"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		[]net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"}); err != nil {
		return err
	}
	return ca.ensureIssued(p.EtcdClientCert(), p.EtcdClientKey(), pkix.Name{CommonName: "kube-apiserver-etcd-client"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil)
}

// openCA loads a CA, first making a self-signed one unless certFile and
// keyFile exist.
func openCA(certFile, keyFile, commonName string) (*authority, error) {
	if !exists(certFile) || !exists(keyFile) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		caCert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: commonName}, key)
		if err != nil {
			return nil, err
		}
		if err := writeCertAndKey(certFile, keyFile, caCert, key); err != nil {
			return nil, err
		}
	}
	return loadCA(certFile, keyFile)
}

// ensureIssued issues a certificate unless certFile exists.
func (a *authority) ensureIssued(certFile, keyFile string, subject pkix.Name, usages []x509.ExtKeyUsage, ips []net.IP, names []string) error {
	if exists(certFile) {
		return nil
	}
	return a.issue(certFile, keyFile, subject, usages, ips, names)
}

func (a *authority) issue(certFile, keyFile string, subject pkix.Name,
	usages []x509.ExtKeyUsage, ips []net.IP, names []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usages,
		IPAddresses:  ips,
		DNSNames:     names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	return writeCertAndKey(certFile, keyFile, cert, key)
}

func writeCertAndKey(certFile, keyFile string, cert *x509.Certificate, key crypto.Signer) error {
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	if err := keyutil.WriteKey(keyFile, keyPEM); err != nil {
		return err
	}
	certPEM, err := certutil.EncodeCertificates(cert)
	if err != nil {
		return err
	}
	return certutil.WriteCert(certFile, certPEM)
}

// names says whether the certificate in certFile exists and names every
// one of ips and dnsNames.
func names(certFile string, ips []net.IP, dnsNames []string) bool {
	certs, err := certutil.CertsFromFile(certFile)
	if err != nil || len(certs) == 0 {
		return false
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(certs[0].IPAddresses, ip.Equal) {
			return false
		}
	}
	for _, n := range dnsNames {
		if !slices.Contains(certs[0].DNSNames, n) {
			return false
		}
	}
	return true
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
func encodePublicKeyPEM(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
