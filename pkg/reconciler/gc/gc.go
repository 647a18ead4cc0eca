// Package gc deletes old revisions by config-gc's rules: never the latest
// ready revision, one marked serving.knative.dev/no-gc, or one that is not
// in the reserve routing state; keep at least min-non-active-revisions;
// delete stale ones (past both retentions) oldest first; then cap the
// non-active count at max-non-active-revisions.
package gc

import (
	"context"
	"sort"
	"time"

	"github.com/knd-dev/knd/pkg/apis/config"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/configstore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Collect returns the revisions to delete, oldest first.
func Collect(latestReady string, revs []servingv1.Revision, cfg *config.GC, now time.Time) []string {
	var candidates []servingv1.Revision
	for _, r := range revs {
		if r.Name == latestReady || r.Annotations[servingv1.NoGCAnnotation] == "true" ||
			r.Labels[servingv1.RoutingStateLabelKey] != servingv1.RoutingStateReserve {
			continue
		}
		candidates = append(candidates, r)
	}
	if int64(len(candidates)) <= cfg.MinNonActiveRevisions {
		return nil
	}
	sort.SliceStable(candidates, func(i, j int) bool { return lastActive(&candidates[i]).Before(lastActive(&candidates[j])) })
	var out []string
	remaining := int64(len(candidates))
	kept := candidates[:0:0]
	for _, r := range candidates {
		if remaining > cfg.MinNonActiveRevisions && stale(&r, cfg, now) {
			out = append(out, r.Name)
			remaining--
			continue
		}
		kept = append(kept, r)
	}
	if cfg.MaxNonActiveRevisions >= 0 {
		for i := 0; remaining > cfg.MaxNonActiveRevisions && i < len(kept); i++ {
			out = append(out, kept[i].Name)
			remaining--
		}
	}
	return out
}

// lastActive is when the revision last changed routing state, else when
// it was created.
func lastActive(r *servingv1.Revision) time.Time {
	if v := r.Annotations[servingv1.RoutingStateModifiedAnnotation]; v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t
		}
	}
	return r.CreationTimestamp.Time
}

// stale: older than retain-since-create-time and inactive for longer than
// retain-since-last-active-time; with both disabled, nothing is stale.
func stale(r *servingv1.Revision, cfg *config.GC, now time.Time) bool {
	const disabled = -1
	if cfg.RetainSinceCreateTime == disabled && cfg.RetainSinceLastActiveTime == disabled {
		return false
	}
	if cfg.RetainSinceCreateTime != disabled && now.Sub(r.CreationTimestamp.Time) < cfg.RetainSinceCreateTime {
		return false
	}
	if cfg.RetainSinceLastActiveTime != disabled && now.Sub(lastActive(r)) < cfg.RetainSinceLastActiveTime {
		return false
	}
	return true
}

// Reconciler collects each Configuration's old revisions.
type Reconciler struct {
	Client client.Client
	Config *configstore.Store
}

// SetupWithManager registers the collector for Configurations and their
// revisions (a routing state change can make one collectable).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("gc").For(&servingv1.Configuration{}).
		Owns(&servingv1.Revision{}).Complete(r)
}

// Reconcile deletes collectable revisions and comes back in an hour, when
// retention times may have passed.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var cfg servingv1.Configuration
	if err := r.Client.Get(ctx, req.NamespacedName, &cfg); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	var revs servingv1.RevisionList
	if err := r.Client.List(ctx, &revs, client.InNamespace(cfg.Namespace),
		client.MatchingLabels{servingv1.ConfigurationLabelKey: cfg.Name}); err != nil {
		return reconcile.Result{}, err
	}
	var owned []servingv1.Revision
	for _, rev := range revs.Items {
		if metav1.IsControlledBy(&rev, &cfg) {
			owned = append(owned, rev)
		}
	}
	for _, name := range Collect(cfg.Status.LatestReadyRevisionName, owned, r.Config.Get().GC, time.Now()) {
		rev := &servingv1.Revision{ObjectMeta: metav1.ObjectMeta{Namespace: cfg.Namespace, Name: name}}
		if err := r.Client.Delete(ctx, rev); client.IgnoreNotFound(err) != nil {
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{RequeueAfter: time.Hour}, nil
}
