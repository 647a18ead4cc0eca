package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // served only when KND_PPROF is set
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/autoscaler"
	"github.com/knd-dev/knd/pkg/configstore"
	"github.com/knd-dev/knd/pkg/controlplane"
	"github.com/knd-dev/knd/pkg/gateway"
	"github.com/knd-dev/knd/pkg/gctune"
	"github.com/knd-dev/knd/pkg/install"
	"github.com/knd-dev/knd/pkg/node"
	"github.com/knd-dev/knd/pkg/node/docker"
	"github.com/knd-dev/knd/pkg/node/image"
	"github.com/knd-dev/knd/pkg/node/localpath"
	"github.com/knd-dev/knd/pkg/node/process"
	"github.com/knd-dev/knd/pkg/node/process/podnet"
	"github.com/knd-dev/knd/pkg/node/volume"
	"github.com/knd-dev/knd/pkg/poddns"
	"github.com/knd-dev/knd/pkg/reconciler/manager"
	"github.com/knd-dev/knd/pkg/samples"
	"github.com/knd-dev/knd/pkg/tcprelay"
	"github.com/knd-dev/knd/pkg/webhook"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type serverOptions struct {
	dataDir     string
	bindAddress string
	apiPort     int
	gatewayPort int
	metricsPort int
	maxConns    int
	verbosity   int
	runtime     string
	maxPods     int
	podCIDR     string
	sandbox     bool
}

func newServerCommand() *cobra.Command {
	o := serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane and the serving system",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServer(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir(), "where state, certificates, kubeconfig and logs live")
	f.StringVar(&o.bindAddress, "bind-address", "127.0.0.1", "address the API server listens on")
	f.IntVar(&o.apiPort, "api-port", 6443, "port the API server listens on (0: keep the one chosen before, or a free one)")
	f.IntVar(&o.gatewayPort, "gateway-port", 8080, "port the gateway serves Knative routes on (0: a free one)")
	f.IntVar(&o.metricsPort, "gateway-metrics-port", 9091, "port of the gateway's Prometheus /metrics (0: off)")
	f.IntVar(&o.maxConns, "gateway-max-connections", 0, "client connections the gateway holds at once; past it, new ones get a 503 (0: a quarter of the open-file limit)")
	f.IntVar(&o.verbosity, "v", 0, "log verbosity of the embedded components (logs go to <data-dir>/knd.log)")
	f.IntVar(&o.maxPods, "max-pods", 1000, "how many pods the node runs at most (its pod capacity, as the kubelet's --max-pods)")
	f.StringVar(&o.podCIDR, "pod-cidr", podnet.DefaultClusterCIDR, "the range the node's pod subnet comes from (process runtime as root); the default is set aside for benchmarking and no real network routes it")
	f.BoolVar(&o.sandbox, "sandbox", true, "process runtime as root: give each pod its own network and each container a sandbox (false: pods share the host's network, unisolated)")
	f.StringVar(&o.runtime, "runtime", "process", "how pods run: process (local processes), docker (containers of a Docker-API engine: DOCKER_HOST or the default socket) or auto (docker when an engine answers, else process)")
	return cmd
}

func runServer(ctx context.Context, o serverOptions) error {
	start := time.Now()
	// Everything but the gateway outlives the signal (ctx): on SIGTERM the
	// gateway stops accepting and finishes the requests it holds while the
	// control plane, controllers and pods still serve them; then the rest
	// stops as runServer returns. A signal during start-up stops at once.
	sysCtx, stopSystem := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSystem()
	stopDuringStart := context.AfterFunc(ctx, stopSystem)
	// The embedded components allocate in bursts (informers, OpenAPI); a
	// tighter GC target keeps idle memory near half of Go's default, and
	// Go's default while busy keeps the collector from taking a third of
	// the CPU (docs/benchmarks.md). GOGC still overrides it.
	if os.Getenv("GOGC") == "" {
		go gctune.Run(ctx, gctune.Default)
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return err
	}
	// KND_PPROF=127.0.0.1:6060 serves Go's profiler, for performance work.
	if addr := os.Getenv("KND_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	logFile, err := setupLogging(o.dataDir, o.verbosity)
	if err != nil {
		return err
	}
	defer klog.Flush()

	// The runtime comes first: where pods reach the API server (the host's
	// address on their network) is named in its certificate.
	provider, err := newRuntime(sysCtx, o)
	if err != nil {
		return err
	}
	agentRan := false
	defer func() {
		if c, ok := provider.(io.Closer); ok && !agentRan { // else the agent closes it once its pods are gone
			_ = c.Close()
		}
	}()
	// Pods with a network of their own reach the gateway, resolve the
	// hosts it routes, and reach the API server at the host's address on
	// that network.
	podHost := ""
	if p, ok := provider.(interface{ HostAddress() string }); ok {
		podHost = p.HostAddress()
	}
	var extraIPs []net.IP
	if podHost != "" {
		extraIPs = append(extraIPs, net.ParseIP(podHost))
	}
	cp, err := controlplane.Start(sysCtx, controlplane.Config{DataDir: o.dataDir, BindAddress: o.bindAddress, APIPort: o.apiPort,
		CallerPorts: []int{o.gatewayPort, o.metricsPort}, ExtraServingIPs: extraIPs})
	if err != nil {
		return fmt.Errorf("control plane: %w (see %s)", err, logFile)
	}
	defer cp.Stop()
	apiServer := node.APIServer{OnHost: cp.APIAddress()}
	if podHost != "" {
		// TLS end to end: the relay only moves bytes, bounded in number.
		relay, err := tcprelay.Start(net.JoinHostPort(podHost, "443"), cp.APIAddress(), 1024)
		if err != nil {
			return fmt.Errorf("the API server's relay on the pod network: %w", err)
		}
		defer relay.Close()
		apiServer.OnPodNetwork = relay.Addr().String()
	}
	client, err := kubernetes.NewForConfig(cp.AdminConfig)
	if err != nil {
		return err
	}

	// Admission webhooks, on loopback TLS with a certificate from the
	// control plane's CA.
	certDir := filepath.Join(o.dataDir, "webhook")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	if err := cp.PKI().IssueServing(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"),
		"knd-webhook", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"}); err != nil {
		return err
	}
	caBundle, err := os.ReadFile(cp.PKI().CACert())
	if err != nil {
		return err
	}
	hookOpts := webhook.Options{Host: "127.0.0.1", Port: cp.WebhookPort(), CertDir: certDir, CABundle: caBundle}
	store := configstore.New()
	hookErrs, err := webhook.Start(sysCtx, hookOpts, store)
	if err != nil {
		return err
	}
	if err := webhook.Register(sysCtx, client, hookOpts); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	if err := install.ApplyCRDs(sysCtx, cp.AdminConfig); err != nil {
		return err
	}
	if err := install.ApplyConfig(sysCtx, client); err != nil {
		return err
	}
	if err := store.Start(sysCtx, client); err != nil {
		return err
	}
	// The node agent tells the gateway (created below) the moment a
	// revision's pod is ready or stops being ready, ahead of the API.
	var gwRef atomic.Pointer[gateway.Gateway]
	agent, err := newNodeAgent(o, cp, client, provider, apiServer, func(pod *corev1.Pod, addr string, ready bool) {
		if gw, rev := gwRef.Load(), pod.Labels[servingv1.RevisionLabelKey]; gw != nil && rev != "" {
			gw.PodReadiness(pod.Namespace, rev, pod.Name, addr, ready)
		}
	})
	if err != nil {
		return err
	}
	// Claims of the default StorageClass get directories under the data dir.
	go func() {
		if err := localpath.Run(sysCtx, client, filepath.Join(o.dataDir, "storage")); err != nil {
			fmt.Printf("note: persistent volume claims are not provisioned: %v\n", err)
		}
	}()
	agentReady, agentDone := make(chan struct{}), make(chan error, 1)
	// Pods stop before the control plane does (deferred cp.Stop).
	agentCtx, stopAgent := context.WithCancel(context.Background())
	var agentErr error
	stopPods := sync.OnceFunc(func() { stopAgent(); agentErr = <-agentDone })
	defer stopPods()
	agentRan = true
	go func() { agentDone <- agent.Run(agentCtx, agentReady) }()
	select {
	case <-agentReady:
	case err := <-agentDone:
		agentDone <- err
		return fmt.Errorf("node agent: %w", err)
	}

	// The gateway tells the autoscaler about cold starts and load in-process.
	kpa := autoscaler.New(store)
	scheme, err := manager.Scheme()
	if err != nil {
		return err
	}
	gwOpts := gateway.Options{RestConfig: cp.AdminConfig, Scheme: scheme, Config: store,
		Address: net.JoinHostPort(o.bindAddress, fmt.Sprint(o.gatewayPort)), OnColdStart: kpa.Poke,
		MetricsAddress: metricsAddress(o.bindAddress, o.metricsPort), MaxConnections: o.maxConns}
	if podHost != "" {
		gwOpts.PodAddress = net.JoinHostPort(podHost, "80")
	}
	gw, err := gateway.New(gwOpts)
	if err != nil {
		return err
	}
	gwRef.Store(gw)
	if podHost != "" {
		dns, err := poddns.Start(net.JoinHostPort(podHost, "53"), net.ParseIP(podHost),
			func(host string) bool { return isAPIServiceName(host) || gw.Routes(host) })
		if err != nil {
			return fmt.Errorf("DNS server of the pod network: %w", err)
		}
		defer dns.Close()
	}
	kpa.Concurrency = func(ns, rev string) int { s := gw.Stats(ns, rev); return s.InFlight + s.Queued }
	kpa.Requests = func(ns, rev string) uint64 { return gw.Stats(ns, rev).Requests }
	ctrlDone, err := manager.Start(sysCtx, cp.AdminConfig, store, kpa)
	if err != nil {
		return fmt.Errorf("serving controllers: %w", err)
	}
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Run(ctx) }()
	if err := gateway.Publish(sysCtx, client, o.bindAddress, gw.Addr().Port); err != nil {
		return fmt.Errorf("publishing the gateway: %w", err)
	}

	stopDuringStart()
	fmt.Printf("knd is ready in %s\n", time.Since(start).Round(time.Millisecond))
	fmt.Printf("  API server:  %s\n", cp.APIServerURL())
	fmt.Printf("  gateway:     http://%s\n", gw.Addr())
	fmt.Printf("  kubeconfig:  %s\n", cp.Kubeconfig())
	fmt.Printf("  logs:        %s\n", logFile)
	fmt.Print(tryHint(o.dataDir, cp.Kubeconfig(), gw.Addr().String()))

	select {
	case <-ctx.Done():
		// Requests the gateway accepted (in flight or queued) finish before
		// the pods and the control plane stop (deferred), so a restart
		// loses none; the gateway gives them 10 s.
		fmt.Println("knd is stopping")
		if err := <-gwDone; err != nil {
			klog.ErrorS(err, "gateway shutdown")
		}
		// Then the pods, while the API still serves the final status each
		// writes (stopped before them, a restarted knd would read pods Ready
		// at addresses nothing listens on); then the rest.
		stopPods()
		if agentErr != nil {
			klog.ErrorS(agentErr, "node agent shutdown")
		}
		stopSystem()
		return nil
	case err := <-cp.Errors():
		return err
	case err := <-hookErrs:
		return fmt.Errorf("webhook server: %w", err)
	case err := <-agentDone:
		agentDone <- err
		return fmt.Errorf("node agent: %w", err)
	case err := <-ctrlDone:
		return fmt.Errorf("serving controllers: %w", err)
	case err := <-gwDone:
		return fmt.Errorf("gateway: %w", err)
	}
}

func metricsAddress(host string, port int) string {
	if port == 0 {
		return ""
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// newRuntime opens the image store (with the tutorials' sample images)
// and the provider that runs pods from it.
func newRuntime(ctx context.Context, o serverOptions) (node.Provider, error) {
	images, err := image.Open(filepath.Join(o.dataDir, "images"))
	if err != nil {
		return nil, err
	}
	if err := samples.Seed(images); errors.Is(err, samples.ErrNotBuiltIn) {
		fmt.Printf("note: %v; the tutorials' images are not in the local store\n", err)
	} else if err != nil {
		return nil, fmt.Errorf("sample images: %w", err)
	}
	// Before the provider starts sandboxes, whose mounts are copied from here.
	if err := volume.PrepareDir(node.VolumesDir(o.dataDir)); err != nil {
		return nil, err
	}
	provider, err := newProvider(ctx, o, images, node.DefaultNodeName())
	if err != nil {
		return nil, err
	}
	return provider, nil
}

// isAPIServiceName says whether a pod asks for the kubernetes Service,
// which resolves (like the gateway's hosts) to the host's address on the
// pod network, where the API server's relay listens.
func isAPIServiceName(host string) bool {
	return slices.Contains(controlplane.KubernetesServiceNames, host)
}

// newNodeAgent sets up the node agent with the chosen provider and a
// kubelet endpoint certificate from the control plane's CA.
func newNodeAgent(o serverOptions, cp *controlplane.ControlPlane, client kubernetes.Interface, provider node.Provider,
	apiServer node.APIServer, podReadiness func(*corev1.Pod, string, bool)) (*node.Agent, error) {
	nodeName := node.DefaultNodeName()
	certDir := filepath.Join(o.dataDir, "kubelet")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	cert, key := filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key")
	if err := cp.PKI().IssueServing(cert, key, "knd-kubelet", []net.IP{net.ParseIP("127.0.0.1")}, []string{nodeName, "localhost"}); err != nil {
		return nil, err
	}
	return node.New(node.Options{
		Client: client, NodeName: nodeName, DataDir: o.dataDir, Provider: provider,
		KubeletCertFile: cert, KubeletKeyFile: key, ClientCAFile: cp.PKI().CACert(),
		Version: version.Get().GitVersion, PodReadiness: podReadiness, MaxPods: o.maxPods, APIServer: apiServer,
	}), nil
}

// newProvider picks how pods run (--runtime).
func newProvider(ctx context.Context, o serverOptions, images *image.Store, nodeName string) (node.Provider, error) {
	runtime := o.runtime
	switch runtime {
	case "auto":
		runtime = "process"
		if docker.Available(ctx) {
			runtime = "docker"
		}
	case "process", "docker":
	default:
		return nil, fmt.Errorf("unknown --runtime %q: want process, docker or auto", runtime)
	}
	if runtime == "docker" {
		p, err := docker.New(ctx, images, nodeName, o.dataDir)
		if err != nil {
			return nil, err
		}
		fmt.Println("note: pods run as containers of the Docker engine")
		return p, nil
	}
	p := process.New(images, process.Options{DataDir: o.dataDir, PodCIDR: o.podCIDR, MaxPods: o.maxPods, NoSandbox: !o.sandbox})
	if why := p.Unsandboxed(); why != "" {
		fmt.Printf("note: pods are not sandboxed (%s): they share the host's network, each on a loopback port, and are not isolated from the host\n", why)
	}
	if !p.LimitsEnforced() {
		fmt.Println("note: no writable cgroup v2 (or v1) memory and cpu controllers, so memory and CPU limits are not enforced")
	}
	return p, nil
}

// setupLogging sends the embedded components' logs to <data-dir>/knd.log so
// the terminal shows only what knd itself says.
func setupLogging(dataDir string, verbosity int) (string, error) {
	path := filepath.Join(dataDir, "knd.log")
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{
		"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL",
		"log_file": path, "one_output": "true", "skip_log_headers": "true", "v": fmt.Sprint(verbosity),
	} {
		if err := fs.Set(k, v); err != nil {
			return "", err
		}
	}
	ctrllog.SetLogger(klog.NewKlogr())
	return path, nil
}

// tryHint is a first service and a request to it, written so that it works
// as printed in the shell that started the server: with the binary as it
// was invoked, and the data dir or kubeconfig spelled out when the shell's
// environment would otherwise point the command elsewhere.
func tryHint(dataDir, kubeconfig, gatewayAddr string) string {
	cmd := os.Args[0]
	switch {
	case os.Getenv("KUBECONFIG") != "":
		cmd += " --kubeconfig " + shellQuote(kubeconfig)
	case dataDir != defaultDataDir():
		cmd = "KND_DATA_DIR=" + shellQuote(dataDir) + " " + cmd
	}
	return fmt.Sprintf("Try: %s service create helloworld --image %s --env TARGET=knd\n"+
		"     curl -H 'Host: helloworld.default.example.com' http://%s/\n", cmd, samples.HelloWorld, gatewayAddr)
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
