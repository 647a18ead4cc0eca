package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/image"
	"github.com/knd-dev/knd/pkg/node/nodetest"
	corev1 "k8s.io/api/core/v1"
)

const testRef = "dev.local/knd-docker-test:v1"

// newTestProvider skips without an engine; otherwise it returns a provider
// whose store holds the test server as testRef.
func newTestProvider(t *testing.T, nodeName string) (*Provider, *image.Store) {
	t.Helper()
	if !Available(context.Background()) {
		t.Skip("no Docker engine answers (DOCKER_HOST or /var/run/docker.sock): the docker provider is not tested")
	}
	store, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(nodetest.BuildTestServer(t, t.TempDir()), testRef); err != nil {
		t.Fatal(err)
	}
	p, err := New(context.Background(), store, nodeName, "/knd-test/"+nodeName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, store
}

func get(url string) (string, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// eventually polls fn for up to 20 s.
func eventually(t *testing.T, what string, fn func() (bool, string)) {
	t.Helper()
	nodetest.Poll(t, 20*time.Second, what, fn)
}

// startInPod starts a container of the image in a pod's network, on port
// (its PORT, as the agent sets it).
func startInPod(t *testing.T, p *Provider, info node.ImageInfo, sb node.PodSandbox, name string, port int, env ...string) node.Container {
	t.Helper()
	out := &nodetest.SyncBuffer{}
	c, err := p.Start(context.Background(), node.ContainerConfig{
		Name: name, Image: info, Argv: append(append([]string{}, info.Entrypoint...), info.Cmd...),
		Env: append([]string{fmt.Sprintf("PORT=%d", port)}, env...), ContainerPort: port, Sandbox: sb, PodUID: "uid-" + name, Stdout: out, Stderr: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Signal(syscall.SIGKILL)
		<-c.Done()
	})
	return c
}

// Each pod is a pause container on knd's network: its containers share its
// address (two pods both serve on 8080, a sidecar reaches its pod's
// serving container on localhost), its hostname and its resolver (the
// node's DNS server, searching the pod's namespace), and nothing is
// published on the host.
func TestPodsShareTheirPauseContainersNetwork(t *testing.T) {
	p, _ := newTestProvider(t, "knd-test-pod-network")
	if !p.HasPodNetwork() || net.ParseIP(p.HostAddress()) == nil {
		t.Fatalf("pod network: %v, host address %q", p.HasPodNetwork(), p.HostAddress())
	}
	info, err := p.PullImage(context.Background(), testRef, corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	pods := map[string]node.PodSandbox{}
	for _, name := range []string{"pod-a", "pod-b"} {
		sb, err := p.RunPodSandbox(context.Background(), node.PodSandboxConfig{Namespace: "ns", Name: name, UID: "uid-" + name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := sb.Close(); err != nil {
				t.Error(err)
			}
		})
		pods[name] = sb
	}
	a, b := pods["pod-a"].IP(), pods["pod-b"].IP()
	if a == b || !net.ParseIP(a).IsPrivate() || !net.ParseIP(b).IsPrivate() {
		t.Fatalf("pod IPs %q and %q: want two private addresses", a, b)
	}
	serving := startInPod(t, p, info, pods["pod-a"], "ns_pod-a_user-container_0", 8080, "GREETING=one")
	startInPod(t, p, info, pods["pod-b"], "ns_pod-b_user-container_0", 8080, "GREETING=two")
	startInPod(t, p, info, pods["pod-a"], "ns_pod-a_sidecar_0", 8882, "GREETING=sidecar")
	for ip, want := range map[string]string{a: " one\n", b: " two\n"} {
		eventually(t, "pod "+ip+" answers on 8080", func() (bool, string) {
			body, err := get("http://" + net.JoinHostPort(ip, "8080") + "/")
			return strings.HasSuffix(body, want), fmt.Sprint(body, err)
		})
	}
	if host, port := serving.(node.DirectAddresser).DirectAddress(); host != a || port != 8080 {
		t.Errorf("direct address %s:%d; want the pod's %s:8080", host, port, a)
	}
	sidecar := "http://" + net.JoinHostPort(a, "8882")
	eventually(t, "the sidecar reaches its pod's serving container on localhost", func() (bool, string) {
		body, err := get(sidecar + "/fetch?url=" + url.QueryEscape("http://localhost:8080/env?k=GREETING"))
		return body == "one", fmt.Sprint(body, err)
	})
	if body, err := get(sidecar + "/read?path=/etc/hostname"); body != "pod-a\n" {
		t.Errorf("/etc/hostname in the sidecar: %q %v", body, err)
	}
	if body, err := get(sidecar + "/read?path=/etc/resolv.conf"); !strings.Contains(body, "search ns.svc.cluster.local svc.cluster.local cluster.local") ||
		!strings.Contains(body, "ndots:5") {
		t.Errorf("/etc/resolv.conf in the sidecar: %q %v", body, err)
	}
	inspect, err := p.engine.ContainerInspect(context.Background(), serving.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(inspect.HostConfig.PortBindings) != 0 {
		t.Errorf("a pod's container publishes %v on the host", inspect.HostConfig.PortBindings)
	}
}

func start(t *testing.T, p *Provider, info node.ImageInfo, name string, env ...string) (node.Container, int, *nodetest.SyncBuffer) {
	t.Helper()
	port := nodetest.FreePort(t)
	out := &nodetest.SyncBuffer{}
	c, err := p.Start(context.Background(), node.ContainerConfig{
		Name: name, Image: info, Argv: append(append([]string{}, info.Entrypoint...), info.Cmd...),
		Env: append([]string{fmt.Sprintf("PORT=%d", port)}, env...), Port: port, PodUID: "uid-" + name,
		Stdout: out, Stderr: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Signal(syscall.SIGKILL)
		<-c.Done()
	})
	return c, port, out
}

// Two containers that both listen on 8080 inside run side by side, each
// published on its own loopback port, with output, exec and signals.
func TestContainersRunSideBySide(t *testing.T) {
	p, _ := newTestProvider(t, "knd-test-side-by-side")
	info, err := p.PullImage(context.Background(), testRef, corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.ID, "sha256:") || len(info.Entrypoint) != 1 {
		t.Fatalf("image info %+v", info)
	}
	one, port1, out1 := start(t, p, info, "ns_a_user-container_0", "GREETING=one")
	_, port2, _ := start(t, p, info, "ns_b_user-container_0", "GREETING=two")
	for port, want := range map[int]string{port1: " one\n", port2: " two\n"} {
		eventually(t, fmt.Sprintf("container on %d answers", port), func() (bool, string) {
			body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			return strings.HasSuffix(body, want), fmt.Sprint(body, err)
		})
	}
	if body, _ := get(fmt.Sprintf("http://127.0.0.1:%d/env?k=PORT", port1)); body != "8080" {
		t.Errorf("PORT inside the container: %q, want 8080", body)
	}
	host, port := one.(node.DirectAddresser).DirectAddress()
	if body, err := get(fmt.Sprintf("http://%s/env?k=GREETING", net.JoinHostPort(host, fmt.Sprint(port)))); body != "one" {
		t.Errorf("direct address %s:%d: %q %v", host, port, body, err)
	}
	if !strings.Contains(out1.String(), "listening on :8080") {
		t.Errorf("stdout not captured: %q", out1.String())
	}
	code, _, err := one.Exec(context.Background(), []string{info.Entrypoint[0], "false"})
	if err != nil || code != 1 {
		t.Errorf("exec false: %d %v", code, err)
	}
	if err := one.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-one.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("SIGTERM did not stop the container")
	}
	if ex := one.Exit(); ex.Code != 0 || ex.OOMKilled {
		t.Errorf("exit after SIGTERM: %+v", ex)
	}
	eventually(t, "SIGTERM logged", func() (bool, string) {
		return strings.Contains(out1.String(), "SIGTERM: exiting"), out1.String()
	})
	if _, err := p.engine.ContainerInspect(context.Background(), one.ID()); !cerrdefs.IsNotFound(err) {
		t.Errorf("exited container not removed: %v", err)
	}
}

// A container over its memory limit is OOM-killed, and says so.
func TestMemoryLimitOOMKills(t *testing.T) {
	p, _ := newTestProvider(t, "knd-test-oom")
	info, err := p.PullImage(context.Background(), testRef, corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	port := nodetest.FreePort(t)
	c, err := p.Start(context.Background(), node.ContainerConfig{
		Name: "ns_oom_user-container_0", Image: info, Argv: info.Entrypoint, Env: []string{"ALLOC_MB=256"},
		Port: port, MemoryLimit: 32 << 20, Stdout: io.Discard, Stderr: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the container outlived its memory limit")
	}
	if ex := c.Exit(); !ex.OOMKilled || ex.Code != 137 {
		t.Errorf("exit %+v, want OOMKilled with code 137", ex)
	}
}

// Containers a killed knd left behind are removed when it starts again;
// images missing everywhere fail with a clear message.
func TestLeftoversRemovedAndMissingImages(t *testing.T) {
	p, store := newTestProvider(t, "knd-test-leftovers")
	info, err := p.PullImage(context.Background(), testRef, corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := start(t, p, info, "ns_left_user-container_0")
	again, err := New(context.Background(), store, "knd-test-leftovers", "/knd-test/knd-test-leftovers")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := p.engine.ContainerInspect(context.Background(), c.ID()); !cerrdefs.IsNotFound(err) {
		t.Errorf("leftover container still there: %v", err)
	}
	_, err = p.PullImage(context.Background(), "dev.local/knd-no-such-image:v1", corev1.PullIfNotPresent)
	if err == nil || !strings.Contains(err.Error(), "is in neither the Docker engine nor the local store") {
		t.Errorf("missing local image: %v", err)
	}
}
