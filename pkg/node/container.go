package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Restart back-off, as the kubelet's: the first restart is immediate, then
// 10 s doubling to 5 min; ten minutes of running resets it.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
	// Until a container is first ready its readiness is probed every
	// eagerReadyProbe for its first eagerWindow (a hello-world server
	// listens ~10 ms after exec, and a cold request waits for exactly this),
	// then every fastReadyProbe: the gateway forwards as soon as a pod is
	// Ready, so the first success should be seen within milliseconds, not a
	// period.
	eagerReadyProbe = 2 * time.Millisecond
	eagerWindow     = 250 * time.Millisecond
	fastReadyProbe  = 20 * time.Millisecond
)

// containerRunner keeps one container of a pod running: it pulls, starts,
// probes and restarts it, and records its status.
type containerRunner struct {
	pod  *podWorker
	spec corev1.Container
	dir  string // log directory
	// init is true for an init container: it runs to success, once.
	init bool

	mu        sync.Mutex
	state     corev1.ContainerState
	lastState corev1.ContainerState
	restarts  int32
	ready     bool
	started   bool
	image     ImageInfo
	current   Container
	runDone   chan struct{} // closed when the current run ends
	logs      map[int32]string
}

func newContainerRunner(w *podWorker, spec corev1.Container, restarts int32) *containerRunner {
	r := &containerRunner{pod: w, spec: spec, restarts: restarts, logs: map[int32]string{},
		dir: filepath.Join(w.dir, spec.Name)}
	r.state.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	return r
}

// run keeps the container going until ctx ends (the pod is stopping).
func (r *containerRunner) run(ctx context.Context) {
	backoff := time.Duration(0)
	pullBackoff := time.Duration(0)
	for ctx.Err() == nil {
		img, err := r.pod.agent.opts.Provider.PullImage(ctx, r.spec.Image, r.spec.ImagePullPolicy)
		if errors.Is(err, ErrNeverPull) {
			r.setWaiting("ErrImageNeverPull", fmt.Sprintf("Container image %q is not present with pull policy of Never", r.spec.Image))
			if !sleep(ctx, 10*time.Second) {
				return
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.setWaiting("ErrImagePull", err.Error())
			pullBackoff = nextBackoff(pullBackoff)
			if !sleep(ctx, min(pullBackoff, 2*time.Second)) {
				return
			}
			r.setWaiting("ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: %v", r.spec.Image, err))
			if !sleep(ctx, pullBackoff) {
				return
			}
			continue
		}
		pullBackoff = 0
		started := time.Now()
		exit, ok := r.runOnce(ctx, img)
		if !ok {
			return
		}
		if !r.shouldRestart(exit.ExitCode) {
			return
		}
		if time.Since(started) > backoffReset {
			backoff = 0
		}
		if backoff > 0 {
			r.setWaiting("CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				backoff, r.spec.Name, r.pod.name, r.pod.namespace, r.pod.uid))
			if !sleep(ctx, backoff) {
				return
			}
		}
		backoff = nextBackoff(backoff)
	}
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return backoffInitial
	}
	return min(2*d, backoffMax)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (r *containerRunner) shouldRestart(code int32) bool {
	if r.init {
		// Init containers run until they succeed, unless the pod never restarts.
		return code != 0 && r.pod.restartPolicy != corev1.RestartPolicyNever
	}
	switch r.pod.restartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}

// runOnce starts the container and waits for it to end. It returns the
// terminated state, and false when the pod is stopping.
func (r *containerRunner) runOnce(ctx context.Context, img ImageInfo) (corev1.ContainerStateTerminated, bool) {
	w := r.pod
	pod := w.latest()
	env, err := containerEnv(ctx, w.agent.opts.Client, pod, &r.spec, img, w.envPort(&r.spec),
		nodeFacts{podIP: w.podIP(), hostIP: w.agent.opts.Address, allocatable: w.agent.allocatable, apiServer: w.apiServer()})
	if err != nil {
		if ctx.Err() != nil {
			return corev1.ContainerStateTerminated{}, false
		}
		r.setWaiting("CreateContainerConfigError", err.Error())
		return corev1.ContainerStateTerminated{ExitCode: -1}, sleep(ctx, 2*time.Second)
	}
	mounts, err := w.volumes.Mounts(&r.spec)
	if err != nil {
		r.setWaiting("CreateContainerConfigError", err.Error())
		return corev1.ContainerStateTerminated{ExitCode: -1}, sleep(ctx, 2*time.Second)
	}
	wd := r.spec.WorkingDir
	if wd == "" {
		wd = img.WorkingDir
	}
	r.mu.Lock()
	attempt := r.restarts
	r.mu.Unlock()
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		klog.ErrorS(err, "log directory", "pod", w.key())
	}
	logPath := filepath.Join(r.dir, fmt.Sprintf("%d.log", attempt))
	log, err := createLog(logPath)
	if err != nil {
		r.setWaiting("CreateContainerError", err.Error())
		return corev1.ContainerStateTerminated{ExitCode: -1}, sleep(ctx, 2*time.Second)
	}
	defer log.Close()
	cfg := ContainerConfig{
		Name:  fmt.Sprintf("%s_%s_%s_%d", w.namespace, w.name, r.spec.Name, attempt),
		Image: img, Argv: argv(&r.spec, img, env), Env: env, WorkingDir: wd, Port: w.portFor(&r.spec),
		Stdout: log.stream("stdout"), Stderr: log.stream("stderr"), Sandbox: w.sandbox, Hostname: w.name,
		Mounts: mounts,
	}
	if len(r.spec.Ports) > 0 {
		cfg.ContainerPort = int(r.spec.Ports[0].ContainerPort)
	}
	if uid := runAsUser(pod, &r.spec); uid != nil {
		cfg.User = strconv.FormatInt(*uid, 10)
	}
	if gid := runAsGroup(pod, &r.spec); gid != nil {
		cfg.Group = strconv.FormatInt(*gid, 10)
	}
	cfg.PodUID = string(pod.UID)
	if q, ok := r.spec.Resources.Limits[corev1.ResourceMemory]; ok {
		cfg.MemoryLimit = q.Value()
	}
	if q, ok := r.spec.Resources.Limits[corev1.ResourceCPU]; ok {
		cfg.CPULimit = q.MilliValue()
	}
	// The API server defaults a request to the limit.
	request := r.spec.Resources.Requests[corev1.ResourceCPU]
	cfg.CPUShares = CPUShares(request.MilliValue())
	startedAt := metav1.Now()
	runDone := make(chan struct{})
	c, err := w.agent.opts.Provider.Start(ctx, cfg)
	if err != nil {
		term := corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: err.Error(),
			StartedAt: startedAt, FinishedAt: metav1.Now()}
		r.finish(img, "", logPath, runDone, term)
		return term, ctx.Err() == nil
	}
	containerID := w.agent.opts.Provider.Name() + "://" + c.ID()
	r.mu.Lock()
	r.image, r.current, r.runDone = img, c, runDone
	r.logs[attempt] = logPath
	r.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: startedAt}}
	r.started = r.spec.StartupProbe == nil
	r.ready = false
	r.mu.Unlock()
	w.notify()

	probeCtx, stopProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	probes.Add(1)
	go func() { defer probes.Done(); r.probe(probeCtx, c) }()
	select {
	case <-c.Done():
	case <-ctx.Done():
		// The pod is stopping: its preStop hook, then SIGTERM, all within
		// the grace period.
		grace := r.pod.gracePeriod()
		began := time.Now()
		r.preStop(c, grace)
		stopContainer(c, max(grace-time.Since(began), 0))
	}
	stopProbes()
	probes.Wait()
	exit := c.Exit()
	term := corev1.ContainerStateTerminated{ExitCode: int32(exit.Code), StartedAt: startedAt,
		FinishedAt: metav1.Now(), ContainerID: containerID, Message: exit.Message}
	switch {
	case exit.OOMKilled:
		term.Reason = "OOMKilled"
	case exit.Code == 0:
		term.Reason = "Completed"
	default:
		term.Reason = "Error"
	}
	r.finish(img, containerID, logPath, runDone, term)
	return term, ctx.Err() == nil
}

// finish records a run's end: it becomes lastState and counts as a restart
// if the container is started again.
func (r *containerRunner) finish(img ImageInfo, containerID, logPath string, runDone chan struct{}, term corev1.ContainerStateTerminated) {
	r.mu.Lock()
	r.image, r.current = img, nil
	r.logs[r.restarts] = logPath
	r.state = corev1.ContainerState{Terminated: &term}
	r.ready = false
	willRestart := r.shouldRestart(term.ExitCode) && r.pod.running()
	if willRestart {
		r.lastState = corev1.ContainerState{Terminated: &term}
		r.restarts++
	}
	r.mu.Unlock()
	close(runDone)
	r.pod.notify()
}

func (r *containerRunner) setWaiting(reason, msg string) {
	r.mu.Lock()
	changed := r.state.Waiting == nil || r.state.Waiting.Reason != reason || r.state.Waiting.Message != msg
	r.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
	r.ready = false
	r.mu.Unlock()
	if changed {
		r.pod.notify()
	}
}

// probe runs the startup, readiness and liveness probes of one run.
func (r *containerRunner) probe(ctx context.Context, c Container) {
	host, port := r.pod.podIP(), r.pod.portFor(&r.spec)
	if d, ok := c.(DirectAddresser); ok {
		host, port = d.DirectAddress()
	}
	mk := func(p *corev1.Probe) *prober {
		return &prober{probe: p, container: &r.spec, host: host, port: port, exec: c.Exec}
	}
	if p := r.spec.StartupProbe; p != nil {
		if !r.loop(ctx, mk(p), false, func(ok bool, msg string) bool {
			if ok {
				r.mu.Lock()
				r.started = true
				r.mu.Unlock()
				r.pod.notify()
				return false
			}
			if msg != "" {
				r.kill(c, fmt.Sprintf("Startup probe failed: %s", msg))
				return false
			}
			return true
		}) {
			return
		}
	}
	var wg sync.WaitGroup
	if p := r.spec.LivenessProbe; p != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, mk(p), false, func(ok bool, msg string) bool {
				if !ok && msg != "" {
					r.kill(c, fmt.Sprintf("Liveness probe failed: %s", msg))
					return false
				}
				return true
			})
		}()
	}
	if p := r.spec.ReadinessProbe; p != nil {
		r.loop(ctx, mk(p), true, func(ok bool, _ string) bool {
			r.setReady(ok)
			return true
		})
	} else {
		r.setReady(true)
	}
	wg.Wait()
}

// loop runs a probe on its schedule. report gets (true, "") after
// successThreshold successes in a row and (false, reason) after
// failureThreshold failures; (false, "") means "not yet". It stops when
// report returns false or ctx ends; the result says whether ctx is alive.
// With fastUntilSuccess, the probe runs eagerly (see eagerReadyProbe)
// until its first success.
func (r *containerRunner) loop(ctx context.Context, p *prober, fastUntilSuccess bool, report func(bool, string) bool) bool {
	t := timing(p.probe)
	if !sleep(ctx, t.initialDelay) {
		return false
	}
	successes, failures := 0, 0
	everSucceeded := false
	began := time.Now()
	for {
		ok, msg := p.check(ctx)
		if ctx.Err() != nil {
			return false
		}
		if ok {
			successes, failures = successes+1, 0
			if successes >= t.success || !everSucceeded {
				everSucceeded = true
				if !report(true, "") {
					return true
				}
			}
		} else {
			successes, failures = 0, failures+1
			if failures >= t.failure {
				if !report(false, msg) {
					return true
				}
			} else if !report(false, "") {
				return true
			}
		}
		wait := t.period
		if fastUntilSuccess && !everSucceeded {
			wait = fastReadyProbe
			// Not for exec probes: each would start a process.
			if time.Since(began) < eagerWindow && p.probe.Exec == nil {
				wait = eagerReadyProbe
			}
		}
		if !sleep(ctx, wait) {
			return false
		}
	}
}

func (r *containerRunner) setReady(ready bool) {
	r.mu.Lock()
	changed := r.ready != ready && r.started && r.state.Running != nil
	if changed {
		r.ready = ready
	}
	r.mu.Unlock()
	if changed {
		r.pod.notify()
	}
}

// kill stops a container whose probe failed; run restarts it per policy.
func (r *containerRunner) kill(c Container, why string) {
	klog.InfoS("killing container", "pod", r.pod.key(), "container", r.spec.Name, "reason", why)
	r.pod.agent.event(r.pod.latest(), corev1.EventTypeWarning, "Unhealthy", why)
	stopContainer(c, r.pod.gracePeriod())
}

// stopContainer sends SIGTERM, then SIGKILL after grace.
func stopContainer(c Container, grace time.Duration) {
	if err := c.Signal(syscall.SIGTERM); err != nil {
		klog.ErrorS(err, "SIGTERM", "container", c.ID())
	}
	select {
	case <-c.Done():
		return
	case <-time.After(grace):
	}
	if err := c.Signal(syscall.SIGKILL); err != nil {
		klog.ErrorS(err, "SIGKILL", "container", c.ID())
	}
	<-c.Done()
}

// runAsUser is the container's securityContext.runAsUser, else the pod's.
func runAsUser(pod *corev1.Pod, c *corev1.Container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	if pod.Spec.SecurityContext != nil {
		return pod.Spec.SecurityContext.RunAsUser
	}
	return nil
}

// runAsGroup is the container's securityContext.runAsGroup, else the pod's.
func runAsGroup(pod *corev1.Pod, c *corev1.Container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsGroup != nil {
		return c.SecurityContext.RunAsGroup
	}
	if pod.Spec.SecurityContext != nil {
		return pod.Spec.SecurityContext.RunAsGroup
	}
	return nil
}

// succeeded says whether the container's last run exited 0.
func (r *containerRunner) succeeded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.Terminated != nil && r.state.Terminated.ExitCode == 0
}

// status is the container's status for the pod.
func (r *containerRunner) status() corev1.ContainerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := corev1.ContainerStatus{
		Name: r.spec.Name, Image: r.spec.Image, State: *r.state.DeepCopy(),
		LastTerminationState: *r.lastState.DeepCopy(), Ready: r.ready, RestartCount: r.restarts,
		Started: &r.started,
	}
	if r.image.ID != "" {
		st.ImageID = r.image.Ref + "@" + r.image.ID
		switch r.pod.agent.opts.Provider.Name() {
		case "process":
			st.ImageID = "knd://" + st.ImageID
		case "docker":
			st.ImageID = "docker-pullable://" + st.ImageID
		}
	}
	if r.current != nil {
		st.ContainerID = r.pod.agent.opts.Provider.Name() + "://" + r.current.ID()
	} else if r.state.Terminated != nil {
		st.ContainerID = r.state.Terminated.ContainerID
	}
	return st
}

// logPath returns the log of the current (or previous) run and a channel
// closed when that run has ended. While a container waits to restart, its
// last run's log is the current one, as with the kubelet.
func (r *containerRunner) logPath(previous bool) (string, <-chan struct{}, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	attempt := r.restarts
	if _, ok := r.logs[attempt]; !ok && !previous {
		attempt--
	}
	if previous {
		attempt = r.restarts - 1
	}
	path, ok := r.logs[attempt]
	if !ok {
		if previous {
			return "", nil, fmt.Errorf("previous terminated container %q in pod %q not found", r.spec.Name, r.pod.name)
		}
		return "", nil, fmt.Errorf("container %q in pod %q is waiting to start: %s", r.spec.Name, r.pod.name, waitingReason(r.state))
	}
	if attempt == r.restarts && r.current != nil {
		return path, r.runDone, nil
	}
	done := make(chan struct{})
	close(done)
	return path, done, nil
}

func waitingReason(s corev1.ContainerState) string {
	if s.Waiting != nil {
		return s.Waiting.Reason
	}
	return "unknown"
}

// preStop runs the container's preStop hook (sleep, exec or httpGet),
// bounded by the grace period.
func (r *containerRunner) preStop(c Container, grace time.Duration) {
	if r.spec.Lifecycle == nil || r.spec.Lifecycle.PreStop == nil {
		return
	}
	h := r.spec.Lifecycle.PreStop
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	switch {
	case h.Sleep != nil:
		sleep(ctx, time.Duration(h.Sleep.Seconds)*time.Second)
	case h.Exec != nil:
		if code, out, err := c.Exec(ctx, h.Exec.Command); err != nil || code != 0 {
			klog.InfoS("preStop hook failed", "pod", r.pod.key(), "container", r.spec.Name, "code", code, "output", string(out), "err", err)
		}
	case h.HTTPGet != nil:
		p := &prober{probe: &corev1.Probe{TimeoutSeconds: int32(grace.Seconds())}, container: &r.spec,
			host: r.pod.podIP(), port: r.pod.portFor(&r.spec)}
		if d, ok := c.(DirectAddresser); ok {
			p.host, p.port = d.DirectAddress()
		}
		if ok, msg := p.httpGet(ctx, h.HTTPGet); !ok {
			klog.InfoS("preStop hook failed", "pod", r.pod.key(), "container", r.spec.Name, "reason", msg)
		}
	}
}
