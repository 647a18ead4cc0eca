// Package controlplane runs a single-node Kubernetes control plane inside the
// knd process: embedded etcd, kube-apiserver, the kube-controller-manager
// controllers that Deployments need, and kube-scheduler. These are the real
// upstream components; only their wiring is knd's.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/knd-dev/knd/pkg/controlplane/portfile"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config says where the control plane keeps its state and where it listens.
type Config struct {
	// DataDir holds etcd's data, the PKI, kubeconfigs and logs.
	DataDir string
	// BindAddress is the API server's listen address (127.0.0.1 by default).
	BindAddress string
	// APIPort is the API server's port; 0 keeps the port chosen on first start.
	APIPort int
	// CallerPorts are ports the caller listens on itself: never chosen for
	// the control plane.
	CallerPorts []int
	// ServiceCIDR is the range cluster IPs are allocated from.
	ServiceCIDR string
	// ExtraServingIPs are more addresses the API server's certificate
	// names: where pods reach it (a relay on the pod network).
	ExtraServingIPs []net.IP
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	cfg  Config
	pki  PKI
	port portfile.Ports

	// AdminConfig reaches the API as a cluster administrator.
	AdminConfig *rest.Config

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	errs      chan error
	closeEtcd func()
}

// Kubeconfig is the path of the admin kubeconfig under dataDir.
func Kubeconfig(dataDir string) string { return filepath.Join(dataDir, "kubeconfig") }

// PKI returns the control plane's certificate files.
func (c *ControlPlane) PKI() PKI { return c.pki }

// Kubeconfig returns the path of the admin kubeconfig.
func (c *ControlPlane) Kubeconfig() string { return Kubeconfig(c.cfg.DataDir) }

// APIServerURL is where the API listens.
func (c *ControlPlane) APIServerURL() string {
	return "https://" + net.JoinHostPort(c.cfg.BindAddress, strconv.Itoa(c.port.API))
}

// APIAddress is the API server's host:port, for a relay to dial.
func (c *ControlPlane) APIAddress() string {
	return net.JoinHostPort(c.cfg.BindAddress, strconv.Itoa(c.port.API))
}

// WebhookPort is the loopback port kept for the admission webhook server.
func (c *ControlPlane) WebhookPort() int { return c.port.Webhook }

// Errors reports a component that stopped on its own.
func (c *ControlPlane) Errors() <-chan error { return c.errs }

// KubernetesServiceNames are the in-cluster names of the API server (the
// kubernetes Service), which its certificate names.
var KubernetesServiceNames = []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}

// Start brings the control plane up and returns once the API server is ready.
func Start(ctx context.Context, cfg Config) (*ControlPlane, error) {
	if cfg.BindAddress == "" {
		cfg.BindAddress = "127.0.0.1"
	}
	if cfg.ServiceCIDR == "" {
		cfg.ServiceCIDR = "10.96.0.0/16"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	p, err := portfile.Load(cfg.DataDir, cfg.APIPort, cfg.CallerPorts...)
	if err != nil {
		return nil, err
	}
	pki := PKI{Dir: filepath.Join(cfg.DataDir, "pki")}
	_, svcNet, err := net.ParseCIDR(cfg.ServiceCIDR)
	if err != nil {
		return nil, fmt.Errorf("service CIDR: %w", err)
	}
	kubernetesServiceIP := append(net.IP{}, svcNet.IP.To4()...)
	kubernetesServiceIP[3]++
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, kubernetesServiceIP}
	if ip := net.ParseIP(cfg.BindAddress); ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() {
		ips = append(ips, ip)
	}
	ips = append(ips, cfg.ExtraServingIPs...)
	names := append([]string{"localhost"}, KubernetesServiceNames...)
	if err := pki.ensure(ips, names); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	c := &ControlPlane{cfg: cfg, pki: pki, port: p, cancel: cancel, errs: make(chan error, 4)}
	etcd, err := startEtcd(ctx, cfg.DataDir, p, pki)
	if err != nil {
		cancel()
		return nil, err
	}
	c.closeEtcd = etcd.Close

	server := "https://" + net.JoinHostPort(loopbackFor(cfg.BindAddress), strconv.Itoa(p.API))
	for _, kc := range []struct {
		path string
		id   identity
	}{
		{Kubeconfig(cfg.DataDir), adminIdentity},
		{filepath.Join(cfg.DataDir, "controller-manager.kubeconfig"), controllerIdentity},
		{filepath.Join(cfg.DataDir, "scheduler.kubeconfig"), schedulerIdentity},
	} {
		if err := writeKubeconfig(kc.path, server, pki, kc.id); err != nil {
			c.Stop()
			return nil, err
		}
	}

	c.run(ctx, "kube-apiserver", func(ctx context.Context) error {
		return runAPIServer(ctx, c.apiServerArgs())
	})
	admin, err := clientcmd.BuildConfigFromFlags("", Kubeconfig(cfg.DataDir))
	if err != nil {
		c.Stop()
		return nil, err
	}
	// knd's own controllers, webhooks and node agent share this config on
	// loopback; client-go's default of 5 requests/s would throttle a single
	// pod start (a patch and three status writes) to a second.
	admin.QPS, admin.Burst = 500, 1000
	c.AdminConfig = admin
	if err := c.waitReady(ctx, 2*time.Minute); err != nil {
		c.Stop()
		return nil, err
	}
	c.run(ctx, "kube-controller-manager", func(ctx context.Context) error {
		return runControllerManager(ctx, c.controllerManagerArgs())
	})
	c.run(ctx, "kube-scheduler", func(ctx context.Context) error {
		return runScheduler(ctx, []string{
			"--kubeconfig=" + filepath.Join(cfg.DataDir, "scheduler.kubeconfig"),
			"--leader-elect=false",
			"--secure-port=0",
			// Bind hundreds of revision pods at once without client throttling.
			"--kube-api-qps=200", "--kube-api-burst=400",
		})
	})
	return c, nil
}

func loopbackFor(bind string) string {
	if ip := net.ParseIP(bind); ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return bind
}

func (c *ControlPlane) apiServerArgs() []string {
	pki := c.pki
	return []string{
		"--etcd-servers=" + fmt.Sprintf("https://127.0.0.1:%d", c.port.EtcdClient),
		"--etcd-cafile=" + pki.EtcdCACert(),
		"--etcd-certfile=" + pki.EtcdClientCert(),
		"--etcd-keyfile=" + pki.EtcdClientKey(),
		"--bind-address=" + c.cfg.BindAddress,
		"--advertise-address=" + loopbackFor(c.cfg.BindAddress),
		"--secure-port=" + strconv.Itoa(c.port.API),
		"--tls-cert-file=" + pki.ServingCert(),
		"--tls-private-key-file=" + pki.ServingKey(),
		"--client-ca-file=" + pki.CACert(),
		"--anonymous-auth=false",
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.ServiceAccountPub(),
		"--service-account-signing-key-file=" + pki.ServiceAccountKey(),
		"--service-cluster-ip-range=" + c.cfg.ServiceCIDR,
		"--kubelet-client-certificate=" + pki.ClientCert(kubeletClientIdentity.file),
		"--kubelet-client-key=" + pki.ClientKey(kubeletClientIdentity.file),
		"--kubelet-certificate-authority=" + pki.CACert(),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		// Lean settings measured while planning: one client population, one
		// machine; priority-and-fairness and profiling only cost memory here.
		"--enable-priority-and-fairness=false",
		"--watch-cache=false",
		"--profiling=false",
		"--cert-dir=" + filepath.Join(c.cfg.DataDir, "pki"),
	}
}

func (c *ControlPlane) controllerManagerArgs() []string {
	return []string{
		"--kubeconfig=" + filepath.Join(c.cfg.DataDir, "controller-manager.kubeconfig"),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=true",
		"--kube-api-qps=200", "--kube-api-burst=400",
		"--root-ca-file=" + c.pki.CACert(),
		"--service-cluster-ip-range=" + c.cfg.ServiceCIDR,
		"--controllers=" + strings.Join([]string{
			"deployment-controller",
			"replicaset-controller",
			"garbage-collector-controller",
			"namespace-controller",
			"endpoints-controller",
			"endpointslice-controller",
			"serviceaccount-controller",
			"pod-garbage-collector-controller",
			"root-ca-certificate-publisher-controller",
			// PersistentVolumeClaims: binding (knd's local-path
			// provisioner makes the volumes), and the finalizers that keep
			// a claim or volume in use from going.
			"persistentvolume-binder-controller",
			"persistentvolume-protection-controller",
			"persistentvolumeclaim-protection-controller",
		}, ","),
	}
}

// run starts a component; a component that returns while the control plane
// is meant to be up is reported on Errors.
func (c *ControlPlane) run(ctx context.Context, name string, fn func(context.Context) error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := fn(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped")
		}
		c.errs <- fmt.Errorf("%s: %w", name, err)
	}()
}

// waitReady polls /readyz as the administrator until it answers 200.
func (c *ControlPlane) waitReady(ctx context.Context, timeout time.Duration) error {
	client, err := kubernetes.NewForConfig(c.AdminConfig)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-c.errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		var status int
		res := client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
		if res.Error() == nil && status == http.StatusOK {
			return nil
		}
		last = res.Error()
	}
	return fmt.Errorf("kube-apiserver not ready after %s: %v", timeout, last)
}

// Stop stops every component and waits for them.
func (c *ControlPlane) Stop() {
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	if c.closeEtcd != nil {
		c.closeEtcd()
	}
}
