package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/image"
	"github.com/knd-dev/knd/pkg/node/process/initbin"
)

// podNetwork is the engine network of this node's pods: a bridge network
// of the engine's, made by knd and named after the node, on which every
// pod has the address of its pause container.
type podNetwork struct {
	id      string
	gateway string // the host's address on it
	pause   string // the pause image's reference
}

// setUpPodNetwork finds or makes the node's network and the pause image.
func (p *Provider) setUpPodNetwork(ctx context.Context) error {
	netName := "knd-" + nameSafe.ReplaceAllString(p.node, "-")
	inspect, err := p.engine.NetworkInspect(ctx, netName, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		if _, err = p.engine.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "bridge",
			Labels: map[string]string{managedLabel: p.node}}); err != nil && !cerrdefs.IsConflict(err) {
			return fmt.Errorf("creating the pod network %s: %w", netName, err)
		}
		inspect, err = p.engine.NetworkInspect(ctx, netName, network.InspectOptions{})
	}
	if err != nil {
		return fmt.Errorf("pod network %s: %w", netName, err)
	}
	gw := ""
	for _, c := range inspect.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			gw = c.Gateway
		}
	}
	if gw == "" {
		return fmt.Errorf("pod network %s has no IPv4 gateway", netName)
	}
	pause, err := ensurePauseImage(ctx, p.engine)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	p.network = &podNetwork{id: inspect.ID, gateway: gw, pause: pause}
	return nil
}

// nameSafe matches what an engine's network name may not hold.
var nameSafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// ensurePauseImage loads the pause image (knd-sandbox-init in its pause
// mode, from knd's own binary) into the engine unless it is there; its tag
// is the program's digest, so a new knd brings its own.
func ensurePauseImage(ctx context.Context, engine *client.Client) (string, error) {
	bin, err := initbin.Binary()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(bin)
	ref := "knd.local/pause:" + hex.EncodeToString(sum[:])[:12]
	if _, err := engine.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}
	img, err := image.ExecutableImage("pause", bin)
	if err != nil {
		return "", err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	return ref, loadTarball(ctx, engine, func(w io.Writer) error { return tarball.Write(tag, img, w) })
}

// HasPodNetwork says whether pods get their own network (always, once New
// has made it).
func (p *Provider) HasPodNetwork() bool { return p.network != nil }

// HostAddress is the host's address on the pod network: where pods reach
// the node's DNS server and the gateway.
func (p *Provider) HostAddress() string {
	if p.network == nil {
		return ""
	}
	return p.network.gateway
}

// RunPodSandbox starts the pod's pause container on the pod network: it
// holds the network namespace, address, hostname and resolver every
// container of the pod joins, as a kubelet's pause container does. The
// resolver is the node's DNS server, which answers for Services.
func (p *Provider) RunPodSandbox(ctx context.Context, cfg node.PodSandboxConfig) (node.PodSandbox, error) {
	if p.network == nil {
		return nil, errors.New("no pod network")
	}
	uid := cfg.UID
	if len(uid) > 8 {
		uid = uid[:8]
	}
	containerName := fmt.Sprintf("knd_%s_%s_%s_pause", cfg.Namespace, cfg.Name, uid)
	config := &container.Config{
		Image: p.network.pause, Cmd: []string{"pause"}, Hostname: cfg.Name,
		Labels: map[string]string{managedLabel: p.node, podUIDLabel: cfg.UID},
	}
	hostConfig := &container.HostConfig{
		NetworkMode: container.NetworkMode(p.network.id),
		DNS:         []string{p.network.gateway},
		DNSSearch:   cfg.DNSSearch(),
		DNSOptions:  node.DNSOptions,
	}
	id, err := p.createContainer(ctx, containerName, config, hostConfig)
	if err != nil {
		return nil, err
	}
	sb := &podSandbox{p: p, id: id}
	if err := p.engine.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		sb.Close()
		return nil, err
	}
	inspect, err := p.engine.ContainerInspect(ctx, id)
	if err != nil {
		sb.Close()
		return nil, err
	}
	if inspect.NetworkSettings != nil {
		for _, ep := range inspect.NetworkSettings.Networks {
			if ep.NetworkID == p.network.id {
				sb.ip = ep.IPAddress
			}
		}
	}
	if sb.ip == "" {
		sb.Close()
		return nil, fmt.Errorf("pause container %s has no address on the pod network", strings.TrimPrefix(inspect.Name, "/"))
	}
	return sb, nil
}

// podSandbox is a pod's pause container.
type podSandbox struct {
	p  *Provider
	id string
	ip string
}

func (s *podSandbox) IP() string { return s.ip }

// Close removes the pause container once the pod's containers are gone.
func (s *podSandbox) Close() error {
	err := s.p.engine.ContainerRemove(context.Background(), s.id, container.RemoveOptions{Force: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}
