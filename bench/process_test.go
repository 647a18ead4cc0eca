package bench

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/node/nodetest"
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
