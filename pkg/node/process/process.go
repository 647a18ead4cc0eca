// Package process is the node agent's default provider: each container is
// a child process of knd running the image's entrypoint from the image's
// unpacked filesystem. As root the process is changed into that filesystem
// with its own mount and PID namespaces; otherwise the entrypoint runs from
// the unpacked tree with the host's root, which is enough for static
// binaries.
package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/image"
	corev1 "k8s.io/api/core/v1"
)

// Provider runs containers as local processes.
type Provider struct {
	images *image.Store
	// isolate is true when processes get a changed root and namespaces.
	isolate bool
	// cgroups is where containers with limits get their cgroups; nil when
	// limits are not enforced.
	cgroups *cgroups

	mu     sync.Mutex
	rootfs map[string]string // image digest → unpacked tree
}

// New returns a provider that takes images from store. Isolation (chroot,
// mount and PID namespaces) is used when knd runs as root.
func New(store *image.Store) *Provider {
	return &Provider{images: store, isolate: os.Geteuid() == 0, cgroups: detectCgroups(), rootfs: map[string]string{}}
}

// Isolated says whether containers run in their own root and namespaces.
func (p *Provider) Isolated() bool { return p.isolate }

// LimitsEnforced says whether memory and CPU limits are enforced: with
// writable cgroup v2 memory and cpu controllers, or cgroup v1's.
func (p *Provider) LimitsEnforced() bool { return p.cgroups != nil }

func (p *Provider) Name() string { return "process" }

// PullImage resolves ref from the store (or its registry) and unpacks it.
// Images present in the store are used whatever the pull policy: knd does
// not refresh them from their registry (pull policy Always).
func (p *Provider) PullImage(ctx context.Context, ref string, policy corev1.PullPolicy) (node.ImageInfo, error) {
	resolve := p.images.Resolve
	if policy == corev1.PullNever {
		resolve = func(_ context.Context, ref string) (*image.Image, error) {
			im, err := p.images.Lookup(ref)
			if errors.Is(err, image.ErrNotFound) {
				return nil, fmt.Errorf("%w: %s", node.ErrNeverPull, ref)
			}
			return im, err
		}
	}
	im, err := resolve(ctx, ref)
	if err != nil {
		return node.ImageInfo{}, err
	}
	dir, err := p.images.Rootfs(im)
	if err != nil {
		return node.ImageInfo{}, err
	}
	p.mu.Lock()
	p.rootfs[im.Digest] = dir
	p.mu.Unlock()
	return node.ImageInfo{
		Ref: im.Ref, ID: im.Digest,
		Entrypoint: im.Config.Entrypoint, Cmd: im.Config.Cmd,
		Env: im.Config.Env, WorkingDir: im.Config.WorkingDir,
	}, nil
}

// Start runs cfg.Argv as a child process.
func (p *Provider) Start(ctx context.Context, cfg node.ContainerConfig) (node.Container, error) {
	p.mu.Lock()
	root := p.rootfs[cfg.Image.ID]
	p.mu.Unlock()
	if root == "" {
		return nil, fmt.Errorf("image %s is not pulled", cfg.Image.Ref)
	}
	if len(cfg.Argv) == 0 {
		return nil, errors.New("no command specified")
	}
	exe, err := lookPath(root, cfg.Argv[0], cfg.Env)
	if err != nil {
		return nil, err
	}
	wd := cfg.WorkingDir
	if wd == "" {
		wd = "/"
	}
	// Like a container runtime, create the working directory if the image lacks it.
	if err := os.MkdirAll(filepath.Join(root, wd), 0o755); err != nil {
		return nil, err
	}
	c := &container{id: cfg.Name, root: root, env: cfg.Env, wd: wd, isolate: p.isolate, done: make(chan struct{})}
	if p.cgroups != nil && (cfg.MemoryLimit > 0 || cfg.CPULimit > 0) {
		if c.cgroup, err = p.cgroups.newCgroup(cfg.Name, cfg.MemoryLimit, cfg.CPULimit); err != nil {
			return nil, fmt.Errorf("setting resource limits: %w", err)
		}
	}
	start := func() (*exec.Cmd, error) {
		newCmd := func() *exec.Cmd {
			cmd := c.command(exe, cfg.Argv)
			cmd.Stdout, cmd.Stderr = cfg.Stdout, cfg.Stderr
			return cmd
		}
		if c.cgroup != nil {
			return startInCgroup(newCmd, c.cgroup)
		}
		cmd := newCmd()
		return cmd, cmd.Start()
	}
	cmd, err := start()
	if err != nil && p.isolate && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL)) {
		// Namespaces can be refused inside another container; fall back.
		c.isolate = false
		cmd, err = start()
	}
	if err != nil {
		if c.cgroup != nil {
			c.cgroup.remove()
		}
		return nil, err
	}
	c.cmd = cmd
	go c.wait()
	return c, nil
}

type container struct {
	id      string
	root    string
	env     []string
	wd      string
	isolate bool
	cmd     *exec.Cmd
	cgroup  *cgroup // nil without limits
	done    chan struct{}
	exit    node.ExitStatus
}

// startInCgroup starts a command stopped at its exec (traced), moves it
// into cg and lets it run, so that none of its own code runs outside its
// limits.
func startInCgroup(newCmd func() *exec.Cmd, cg *cgroup) (*exec.Cmd, error) {
	// ptrace requests must come from the thread that started the child.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := newCmd()
	cmd.SysProcAttr.Ptrace = true
	if err := cmd.Start(); errors.Is(err, syscall.EPERM) {
		// Tracing refused (a seccomp profile, say): join right after the
		// start instead, which leaves the process's first instructions
		// outside its limits.
		cmd = newCmd()
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		if err := cg.add(cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait() // reap it
			return nil, fmt.Errorf("joining its cgroup: %w", err)
		}
		return cmd, nil
	} else if err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, syscall.WALL, nil); err != nil || !ws.Stopped() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // reap it
		return nil, fmt.Errorf("starting %s: not stopped at exec (%v, status %v)", cmd.Path, err, ws)
	}
	joinErr := cg.add(pid)
	if err := syscall.PtraceDetach(pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // reap it
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	if joinErr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // reap it
		return nil, fmt.Errorf("joining its cgroup: %w", joinErr)
	}
	return cmd, nil
}

// command builds the exec.Cmd for argv with exe resolved inside the root.
func (c *container) command(exe string, argv []string) *exec.Cmd {
	cmd := &exec.Cmd{Args: argv, Env: c.env, WaitDelay: 2 * time.Second}
	// The process dies with knd even if knd is killed, so a restart never
	// finds orphans.
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if c.isolate {
		attr.Chroot = c.root
		attr.Cloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID
		cmd.Path, cmd.Dir = exe, c.wd
	} else {
		cmd.Path, cmd.Dir = filepath.Join(c.root, exe), filepath.Join(c.root, c.wd)
	}
	cmd.SysProcAttr = attr
	return cmd
}

func (c *container) wait() {
	err := c.cmd.Wait()
	st := node.ExitStatus{}
	if ps := c.cmd.ProcessState; ps != nil {
		ws := ps.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			st.Code = 128 + int(ws.Signal())
		default:
			st.Code = ws.ExitStatus()
		}
	} else if err != nil {
		st.Code, st.Message = 128, err.Error()
	}
	if c.cgroup != nil {
		st.OOMKilled = st.Code == 128+int(syscall.SIGKILL) && c.cgroup.oomKilled()
		c.cgroup.remove()
	}
	c.exit = st
	close(c.done)
}

func (c *container) ID() string            { return c.id }
func (c *container) Done() <-chan struct{} { return c.done }
func (c *container) Exit() node.ExitStatus { <-c.done; return c.exit }
func (c *container) Signal(sig syscall.Signal) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	// The process leads its own group: signal every process in it.
	err := syscall.Kill(-c.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Exec runs argv with the container's root, environment and directory.
func (c *container) Exec(ctx context.Context, argv []string) (int, []byte, error) {
	if len(argv) == 0 {
		return -1, nil, errors.New("no command")
	}
	exe, err := lookPath(c.root, argv[0], c.env)
	if err != nil {
		return -1, nil, err
	}
	cmd := c.command(exe, argv)
	cmd.SysProcAttr.Cloneflags = 0
	out := &limitedBuffer{max: 10 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return -1, nil, err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		return -1, out.buf, ctx.Err()
	case <-waited:
	}
	return cmd.ProcessState.ExitCode(), out.buf, nil
}

// lookPath finds name inside root the way a container runtime does: as
// given when it has a slash, else along the container's PATH.
func lookPath(root, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		p := path.Clean("/" + name)
		if isExecutable(filepath.Join(root, p)) {
			return p, nil
		}
		return "", fmt.Errorf("exec: %q: stat %s: no such file or directory", name, p)
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		p := path.Join("/", dir, name)
		if isExecutable(filepath.Join(root, p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// limitedBuffer keeps the first max bytes written to it (probe output).
type limitedBuffer struct {
	max int
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
