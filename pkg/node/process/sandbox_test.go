package process_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/nodetest"
	"github.com/knd-dev/knd/pkg/node/process"
)

// sandboxed is a provider whose pods get their own network and sandbox.
func sandboxed(t *testing.T) (*process.Provider, node.ImageInfo) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	p, img := setupWith(t, process.Options{MaxPods: 8})
	if why := p.Unsandboxed(); why != "" {
		t.Fatalf("not sandboxed: %s", why)
	}
	return p, img
}

// pod makes a pod sandbox and starts one container in it per env, each
// listening where its LISTEN says; it returns the pod's IP.
func pod(t *testing.T, p *process.Provider, img node.ImageInfo, name string, cfg func(*node.ContainerConfig), envs ...[]string) (string, []node.Container) {
	t.Helper()
	sb, err := p.RunPodSandbox(context.Background(), node.PodSandboxConfig{Namespace: "ns", Name: name, UID: name + "-uid"})
	if err != nil {
		t.Fatal(err)
	}
	var cs []node.Container
	t.Cleanup(func() {
		for _, c := range cs {
			_ = c.Signal(syscall.SIGKILL)
			<-c.Done()
		}
		sb.Close()
	})
	for i, env := range envs {
		out := &nodetest.SyncBuffer{}
		cc := node.ContainerConfig{Name: fmt.Sprintf("ns_%s_c%d_0", name, i), Image: img, Argv: img.Entrypoint,
			Env: append([]string{"PATH=/", "HOSTNAME=" + name}, env...), Stdout: out, Stderr: out, Sandbox: sb, Hostname: name}
		if cfg != nil {
			cfg(&cc)
		}
		c, err := p.Start(context.Background(), cc)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return sb.IP(), cs
}

// ask GETs path from the container listening at addr, waiting for it to listen.
func ask(t *testing.T, addr, path string) string {
	t.Helper()
	var body string
	nodetest.Poll(t, 10*time.Second, "GET http://"+addr+path, func() (bool, string) {
		var err error
		body, err = get("http://" + addr + path)
		return err == nil, fmt.Sprint(err)
	})
	return body
}

// Two pods whose apps both listen on :8080 (ignoring PORT) serve side by
// side, each at its own IP; a sidecar answers on localhost.
func TestPodsHaveTheirOwnNetwork(t *testing.T) {
	p, img := sandboxed(t)
	ipA, _ := pod(t, p, img, "pod-a", nil, []string{"LISTEN=:8080"}, []string{"LISTEN=:9090", "GREETING=sidecar"})
	ipB, _ := pod(t, p, img, "pod-b", nil, []string{"LISTEN=:8080"})
	if ipA == ipB || !strings.HasPrefix(ipA, "198.1") {
		t.Fatalf("pod IPs %s and %s: want two addresses of the pod subnet %s", ipA, ipB, p.PodSubnet())
	}
	for ip, want := range map[string]string{ipA: "hello from pod-a \n", ipB: "hello from pod-b \n"} {
		if got := ask(t, net.JoinHostPort(ip, "8080"), "/"); got != want {
			t.Errorf("GET %s:8080/ = %q, want %q", ip, got, want)
		}
	}
	a := net.JoinHostPort(ipA, "8080")
	if got := ask(t, a, "/fetch?url=http://localhost:9090/"); got != "hello from pod-a sidecar\n" {
		t.Errorf("the sidecar through localhost: %q", got)
	}
	if got := ask(t, a, "/read?path=/proc/sys/kernel/hostname"); got != "pod-a\n" {
		t.Errorf("hostname %q, want the pod's name", got)
	}
	if got := ask(t, a, "/read?path=/etc/hosts"); !strings.Contains(got, "127.0.0.1\tlocalhost\n") || !strings.Contains(got, ipA+"\tpod-a\n") {
		t.Errorf("/etc/hosts:\n%s", got)
	}
	if got := ask(t, a, "/read?path=/etc/resolv.conf"); !strings.Contains(got, "search ns.svc.cluster.local svc.cluster.local cluster.local\nnameserver "+p.HostAddress()+"\n") {
		t.Errorf("/etc/resolv.conf:\n%s", got)
	}
	// The host's loopback, where knd's API server, etcd, webhook and
	// kubelet endpoint listen, is out of reach, also through the bridge.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	for _, addr := range []string{"127.0.0.1:" + port, net.JoinHostPort(p.HostAddress(), port)} {
		if got := ask(t, a, "/dial?addr="+addr); !strings.Contains(got, "connection refused") {
			t.Errorf("dial %s from a pod: %q, want connection refused", addr, got)
		}
	}
	// Nothing leaves the machine: no route but the pod subnet.
	if got := ask(t, a, "/dial?addr=203.0.113.1:80"); !strings.Contains(got, "network is unreachable") {
		t.Errorf("dial an outside address: %q, want network is unreachable", got)
	}
}

// Inside the sandbox: the image's user or runAsUser, the default
// capabilities, no way to the host's files, read-only kernel knobs.
func TestSandboxIsolation(t *testing.T) {
	p, img := sandboxed(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("host-secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	rootIP, _ := pod(t, p, img, "as-root", nil, []string{"LISTEN=:8080"})
	koIP, _ := pod(t, p, img, "as-image-user", func(c *node.ContainerConfig) { c.Image.User = "65532" }, []string{"LISTEN=:8080"})
	runAsIP, _ := pod(t, p, img, "run-as", func(c *node.ContainerConfig) {
		c.Image.User = "65532"
		c.User, c.Group = "1000", "3000"
	}, []string{"LISTEN=:8080"})
	for ip, want := range map[string]string{
		rootIP: "uid=0 gid=0 groups=[]", koIP: "uid=65532 gid=0 groups=[]", runAsIP: "uid=1000 gid=3000 groups=[]",
	} {
		if got := ask(t, net.JoinHostPort(ip, "8080"), "/id"); got != want {
			t.Errorf("id in %s: %q, want %q", ip, got, want)
		}
	}
	for ip, capEff := range map[string]string{rootIP: "00000000a80425fb", runAsIP: "0000000000000000"} {
		status := ask(t, net.JoinHostPort(ip, "8080"), "/read?path=/proc/self/status")
		for _, want := range []string{"CapEff:\t" + capEff, "CapBnd:\t00000000a80425fb", "NoNewPrivs:\t1", "Seccomp:\t2"} {
			if !strings.Contains(status, want+"\n") {
				t.Errorf("%s: /proc/self/status lacks %q:\n%s", ip, want, status)
			}
		}
	}
	root := net.JoinHostPort(rootIP, "8080")
	for _, line := range strings.Split(strings.TrimSpace(ask(t, root, "/escape?path="+secret)), "\n") {
		if strings.Contains(line, "READ") {
			t.Errorf("escaped the root: %s", line)
		}
	}
	if got := ask(t, root, "/write?path=/proc/sys/kernel/domainname"); !strings.Contains(got, "read-only file system") {
		t.Errorf("writing /proc/sys: %q, want read-only file system", got)
	}
	if got := ask(t, root, "/read?path=/sys/class/net/eth0/address"); strings.Contains(got, "no such file") {
		t.Errorf("/sys shows no eth0 of the pod's own: %q", got)
	}
	if got := ask(t, root, "/write?path=/sys/kernel/profiling"); !strings.Contains(got, "read-only file system") {
		t.Errorf("writing /sys: %q, want read-only file system", got)
	}
	// /dev has the standard nodes only: none of the host's disks.
	if got := ask(t, root, "/read?path=/dev/null"); got != "" {
		t.Errorf("reading /dev/null: %q", got)
	}
	if got := ask(t, root, "/read?path=/dev/vda"); !strings.Contains(got, "no such file or directory") {
		t.Errorf("reading the host's disk: %q", got)
	}
}

// Exec (probes, hooks) runs in the container's root and network, as its
// user; a missing entrypoint fails the start with the runtime's message.
func TestSandboxExecAndErrors(t *testing.T) {
	p, img := sandboxed(t)
	ip, cs := pod(t, p, img, "exec", func(c *node.ContainerConfig) { c.Image.User = "65532" }, []string{"LISTEN=:8080"})
	ask(t, net.JoinHostPort(ip, "8080"), "/")
	code, out, err := cs[0].Exec(context.Background(), []string{"testserver", "true"})
	if err != nil || code != 0 {
		t.Errorf("exec testserver true: %d %q %v", code, out, err)
	}
	// The same network: a second server on the pod's port cannot listen.
	code, out, err = cs[0].Exec(context.Background(), img.Entrypoint)
	if err != nil || code != 1 || !strings.Contains(string(out), "listen tcp :0") && !strings.Contains(string(out), "address already in use") {
		t.Errorf("exec a second server: %d %q %v", code, out, err)
	}
	sb, err := p.RunPodSandbox(context.Background(), node.PodSandboxConfig{Namespace: "ns", Name: "missing", UID: "missing-uid"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	_, err = p.Start(context.Background(), node.ContainerConfig{Name: "ns_missing_c_0", Image: img, Sandbox: sb,
		Argv: []string{"nope"}, Env: []string{"PATH=/bin"}, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || err.Error() != `exec: "nope": executable file not found in $PATH` {
		t.Errorf("start a missing executable: %v", err)
	}
}
