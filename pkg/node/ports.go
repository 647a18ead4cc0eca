package node

import (
	"fmt"
	"net"
	"sort"
	"sync"
)

// portAllocator hands every pod its own loopback port: pods share the host
// network, so two replicas cannot both listen on their containerPort.
type portAllocator struct {
	host string
	mu   sync.Mutex
	used map[int]bool
}

func newPortAllocator(host string) *portAllocator {
	return &portAllocator{host: host, used: map[int]bool{}}
}

// allocate returns a port free now and not handed out before. The kernel
// picks it (port 0), so it comes from the ephemeral range.
func (p *portAllocator) allocate() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort(p.host, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !p.used[port] {
			p.used[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port on %s", p.host)
}

func (p *portAllocator) release(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
