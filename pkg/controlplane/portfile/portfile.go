// Package portfile keeps the control plane's loopback ports in
// <data-dir>/ports.json. It is apart from the control plane so that its
// tests do not link Kubernetes.
package portfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
)

// Ports are chosen once and kept in <data-dir>/ports.json: a restarted
// single-member etcd whose peer URL changed waits about a minute before it
// serves, and kubeconfigs written on first start name the API port.
type Ports struct {
	EtcdClient int `json:"etcdClient"`
	EtcdPeer   int `json:"etcdPeer"`
	API        int `json:"api"`
	Webhook    int `json:"webhook"`
}

// Load reads the kept ports, chooses free ones for those not kept yet and
// writes them back; apiPort, unless 0, is the caller's choice of API port,
// and callers is ports the caller will listen on itself (the gateway's).
func Load(dataDir string, apiPort int, callers ...int) (Ports, error) {
	file := filepath.Join(dataDir, "ports.json")
	var p Ports
	raw, err := os.ReadFile(file)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &p); err != nil {
			return p, fmt.Errorf("%s: %w", file, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return p, err
	}
	if apiPort != 0 {
		p.API = apiPort
	}
	// In order of precedence (the API port may be the caller's): a port
	// equal to an earlier one or to one of the caller's is chosen again. A
	// free port is free now, not reserved, and the kernel may hand out one
	// that another was just given, such as the caller's API port before it
	// is bound.
	all := []*int{&p.API, &p.EtcdClient, &p.EtcdPeer, &p.Webhook}
	for i, port := range all {
		taken := func() bool {
			return slices.ContainsFunc(all[:i], func(q *int) bool { return *q == *port }) ||
				(i > 0 || apiPort == 0) && slices.Contains(callers, *port)
		}
		for *port == 0 || taken() {
			if *port, err = FreePort(); err != nil {
				return p, err
			}
		}
	}
	raw, _ = json.MarshalIndent(p, "", "  ")
	return p, os.WriteFile(file, raw, 0o600)
}

// FreePort asks the kernel for a loopback port free now (not reserved:
// see Load).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
