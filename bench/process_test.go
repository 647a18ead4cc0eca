package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/image"
	"github.com/knd-dev/knd/pkg/node/nodetest"
	"github.com/knd-dev/knd/pkg/node/process"
	corev1 "k8s.io/api/core/v1"
)

// BenchmarkProcessStartToListen is the floor under a cold start: the same
// hello-world server the cold start benchmarks run, started directly (no
// knd), timed from exec until it accepts a TCP connection (dialled every
// 0.2 ms).
func BenchmarkProcessStartToListen(b *testing.B) {
	bin := nodetest.BuildTestServer(b, b.TempDir())
	var starts []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		port := nodetest.FreePort(b)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
		t := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for deadline := t.Add(10 * time.Second); ; time.Sleep(200 * time.Microsecond) {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the test server did not listen within 10 s")
			}
		}
		starts = append(starts, time.Since(t))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	b.ReportMetric(ms(p50(starts)), "ms-listen-p50")
	b.ReportMetric(ms(percentile(starts, 0.99)), "ms-listen-p99")
}

// BenchmarkSandboxStart is the sandbox's own cost per pod start: the
// process provider starting the test server and the server accepting a
// connection, with a pod network and sandbox (network namespace, veth,
// address, overlay root, knd-sandbox-init) and without (on the host's
// network, changed into the image's tree), alternated in one run. Needs root.
func BenchmarkSandboxStart(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the sandbox needs root")
	}
	dir := b.TempDir()
	store, err := image.Open(filepath.Join(dir, "images"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.Import(nodetest.BuildTestServer(b, dir), "dev.local/hello:sandbox"); err != nil {
		b.Fatal(err)
	}
	sandboxed := process.New(store, process.Options{DataDir: filepath.Join(dir, "sandboxed"), MaxPods: 16})
	defer sandboxed.Close()
	if why := sandboxed.Unsandboxed(); why != "" {
		b.Fatal(why)
	}
	plain := process.New(store, process.Options{DataDir: filepath.Join(dir, "plain"), NoSandbox: true})
	img, err := sandboxed.PullImage(context.Background(), "dev.local/hello:sandbox", corev1.PullIfNotPresent)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := plain.PullImage(context.Background(), "dev.local/hello:sandbox", corev1.PullIfNotPresent); err != nil {
		b.Fatal(err)
	}
	// start runs one pod and returns how long until it accepted a connection.
	start := func(p *process.Provider, i int) time.Duration {
		cfg := node.ContainerConfig{Name: fmt.Sprintf("b_pod%d_c_0", i), Image: img, Argv: img.Entrypoint,
			Stdout: io.Discard, Stderr: io.Discard}
		t := time.Now()
		addr := ""
		if p == sandboxed {
			sb, err := p.RunPodSandbox(context.Background(), node.PodSandboxConfig{Namespace: "b", Name: "pod", UID: fmt.Sprint(i)})
			if err != nil {
				b.Fatal(err)
			}
			defer sb.Close()
			cfg.Sandbox, cfg.Env = sb, []string{"PORT=8080"}
			addr = net.JoinHostPort(sb.IP(), "8080")
		} else {
			port := nodetest.FreePort(b)
			cfg.Env = []string{fmt.Sprintf("PORT=%d", port)}
			addr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		c, err := p.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		for deadline := t.Add(10 * time.Second); ; time.Sleep(200 * time.Microsecond) {
			if conn, err := net.Dial("tcp", addr); err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the test server did not listen within 10 s")
			}
		}
		took := time.Since(t)
		_ = c.Signal(syscall.SIGKILL)
		<-c.Done()
		return took
	}
	var withSandbox, without []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		withSandbox = append(withSandbox, start(sandboxed, i))
		without = append(without, start(plain, i))
	}
	b.ReportMetric(ms(p50(withSandbox)), "ms-sandboxed-p50")
	b.ReportMetric(ms(percentile(withSandbox, 0.99)), "ms-sandboxed-p99")
	b.ReportMetric(ms(p50(without)), "ms-plain-p50")
	b.ReportMetric(ms(percentile(without, 0.99)), "ms-plain-p99")
}
