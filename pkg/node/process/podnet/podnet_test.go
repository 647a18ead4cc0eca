package podnet

import (
	"os"
	"sort"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// BenchmarkNewPod times a pod network's setup (namespace, veth, address)
// and teardown, the part of a sandboxed pod start that is the network.
func BenchmarkNewPod(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	n, err := Setup("198.18.0.0/15", 100, "")
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	var setup, teardown []time.Duration
	for range b.N {
		t := time.Now()
		p, err := n.newPod()
		if err != nil {
			b.Fatal(err)
		}
		setup = append(setup, time.Since(t))
		t = time.Now()
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
		teardown = append(teardown, time.Since(t))
	}
	b.ReportMetric(p50(setup), "ms-setup-p50")
	b.ReportMetric(p50(teardown), "ms-teardown-p50")
}

func p50(d []time.Duration) float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[len(d)/2].Microseconds()) / 1000
}

// TestBridgeAddressStays: the bridge keeps its own hardware address while
// pods come and go. Without one it takes its lowest port's, and when that
// pod went the other pods' neighbour entries for the host went stale.
func TestBridgeAddressStays(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	n, err := Setup("198.18.0.0/15", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	bridgeMAC := func() string {
		l, err := netlink.LinkByName(n.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().HardwareAddr.String()
	}
	want := bridgeAddress(n.Subnet).String()
	var pods []*Pod
	for range 4 {
		p, err := n.newPod()
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	for _, p := range pods {
		if got := bridgeMAC(); got != want {
			t.Fatalf("bridge address %s, want %s", got, want)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := bridgeMAC(); got != want {
		t.Fatalf("bridge address after its pods went %s, want %s", got, want)
	}
}
