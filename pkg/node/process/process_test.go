package process_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/image"
	"github.com/knd-dev/knd/pkg/node/nodetest"
	"github.com/knd-dev/knd/pkg/node/process"
	"github.com/knd-dev/knd/pkg/node/volume"
	corev1 "k8s.io/api/core/v1"
)

// setup is a provider that runs containers unsandboxed, on the host's
// network (sandbox_test.go tests the sandbox).
func setup(t *testing.T) (*process.Provider, node.ImageInfo) {
	return setupWith(t, process.Options{NoSandbox: true})
}

func setupWith(t *testing.T, opts process.Options) (*process.Provider, node.ImageInfo) {
	t.Helper()
	dir := t.TempDir()
	store, err := image.Open(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(nodetest.BuildTestServer(t, dir), "dev.local/testserver:v1"); err != nil {
		t.Fatal(err)
	}
	opts.DataDir = dir
	p := process.New(store, opts)
	t.Cleanup(func() { p.Close() })
	img, err := p.PullImage(context.Background(), "dev.local/testserver:v1", corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	return p, img
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestRunServeExecAndStop(t *testing.T) {
	p, img := setup(t)
	port := nodetest.FreePort(t)
	out := &nodetest.SyncBuffer{}
	c, err := p.Start(context.Background(), node.ContainerConfig{
		Name: "t_run", Image: img, Argv: img.Entrypoint, WorkingDir: "/work",
		Env:    []string{"PORT=" + fmt.Sprint(port), "GREETING=hi", "HOSTNAME=pod-a", "PATH=/"},
		Stdout: out, Stderr: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		if body, err = get(url + "/"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body != "hello from pod-a hi\n" {
		t.Fatalf("GET / = %q, %v", body, err)
	}
	if wd, _ := get(url + "/cwd"); os.Geteuid() == 0 && wd != "/work" {
		t.Errorf("working directory %q, want /work (inside the image root)", wd)
	}
	code, output, err := c.Exec(context.Background(), []string{"testserver"})
	if err != nil {
		t.Fatal(err)
	}
	// A second server on the same PORT cannot listen: exit 1 with the reason.
	if code != 1 || !strings.Contains(string(output), "address already in use") {
		t.Errorf("exec: code %d output %q", code, output)
	}
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("container did not stop on SIGTERM")
	}
	if st := c.Exit(); st.Code != 0 {
		t.Errorf("exit %+v, want 0", st)
	}
	if !strings.Contains(out.String(), "SIGTERM: exiting") {
		t.Errorf("output %q lacks the SIGTERM line", out.String())
	}
}

func TestExitCodesAndKill(t *testing.T) {
	p, img := setup(t)
	out := &nodetest.SyncBuffer{}
	c, err := p.Start(context.Background(), node.ContainerConfig{Name: "t_exit", Image: img,
		Argv: img.Entrypoint, Env: []string{"EXIT_CODE=3"}, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Exit(); st.Code != 3 {
		t.Errorf("exit %+v, want 3", st)
	}
	if !strings.Contains(out.String(), "exiting with 3 as asked") {
		t.Errorf("stderr %q", out.String())
	}

	out = &nodetest.SyncBuffer{}
	c, err = p.Start(context.Background(), node.ContainerConfig{Name: "t_kill", Image: img,
		Argv: img.Entrypoint, Env: []string{"IGNORE_SIGTERM=1", fmt.Sprintf("PORT=%d", nodetest.FreePort(t))}, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	// It prints "listening" once its SIGTERM handler is installed.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "listening"); {
		if time.Now().After(deadline) {
			t.Fatalf("test server did not start: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = c.Signal(syscall.SIGTERM)
	select {
	case <-c.Done():
		t.Fatal("stopped on SIGTERM although it ignores it")
	case <-time.After(300 * time.Millisecond):
	}
	_ = c.Signal(syscall.SIGKILL)
	if st := c.Exit(); st.Code != 137 {
		t.Errorf("exit %+v, want 137 (SIGKILL)", st)
	}
}

func TestMissingExecutable(t *testing.T) {
	p, img := setup(t)
	_, err := p.Start(context.Background(), node.ContainerConfig{Name: "t_missing", Image: img,
		Argv: []string{"nope"}, Env: []string{"PATH=/bin"}, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || err.Error() != `exec: "nope": executable file not found in $PATH` {
		t.Fatalf("start: %v", err)
	}
}

// A process over its memory limit is OOM-killed and says so; one within it
// runs until stopped.
func TestMemoryLimit(t *testing.T) {
	p, img := setup(t)
	if !p.LimitsEnforced() {
		t.Skip("no writable cgroup v2 or v1 memory and cpu controllers: limits are not enforced here")
	}
	start := func(name, allocMB string) (node.Container, *nodetest.SyncBuffer) {
		t.Helper()
		out := &nodetest.SyncBuffer{}
		c, err := p.Start(context.Background(), node.ContainerConfig{
			Name: name, Image: img, Argv: img.Entrypoint, MemoryLimit: 64 << 20, CPULimit: 500,
			Env:    []string{"ALLOC_MB=" + allocMB, "PORT=" + fmt.Sprint(nodetest.FreePort(t))},
			Stdout: out, Stderr: out,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Signal(syscall.SIGKILL); <-c.Done() })
		return c, out
	}
	hog, _ := start("t_oom", "256")
	select {
	case <-hog.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("256 MiB under a 64 MiB limit kept running")
	}
	if ex := hog.Exit(); !ex.OOMKilled || ex.Code != 137 {
		t.Errorf("256 MiB under a 64 MiB limit: %+v, want OOMKilled with 137", ex)
	}
	fits, out := start("t_fits", "16")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "allocated 16 MiB") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := fits.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-fits.Done()
	if ex := fits.Exit(); ex.OOMKilled || ex.Code != 0 || !strings.Contains(out.String(), "allocated 16 MiB") {
		t.Errorf("16 MiB under a 64 MiB limit: %+v, output %q", ex, out.String())
	}
}

// Pull policy Never looks only in the store.
func TestPullPolicyNever(t *testing.T) {
	p, _ := setup(t)
	if _, err := p.PullImage(context.Background(), "dev.local/testserver:v1", corev1.PullNever); err != nil {
		t.Errorf("a stored image under Never: %v", err)
	}
	if _, err := p.PullImage(context.Background(), "example.com/absent:v1", corev1.PullNever); !errors.Is(err, node.ErrNeverPull) {
		t.Errorf("an absent image under Never: %v, want ErrNeverPull", err)
	}
}

// Without the sandbox a container cannot have volumes mounted: a pod that
// asks for one is refused with the reason, while the API access volume
// every pod gets from ServiceAccount admission is left out, so pods still
// run (every revision's pod has it).
func TestUnsandboxedVolumes(t *testing.T) {
	p, img := setup(t)
	start := func(name string, m volume.Mount) error {
		c, err := p.Start(context.Background(), node.ContainerConfig{
			Name: name, Image: img, Argv: img.Entrypoint, Port: nodetest.FreePort(t),
			Env: []string{"PORT=" + fmt.Sprint(nodetest.FreePort(t))}, Stdout: io.Discard, Stderr: io.Discard,
			Mounts: []volume.Mount{m},
		})
		if err == nil {
			c.Signal(syscall.SIGKILL)
			<-c.Done()
		}
		return err
	}
	dir := t.TempDir()
	if err := start("t_api_access", volume.Mount{Source: dir, Target: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true, APIAccess: true}); err != nil {
		t.Errorf("a pod with only the API access volume: %v", err)
	}
	err := start("t_volume", volume.Mount{Source: dir, Target: "/data"})
	if err == nil || err.Error() != "volumes are mounted only in the pod sandbox (--sandbox=false)" {
		t.Errorf("a pod with a volume: %v, want refused with the reason", err)
	}
}
