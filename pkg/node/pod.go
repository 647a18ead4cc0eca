package node

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/knd-dev/knd/pkg/apis/podport"
	"github.com/knd-dev/knd/pkg/node/volume"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// podWorker runs one pod's containers and reports the pod's status.
type podWorker struct {
	agent           *Agent
	uid             types.UID
	namespace, name string
	dir             string
	restartPolicy   corev1.RestartPolicy
	port            int // the published loopback port on the host network
	portContainer   string
	// sandbox is the pod's own network (nil on the host's): set before
	// any container starts, read once they all stopped.
	sandbox       PodSandbox
	startTime     metav1.Time
	ctx           context.Context
	cancel        context.CancelFunc
	runners       []*containerRunner
	initRunners   []*containerRunner // run in order, each to success, before runners
	initialized   atomic.Bool        // every init container succeeded
	wg            sync.WaitGroup
	statusCh      chan struct{}
	stopping      atomic.Bool
	toldReady     atomic.Bool  // what PodReadiness last heard
	graceOverride atomic.Int64 // nanoseconds; 0: the pod's own
	stopOnce      sync.Once
	terminateOnce sync.Once
	// evicted is the eviction's message, once the pod is evicted.
	evicted       atomic.Pointer[string]
	started       chan struct{} // closed once start has run
	done          chan struct{}
	mu            sync.Mutex
	pod           *corev1.Pod
	lastStatus    *corev1.PodStatus
	ip            string // the pod's IP, once known
	servingAddr   string // where the gateway reaches the pod, once known
	volumes       *volume.Pod
	volumeChanged chan struct{} // a source of the pod's volumes changed
	// launched is closed once the pod's containers are started (or will
	// not be); main counts them running, and sidecars are the init
	// containers that keep running beside them, in start order.
	launched chan struct{}
	main     sync.WaitGroup
	sidecars []*sidecar
}

// sidecar is a running sidecar's stop and its end.
type sidecar struct {
	stop context.CancelFunc
	done chan struct{}
}

func newPodWorker(a *Agent, pod *corev1.Pod) *podWorker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &podWorker{
		agent: a, uid: pod.UID, namespace: pod.Namespace, name: pod.Name, pod: pod.DeepCopy(),
		dir:           a.podDir(pod),
		restartPolicy: pod.Spec.RestartPolicy, startTime: metav1.Now(), ctx: ctx, cancel: cancel,
		statusCh: make(chan struct{}, 1), started: make(chan struct{}), done: make(chan struct{}),
		volumeChanged: make(chan struct{}, 1), launched: make(chan struct{}),
	}
	w.volumes = a.volumes.Pod(pod.UID)
	if pod.Status.StartTime != nil {
		w.startTime = *pod.Status.StartTime
	}
	// The pod's port goes to the container that declares a port, else the first.
	w.portContainer = pod.Spec.Containers[0].Name
	for _, c := range pod.Spec.Containers {
		if len(c.Ports) > 0 {
			w.portContainer = c.Name
			break
		}
	}
	restarts := map[string]int32{}
	for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
		restarts[cs.Name] = cs.RestartCount
	}
	for _, c := range pod.Spec.InitContainers {
		r := newContainerRunner(w, c, restarts[c.Name])
		r.init = true
		r.state.Waiting.Reason = "PodInitializing"
		w.initRunners = append(w.initRunners, r)
	}
	for _, c := range pod.Spec.Containers {
		r := newContainerRunner(w, c, restarts[c.Name])
		if len(w.initRunners) > 0 {
			r.state.Waiting.Reason = "PodInitializing"
		}
		w.runners = append(w.runners, r)
	}
	w.initialized.Store(len(w.initRunners) == 0)
	return w
}

// allRunners are the init containers' runners, then the containers'.
func (w *podWorker) allRunners() []*containerRunner {
	return append(append([]*containerRunner{}, w.initRunners...), w.runners...)
}

func (w *podWorker) key() string { return w.namespace + "/" + w.name }

// start runs the pod's containers and, meanwhile, makes its volumes and
// its network: a sandbox of the provider's, or on the host's network a
// published port.
// Status waits for the pod's address (the gateway routes to a Ready pod by
// its IP, and on the host network its port annotation) and is first
// written when a container changes state, so that a fast start costs one
// status write, not three.
func (w *podWorker) start() {
	defer close(w.started)
	published := make(chan struct{})
	sp, sandboxed := w.agent.opts.Provider.(SandboxProvider)
	sandboxed = sandboxed && sp.HasPodNetwork() && !w.latest().Spec.HostNetwork
	if !sandboxed {
		// The port is known before any container starts (its PORT).
		if port, err := w.agent.ports.allocate(); err != nil {
			klog.ErrorS(err, "allocating a port", "pod", w.key())
		} else {
			w.port = port
			w.setAddress(w.agent.opts.Address, net.JoinHostPort(w.agent.opts.Address, strconv.Itoa(port)))
		}
		go w.publishPort(published)
	}
	go w.statusLoop(published)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(w.launched)
		volumesMade := make(chan bool, 1)
		go func() { volumesMade <- w.setUpVolumes() }()
		if sandboxed {
			ok := w.makeSandbox(sp)
			close(published)
			if !ok {
				return
			}
		}
		if !<-volumesMade || !w.initialize() {
			return
		}
		for _, r := range w.runners {
			w.wg.Add(1)
			w.main.Add(1)
			go func() { defer w.wg.Done(); defer w.main.Done(); r.run(w.ctx) }()
		}
	}()
	// A slow start (an image pull) still shows Pending soon.
	time.AfterFunc(200*time.Millisecond, w.notify)
}

// makeSandbox makes the pod's network, retrying every 2 s until it works
// or the pod stops (as the kubelet does, with a FailedCreatePodSandBox
// event each time).
func (w *podWorker) makeSandbox(sp SandboxProvider) bool {
	for {
		sb, err := sp.RunPodSandbox(w.ctx, PodSandboxConfig{Namespace: w.namespace, Name: w.name, UID: string(w.uid)})
		if err == nil {
			w.sandbox = sb
			w.setAddress(sb.IP(), net.JoinHostPort(sb.IP(), strconv.Itoa(w.servingPort())))
			return true
		}
		klog.ErrorS(err, "creating the pod sandbox", "pod", w.key())
		w.agent.event(w.latest(), corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
		if !sleep(w.ctx, 2*time.Second) {
			return false
		}
	}
}

// servingPort is the port the pod's serving container declares, or
// upstream's default.
func (w *podWorker) servingPort() int {
	for _, c := range w.latest().Spec.Containers {
		if c.Name == w.portContainer && len(c.Ports) > 0 && c.Ports[0].ContainerPort > 0 {
			return int(c.Ports[0].ContainerPort)
		}
	}
	return podport.Default
}

// publishPort publishes the loopback port of a pod on the host network in
// the pod's podport.Annotation.
func (w *podWorker) publishPort(published chan<- struct{}) {
	defer close(published)
	if w.port == 0 {
		return
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, podport.Annotation, strconv.Itoa(w.port))
	patched, err := w.agent.opts.Client.CoreV1().Pods(w.namespace).Patch(w.ctx, w.name, types.MergePatchType,
		[]byte(patch), metav1.PatchOptions{})
	switch {
	case err == nil:
		// The first status write then starts from the current version
		// instead of conflicting with the patch.
		w.update(patched)
	case !apierrors.IsNotFound(err) && w.ctx.Err() == nil:
		klog.ErrorS(err, "publishing the pod port", "pod", w.key())
	}
}

func (w *podWorker) setAddress(ip, serving string) {
	w.mu.Lock()
	w.ip, w.servingAddr = ip, serving
	w.mu.Unlock()
	w.notify()
}

func (w *podWorker) address() (ip, serving string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ip, w.servingAddr
}

// initialize runs the init containers in order, each until it succeeds
// (restarted with back-off when it fails, unless the pod's restartPolicy is
// Never). It says whether all succeeded; an init container with
// restartPolicy Always is a sidecar: started, and left running.
func (w *podWorker) initialize() bool {
	for _, r := range w.initRunners {
		if r.spec.RestartPolicy != nil && *r.spec.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			// A sidecar stops after the pod's containers (see terminate).
			r.init = false
			ctx, cancel := context.WithCancel(context.Background())
			sc := &sidecar{stop: cancel, done: make(chan struct{})}
			w.sidecars = append(w.sidecars, sc)
			w.wg.Add(1)
			go func() { defer w.wg.Done(); defer close(sc.done); r.run(ctx) }()
			continue
		}
		r.run(w.ctx)
		if !r.succeeded() {
			return false // stopping, or failed for good: the pod is Failed
		}
		w.notify()
	}
	w.initialized.Store(true)
	w.notify()
	return true
}

// portFor is the loopback port a container on the host network listens
// on (0 for the pod's other containers, and with a network of the pod's own).
func (w *podWorker) portFor(c *corev1.Container) int {
	if c.Name == w.portContainer && w.sandbox == nil {
		return w.port
	}
	return 0
}

// envPort is the PORT the serving container is told to listen on, as
// upstream's: its declared port (8080 when none), or on the host network
// its loopback port; 0 for the pod's other containers.
func (w *podWorker) envPort(c *corev1.Container) int {
	switch {
	case c.Name != w.portContainer:
		return 0
	case w.sandbox != nil:
		return w.servingPort()
	}
	return w.port
}

// apiServer is where this pod reaches the API server.
func (w *podWorker) apiServer() string {
	if w.sandbox != nil {
		return w.agent.opts.APIServer.OnPodNetwork
	}
	return w.agent.opts.APIServer.OnHost
}

// podIP is the pod's own IP, or the node's on the host network; "" until known.
func (w *podWorker) podIP() string {
	ip, _ := w.address()
	return ip
}

func (w *podWorker) latest() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

// update keeps the newest version of the pod seen: from the informer, or
// from the agent's own writes (which the informer reports later).
func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if olderVersion(pod.ResourceVersion, w.pod.ResourceVersion) {
		return
	}
	if showsPodMetadata(w.pod, pod) {
		w.refreshVolumes()
	}
	w.pod = pod.DeepCopy()
}

// olderVersion says whether resource version a is older than b; versions
// that are not numbers (not etcd's) are never older.
func olderVersion(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA == nil && errB == nil && x < y
}

func (w *podWorker) running() bool { return !w.stopping.Load() }

func (w *podWorker) gracePeriod() time.Duration {
	if g := w.graceOverride.Load(); g > 0 {
		return time.Duration(g)
	}
	pod := w.latest()
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// tellReadiness reports a change of the pod's readiness to
// Options.PodReadiness: all containers ready, initialized, not stopping.
func (w *podWorker) tellReadiness() {
	tell := w.agent.opts.PodReadiness
	if tell == nil {
		return
	}
	_, addr := w.address()
	ready := w.initialized.Load() && !w.stopping.Load() && addr != ""
	for _, r := range w.runners {
		r.mu.Lock()
		ready = ready && r.ready
		r.mu.Unlock()
	}
	if w.toldReady.Swap(ready) != ready {
		tell(w.latest(), addr, ready)
	}
}

// terminate stops every container (SIGTERM, SIGKILL after the grace
// period) and, when the pod is being deleted, completes the deletion.
// podDir holds a pod's logs.
func (a *Agent) podDir(pod *corev1.Pod) string {
	return filepath.Join(a.opts.DataDir, "pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
}

// stop stops the pod's containers, once: the containers first, then the
// sidecars, last started first, in what is left of the grace period (at
// least 2 s), as the kubelet stops them.
func (w *podWorker) stop() {
	w.stopOnce.Do(func() {
		<-w.started // its runners are all counted in wg
		w.stopping.Store(true)
		w.tellReadiness() // no new request for a pod that is stopping
		began := time.Now()
		w.cancel()
		<-w.launched
		w.main.Wait()
		if len(w.sidecars) > 0 {
			w.graceOverride.Store(int64(max(w.gracePeriod()-time.Since(began), 2*time.Second)))
		}
		for _, sc := range slices.Backward(w.sidecars) {
			sc.stop()
			<-sc.done
		}
		w.wg.Wait()
	})
}

// evict stops the pod for good with the kubelet's eviction status (phase
// Failed, reason Evicted, a DisruptionTarget condition) and Warning event;
// the pod stays until it is deleted, and its owner replaces it.
func (w *podWorker) evict(msg string) {
	if !w.evicted.CompareAndSwap(nil, &msg) {
		return
	}
	klog.InfoS("evicting pod", "pod", w.key(), "reason", msg)
	go w.agent.event(w.latest(), corev1.EventTypeWarning, "Evicted", msg)
	w.graceOverride.Store(int64(time.Second))
	w.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.syncStatus(ctx); err != nil {
		klog.ErrorS(err, "writing the evicted pod's status", "pod", w.key())
	}
}

// terminate stops the pod and, with deletePod, deletes it and its files;
// once.
func (w *podWorker) terminate(deletePod bool) {
	w.terminateOnce.Do(func() {
		w.stop()
		if deletePod {
			w.agent.completeDeletion(w.namespace, w.name, w.uid, w.dir, w.volumes)
		} else {
			w.volumes.Unmount()
		}
		if w.sandbox != nil {
			if err := w.sandbox.Close(); err != nil {
				klog.ErrorS(err, "removing the pod sandbox", "pod", w.key())
			}
		}
		w.agent.ports.release(w.port)
		close(w.done)
	})
	<-w.done
}

func (w *podWorker) notify() {
	w.tellReadiness()
	select {
	case w.statusCh <- struct{}{}:
	default:
	}
}

// statusLoop writes the pod's status whenever a container's changes.
func (w *podWorker) statusLoop(published <-chan struct{}) {
	select {
	case <-published:
	case <-w.done:
		return
	}
	for {
		select {
		case <-w.statusCh:
			if w.stopping.Load() {
				continue
			}
			if err := w.syncStatus(w.ctx); err != nil && !apierrors.IsNotFound(err) {
				klog.ErrorS(err, "pod status", "pod", w.key())
				time.AfterFunc(time.Second, w.notify)
			}
		case <-w.done:
			return
		}
	}
}

func (w *podWorker) syncStatus(ctx context.Context) error {
	client := w.agent.opts.Client.CoreV1().Pods(w.namespace)
	pod := w.latest()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		status := w.podStatus(pod.Status)
		w.mu.Lock()
		unchanged := w.lastStatus != nil && apiequality.Semantic.DeepEqual(*w.lastStatus, status)
		w.mu.Unlock()
		if unchanged {
			return nil
		}
		next := pod.DeepCopy()
		next.Status = status
		updated, err := client.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			if fresh, gerr := client.Get(ctx, w.name, metav1.GetOptions{}); gerr == nil {
				pod = fresh
			}
			return err
		}
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.lastStatus = updated.Status.DeepCopy()
		if !olderVersion(updated.ResourceVersion, w.pod.ResourceVersion) {
			w.pod = updated
		}
		w.mu.Unlock()
		return nil
	})
}

// podStatus computes the pod's status from its containers, the way the
// kubelet does (phase rules from kubelet's getPhase).
func (w *podWorker) podStatus(old corev1.PodStatus) corev1.PodStatus {
	st := *old.DeepCopy()
	st.ContainerStatuses, st.InitContainerStatuses = nil, nil
	initFailed := false
	for _, r := range w.initRunners {
		cs := r.status()
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && w.restartPolicy == corev1.RestartPolicyNever {
			initFailed = true
		}
	}
	var running, waiting, stopped, succeeded, failed int
	var unready []string
	for _, r := range w.runners {
		cs := r.status()
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		case cs.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	initialized := w.initialized.Load()
	switch {
	case initFailed:
		st.Phase = corev1.PodFailed
	case !initialized || waiting > 0:
		st.Phase = corev1.PodPending
	case running > 0:
		st.Phase = corev1.PodRunning
	case w.restartPolicy == corev1.RestartPolicyAlways:
		st.Phase = corev1.PodRunning
	case w.restartPolicy == corev1.RestartPolicyOnFailure && succeeded < stopped:
		st.Phase = corev1.PodRunning
	case failed > 0:
		st.Phase = corev1.PodFailed
	default:
		st.Phase = corev1.PodSucceeded
	}
	host, ip := w.agent.opts.Address, w.podIP()
	st.HostIP, st.HostIPs = host, []corev1.HostIP{{IP: host}}
	st.PodIP, st.PodIPs = ip, nil
	if ip != "" {
		st.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	st.StartTime = &w.startTime
	ready := len(unready) == 0
	msg := ""
	if !ready {
		msg = fmt.Sprintf("containers with unready status: %v", unready)
	}
	setCondition(&st, corev1.PodReadyToStartContainers, true, "", "")
	initMsg := ""
	if !initialized {
		var pending []string
		for _, cs := range st.InitContainerStatuses {
			if t := cs.State.Terminated; t == nil || t.ExitCode != 0 {
				pending = append(pending, cs.Name)
			}
		}
		initMsg = fmt.Sprintf("containers with incomplete status: %v", pending)
	}
	setCondition(&st, corev1.PodInitialized, initialized, "ContainersNotInitialized", initMsg)
	setCondition(&st, corev1.ContainersReady, ready, "ContainersNotReady", msg)
	setCondition(&st, corev1.PodReady, ready, "ContainersNotReady", msg)
	if m := w.evicted.Load(); m != nil {
		st.Phase, st.Reason, st.Message = corev1.PodFailed, "Evicted", *m
		putCondition(&st, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "TerminationByKubelet", Message: *m})
	}
	return st
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason, msg string) {
	c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}
	if !ok {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, reason, msg
	}
	putCondition(st, c)
}

// putCondition sets c in st, keeping its transition time while its status
// stays the same.
func putCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status == c.Status {
				c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			} else {
				c.LastTransitionTime = metav1.Now()
			}
			st.Conditions[i] = c
			return
		}
	}
	c.LastTransitionTime = metav1.Now()
	st.Conditions = append(st.Conditions, c)
}
