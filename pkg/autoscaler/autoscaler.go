package autoscaler

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/knd-dev/knd/pkg/apis/autoscaling"
	autoscalingv1alpha1 "github.com/knd-dev/knd/pkg/apis/autoscaling/v1alpha1"
	"github.com/knd-dev/knd/pkg/apis/config"
	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/configstore"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// PA condition types.
const (
	ConditionActive                 = "Active"
	ConditionScaleTargetInitialized = "ScaleTargetInitialized"
	ConditionSKSReady               = "SKSReady"
)

// Conditions of a PodAutoscaler.
var Conditions = duck.NewConditionSet(ConditionActive, ConditionScaleTargetInitialized, ConditionSKSReady)

// tick is how often concurrency is sampled; decisions are made every
// decideEvery, as upstream does.
const (
	tick        = time.Second
	decideEvery = 2 * time.Second
)

// Autoscaler scales every KPA-class PodAutoscaler's Deployment. It is a
// controller-runtime Runnable.
type Autoscaler struct {
	Client client.Client
	Config *configstore.Store
	// Concurrency is the number of requests in flight or waiting for a
	// revision right now (the gateway's count).
	Concurrency func(namespace, revision string) int
	// Requests counts the requests that arrived for a revision so far (the
	// gateway's count); its rate is the rps metric.
	Requests func(namespace, revision string) uint64

	mu     sync.Mutex
	states map[string]*paState
	pokes  map[string]time.Time // last poke per revision
}

type paState struct {
	settings deciderSettings
	// requests and sampledAt are the last sample of the request count.
	requests      uint64
	sampledAt     time.Time
	decider       *Decider
	window        time.Duration
	activeSince   time.Time // when it last went from zero (or was created)
	inactiveSince time.Time // when it first wanted zero
	lastDecision  time.Time
	initialized   bool
	timedOut      bool       // the initial scale was never reached in time
	delay         *maxWindow // scale-down-delay
}

// New returns an autoscaler; Concurrency and Requests are set, and
// SetupWithManager called, before it runs.
func New(store *configstore.Store) *Autoscaler {
	return &Autoscaler{Config: store, states: map[string]*paState{}, pokes: map[string]time.Time{}}
}

// SetupWithManager runs the autoscaler with the manager, reading and
// scaling through its client.
func (a *Autoscaler) SetupWithManager(mgr manager.Manager) error {
	a.Client = mgr.GetClient()
	return mgr.Add(a)
}

// Start samples and decides until ctx ends.
func (a *Autoscaler) Start(ctx context.Context) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			a.run(ctx, now)
		}
	}
}

// Poke is the gateway telling that a request waits for a revision with no
// ready pod: a revision at zero is scaled up at once, without waiting for
// the next decision.
func (a *Autoscaler) Poke(ns, name string) {
	// A burst into a revision at zero pokes once per request; one scale-up
	// a second is enough.
	key := ns + "/" + name
	a.mu.Lock()
	if time.Since(a.pokes[key]) < time.Second {
		a.mu.Unlock()
		return
	}
	a.pokes[key] = time.Now()
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pa autoscalingv1alpha1.PodAutoscaler
	if err := a.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &pa); err != nil {
		return
	}
	var d appsv1.Deployment
	if err := a.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: pa.Spec.ScaleTargetRef.Name}, &d); err != nil {
		return
	}
	st := a.state(&pa, a.Config.Get())
	a.mu.Lock()
	st.activeSince, st.inactiveSince = time.Now(), time.Time{}
	a.mu.Unlock()
	if ptr.Deref(d.Spec.Replicas, 1) == 0 {
		lo, _ := bounds(&pa, a.Config.Get())
		if err := a.scale(ctx, &d, max(1, lo)); err != nil {
			klog.ErrorS(err, "scaling from zero", "revision", ns+"/"+name)
		}
	}
}

func (a *Autoscaler) run(ctx context.Context, now time.Time) {
	var pas autoscalingv1alpha1.PodAutoscalerList
	if err := a.Client.List(ctx, &pas); err != nil {
		klog.ErrorS(err, "autoscaler: listing PodAutoscalers")
		return
	}
	cfg := a.Config.Get()
	seen := map[string]bool{}
	for i := range pas.Items {
		pa := &pas.Items[i]
		if pa.DeletionTimestamp != nil {
			continue
		}
		if _, class, ok := autoscaling.ClassAnnotation.Get(pa.Annotations); ok && class != config.KPA {
			continue // another autoscaler's (e.g. HPA class)
		}
		seen[pa.Namespace+"/"+pa.Name] = true
		if err := a.reconcile(ctx, pa, cfg, now); err != nil {
			klog.ErrorS(err, "autoscaler", "revision", pa.Namespace+"/"+pa.Name)
		}
	}
	a.mu.Lock()
	for k := range a.states {
		if !seen[k] {
			delete(a.states, k)
			delete(a.pokes, k)
		}
	}
	a.mu.Unlock()
}

// deciderSettings are what a PodAutoscaler's decider is built from: its
// annotations over config-autoscaler.
type deciderSettings struct {
	metric                            string // concurrency or rps
	target, threshold, maxUp, maxDown float64
	window, panicWindow               time.Duration
}

func settingsFor(pa *autoscalingv1alpha1.PodAutoscaler, cfg *config.Config) deciderSettings {
	window := cfg.Autoscaler.StableWindow
	if _, v, ok := autoscaling.WindowAnnotation.Get(pa.Annotations); ok {
		if d, err := time.ParseDuration(v); err == nil {
			window = d
		}
	}
	panicPct := cfg.Autoscaler.PanicWindowPercentage
	if _, v, ok := autoscaling.PanicWindowPercentageAnnotation.Get(pa.Annotations); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			panicPct = f
		}
	}
	threshold := cfg.Autoscaler.PanicThresholdPercentage
	if _, v, ok := autoscaling.PanicThresholdPercentageAnnotation.Get(pa.Annotations); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			threshold = f
		}
	}
	metric := autoscaling.Concurrency
	if _, v, ok := autoscaling.MetricAnnotation.Get(pa.Annotations); ok && v == autoscaling.RPS {
		metric = autoscaling.RPS
	}
	return deciderSettings{
		metric: metric, target: target(pa, cfg, metric), threshold: threshold / 100,
		maxUp: cfg.Autoscaler.MaxScaleUpRate, maxDown: cfg.Autoscaler.MaxScaleDownRate,
		window: window, panicWindow: max(time.Second, (time.Duration(float64(window) * panicPct / 100)).Round(time.Second)),
	}
}

// state returns the PodAutoscaler's state, creating it on first sight. A
// change of its settings (config-autoscaler or the PA's annotations) gives
// it a new decider at once, as upstream applies config changes to running
// revisions; the rest of its state is kept.
func (a *Autoscaler) state(pa *autoscalingv1alpha1.PodAutoscaler, cfg *config.Config) *paState {
	key := pa.Namespace + "/" + pa.Name
	want := settingsFor(pa, cfg)
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.states[key]
	if ok && st.settings == want {
		return st
	}
	if !ok {
		st = &paState{activeSince: time.Now()}
		a.states[key] = st
	}
	st.settings, st.window = want, want.window
	st.decider = NewDecider(want.target, want.threshold, want.maxUp, want.maxDown, want.window, want.panicWindow)
	return st
}

// target is the metric's value per pod that the revision aims at: for
// concurrency, containerConcurrency (else the config default); for rps, the
// config's requests-per-second default; either overridden by the target
// annotation (capped at containerConcurrency for concurrency), times the
// utilization.
func target(pa *autoscalingv1alpha1.PodAutoscaler, cfg *config.Config, metric string) float64 {
	total := cfg.Autoscaler.ContainerConcurrencyTargetDefault
	if cc := pa.Spec.ContainerConcurrency; cc > 0 {
		total = float64(cc)
	}
	if metric == autoscaling.RPS {
		total = cfg.Autoscaler.RPSTargetDefault
	}
	if _, v, ok := autoscaling.TargetAnnotation.Get(pa.Annotations); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			if cc := pa.Spec.ContainerConcurrency; cc > 0 && metric == autoscaling.Concurrency {
				f = min(f, float64(cc))
			}
			total = f
		}
	}
	util := cfg.Autoscaler.TargetUtilization
	if _, v, ok := autoscaling.TargetUtilizationPercentageAnnotation.Get(pa.Annotations); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			util = f / 100
		}
	}
	return math.Max(0.01, total*util)
}

// podRetention is how long the last pod stays after the revision went
// idle: scale-to-zero-pod-retention-period (annotation over config).
func podRetention(pa *autoscalingv1alpha1.PodAutoscaler, cfg *config.Config) time.Duration {
	if _, v, ok := autoscaling.ScaleToZeroPodRetentionPeriodAnnotation.Get(pa.Annotations); ok {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
	}
	return cfg.Autoscaler.ScaleToZeroPodRetentionPeriod
}

// bounds are min-scale (when reachable) and max-scale (0: unlimited).
func bounds(pa *autoscalingv1alpha1.PodAutoscaler, cfg *config.Config) (int32, int32) {
	lo, hi := cfg.Autoscaler.MinScale, cfg.Autoscaler.MaxScale
	if _, v, ok := autoscaling.MinScaleAnnotation.Get(pa.Annotations); ok {
		if n, err := strconv.Atoi(v); err == nil {
			lo = int32(n)
		}
	}
	if _, v, ok := autoscaling.MaxScaleAnnotation.Get(pa.Annotations); ok {
		if n, err := strconv.Atoi(v); err == nil {
			hi = int32(n)
		}
	}
	if pa.Spec.Reachability == autoscalingv1alpha1.ReachabilityUnreachable {
		lo = 0
	}
	return lo, hi
}

func initialScale(pa *autoscalingv1alpha1.PodAutoscaler, cfg *config.Config) int32 {
	n := cfg.Autoscaler.InitialScale
	if _, v, ok := autoscaling.InitialScaleAnnotation.Get(pa.Annotations); ok {
		if i, err := strconv.Atoi(v); err == nil {
			n = int32(i)
		}
	}
	return n
}

func (a *Autoscaler) reconcile(ctx context.Context, pa *autoscalingv1alpha1.PodAutoscaler, cfg *config.Config, now time.Time) error {
	st := a.state(pa, cfg)
	var d appsv1.Deployment
	if err := a.Client.Get(ctx, client.ObjectKey{Namespace: pa.Namespace, Name: pa.Spec.ScaleTargetRef.Name}, &d); err != nil {
		return client.IgnoreNotFound(err)
	}
	current := ptr.Deref(d.Spec.Replicas, 1)
	ready := d.Status.ReadyReplicas
	concurrency := 0
	if a.Concurrency != nil {
		concurrency = a.Concurrency(pa.Namespace, pa.Name)
	}
	var requests uint64
	if a.Requests != nil {
		requests = a.Requests(pa.Namespace, pa.Name)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st.decider.Reachable = pa.Spec.Reachability != autoscalingv1alpha1.ReachabilityUnreachable
	switch {
	case st.settings.metric != autoscaling.RPS:
		st.decider.Record(now, float64(concurrency))
	case !st.sampledAt.IsZero() && now.After(st.sampledAt) && requests >= st.requests:
		st.decider.Record(now, float64(requests-st.requests)/now.Sub(st.sampledAt).Seconds())
	}
	st.requests, st.sampledAt = requests, now
	if now.Sub(st.lastDecision) < decideEvery {
		return nil
	}
	st.lastDecision = now
	lo, hi := bounds(pa, cfg)
	threshold := max(lo, 1)
	if !st.initialized {
		threshold = max(lo, initialScale(pa, cfg))
		// A knd restart forgets; the PodAutoscaler's status remembers.
		if c := pa.Status.GetCondition(ConditionScaleTargetInitialized); ready >= threshold || (c != nil && c.Status == corev1.ConditionTrue) {
			st.initialized = true
		}
	}
	// A revision that never reached its initial scale gives up after its
	// progress deadline and 30 s more, as upstream: to zero, timed out.
	deadline := servingv1.ProgressDeadline(pa.Annotations, cfg.Deployment.ProgressDeadline) + 30*time.Second
	st.timedOut = !st.initialized && concurrency == 0 && now.Sub(pa.CreationTimestamp.Time) > deadline
	desired, ok := st.decider.Decide(now, int(ready))
	if ok && desired > 0 {
		desired = max(desired, activationScale(pa))
	}
	if ok && st.decider.Reachable {
		desired = st.delayed(now, desired, scaleDownDelay(pa, cfg))
	}
	if !ok || !st.initialized {
		// Until the initial scale is reached, leave the Deployment as created.
		desired = current
	}
	desired = max(desired, lo)
	if hi > 0 {
		desired = min(desired, hi)
	}
	wantZero := desired == 0
	if wantZero && current > 0 {
		// Hold one pod until the revision has been active for a stable
		// window and inactive for the grace period.
		switch {
		case !cfg.Autoscaler.EnableScaleToZero || concurrency > 0:
			desired = 1
		case now.Sub(st.activeSince) < st.window:
			desired = 1 // active for less than a stable window
		case st.inactiveSince.IsZero():
			st.inactiveSince = now
			desired = 1
		case now.Sub(st.inactiveSince) < max(cfg.Autoscaler.ScaleToZeroGracePeriod, podRetention(pa, cfg)):
			desired = 1 // the grace period, or the last pod's retention
		}
	}
	if !wantZero {
		st.inactiveSince = time.Time{}
	}
	if st.timedOut {
		desired = 0 // no pod is held for a revision that failed to start
	}
	if desired != current {
		if current == 0 {
			st.activeSince = now
		}
		if err := a.scale(ctx, &d, desired); err != nil {
			return err
		}
	}
	return a.updateStatus(ctx, pa, st, desired, ready, threshold)
}

func (a *Autoscaler) scale(ctx context.Context, d *appsv1.Deployment, n int32) error {
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: n}}
	return a.Client.SubResource("scale").Update(ctx, d, client.WithSubResourceBody(scale))
}

func (a *Autoscaler) updateStatus(ctx context.Context, pa *autoscalingv1alpha1.PodAutoscaler, st *paState, desired, ready, threshold int32) error {
	before := pa.Status.DeepCopy()
	conds := Conditions.Manage(&pa.Status.Status)
	conds.Initialize()
	pa.Status.ObservedGeneration = pa.Generation
	pa.Status.DesiredScale, pa.Status.ActualScale = &desired, &ready
	pa.Status.ServiceName = pa.Name
	conds.MarkTrue(ConditionSKSReady)
	switch {
	case st.timedOut:
		conds.MarkFalse(ConditionActive, "TimedOut", "The target could not be activated.")
	case desired == 0 || !st.inactiveSince.IsZero():
		conds.MarkFalse(ConditionActive, "NoTraffic", "The target is not receiving traffic.")
	case ready < threshold:
		conds.MarkUnknown(ConditionActive, "Queued", "Requests to the target are being buffered as resources are provisioned.")
	default:
		conds.MarkTrue(ConditionActive)
	}
	if st.initialized {
		conds.MarkTrue(ConditionScaleTargetInitialized)
	} else {
		conds.MarkUnknown(ConditionScaleTargetInitialized, "NotInitialized", "")
	}
	if equality.Semantic.DeepEqual(before, &pa.Status) {
		return nil
	}
	return a.Client.Status().Update(ctx, pa)
}

// activationScale is the least a revision scales to when it is active
// (annotation activation-scale, default 1).
func activationScale(pa *autoscalingv1alpha1.PodAutoscaler) int32 {
	if _, v, ok := autoscaling.ActivationScaleAnnotation.Get(pa.Annotations); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 1 {
			return int32(n)
		}
	}
	return 1
}

func scaleDownDelay(pa *autoscalingv1alpha1.PodAutoscaler, cfg *config.Config) time.Duration {
	d := cfg.Autoscaler.ScaleDownDelay
	if _, v, ok := autoscaling.ScaleDownDelayAnnotation.Get(pa.Annotations); ok {
		if parsed, err := time.ParseDuration(v); err == nil {
			d = parsed
		}
	}
	return d
}

// delayed applies scale-down-delay: the decision is the largest one made
// within the delay, so a dip shorter than the delay does not scale down.
func (st *paState) delayed(now time.Time, desired int32, delay time.Duration) int32 {
	if delay <= 0 {
		st.delay = nil
		return desired
	}
	if st.delay == nil || st.delay.size != delay {
		st.delay = &maxWindow{size: delay}
	}
	return st.delay.record(now, desired)
}

// maxWindow keeps the decisions of the last size and returns their maximum.
type maxWindow struct {
	size    time.Duration
	entries []decision
}

type decision struct {
	at      time.Time
	desired int32
}

func (w *maxWindow) record(now time.Time, desired int32) int32 {
	kept := w.entries[:0]
	for _, e := range w.entries {
		if now.Sub(e.at) < w.size {
			kept = append(kept, e)
		}
	}
	w.entries = append(kept, decision{now, desired})
	best := desired
	for _, e := range w.entries {
		best = max(best, e.desired)
	}
	return best
}
