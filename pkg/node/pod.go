package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// PortAnnotation publishes the loopback port a pod listens on. Pods share
// the host network, so each gets its own port (also passed as PORT); the
// pod IP alone does not say where to reach it.
const PortAnnotation = "knd.dev/port"

// podWorker runs one pod's containers and reports the pod's status.
type podWorker struct {
	agent           *Agent
	uid             types.UID
	namespace, name string
	dir             string
	restartPolicy   corev1.RestartPolicy
	port            int
	portContainer   string
	startTime       metav1.Time
	ctx             context.Context
	cancel          context.CancelFunc
	runners         []*containerRunner
	wg              sync.WaitGroup
	statusCh        chan struct{}
	stopping        atomic.Bool
	graceOverride   atomic.Int64 // nanoseconds; 0: the pod's own
	terminateOnce   sync.Once
	started         chan struct{} // closed once start has run
	done            chan struct{}
	mu              sync.Mutex
	pod             *corev1.Pod
	lastStatus      *corev1.PodStatus
}

func newPodWorker(a *Agent, pod *corev1.Pod) *podWorker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &podWorker{
		agent: a, uid: pod.UID, namespace: pod.Namespace, name: pod.Name, pod: pod.DeepCopy(),
		dir:           filepath.Join(a.opts.DataDir, "pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		restartPolicy: pod.Spec.RestartPolicy, startTime: metav1.Now(), ctx: ctx, cancel: cancel,
		statusCh: make(chan struct{}, 1), started: make(chan struct{}), done: make(chan struct{}),
	}
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
	for _, cs := range pod.Status.ContainerStatuses {
		restarts[cs.Name] = cs.RestartCount
	}
	for _, c := range pod.Spec.Containers {
		w.runners = append(w.runners, newContainerRunner(w, c, restarts[c.Name]))
	}
	return w
}

func (w *podWorker) key() string { return w.namespace + "/" + w.name }

// start publishes the pod's port, then runs its containers.
func (w *podWorker) start() {
	defer close(w.started)
	go w.statusLoop()
	port, err := w.agent.ports.allocate()
	if err != nil {
		klog.ErrorS(err, "allocating a port", "pod", w.key())
	} else {
		w.port = port
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, PortAnnotation, strconv.Itoa(w.port))
	if _, err := w.agent.opts.Client.CoreV1().Pods(w.namespace).Patch(w.ctx, w.name, types.MergePatchType,
		[]byte(patch), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		klog.ErrorS(err, "publishing the pod port", "pod", w.key())
	}
	for _, r := range w.runners {
		w.wg.Add(1)
		go func() { defer w.wg.Done(); r.run(w.ctx) }()
	}
	w.notify()
}

func (w *podWorker) portFor(c *corev1.Container) int {
	if c.Name == w.portContainer {
		return w.port
	}
	return 0
}

func (w *podWorker) latest() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod.DeepCopy()
	w.mu.Unlock()
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

// terminate stops every container (SIGTERM, SIGKILL after the grace
// period) and, when the pod is being deleted, completes the deletion.
func (w *podWorker) terminate(deletePod bool) {
	w.terminateOnce.Do(func() {
		<-w.started // its runners are all counted in wg
		w.stopping.Store(true)
		w.cancel()
		w.wg.Wait()
		if deletePod {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := w.agent.opts.Client.CoreV1().Pods(w.namespace).Delete(ctx, w.name, metav1.DeleteOptions{
				GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &w.uid}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				klog.ErrorS(err, "deleting the stopped pod", "pod", w.key())
			}
			os.RemoveAll(w.dir)
		}
		w.agent.ports.release(w.port)
		close(w.done)
	})
	<-w.done
}

func (w *podWorker) notify() {
	select {
	case w.statusCh <- struct{}{}:
	default:
	}
}

// statusLoop writes the pod's status whenever a container's changes.
func (w *podWorker) statusLoop() {
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
		if updated.ResourceVersion > w.pod.ResourceVersion || len(updated.ResourceVersion) > len(w.pod.ResourceVersion) {
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
	st.ContainerStatuses = nil
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
	switch {
	case waiting > 0:
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
	ip := w.agent.opts.Address
	st.HostIP, st.PodIP = ip, ip
	st.HostIPs, st.PodIPs = []corev1.HostIP{{IP: ip}}, []corev1.PodIP{{IP: ip}}
	st.StartTime = &w.startTime
	ready := len(unready) == 0
	msg := ""
	if !ready {
		msg = fmt.Sprintf("containers with unready status: %v", unready)
	}
	setCondition(&st, corev1.PodReadyToStartContainers, true, "", "")
	setCondition(&st, corev1.PodInitialized, true, "", "")
	setCondition(&st, corev1.ContainersReady, ready, "ContainersNotReady", msg)
	setCondition(&st, corev1.PodReady, ready, "ContainersNotReady", msg)
	return st
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason, msg string) {
	c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}
	if !ok {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, reason, msg
	}
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
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
