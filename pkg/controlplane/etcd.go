package controlplane

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/knd-dev/knd/pkg/controlplane/portfile"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd runs a single-member etcd on loopback whose data lives in
// <data-dir>/etcd. It returns once etcd serves.
// Clients and the peer port need a certificate from etcd's own CA (TLS
// with client authentication), so no other local process can read or
// write the cluster's objects.
func startEtcd(ctx context.Context, dataDir string, p portfile.Ports, pki PKI) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "knd"
	cfg.Dir = filepath.Join(dataDir, "etcd")
	client := url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", p.EtcdClient)}
	peer := url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", p.EtcdPeer)}
	tlsInfo := transport.TLSInfo{CertFile: pki.EtcdServerCert(), KeyFile: pki.EtcdServerKey(),
		TrustedCAFile: pki.EtcdCACert(), ClientCertAuth: true}
	cfg.ClientTLSInfo, cfg.PeerTLSInfo = tlsInfo, tlsInfo
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	// One member talks to no peer: its peer URL is advertised (the
	// cluster's membership names it) but nothing listens there.
	cfg.ListenPeerUrls = nil
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, peer.String())
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(dataDir, "etcd.log")}
	// Keep the history small: one machine, one writer.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "5m"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-time.After(2 * time.Minute):
		e.Close()
		return nil, fmt.Errorf("etcd: not ready after 2m")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
}
