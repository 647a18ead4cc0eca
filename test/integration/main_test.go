// Package integration runs the knd binary as users do and checks what they
// see through the real API: admission messages, defaults, printer columns,
// authentication and restarts. One server is shared by the whole package.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// server is the knd server under test.
type server struct {
	bin, dataDir string
	apiPort      int
	cmd          *exec.Cmd
	output       *bytes.Buffer
	exited       chan error
	restConfig   *rest.Config
}

var knd *server

func TestMain(m *testing.M) {
	bin, err := binary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dataDir, err := os.MkdirTemp("", "knd-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	port, err := freePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	knd = &server{bin: bin, dataDir: dataDir, apiPort: port}
	if err := knd.start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	knd.stop()
	if code == 0 {
		os.RemoveAll(dataDir)
	}
	os.Exit(code)
}

// binary is $KND_BIN, or bin/knd built by make.
func binary() (string, error) {
	if bin := os.Getenv("KND_BIN"); bin != "" {
		return bin, nil
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("make", "-C", root, "build")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("make build: %w", err)
	}
	return filepath.Join(root, "bin", "knd"), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs `knd server` and waits for its ready line.
func (s *server) start() error {
	s.output = &bytes.Buffer{}
	s.cmd = exec.Command(s.bin, "server", "--data-dir", s.dataDir, "--api-port", fmt.Sprint(s.apiPort))
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.cmd.Stderr = s.output
	if err := s.cmd.Start(); err != nil {
		return err
	}
	ready := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			line := scanner.Text()
			s.output.WriteString(line + "\n")
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
		return fmt.Errorf("knd server exited before ready: %v\n%s", err, s.output)
	case <-time.After(3 * time.Minute):
		s.stop()
		return fmt.Errorf("knd server not ready after 3m:\n%s", s.output)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(s.dataDir, "kubeconfig"))
	if err != nil {
		return err
	}
	s.restConfig = cfg
	return nil
}

// stop sends SIGTERM and waits for the process to exit.
func (s *server) stop() error {
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

// kubectl runs `knd kubectl` against the server.
func (s *server) kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(s.bin, append([]string{"kubectl"}, args...)...)
	cmd.Env = append(os.Environ(), "KND_DATA_DIR="+s.dataDir, "KUBECONFIG=")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *server) dynamic(t *testing.T) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(s.restConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *server) clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.restConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
