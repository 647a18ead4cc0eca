package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// ports are chosen once and kept in <data-dir>/ports.json: a restarted
// single-member etcd whose peer URL changed waits about a minute before it
// serves, and kubeconfigs written on first start name the API port.
type ports struct {
	EtcdClient int `json:"etcdClient"`
	EtcdPeer   int `json:"etcdPeer"`
	API        int `json:"api"`
	Webhook    int `json:"webhook"`
}

func loadPorts(dataDir string, apiPort int) (ports, error) {
	file := filepath.Join(dataDir, "ports.json")
	var p ports
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
	for _, port := range []*int{&p.EtcdClient, &p.EtcdPeer, &p.API, &p.Webhook} {
		if *port == 0 {
			if *port, err = freePort(); err != nil {
				return p, err
			}
		}
	}
	raw, _ = json.MarshalIndent(p, "", "  ")
	return p, os.WriteFile(file, raw, 0o600)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
