// Package podnet gives each pod of the process runtime a network of its
// own, as a kubelet's bridge CNI plugin does: a network namespace with
// loopback and one veth into a bridge of knd's, and an address from the
// node's pod subnet. The host reaches pods over the bridge (a connected
// route); pods get no default route, so nothing they send can leave the
// machine.
package podnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/knd-dev/knd/pkg/node/process/warm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultClusterCIDR is where node subnets come from: the range RFC 2544
// sets aside for benchmarking network devices, which no real network
// routes, so it cannot clash with the host's own routes (Docker's
// 172.17/16, a LAN's 10/8 or 192.168/16, a cluster's 10.244/16).
const DefaultClusterCIDR = "198.18.0.0/15"

// lockDir holds one lock file per node subnet in use: a running knd holds
// its subnet's lock, so two servers on one machine never share a subnet
// and a killed server's subnet is free again at once.
var lockDir = "/run/knd"

// Network is a node's pod network: its bridge and the addresses handed out.
type Network struct {
	Bridge  string
	Subnet  *net.IPNet
	Gateway net.IP // the bridge's (the host's) address in Subnet
	lock    *os.File

	// ahead are pods' networks made before they are asked for.
	ahead *warm.Pool[*Pod]

	mu   sync.Mutex
	used map[uint32]bool
	next uint32
}

// podsAhead is how many pod networks are kept made ahead: a cold start
// takes one (2–6 ms to make under load) instead of making its own.
const podsAhead = 2

// Setup picks a node subnet of clusterCIDR big enough for maxPods that no
// host route overlaps and no other knd holds (preferring preferred, the
// subnet used before, if it is still free) and creates its bridge.
func Setup(clusterCIDR string, maxPods int, preferred string) (*Network, error) {
	_, cluster, err := net.ParseCIDR(clusterCIDR)
	if err != nil || cluster.IP.To4() == nil {
		return nil, fmt.Errorf("--pod-cidr %q: want an IPv4 CIDR such as %s", clusterCIDR, DefaultClusterCIDR)
	}
	ones, _ := cluster.Mask.Size()
	// Room for maxPods, the network and broadcast addresses and the bridge.
	size := max(8, bits.Len32(uint32(maxPods)+2))
	if 32-size < ones {
		size = 32 - ones
	}
	// Addresses of the range without a live bridge (a pod gone, knd
	// stopped) are unreachable rather than sent along the default route
	// off the machine. The route stays when knd stops, for the same reason.
	if err := netlink.RouteReplace(&netlink.Route{Dst: cluster, Type: unix.RTN_UNREACHABLE}); err != nil {
		return nil, fmt.Errorf("routing %s nowhere but its bridges: %w", cluster, err)
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	if err := os.MkdirAll(lockDir, 0o700); err != nil {
		return nil, err
	}
	for _, subnet := range candidates(cluster, 32-size, preferred) {
		n := &Network{Subnet: subnet, Bridge: bridgeName(subnet), used: map[uint32]bool{}}
		if clash := clashingRoute(routes, subnet, n.Bridge); clash != "" {
			continue
		}
		if n.lock, err = tryLock(filepath.Join(lockDir, n.Bridge+".lock")); err != nil {
			continue
		}
		if err := n.createBridge(); err != nil {
			n.lock.Close()
			return nil, fmt.Errorf("creating bridge %s: %w", n.Bridge, err)
		}
		n.ahead = warm.New(podsAhead, n.newPod, func(p *Pod) { p.Close() })
		return n, nil
	}
	return nil, fmt.Errorf("no free /%d subnet in --pod-cidr %s: host routes or other knd servers take every one", 32-size, clusterCIDR)
}

// candidates lists the subnets of cluster with the given prefix length,
// preferred first.
func candidates(cluster *net.IPNet, prefix int, preferred string) []*net.IPNet {
	var out []*net.IPNet
	if _, p, err := net.ParseCIDR(preferred); err == nil {
		if ones, _ := p.Mask.Size(); ones == prefix && cluster.Contains(p.IP) {
			out = append(out, p)
		}
	}
	ones, _ := cluster.Mask.Size()
	base := ip4(cluster.IP)
	for i := uint32(0); i < 1<<(prefix-ones) && i < 4096; i++ {
		out = append(out, &net.IPNet{IP: fromUint(base + i<<(32-prefix)), Mask: net.CIDRMask(prefix, 32)})
	}
	return out
}

// clashingRoute names a host route that overlaps subnet, other than one
// on the bridge knd would use for it (left by a knd that was killed).
func clashingRoute(routes []netlink.Route, subnet *net.IPNet, bridge string) string {
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.To4() == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 || r.Type == unix.RTN_UNREACHABLE {
			continue // the default route and unreachable ones do not make a subnet unusable
		}
		if !r.Dst.Contains(subnet.IP) && !subnet.Contains(r.Dst.IP) {
			continue
		}
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().Name == bridge {
			continue
		}
		return r.Dst.String()
	}
	return ""
}

func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// bridgeName is derived from the subnet, so a restarted knd finds the
// bridge it left: "knd" and the subnet's address in hex.
func bridgeName(subnet *net.IPNet) string { return fmt.Sprintf("knd%08x", ip4(subnet.IP)) }

// bridgeAddress is the bridge's hardware address: locally administered
// (02:), "k" and the subnet's address.
func bridgeAddress(subnet *net.IPNet) net.HardwareAddr {
	a := net.HardwareAddr{0x02, 'k', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(a[2:], ip4(subnet.IP))
	return a
}

func (n *Network) createBridge() error {
	if old, err := netlink.LinkByName(n.Bridge); err == nil {
		// Left by a knd that was killed (we hold the subnet's lock): start clean.
		if err := netlink.LinkDel(old); err != nil {
			return err
		}
	}
	// A bridge without an address of its own takes its lowest port's and
	// changes it when that pod goes: every other pod's neighbour entry for
	// the host then points nowhere, and their replies to the gateway and
	// probes are lost for seconds. A fixed, locally administered address
	// derived from the subnet keeps it the same across restarts too.
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, HardwareAddr: bridgeAddress(n.Subnet)}}
	if err := netlink.LinkAdd(br); err != nil {
		return err
	}
	n.Gateway = fromUint(ip4(n.Subnet.IP) + 1)
	n.used[ip4(n.Gateway)] = true
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: n.Gateway, Mask: n.Subnet.Mask}}); err != nil {
		netlink.LinkDel(br)
		return err
	}
	// Where br_netfilter sends bridged frames through iptables (Docker's
	// FORWARD policy is DROP), pod-to-pod traffic on this bridge skips it.
	_ = os.WriteFile(filepath.Join("/sys/class/net", n.Bridge, "bridge/nf_call_iptables"), []byte("0"), 0o644)
	if err := netlink.LinkSetUp(br); err != nil {
		netlink.LinkDel(br)
		return err
	}
	return nil
}

// Close deletes the bridge (and with it every pod's veth) and frees the subnet.
func (n *Network) Close() error {
	n.ahead.Close()
	var err error
	if l, lerr := netlink.LinkByName(n.Bridge); lerr == nil {
		err = netlink.LinkDel(l)
	}
	n.lock.Close()
	return err
}

// Pod is one pod's network namespace and address.
type Pod struct {
	net *Network
	// NS is the network namespace, for setns(2); it is closed with the Pod.
	NS   *os.File
	IP   net.IP
	veth string
}

// NewPod returns a network namespace with loopback up and eth0, a veth on
// the bridge, holding a free address of the subnet; one made ahead when
// there is one. The namespace lives while the Pod is open or a process is
// in it.
func (n *Network) NewPod() (*Pod, error) { return n.ahead.Get() }

func (n *Network) newPod() (*Pod, error) {
	ip, err := n.allocate()
	if err != nil {
		return nil, err
	}
	p := &Pod{net: n, IP: ip, veth: fmt.Sprintf("veth%08x", ip4(ip))}
	ns, err := newNamespace()
	if err != nil {
		n.release(ip)
		return nil, fmt.Errorf("creating a network namespace: %w", err)
	}
	// Owned by the os.File from here on (closed with it).
	p.NS = os.NewFile(uintptr(ns), "netns")
	if err := p.connect(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// newNamespace makes a network namespace without moving knd into it: the
// calling thread enters it, is moved back, and only then goes back to
// Go's scheduler.
func newNamespace() (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), err
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), err
	}
	if err := netns.Set(orig); err != nil {
		// The thread stays locked, so Go retires it with the goroutine.
		ns.Close()
		return netns.None(), err
	}
	runtime.UnlockOSThread()
	return ns, nil
}

func (p *Pod) connect() error {
	br, err := netlink.LinkByName(p.net.Bridge)
	if err != nil {
		return err
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: p.veth, MasterIndex: br.Attrs().Index},
		PeerName:  "eth0", PeerNamespace: netlink.NsFd(int(p.NS.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("creating veth %s: %w", p.veth, err)
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(p.NS.Fd()))
	if err != nil {
		return err
	}
	defer h.Close()
	for _, name := range []string{"lo", "eth0"} {
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		if name == "eth0" {
			if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: p.IP, Mask: p.net.Subnet.Mask}}); err != nil {
				return err
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
	}
	host, err := netlink.LinkByName(p.veth)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(host)
}

// Close removes the pod's veth and releases its address; the namespace
// goes once no process is left in it.
func (p *Pod) Close() error {
	var errs []error
	if l, err := netlink.LinkByName(p.veth); err == nil {
		errs = append(errs, netlink.LinkDel(l))
	}
	errs = append(errs, p.NS.Close())
	p.net.release(p.IP)
	return errors.Join(errs...)
}

func (n *Network) allocate() (net.IP, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ones, _ := n.Subnet.Mask.Size()
	base, count := ip4(n.Subnet.IP), uint32(1)<<(32-ones)
	// Round-robin from the last one handed out, so an address is not
	// reused at once (a client may still hold a connection to it).
	for range count {
		n.next = (n.next + 1) % count
		if n.next == 0 || n.next == count-1 {
			continue // network and broadcast addresses
		}
		if a := base + n.next; !n.used[a] {
			n.used[a] = true
			return fromUint(a), nil
		}
	}
	return nil, fmt.Errorf("no free address in pod subnet %s", n.Subnet)
}

func (n *Network) release(ip net.IP) {
	n.mu.Lock()
	delete(n.used, ip4(ip))
	n.mu.Unlock()
}

func ip4(ip net.IP) uint32 { return binary.BigEndian.Uint32(ip.To4()) }

func fromUint(v uint32) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, v)
	return ip
}
