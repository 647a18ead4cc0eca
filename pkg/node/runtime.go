package node

import (
	"context"
	"io"
	"syscall"
)

// Provider runs containers. It only pulls images and starts, signals,
// waits for and execs into containers; probing, restarts, logs and status
// belong to the agent, so every provider behaves the same to the API.
type Provider interface {
	// Name is the container ID scheme shown in pod status ("process", "docker").
	Name() string
	// PullImage makes ref available and returns its identity and run config.
	PullImage(ctx context.Context, ref string) (ImageInfo, error)
	// Start creates and starts a container.
	Start(ctx context.Context, cfg ContainerConfig) (Container, error)
}

// ImageInfo is an image's identity and its run configuration.
type ImageInfo struct {
	Ref        string // the reference as resolved
	ID         string // digest
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
}

// ContainerConfig is everything a provider needs to start one container.
type ContainerConfig struct {
	// Name is unique on the node: <namespace>_<pod>_<container>_<attempt>.
	Name       string
	Image      ImageInfo
	Argv       []string // entrypoint+cmd after Kubernetes' command/args rules
	Env        []string // KEY=VALUE, image env first, pod env last
	WorkingDir string
	// Port is the port the pod listens on (host network).
	Port           int
	Stdout, Stderr io.Writer
	// MemoryLimit (bytes) and CPULimit (millicores) are 0 when unlimited.
	MemoryLimit int64
	CPULimit    int64
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

// ExitStatus tells how a container ended.
type ExitStatus struct {
	Code      int
	OOMKilled bool
	Message   string
}
