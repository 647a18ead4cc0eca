package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeClient never keeps connections: each probe is a fresh connection,
// like the kubelet's.
var probeClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// prober runs one probe of one container.
type prober struct {
	probe     *corev1.Probe
	container *corev1.Container
	host      string
	port      int // the pod's published port on the host network; 0 with a pod network
	exec      func(ctx context.Context, argv []string) (int, []byte, error)
}

// check runs the probe once and says whether it succeeded, and why not.
func (p *prober) check(ctx context.Context) (bool, string) {
	timeout := time.Duration(max(p.probe.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch h := p.probe.ProbeHandler; {
	case h.HTTPGet != nil:
		return p.httpGet(ctx, h.HTTPGet)
	case h.TCPSocket != nil:
		addr := net.JoinHostPort(p.hostOr(h.TCPSocket.Host), strconv.Itoa(p.resolvePort(h.TCPSocket.Port)))
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, fmt.Sprintf("dial tcp %s: connect: %v", addr, rootCause(err))
		}
		conn.Close()
		return true, ""
	case h.Exec != nil:
		code, out, err := p.exec(ctx, h.Exec.Command)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			return false, fmt.Sprintf("command %q exited with %d: %s", h.Exec.Command, code, strings.TrimSpace(string(out)))
		}
		return true, ""
	case h.GRPC != nil:
		// A gRPC health check needs a gRPC client; a connection is the
		// closest check without one.
		addr := net.JoinHostPort(p.host, strconv.Itoa(p.resolvePort(intstr.FromInt32(h.GRPC.Port))))
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	}
	return false, "probe has no handler"
}

func (p *prober) httpGet(ctx context.Context, g *corev1.HTTPGetAction) (bool, string) {
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(p.hostOr(g.Host), strconv.Itoa(p.resolvePort(g.Port))), path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
		} else {
			req.Header.Add(h.Name, h.Value)
		}
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false, fmt.Sprintf("Get %q: %v", url, rootCause(err))
	}
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, ""
	}
	return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

func (p *prober) hostOr(h string) string {
	if h == "" {
		return p.host
	}
	return h
}

// resolvePort is the port a probe dials. Named ports are looked up among
// the container's. With a pod network of its own (port 0) that is the
// container's port; on the host network, a container listens on the pod's
// published port instead of its declared one.
func (p *prober) resolvePort(port intstr.IntOrString) int {
	n := int(port.IntVal)
	if port.Type == intstr.String {
		n = 0
		for _, cp := range p.container.Ports {
			if cp.Name == port.StrVal {
				n = int(cp.ContainerPort)
			}
		}
	}
	if p.port == 0 {
		return n
	}
	if n == 0 {
		return p.port
	}
	for _, cp := range p.container.Ports {
		if int(cp.ContainerPort) == n {
			return p.port
		}
	}
	return n
}

func rootCause(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// probeTiming is a probe's schedule with Kubernetes' defaults filled in.
type probeTiming struct {
	initialDelay, period time.Duration
	success, failure     int
}

func timing(p *corev1.Probe) probeTiming {
	t := probeTiming{
		initialDelay: time.Duration(p.InitialDelaySeconds) * time.Second,
		period:       time.Duration(p.PeriodSeconds) * time.Second,
		success:      int(p.SuccessThreshold),
		failure:      int(p.FailureThreshold),
	}
	if t.period <= 0 {
		t.period = 10 * time.Second
	}
	if t.success <= 0 {
		t.success = 1
	}
	if t.failure <= 0 {
		t.failure = 3
	}
	return t
}
