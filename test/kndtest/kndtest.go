// Package kndtest runs the knd binary for tests and benchmarks: one
// `knd server` per test package (started from TestMain) with clients for it.
package kndtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/controlplane/portfile"
	"github.com/knd-dev/knd/pkg/node/nodetest"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// New prepares (but does not start) a server on a fresh data dir and a free
// API port.
func New() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "knd-test-")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	gwPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	return &Server{Bin: bin, DataDir: dataDir, APIPort: port, GatewayPort: gwPort, MetricsPort: metricsPort}, nil
}

// Server is a `knd server` process.
type Server struct {
	Bin, DataDir string
	APIPort      int
	GatewayPort  int
	MetricsPort  int
	// ExtraArgs are more `knd server` flags, such as --runtime=docker.
	ExtraArgs []string
	// Prefix is a command that runs knd, such as prlimit with its flags.
	Prefix []string
	cmd    *exec.Cmd
	// Output is what the server printed.
	Output     *nodetest.SyncBuffer
	exited     chan error
	RestConfig *rest.Config
}

// Binary is $KND_BIN, or bin/knd built by make.
func Binary() (string, error) {
	if bin := os.Getenv("KND_BIN"); bin != "" {
		return bin, nil
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("make", "-C", root, "build")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("make build: %w", err)
	}
	return filepath.Join(root, "bin", "knd"), nil
}

// FreePort is a loopback port free now.
func FreePort() (int, error) { return portfile.FreePort() }

// Start runs `knd server` and waits for its ready line.
func (s *Server) Start() error {
	s.Output = &nodetest.SyncBuffer{}
	argv := append(append(append([]string(nil), s.Prefix...), s.Bin, "server", "--data-dir", s.DataDir, "--api-port", fmt.Sprint(s.APIPort),
		"--gateway-port", fmt.Sprint(s.GatewayPort), "--gateway-metrics-port", fmt.Sprint(s.MetricsPort)), s.ExtraArgs...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.cmd.Stderr = s.Output
	if err := s.cmd.Start(); err != nil {
		return err
	}
	ready := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			line := scanner.Text()
			s.Output.Write([]byte(line + "\n"))
			if strings.HasPrefix(line, "knd is ready") {
				close(ready)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	select {
	case <-ready:
	case err := <-s.exited:
		return fmt.Errorf("knd server exited before ready: %v\n%s", err, s.Output)
	case <-time.After(3 * time.Minute):
		s.Stop()
		return fmt.Errorf("knd server not ready after 3m:\n%s", s.Output)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(s.DataDir, "kubeconfig"))
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 500, 1000 // tests measure knd, not client-side throttling
	s.RestConfig = cfg
	return nil
}

// Ports are the ports the server took (its data dir's ports.json).
func (s *Server) Ports(t testing.TB) portfile.Ports {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.DataDir, "ports.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ports portfile.Ports
	if err := json.Unmarshal(raw, &ports); err != nil {
		t.Fatalf("ports.json: %v", err)
	}
	return ports
}

// Stop sends SIGTERM and waits for the process to exit.
func (s *Server) Stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		return err
	case <-time.After(90 * time.Second):
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("knd server did not stop within 90s after SIGTERM")
	}
}

// Kubectl runs `knd kubectl` against the server.
func (s *Server) Kubectl(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(s.Bin, append([]string{"kubectl"}, args...)...)
	cmd.Env = append(os.Environ(), "KND_DATA_DIR="+s.DataDir, "KUBECONFIG=")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Knd runs `knd ARGS...` against the server, as a user whose KUBECONFIG is
// unset, and returns what it printed on stdout and stderr.
func (s *Server) Knd(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(s.Bin, args...)
	cmd.Env = append(os.Environ(), "KND_DATA_DIR="+s.DataDir, "KUBECONFIG=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Dynamic is a dynamic client for the server.
func (s *Server) Dynamic(t testing.TB) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(s.RestConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Clientset is a typed client for the server.
func (s *Server) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.RestConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Context is a test context that ends after two minutes.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Pid is the server's process ID (0 when not running).
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// RunShared is a TestMain body: it starts one server, hands it to set (the
// package's shared variable), runs the tests, stops the server and removes
// its data dir when they passed (kept for inspection when they failed).
func RunShared(m *testing.M, set func(*Server)) int { return RunSharedWith(m, nil, set) }

// RunSharedWith is RunShared for a server started with more flags.
func RunSharedWith(m *testing.M, extraArgs []string, set func(*Server)) int {
	s, err := New()
	if err == nil {
		s.ExtraArgs = extraArgs
		err = s.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	set(s)
	code := m.Run()
	s.Stop()
	if code == 0 {
		os.RemoveAll(s.DataDir)
	}
	return code
}

// Poll calls cond every 50 ms until it returns true; when timeout passes
// first, it fails t with what was awaited and cond's last state.
func Poll(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	nodetest.Poll(t, timeout, what, cond)
}
