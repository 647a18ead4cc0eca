package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/process/podnet"
	"github.com/knd-dev/knd/pkg/node/process/sandbox"
	"golang.org/x/sys/unix"
)

// podSandbox is a pod's network namespace and the files every container
// of the pod sees at /etc/hosts, /etc/resolv.conf and /etc/hostname.
type podSandbox struct {
	net   *podnet.Pod
	dir   string
	files map[string]string
}

func (s *podSandbox) IP() string { return s.net.IP.String() }

func (s *podSandbox) Close() error {
	return errors.Join(s.net.Close(), os.RemoveAll(s.dir))
}

// HasPodNetwork says whether pods get their own network and sandbox.
func (p *Provider) HasPodNetwork() bool { return p.network != nil }

// RunPodSandbox gives the pod its network namespace and address, and
// writes its hosts, resolv.conf and hostname files as a kubelet does: the
// pod's resolver is the node's DNS server on the bridge, which answers
// for Services.
func (p *Provider) RunPodSandbox(_ context.Context, cfg node.PodSandboxConfig) (node.PodSandbox, error) {
	if p.network == nil {
		return nil, errors.New("no pod network: " + p.unsandboxed)
	}
	pn, err := p.network.NewPod()
	if err != nil {
		return nil, err
	}
	s := &podSandbox{net: pn, dir: filepath.Join(p.dataDir, "sandbox", "pods", cfg.UID), files: map[string]string{}}
	contents := map[string]string{
		"/etc/hosts": fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n",
			pn.IP, cfg.Name),
		"/etc/resolv.conf": fmt.Sprintf("search %s\nnameserver %s\noptions %s\n",
			strings.Join(cfg.DNSSearch(), " "), p.network.Gateway, strings.Join(node.DNSOptions, " ")),
		"/etc/hostname": cfg.Name + "\n",
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		s.Close()
		return nil, err
	}
	for target, content := range contents {
		file := filepath.Join(s.dir, filepath.Base(target))
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			s.Close()
			return nil, err
		}
		s.files[target] = file
	}
	return s, nil
}

// HostAddress is the host's address on the pod network ("" without one):
// where pods reach the node's DNS server and the gateway.
func (p *Provider) HostAddress() string {
	if p.network == nil {
		return ""
	}
	return p.network.Gateway.String()
}

// containerRoot is a container's own root filesystem: an overlay whose
// lower layer is the image's unpacked tree, so what a container writes
// stays its own and goes with it. It is mounted in knd's mount namespace
// so that exec'd processes (probes, hooks) enter the same root.
type containerRoot struct {
	dir    string
	merged string
}

func mountContainerRoot(dir, image string) (*containerRoot, error) {
	r := &containerRoot{dir: dir, merged: filepath.Join(dir, "rootfs")}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work, r.merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", image, upper, work)
	if strings.ContainsAny(image+dir, ",:") {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cannot mount an overlay from %s: its path has a comma or colon", dir)
	}
	if err := unix.Mount("overlay", r.merged, "overlay", unix.MS_NODEV, opts); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mounting the container's root filesystem: %w", err)
	}
	return r, nil
}

func (r *containerRoot) remove() {
	_ = unix.Unmount(r.merged, unix.MNT_DETACH)
	_ = os.RemoveAll(r.dir)
}

// shareContainerRoots makes dir, where containers' root filesystems are
// mounted, a shared mount of its own: an init started ahead copies knd's
// mounts when it starts, and only a shared mount passes it the root
// filesystems mounted after that. What a killed knd left there goes first.
func shareContainerRoots(dir string) error {
	removeContainerRoots(dir)
	for unix.Unmount(dir, unix.MNT_DETACH) == nil {
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	return unix.Mount("", dir, "", unix.MS_SHARED, "")
}

// removeContainerRoots unmounts and removes the root filesystems a killed
// knd left under dir.
func removeContainerRoots(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		(&containerRoot{dir: filepath.Join(dir, e.Name()), merged: filepath.Join(dir, e.Name(), "rootfs")}).remove()
	}
}

// sandboxSpec is what the sandbox init needs to run argv in the container.
func (c *container) sandboxSpec(argv []string) sandbox.Spec {
	return sandbox.Spec{Rootfs: c.croot.merged, Argv: argv, Env: c.env, Dir: c.wd, User: c.user,
		Hostname: c.hostname, Files: c.sandbox.files, Mounts: c.mounts, Cgroups: c.cgroupView}
}
