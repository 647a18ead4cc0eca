package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/knd-dev/knd/test/kndtest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestDescriptorLimit runs a knd allowed 1,024 open files (hard limit
// 2,048) and opens far more client connections than that to its gateway:
// knd raises its soft limit to the hard one, past the gateway's cap (a
// quarter of the limit: 511) clients get a 503 that says why, knd stays
// up, its API keeps answering, and once the connections close the gateway
// serves again. Before the cap, the gateway took every descriptor and
// embedded etcd died of it.
func TestDescriptorLimit(t *testing.T) {
	s, err := kndtest.New()
	if err != nil {
		t.Fatal(err)
	}
	s.Prefix = []string{"prlimit", "--nofile=1024:2048", "--"}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(s.DataDir)
	defer s.Stop()
	const limit = (2048 - 1) / 4 // the cap says the soft limit was raised (by Go, to one below the hard limit)

	gw := fmt.Sprintf("127.0.0.1:%d", s.GatewayPort)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	refused := 0
	for i := range 2500 {
		c, err := net.DialTimeout("tcp", gw, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i < limit-16 { // room for the node's probes and the server's own clients
			continue
		}
		// Past the cap the gateway answers at once, without a request.
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			continue // within the cap: held, idle
		}
		body, _ := io.ReadAll(res.Body)
		if want := fmt.Sprintf("gateway: too many client connections (the cap is %d); retry later\n", limit); res.StatusCode != 503 || string(body) != want {
			t.Fatalf("connection %d: %d %q, want 503 %q", i, res.StatusCode, body, want)
		}
		refused++
	}
	if refused < 2500-limit {
		t.Errorf("%d of 2,500 connections were refused, want at least %d", refused, 2500-limit)
	}
	// The API works while the gateway is full.
	cs, err := kubernetes.NewForConfig(s.RestConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "after-flood"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating a namespace with the gateway full: %v", err)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	kndtest.Poll(t, 30*time.Second, "the gateway serving again", func() (bool, string) {
		req, _ := http.NewRequest("GET", "http://"+gw+"/", nil)
		req.Host = "nothing.default.example.com"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode == 404 && strings.Contains(string(body), "no Route serves host"), fmt.Sprint(res.StatusCode, string(body))
	})
	if err := syscall.Kill(s.Pid(), 0); err != nil {
		t.Fatalf("knd is gone: %v\n%s", err, s.Output)
	}
}
