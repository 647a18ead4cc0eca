// Package process is the node agent's default provider: each container is
// a process of knd's running the image's entrypoint from the image's
// unpacked filesystem. As root, each pod gets its own network (podnet) and
// each container a sandbox: its own root filesystem (an overlay on the
// image's), namespaces, user, reduced capabilities and a seccomp filter
// (sandbox). Otherwise the entrypoint runs on the host's network from the
// unpacked tree, changed into it with its own mount and PID namespaces as
// root, with the host's root when not, which is enough for static binaries.
package process

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/image"
	"github.com/knd-dev/knd/pkg/node/process/initbin"
	"github.com/knd-dev/knd/pkg/node/process/podnet"
	"github.com/knd-dev/knd/pkg/node/process/sandbox"
	"github.com/knd-dev/knd/pkg/node/volume"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// Options configure the provider.
type Options struct {
	// DataDir holds the containers' root filesystems and the pods' files.
	DataDir string
	// PodCIDR is the range the node's pod subnet comes from
	// (podnet.DefaultClusterCIDR when empty), and MaxPods the most pods
	// it must hold.
	PodCIDR string
	MaxPods int
	// NoSandbox runs pods on the host's network without a sandbox, as
	// when knd is not root.
	NoSandbox bool
}

// Provider runs containers as local processes.
type Provider struct {
	images  *image.Store
	dataDir string
	// starter runs knd-sandbox-init and network is the pods' network:
	// both set when containers run sandboxed.
	starter *sandbox.Starter
	network *podnet.Network
	// unsandboxed says why containers are not sandboxed ("" when they are).
	unsandboxed string
	// isolate is true when unsandboxed processes get a changed root and
	// namespaces (as root).
	isolate bool
	// cgroups is where containers get their cgroups; nil when limits are
	// not enforced.
	cgroups *cgroups

	mu     sync.Mutex
	rootfs map[string]string // image digest → unpacked tree
}

// New returns a provider that takes images from store. As root (unless
// opts.NoSandbox) pods get their own network and containers a sandbox; if
// that cannot be set up, Unsandboxed says why and pods run as without root.
func New(store *image.Store, opts Options) *Provider {
	p := &Provider{images: store, dataDir: opts.DataDir, isolate: os.Geteuid() == 0, cgroups: detectCgroups(), rootfs: map[string]string{}}
	switch {
	case opts.NoSandbox:
		p.unsandboxed = "--sandbox=false"
	case os.Geteuid() != 0:
		p.unsandboxed = "not running as root"
	default:
		if err := p.setUpSandbox(opts); err != nil {
			p.unsandboxed = err.Error()
		}
	}
	return p
}

// setUpSandbox writes out the sandbox init, removes containers' root
// filesystems a killed knd left mounted, and makes the pod network.
func (p *Provider) setUpSandbox(opts Options) error {
	bin, err := initbin.Binary()
	if err != nil {
		return err
	}
	dir := filepath.Join(p.dataDir, "sandbox")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	initPath := filepath.Join(dir, initbin.Name)
	if err := writeFileAtomic(initPath, bin, 0o500); err != nil {
		return err
	}
	if err := shareContainerRoots(filepath.Join(p.dataDir, "containers")); err != nil {
		return fmt.Errorf("containers' root filesystems: %w", err)
	}
	cidr := opts.PodCIDR
	if cidr == "" {
		cidr = podnet.DefaultClusterCIDR
	}
	subnetFile := filepath.Join(dir, "pod-subnet")
	previous, _ := os.ReadFile(subnetFile)
	network, err := podnet.Setup(cidr, max(opts.MaxPods, 1), strings.TrimSpace(string(previous)))
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	if err := os.WriteFile(subnetFile, []byte(network.Subnet.String()+"\n"), 0o600); err != nil {
		network.Close()
		return err
	}
	// Two inits ahead: a cold start, or a probe, rarely waits for one.
	p.starter, p.network = sandbox.NewStarter(initPath, 2), network
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Unsandboxed says why pods are not sandboxed, or "" when they are.
func (p *Provider) Unsandboxed() string { return p.unsandboxed }

// PodSubnet is the node's pod subnet ("" without a pod network).
func (p *Provider) PodSubnet() string {
	if p.network == nil {
		return ""
	}
	return p.network.Subnet.String()
}

// Close removes the pod network; call it once every pod has stopped.
func (p *Provider) Close() error {
	if p.network == nil {
		return nil
	}
	p.starter.Close()
	_ = unix.Unmount(filepath.Join(p.dataDir, "containers"), unix.MNT_DETACH)
	return p.network.Close()
}

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
		Env: im.Config.Env, WorkingDir: im.Config.WorkingDir, User: im.Config.User,
	}, nil
}

// Start runs cfg.Argv as a child process: sandboxed when cfg has the
// pod's sandbox, else as without root.
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
	wd := cfg.WorkingDir
	if wd == "" {
		wd = "/"
	}
	c := &container{id: cfg.Name, root: root, env: cfg.Env, wd: wd, isolate: p.isolate, done: make(chan struct{}),
		hostname: cfg.Hostname, starter: p.starter}
	var err error
	sb, sandboxed := cfg.Sandbox.(*podSandbox)
	// A container with limits or a CPU request gets cgroups of its own,
	// which a sandboxed one sees as its /sys/fs/cgroup. One with neither
	// (every revision by default) stays in knd's: a cgroup, moving into it
	// and mounting it added about 10 ms to a sandboxed start here
	// (docs/benchmarks.md).
	if p.cgroups != nil && (cfg.MemoryLimit > 0 || cfg.CPULimit > 0 || cfg.CPUShares > node.CPUShares(0)) {
		if c.cgroup, err = p.cgroups.newCgroup(cfg.Name, cfg.MemoryLimit, cfg.CPULimit, cfg.CPUShares); err != nil {
			return nil, fmt.Errorf("setting resource limits: %w", err)
		}
		c.cgroupView = p.cgroups.view()
	}
	if sandboxed {
		err = p.startSandboxed(c, sb, cfg)
	} else if asked := slices.DeleteFunc(slices.Clone(cfg.Mounts), func(m volume.Mount) bool { return m.APIAccess }); len(asked) > 0 {
		// Without a mount namespace of its own a container cannot have
		// volumes mounted without changing the host's (or the image's)
		// tree. The API access volume every pod gets is left out: the pod
		// did not ask for it.
		err = fmt.Errorf("volumes are mounted only in the pod sandbox (%s)", cmp.Or(p.unsandboxed, "a hostNetwork pod has none"))
	} else {
		err = c.startUnsandboxed(cfg)
	}
	if err != nil {
		c.cleanUp()
		return nil, err
	}
	go c.wait()
	return c, nil
}

// startSandboxed runs the container in its own root filesystem and
// namespaces, in the pod's network, as its user (see package sandbox).
func (p *Provider) startSandboxed(c *container, sb *podSandbox, cfg node.ContainerConfig) error {
	c.sandbox = sb
	for _, m := range cfg.Mounts {
		c.mounts = append(c.mounts, sandbox.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	c.user = cfg.Image.User
	if cfg.User != "" {
		c.user = cfg.User
		if cfg.Group != "" {
			c.user += ":" + cfg.Group
		}
	}
	croot, err := mountContainerRoot(filepath.Join(p.dataDir, "containers", cfg.Name), c.root)
	if err != nil {
		return err
	}
	c.croot = croot
	var join func(int) error
	if c.cgroup != nil {
		join = c.cgroup.add
	}
	proc, err := c.starter.Start(c.sandboxSpec(cfg.Argv), cfg.Stdout, cfg.Stderr, sb.net.NS, join)
	if err != nil {
		return err
	}
	c.cmd, c.waitOutput = proc.Cmd, proc.WaitOutput
	return nil
}

// startUnsandboxed runs the container on the host's network, from the
// image's tree: changed into it with its own mount and PID namespaces as
// root, else with the host's root.
func (c *container) startUnsandboxed(cfg node.ContainerConfig) error {
	exe, err := sandbox.LookPath(c.root, cfg.Argv[0], cfg.Env)
	if err != nil {
		return err
	}
	// Like a container runtime, create the working directory if the image lacks it.
	if err := os.MkdirAll(filepath.Join(c.root, c.wd), 0o755); err != nil {
		return err
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
	if err != nil && c.isolate && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL)) {
		// Namespaces can be refused inside another container; fall back.
		c.isolate = false
		cmd, err = start()
	}
	c.cmd = cmd
	return err
}

type container struct {
	id      string
	root    string // the image's unpacked tree
	env     []string
	wd      string
	isolate bool
	cmd     *exec.Cmd
	cgroup  *cgroup // nil without limits (unsandboxed) or cgroups
	done    chan struct{}
	exit    node.ExitStatus

	// Set when the container is sandboxed.
	sandbox    *podSandbox
	croot      *containerRoot
	starter    *sandbox.Starter
	waitOutput func() // the copying of its output (nil: cmd.Wait waits for it)
	user       string
	hostname   string
	mounts     []sandbox.Mount
	cgroupView sandbox.Cgroups
}

// cleanUp releases what a container held once it has stopped.
func (c *container) cleanUp() {
	if c.cgroup != nil {
		c.cgroup.remove()
	}
	if c.croot != nil {
		c.croot.remove()
	}
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
	if c.waitOutput != nil {
		c.waitOutput()
	}
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
	}
	c.cleanUp()
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

// Exec runs argv with the container's root, environment, directory, user
// and network.
func (c *container) Exec(ctx context.Context, argv []string) (int, []byte, error) {
	if len(argv) == 0 {
		return -1, nil, errors.New("no command")
	}
	out := &limitedBuffer{max: 10 << 10}
	var cmd *exec.Cmd
	wait := func() error { return cmd.Wait() }
	if c.sandbox != nil {
		// The same sandbox and cgroups as the container's, in a PID
		// namespace of its own.
		var join func(int) error
		if c.cgroup != nil {
			join = c.cgroup.add
		}
		proc, err := c.starter.Start(c.sandboxSpec(argv), out, out, c.sandbox.net.NS, join)
		if err != nil {
			return -1, out.buf, err
		}
		cmd, wait = proc.Cmd, proc.Wait
	} else {
		exe, err := sandbox.LookPath(c.root, argv[0], c.env)
		if err != nil {
			return -1, nil, err
		}
		cmd = c.command(exe, argv)
		cmd.SysProcAttr.Cloneflags = 0
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return -1, nil, err
		}
	}
	waited := make(chan error, 1)
	go func() { waited <- wait() }()
	select {
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		return -1, out.buf, ctx.Err()
	case <-waited:
	}
	return cmd.ProcessState.ExitCode(), out.buf, nil
}

// limitedBuffer keeps the first max bytes written to it (probe output,
// from stdout and stderr at once).
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
