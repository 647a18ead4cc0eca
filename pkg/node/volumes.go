package node

import (
	"github.com/knd-dev/knd/pkg/node/volume"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/klog/v2"
)

// Volumes made from the API are looked at again when what they show
// changes (a ConfigMap, a Secret, the pod's labels or annotations), and
// at least this often, for service-account tokens coming due.
const volumeResync = time.Minute

// usageCheck is how often disk emptyDirs with a sizeLimit are measured.
const usageCheck = 5 * time.Second

// setUpVolumes makes the pod's volumes before its containers start,
// retrying with back-off (200 ms doubling to 5 s) while one cannot be
// made: the containers wait in ContainerCreating with the reason, which a
// FailedMount event also tells, as the kubelet's does. Then it keeps them
// up to date until the pod stops. It says whether they were made.
func (w *podWorker) setUpVolumes() bool {
	if len(w.latest().Spec.Volumes) == 0 {
		return true
	}
	told := ""
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		err := w.volumes.Sync(w.ctx, w.latest())
		if err == nil {
			break
		}
		if w.ctx.Err() != nil {
			return false
		}
		if msg := err.Error(); msg != told {
			told = msg
			klog.InfoS("pod volume", "pod", w.key(), "err", err)
			for _, r := range w.allRunners() {
				r.explainWaiting(msg)
			}
			go w.agent.event(w.latest(), corev1.EventTypeWarning, "FailedMount", msg)
		}
		if !sleep(w.ctx, backoff) {
			return false
		}
	}
	if told != "" {
		for _, r := range w.allRunners() {
			r.explainWaiting("")
		}
	}
	w.wg.Add(1)
	go func() { defer w.wg.Done(); w.keepVolumesUpToDate() }()
	return true
}

// keepVolumesUpToDate rewrites the API-made volumes whose sources changed,
// and evicts the pod when a disk emptyDir outgrows its sizeLimit (measured
// every usageCheck, as the kubelet's eviction manager does).
func (w *podWorker) keepVolumesUpToDate() {
	t := time.NewTicker(volumeResync)
	defer t.Stop()
	var usage <-chan time.Time
	if volume.HasDiskLimits(w.latest()) {
		u := time.NewTicker(usageCheck)
		defer u.Stop()
		usage = u.C
	}
	told := ""
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-usage:
			if msg := w.volumes.OverLimit(w.latest()); msg != "" {
				go w.evict(msg) // not from here: stopping waits for this goroutine
				return
			}
			continue
		case <-t.C:
		case <-w.volumeChanged:
		}
		err := w.volumes.Sync(w.ctx, w.latest())
		if err != nil && w.ctx.Err() == nil && err.Error() != told {
			// The pod keeps what it was shown last.
			w.agent.event(w.latest(), corev1.EventTypeWarning, "FailedMount", err.Error())
		}
		if err != nil {
			told = err.Error()
		} else {
			told = ""
		}
	}
}

// refreshVolumes asks for the pod's volumes to be brought up to date.
func (w *podWorker) refreshVolumes() {
	select {
	case w.volumeChanged <- struct{}{}:
	default:
	}
}

// showsPodMetadata says whether a change from old to pod shows in the
// pod's volumes (downward API files of labels and annotations).
func showsPodMetadata(old, pod *corev1.Pod) bool {
	return len(pod.Spec.Volumes) > 0 && (!equality.Semantic.DeepEqual(old.Labels, pod.Labels) ||
		!equality.Semantic.DeepEqual(old.Annotations, pod.Annotations))
}

// explainWaiting says why a container that has not started yet waits
// (msg ""; it just waits).
func (r *containerRunner) explainWaiting(msg string) {
	r.mu.Lock()
	w := r.state.Waiting
	changed := w != nil && w.Message != msg
	if changed {
		r.state.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: msg}
	}
	r.mu.Unlock()
	if changed {
		r.pod.notify()
	}
}
