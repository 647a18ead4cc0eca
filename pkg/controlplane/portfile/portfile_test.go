package portfile

import (
	"os"
	"path/filepath"
	"testing"
)

// A port the kernel handed out twice (the caller's API port before it is
// bound, a kept webhook port, the caller's gateway port) must not be
// shared: the API server would answer for the webhooks.
func TestLoadKeepsPortsDistinct(t *testing.T) {
	dir := t.TempDir()
	kept := `{"etcdClient": 40001, "etcdPeer": 40001, "api": 40002, "webhook": 40003}`
	if err := os.WriteFile(filepath.Join(dir, "ports.json"), []byte(kept), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(dir, 40003, 40001, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.API != 40003 {
		t.Errorf("API port %d: want the caller's 40003", p.API)
	}
	seen := map[int]bool{40001: true} // the caller's own
	for _, port := range []int{p.API, p.EtcdClient, p.EtcdPeer, p.Webhook} {
		if port == 0 || seen[port] {
			t.Errorf("ports %+v: %d twice or unset", p, port)
		}
		seen[port] = true
	}
	again, err := Load(dir, 0)
	if err != nil || again != p {
		t.Errorf("reloaded %+v, %v; want %+v", again, err, p)
	}
}
