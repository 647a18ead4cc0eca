// Package node is knd's node agent: it does a kubelet's job on this machine.
// It registers a Node and heartbeats its Lease, runs the pods the scheduler
// binds to it through a Provider, probes and restarts their containers,
// reports their status, and serves the kubelet log endpoint so that
// `kubectl logs` works. It talks only to the Kubernetes API.
package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/knd-dev/knd/pkg/node/volume"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Options configure the agent.
type Options struct {
	Client kubernetes.Interface
	// NodeName is the Node to register (the host name by default).
	NodeName string
	// Address is the node's (and every pod's) IP: a loopback address.
	Address string
	// DataDir holds the pods' logs.
	DataDir  string
	Provider Provider
	// The kubelet endpoint's serving certificate, and the CA its clients
	// (the API server) must present a certificate from.
	KubeletCertFile, KubeletKeyFile, ClientCAFile string
	// KubeletPort is the log endpoint's port (0: any free port).
	KubeletPort int
	// Version is reported as the node's kubelet version.
	Version string
	// MaxPods is the node's pod capacity.
	MaxPods int
	// ShutdownGrace bounds how long stopping knd waits for each pod.
	ShutdownGrace time.Duration
	// PodReadiness, when set, hears at once when a pod becomes ready or
	// stops being ready, with the address it serves on, before the pod's
	// status reaches the API.
	PodReadiness func(pod *corev1.Pod, addr string, ready bool)
	// APIServer is where pods reach the API server, as a kubelet's pods
	// reach the kubernetes Service (their KUBERNETES_SERVICE_* variables).
	APIServer APIServer
}

// APIServer is the API server's host:port as pods reach it: pods with a
// network of their own at a relay on it, pods on the host's network
// directly. Empty: pods get no KUBERNETES_SERVICE_* variables.
type APIServer struct {
	OnPodNetwork, OnHost string
}

// Agent is a running node agent.
type Agent struct {
	opts    Options
	ports   *portAllocator
	volumes *volume.Root
	// allocatable is the node's capacity: its CPUs, memory and pod slots.
	allocatable corev1.ResourceList

	mu      sync.Mutex
	workers map[types.UID]*podWorker
}

// New returns an agent; Run starts it.
func New(opts Options) *Agent {
	if opts.Address == "" {
		opts.Address = "127.0.0.1"
	}
	if opts.NodeName == "" {
		opts.NodeName = DefaultNodeName()
	}
	if opts.MaxPods == 0 {
		opts.MaxPods = 1000
	}
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	return &Agent{opts: opts, ports: newPortAllocator(opts.Address), workers: map[types.UID]*podWorker{},
		allocatable: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
			corev1.ResourcePods:   *resource.NewQuantity(int64(opts.MaxPods), resource.DecimalSI),
		}}
}

// VolumesDir is where the agent keeps pods' volumes: prepare it
// (volume.PrepareDir) before a provider starts sandboxes.
func VolumesDir(dataDir string) string { return filepath.Join(dataDir, "volumes") }

// DefaultNodeName is the host name in the form Kubernetes accepts.
func DefaultNodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "knd"
	}
	return strings.ToLower(h)
}

// Run registers the node and runs its pods until ctx ends; then it stops
// every pod process it started (the pods stay in the API and run again at
// the next start).
func (a *Agent) Run(ctx context.Context, ready chan<- struct{}) error {
	ks, err := newKubeletServer(a)
	if err != nil {
		return fmt.Errorf("kubelet endpoint: %w", err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- ks.serve() }()
	defer ks.srv.Close()
	if err := a.registerNode(ctx, ks.port()); err != nil {
		return fmt.Errorf("registering node %s: %w", a.opts.NodeName, err)
	}
	go a.heartbeat(ctx)

	// ConfigMaps and Secrets of every namespace: pods' volumes read them
	// from here, and show their changes.
	sources := informers.NewSharedInformerFactory(a.opts.Client, 0)
	cms, secrets := sources.Core().V1().ConfigMaps(), sources.Core().V1().Secrets()
	for kind, inf := range map[string]cache.SharedIndexInformer{"configmap": cms.Informer(), "secret": secrets.Informer()} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { a.volumeSourceChanged(kind, obj) },
			UpdateFunc: func(_, obj any) { a.volumeSourceChanged(kind, obj) },
			DeleteFunc: func(obj any) { a.volumeSourceChanged(kind, obj) },
		}); err != nil {
			return err
		}
	}
	a.volumes, err = volume.NewRoot(volume.Config{Dir: VolumesDir(a.opts.DataDir), Client: a.opts.Client,
		ConfigMaps: cms.Lister(), Secrets: secrets.Lister(), Allocatable: a.allocatable})
	if err != nil {
		return err
	}

	// Pods no node runs yet: their service-account tokens are asked for
	// while the scheduler places them, so a pod bound here need not wait.
	pending := informers.NewSharedInformerFactoryWithOptions(a.opts.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
		}))
	if _, err := pending.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok && pod.DeletionTimestamp == nil {
				a.volumes.Prefetch(ctx, pod)
			}
		},
	}); err != nil {
		return err
	}

	factory := informers.NewSharedInformerFactoryWithOptions(a.opts.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.opts.NodeName).String()
		}))
	podInformer := factory.Core().V1().Pods().Informer()
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.sync(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { a.sync(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				a.forget(pod.UID)
			}
		},
	}); err != nil {
		return err
	}
	informerCtx, stopInformer := context.WithCancel(context.Background())
	sources.Start(informerCtx.Done())
	sources.WaitForCacheSync(ctx.Done())
	pending.Start(informerCtx.Done())
	factory.Start(informerCtx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if ready != nil {
		close(ready)
	}

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	stopInformer()
	factory.Shutdown()
	sources.Shutdown()
	pending.Shutdown()
	a.stopAll()
	// The provider's resources (a pod network, an engine connection) go
	// once no pod is left.
	if c, ok := a.opts.Provider.(io.Closer); ok {
		if cerr := c.Close(); cerr != nil {
			klog.ErrorS(cerr, "closing the provider")
		}
	}
	return err
}

// deleteEnded completes the deletion of a pod that has no worker: it
// ended, and its files are all that is left of it.
func (a *Agent) deleteEnded(pod *corev1.Pod) {
	a.completeDeletion(pod.Namespace, pod.Name, pod.UID, a.podDir(pod), a.volumes.Pod(pod.UID))
}

// completeDeletion removes a pod that no longer runs from the API (at
// once: its containers are gone) and its logs and volumes from the node.
func (a *Agent) completeDeletion(ns, name string, uid types.UID, dir string, volumes *volume.Pod) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.opts.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		klog.ErrorS(err, "deleting the stopped pod", "pod", ns+"/"+name)
	}
	os.RemoveAll(dir)
	if err := volumes.TearDown(); err != nil {
		klog.ErrorS(err, "removing the pod's volumes", "pod", ns+"/"+name)
	}
}

// sync starts, updates or terminates the worker of a pod bound here.
func (a *Agent) sync(pod *corev1.Pod) {
	a.mu.Lock()
	w, ok := a.workers[pod.UID]
	if !ok {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			a.mu.Unlock()
			if pod.DeletionTimestamp != nil {
				// Ended before this agent started (or evicted): nothing runs,
				// so its deletion completes at once.
				go a.deleteEnded(pod)
			}
			return
		}
		w = newPodWorker(a, pod)
		a.workers[pod.UID] = w
		a.mu.Unlock()
		// Not in the informer's handler: start makes an API call, and a burst
		// of pods would otherwise start one at a time.
		go w.start()
	} else {
		a.mu.Unlock()
		w.update(pod)
	}
	if pod.DeletionTimestamp != nil {
		go func() {
			w.terminate(true)
			a.mu.Lock()
			delete(a.workers, pod.UID)
			a.mu.Unlock()
		}()
	}
}

// volumeSourceChanged brings up to date the volumes of the pods that show
// the ConfigMap or Secret obj.
func (a *Agent) volumeSourceChanged(kind string, obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	o, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		if w.namespace == o.GetNamespace() && volume.Uses(w.latest(), kind, o.GetName()) {
			w.refreshVolumes()
		}
	}
}

// forget stops a pod that disappeared from the API (force deletion).
func (a *Agent) forget(uid types.UID) {
	a.mu.Lock()
	w, ok := a.workers[uid]
	delete(a.workers, uid)
	a.mu.Unlock()
	if ok {
		go w.terminate(false)
	}
}

func (a *Agent) stopAll() {
	a.mu.Lock()
	workers := make([]*podWorker, 0, len(a.workers))
	for _, w := range a.workers {
		workers = append(workers, w)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range workers {
		if g := w.gracePeriod(); g > a.opts.ShutdownGrace {
			w.graceOverride.Store(int64(a.opts.ShutdownGrace))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.terminate(false)
			// Report the stopped containers, so no pod reads Ready while
			// knd is down (its port no longer answers).
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := w.syncStatus(ctx); err != nil && !apierrors.IsNotFound(err) {
				klog.ErrorS(err, "final pod status", "pod", w.key())
			}
		}()
	}
	wg.Wait()
}

// container finds a running pod's container for the log endpoint.
func (a *Agent) container(ns, pod, name string) *containerRunner {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		if w.namespace != ns || w.name != pod {
			continue
		}
		for _, r := range w.allRunners() {
			if r.spec.Name == name {
				return r
			}
		}
	}
	return nil
}

// registerNode creates or refreshes the Node with this machine's capacity
// and a Ready condition.
func (a *Agent) registerNode(ctx context.Context, kubeletPort int) error {
	nodes := a.opts.Client.CoreV1().Nodes()
	n, err := nodes.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		n, err = nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: a.opts.NodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname": a.opts.NodeName, "kubernetes.io/os": runtime.GOOS,
				"kubernetes.io/arch": runtime.GOARCH, "knd.dev/provider": a.opts.Provider.Name(),
			},
		}}, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	// The API server's TaintNodesByCondition admission marks a new node
	// not-ready; on a cluster the node lifecycle controller lifts that once
	// the node reports Ready. knd does not run that controller, so the
	// agent, which is about to report Ready, lifts it itself.
	if kept := withoutTaint(n.Spec.Taints, "node.kubernetes.io/not-ready"); len(kept) != len(n.Spec.Taints) {
		n.Spec.Taints = kept
		if n, err = nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	capacity := a.allocatable
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	n.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "knd node agent is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.opts.Address},
			{Type: corev1.NodeHostName, Address: a.opts.NodeName},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(kubeletPort)}},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion: a.opts.Version, OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
			OSImage: osImage(), KernelVersion: kernelVersion(),
			ContainerRuntimeVersion: a.opts.Provider.Name() + "://knd",
		},
	}
	_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the node's Lease every 10 s, as the kubelet does.
func (a *Agent) heartbeat(ctx context.Context) {
	leases := a.opts.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	duration := int32(40)
	for {
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: a.opts.NodeName},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &a.opts.NodeName,
					LeaseDurationSeconds: &duration, RenewTime: &now},
			}, metav1.CreateOptions{})
		case err == nil:
			l.Spec.RenewTime, l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &now, &a.opts.NodeName, &duration
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		if err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "renewing the node lease")
		}
		if !sleep(ctx, 10*time.Second) {
			return
		}
	}
}

// event records a core/v1 Event about a pod, as the kubelet's recorder does.
func (a *Agent) event(pod *corev1.Pod, kind, reason, msg string) {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, APIVersion: "v1", ResourceVersion: pod.ResourceVersion},
		Reason: reason, Message: msg, Type: kind, Count: 1, FirstTimestamp: now, LastTimestamp: now,
		Source: corev1.EventSource{Component: "kubelet", Host: a.opts.NodeName},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.opts.Client.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		klog.V(2).InfoS("event", "err", err)
	}
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func withoutTaint(taints []corev1.Taint, key string) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Key != key {
			out = append(out, t)
		}
	}
	return out
}

// osImage is the PRETTY_NAME of /etc/os-release, as the kubelet reports it.
func osImage() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func kernelVersion() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
