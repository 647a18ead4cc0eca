package node

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/knd-dev/knd/pkg/node/volume"
	corev1 "k8s.io/api/core/v1"
)

// Provider runs containers. It only pulls images and starts, signals,
// waits for and execs into containers; probing, restarts, logs and status
// belong to the agent, so every provider behaves the same to the API.
type Provider interface {
	// Name is the container ID scheme shown in pod status ("process", "docker").
	Name() string
	// PullImage makes ref available and returns its identity and run config.
	// With pull policy Never it only looks locally, and fails with
	// ErrNeverPull when the image is not there.
	PullImage(ctx context.Context, ref string, policy corev1.PullPolicy) (ImageInfo, error)
	// Start creates and starts a container.
	Start(ctx context.Context, cfg ContainerConfig) (Container, error)
}

// SandboxProvider is a Provider that gives each pod a network of its own,
// as a kubelet's CNI plugin does: an IP, shared by the pod's containers,
// on which each listens on its own port. Pods of other providers, and pods
// with hostNetwork, share the host's network with a loopback port each.
type SandboxProvider interface {
	Provider
	// HasPodNetwork says whether pods get a network of their own (false:
	// they run on the host's, as with other providers).
	HasPodNetwork() bool
	// RunPodSandbox makes a pod's network; the pod's containers are
	// started with it (ContainerConfig.Sandbox).
	RunPodSandbox(ctx context.Context, cfg PodSandboxConfig) (PodSandbox, error)
}

// PodSandboxConfig names the pod a sandbox is for.
type PodSandboxConfig struct {
	Namespace, Name, UID string
}

// clusterDomain is the DNS domain of Services, as a cluster's default.
const clusterDomain = "cluster.local"

// DNSSearch is the search list of the pod's resolver, as a kubelet writes
// it: Services of its namespace, then of any, by short name.
func (c PodSandboxConfig) DNSSearch() []string {
	return []string{c.Namespace + ".svc." + clusterDomain, "svc." + clusterDomain, clusterDomain}
}

// DNSOptions are the pod resolver's options, as a kubelet's.
var DNSOptions = []string{"ndots:5"}

// PodSandbox is a pod's network.
type PodSandbox interface {
	IP() string
	// Close releases it once every container of the pod has stopped.
	Close() error
}

// ErrNeverPull is PullImage's error for an image that is not present
// locally under pull policy Never.
var ErrNeverPull = errors.New("image not present with pull policy of Never")

// ImageInfo is an image's identity and its run configuration.
type ImageInfo struct {
	Ref        string // the reference as resolved
	ID         string // digest
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	// User is the image's user ("" is root).
	User string
}

// ContainerConfig is everything a provider needs to start one container.
type ContainerConfig struct {
	// Name is unique on the node: <namespace>_<pod>_<container>_<attempt>.
	Name       string
	Image      ImageInfo
	Argv       []string // entrypoint+cmd after Kubernetes' command/args rules
	Env        []string // KEY=VALUE, image env first, pod env last
	WorkingDir string
	// Port is the pod's loopback port on the host network (0 with a
	// Sandbox): where the gateway reaches it.
	Port int
	// ContainerPort is the port the container declares (0: none). A
	// provider that gives containers their own network runs them with PORT
	// set to it (8080 when none) and publishes it on 127.0.0.1:Port.
	ContainerPort int
	// User is securityContext.runAsUser, and Group runAsGroup ("" when unset).
	User, Group string
	// Sandbox is the pod's network from a SandboxProvider (nil: the host's).
	Sandbox PodSandbox
	// Hostname is the pod's name.
	Hostname string
	// PodUID labels the container with its pod.
	PodUID         string
	Stdout, Stderr io.Writer
	// Mounts are the container's volumes, parents before children.
	Mounts []volume.Mount
	// MemoryLimit (bytes) and CPULimit (millicores) are 0 when unlimited.
	MemoryLimit int64
	CPULimit    int64
	// CPUShares is the container's weight against the node's other
	// containers (cgroup v1 cpu.shares), from its CPU request.
	CPUShares uint64
}

// CPUShares are cgroup v1 cpu.shares for a CPU request (millicores), as
// the kubelet computes them: 1024 a CPU, at least 2 (no request is 2).
func CPUShares(milliCPU int64) uint64 {
	const minShares, maxShares = 2, 262144
	return uint64(min(max(milliCPU*1024/1000, minShares), maxShares))
}

// Container is a started container.
type Container interface {
	ID() string
	// Signal delivers sig to the container's main process.
	Signal(sig syscall.Signal) error
	// Done is closed when the container has exited; Exit then tells how.
	Done() <-chan struct{}
	Exit() ExitStatus
	// Exec runs argv inside the container and returns its exit code and output.
	Exec(ctx context.Context, argv []string) (int, []byte, error)
}

// DirectAddresser is a Container with a network address of its own. Probes
// and hooks go there, to the container's port, rather than through the
// pod's published loopback port, whose proxy accepts connections before the
// application listens.
type DirectAddresser interface {
	DirectAddress() (host string, port int)
}

// ExitStatus tells how a container ended.
type ExitStatus struct {
	Code      int
	OOMKilled bool
	Message   string
}
