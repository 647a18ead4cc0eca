// Package docker is the node agent's provider for a Docker Engine (or any
// engine that speaks its API, such as Podman): each container of a pod is
// a real container with its own filesystem, user and cgroup limits. A pod
// is a pause container on a network of knd's, whose network namespace and
// address every container of the pod shares, as on a kubelet; the gateway
// dials that address. A pod on the host's network (hostNetwork) gets the
// engine's default network instead, published on a loopback port.
package docker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/knd-dev/knd/pkg/apis/podport"
	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/image"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Labels on every container knd starts.
const (
	managedLabel = "knd.dev/managed"
	podUIDLabel  = "knd.dev/pod-uid"
)

// Provider runs containers through a Docker Engine.
type Provider struct {
	engine *client.Client
	images *image.Store
	// node scopes the containers and the pod network of this knd (its
	// node name and data dir), so that two knd servers on one engine leave
	// each other's alone.
	node string
	// network is the pods' network (nil: pods publish a loopback port).
	network *podNetwork

	mu       sync.Mutex
	engineID map[string]string // ImageInfo.ID → the engine's image ID
}

// Available says whether a Docker-API engine answers (DOCKER_HOST or the
// default socket).
func Available(ctx context.Context) bool {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return false
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Ping(ctx)
	return err == nil
}

// New connects to the engine, removes containers a previous run of this
// node left behind (knd was killed before it could stop them: their pods
// are started again by the agent), and makes the pod network. dataDir
// tells this knd's containers from another's on the same engine.
func New(ctx context.Context, store *image.Store, nodeName, dataDir string) (*Provider, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Ping(pingCtx); err != nil {
		c.Close()
		return nil, fmt.Errorf("no Docker engine answers at %s: %w", c.DaemonHost(), err)
	}
	sum := sha256.Sum256([]byte(dataDir))
	p := &Provider{engine: c, images: store, node: nodeName + "-" + hex.EncodeToString(sum[:4]), engineID: map[string]string{}}
	if err := p.removeLeftovers(ctx); err != nil {
		return nil, err
	}
	if err := p.setUpPodNetwork(ctx); err != nil {
		klog.ErrorS(err, "no pod network: pods publish a loopback port instead")
		fmt.Printf("note: no pod network on the Docker engine (%v): pods publish a loopback port instead\n", err)
	}
	return p, nil
}

func (p *Provider) Name() string { return "docker" }

// Close removes the pod network (once its pods are gone; else the next
// start uses it again) and releases the engine connection.
func (p *Provider) Close() error {
	if p.network != nil {
		_ = p.engine.NetworkRemove(context.Background(), p.network.id)
	}
	return p.engine.Close()
}

func (p *Provider) removeLeftovers(ctx context.Context) error {
	list, err := p.engine.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", managedLabel+"="+p.node))})
	if err != nil {
		return err
	}
	for _, c := range list {
		klog.InfoS("removing a container left by an earlier run", "container", c.Names, "pod", c.Labels[podUIDLabel])
		if err := p.engine.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// PullImage finds ref in the engine, else loads it from knd's image store
// (`knd image import`), else has the engine pull it. References in
// ko.local, dev.local and kind.local only come from the engine or the store.
// Images present are used whatever the pull policy (knd does not refresh
// them for Always); with Never, nothing is pulled.
func (p *Provider) PullImage(ctx context.Context, ref string, policy corev1.PullPolicy) (node.ImageInfo, error) {
	if inspect, err := p.engine.ImageInspect(ctx, ref); err == nil {
		return p.remember(ref, inspect, ""), nil
	} else if !cerrdefs.IsNotFound(err) {
		return node.ImageInfo{}, err
	}
	if im, err := p.images.Lookup(ref); err == nil {
		return p.loadFromStore(ctx, ref, im)
	} else if !errors.Is(err, image.ErrNotFound) {
		return node.ImageInfo{}, err
	}
	if policy == corev1.PullNever {
		return node.ImageInfo{}, fmt.Errorf("%w: %s is in neither the Docker engine nor the local store", node.ErrNeverPull, ref)
	}
	if r, err := name.ParseReference(ref); err == nil && image.IsLocalOnly(r) {
		return node.ImageInfo{}, fmt.Errorf("%w: %s is in neither the Docker engine nor the local store (load it with `knd image import` or `docker load`)", image.ErrNotFound, ref)
	}
	rc, err := p.engine.ImagePull(ctx, ref, dockerimage.PullOptions{})
	if err != nil {
		return node.ImageInfo{}, err
	}
	err = pullResult(rc)
	rc.Close()
	if err != nil {
		return node.ImageInfo{}, err
	}
	inspect, err := p.engine.ImageInspect(ctx, ref)
	if err != nil {
		return node.ImageInfo{}, err
	}
	return p.remember(ref, inspect, ""), nil
}

// pullResult reads the engine's pull progress to its end and returns the
// error it reports, if any.
func pullResult(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if i := bytes.Index(b, []byte(`"error":`)); i >= 0 {
		msg := b[i+len(`"error":`):]
		if j := bytes.IndexByte(msg, '\n'); j >= 0 {
			msg = msg[:j]
		}
		return errors.New(strings.Trim(strings.TrimSuffix(strings.TrimSpace(string(msg)), "}"), `"`))
	}
	return nil
}

func (p *Provider) loadFromStore(ctx context.Context, ref string, im *image.Image) (node.ImageInfo, error) {
	inspect, err := load(ctx, p.engine, p.images, im)
	if err != nil {
		return node.ImageInfo{}, fmt.Errorf("loading %s into the Docker engine: %w", ref, err)
	}
	return p.remember(ref, inspect, im.Digest), nil
}

// load copies an image of knd's store into the engine, tagged with its
// reference, and returns the engine's view of it.
func load(ctx context.Context, engine *client.Client, store *image.Store, im *image.Image) (dockerimage.InspectResponse, error) {
	if err := loadTarball(ctx, engine, func(w io.Writer) error { return store.WriteDockerTarball(im, w) }); err != nil {
		return dockerimage.InspectResponse{}, err
	}
	return engine.ImageInspect(ctx, im.ConfigDigest())
}

// loadTarball streams the `docker save` tarball write writes into the
// engine (`docker load`).
func loadTarball(ctx context.Context, engine *client.Client, write func(io.Writer) error) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	resp, err := engine.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		pr.CloseWithError(err)
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}

// createContainer creates a container named name, replacing one of that
// name that survived a crash of knd (the same pod's, or attempt's).
func (p *Provider) createContainer(ctx context.Context, name string, config *container.Config, hostConfig *container.HostConfig) (string, error) {
	created, err := p.engine.ContainerCreate(ctx, config, hostConfig, nil, nil, name)
	if cerrdefs.IsConflict(err) {
		_ = p.engine.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
		created, err = p.engine.ContainerCreate(ctx, config, hostConfig, nil, nil, name)
	}
	return created.ID, err
}

// LoadIntoEngine copies images of knd's store into the Docker engine, so
// that `knd image import` updates both; false when no engine answers.
func LoadIntoEngine(ctx context.Context, store *image.Store, images []image.Image) (bool, error) {
	if !Available(ctx) {
		return false, nil
	}
	engine, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return false, err
	}
	defer engine.Close()
	for i := range images {
		if _, err := load(ctx, engine, store, &images[i]); err != nil {
			return true, fmt.Errorf("loading %s into the Docker engine: %w", images[i].Ref, err)
		}
	}
	return true, nil
}

// remember returns the image's run configuration and keeps the engine's ID
// for Start. The ID shown in pod status is the manifest digest when known.
func (p *Provider) remember(ref string, inspect dockerimage.InspectResponse, manifestDigest string) node.ImageInfo {
	id := manifestDigest
	for _, rd := range inspect.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@"); ok && id == "" {
			id = d
		}
	}
	if id == "" {
		id = inspect.ID
	}
	info := node.ImageInfo{Ref: ref, ID: id}
	if c := inspect.Config; c != nil {
		info.Entrypoint, info.Cmd, info.Env, info.WorkingDir = c.Entrypoint, c.Cmd, c.Env, c.WorkingDir
	}
	p.mu.Lock()
	p.engineID[id] = inspect.ID
	p.mu.Unlock()
	return info
}

// Start creates, attaches to and starts a container.
func (p *Provider) Start(ctx context.Context, cfg node.ContainerConfig) (node.Container, error) {
	p.mu.Lock()
	imageID := p.engineID[cfg.Image.ID]
	p.mu.Unlock()
	if imageID == "" {
		return nil, fmt.Errorf("image %s was not pulled through this provider", cfg.Image.Ref)
	}
	if len(cfg.Argv) == 0 {
		return nil, errors.New("no command: the image has no entrypoint or cmd, and the container sets no command")
	}
	port := cfg.ContainerPort
	if port == 0 {
		port = podport.Default
	}
	config := &container.Config{
		Image: imageID, Entrypoint: cfg.Argv[:1], Cmd: cfg.Argv[1:], Env: cfg.Env,
		WorkingDir: cfg.WorkingDir, User: cfg.User, AttachStdout: true, AttachStderr: true,
		Labels: map[string]string{managedLabel: p.node, podUIDLabel: cfg.PodUID},
	}
	hostConfig := &container.HostConfig{
		Resources: container.Resources{Memory: cfg.MemoryLimit, NanoCPUs: cfg.CPULimit * 1_000_000, CPUShares: int64(cfg.CPUShares)},
	}
	for _, m := range cfg.Mounts {
		hostConfig.Mounts = append(hostConfig.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	sb, inPod := cfg.Sandbox.(*podSandbox)
	if inPod {
		// The pod's network namespace, address, hostname and resolver.
		hostConfig.NetworkMode = container.NetworkMode("container:" + sb.id)
	} else {
		// The engine's default network, published on the pod's loopback
		// port; inside, the container listens on its own.
		config.Env = withPort(cfg.Env, port)
		containerPort := nat.Port(fmt.Sprintf("%d/tcp", port))
		config.ExposedPorts = nat.PortSet{containerPort: {}}
		hostConfig.PortBindings = nat.PortMap{containerPort: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(cfg.Port)}}}
	}
	id, err := p.createContainer(ctx, "knd_"+cfg.Name, config, hostConfig)
	if err != nil {
		return nil, err
	}
	c := &dockerContainer{p: p, id: id, port: port, done: make(chan struct{}), memoryLimited: cfg.MemoryLimit > 0}
	attach, err := p.engine.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		c.remove()
		return nil, err
	}
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		defer attach.Close()
		_, _ = stdcopy.StdCopy(cfg.Stdout, cfg.Stderr, attach.Reader)
	}()
	if err := p.engine.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		attach.Close()
		c.remove()
		return nil, err
	}
	if inPod {
		c.ip = sb.ip
	} else if inspect, err := p.engine.ContainerInspect(ctx, id); err == nil && inspect.NetworkSettings != nil {
		c.ip = inspect.NetworkSettings.IPAddress
	}
	go c.wait(logsDone)
	return c, nil
}

// withPort sets PORT to the container's own port: inside its network
// namespace it listens there, whatever the pod's published port is.
func withPort(env []string, port int) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PORT=") {
			out = append(out, kv)
		}
	}
	return append(out, "PORT="+strconv.Itoa(port))
}

type dockerContainer struct {
	p    *Provider
	id   string
	ip   string
	port int
	done chan struct{}
	exit node.ExitStatus
	// memoryLimited: the container can be OOM-killed by its own limit.
	memoryLimited bool
}

func (c *dockerContainer) ID() string { return c.id }

func (c *dockerContainer) Done() <-chan struct{} { return c.done }

func (c *dockerContainer) Exit() node.ExitStatus { return c.exit }

// DirectAddress is the container's own address on the engine's network:
// probes go there, not through the loopback publication.
func (c *dockerContainer) DirectAddress() (string, int) {
	if c.ip == "" {
		return "127.0.0.1", c.port
	}
	return c.ip, c.port
}

func (c *dockerContainer) Signal(sig syscall.Signal) error {
	err := c.p.engine.ContainerKill(context.Background(), c.id, strconv.Itoa(int(sig)))
	if err != nil && (cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err)) {
		return nil // already gone or not running
	}
	return err
}

// wait records how the container ended once it stops and its output is
// copied, then removes it.
func (c *dockerContainer) wait(logsDone <-chan struct{}) {
	ctx := context.Background()
	waitCh, errCh := c.p.engine.ContainerWait(ctx, c.id, container.WaitConditionNotRunning)
	select {
	case <-waitCh:
	case err := <-errCh:
		c.exit = node.ExitStatus{Code: 128, Message: err.Error()}
	}
	// The engine may record the OOM kill a moment after the exit it caused
	// (its OOM event and exit event race; seen once in CI as 137 without
	// OOMKilled): a memory-limited container's SIGKILL is looked at again
	// for up to a second before it is taken as a plain kill.
	for deadline := time.Now().Add(time.Second); ; time.Sleep(50 * time.Millisecond) {
		inspect, err := c.p.engine.ContainerInspect(ctx, c.id)
		if err != nil || inspect.State == nil {
			break
		}
		c.exit = node.ExitStatus{Code: inspect.State.ExitCode, OOMKilled: inspect.State.OOMKilled, Message: inspect.State.Error}
		if !c.memoryLimited || c.exit.OOMKilled || c.exit.Code != 128+int(syscall.SIGKILL) || time.Now().After(deadline) {
			break
		}
	}
	select {
	case <-logsDone:
	case <-time.After(5 * time.Second):
	}
	c.remove()
	close(c.done)
}

func (c *dockerContainer) remove() {
	if err := c.p.engine.ContainerRemove(context.Background(), c.id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		klog.ErrorS(err, "removing container", "container", c.id)
	}
}

// Exec runs argv in the container and returns its exit code and output.
func (c *dockerContainer) Exec(ctx context.Context, argv []string) (int, []byte, error) {
	created, err := c.p.engine.ContainerExecCreate(ctx, c.id, container.ExecOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, nil, err
	}
	attach, err := c.p.engine.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, nil, err
	}
	defer attach.Close()
	var out bytes.Buffer
	copied := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(&out, &out, attach.Reader); copied <- err }()
	select {
	case <-ctx.Done():
		return -1, out.Bytes(), ctx.Err()
	case err := <-copied:
		if err != nil {
			return -1, out.Bytes(), err
		}
	}
	inspect, err := c.p.engine.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return -1, out.Bytes(), err
	}
	return inspect.ExitCode, out.Bytes(), nil
}
