// Package configuration reconciles Configurations: one Revision per
// generation of the template, and the latest created and latest ready
// revision in status.
package configuration

import (
	"context"
	"fmt"
	"strconv"

	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/reconciler"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Conditions of a Configuration: only Ready.
var Conditions = duck.NewConditionSet()

// Reconciler reconciles Configurations.
type Reconciler struct {
	Client client.Client
	// APIReader reads past the cache: a revision just created may not be
	// in it yet.
	APIReader client.Reader
	Recorder  record.EventRecorder
}

// SetupWithManager registers the reconciler for Configurations and the
// Revisions they own.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&servingv1.Configuration{}).Owns(&servingv1.Revision{}).Complete(r)
}

// Reconcile creates the revision of the current generation if missing and
// reports the latest created and ready revisions.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var cfg servingv1.Configuration
	if err := r.Client.Get(ctx, req.NamespacedName, &cfg); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if cfg.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	before := cfg.Status.DeepCopy()
	conds := Conditions.Manage(&cfg.Status.Status)
	conds.Initialize()
	cfg.Status.ObservedGeneration = cfg.Generation

	var revs servingv1.RevisionList
	if err := r.Client.List(ctx, &revs, client.InNamespace(cfg.Namespace),
		client.MatchingLabels{servingv1.ConfigurationLabelKey: cfg.Name}); err != nil {
		return reconcile.Result{}, err
	}
	// The revision of the current generation: by its BYO name first (as
	// upstream), so that a template naming an earlier revision (a rollback
	// by re-applying an old manifest) makes that revision the latest again.
	gen := strconv.FormatInt(cfg.Generation, 10)
	var latest *servingv1.Revision
	for i := range revs.Items {
		rev := &revs.Items[i]
		if !metav1.IsControlledBy(rev, &cfg) {
			continue
		}
		if byName := cfg.Spec.Template.Name != ""; byName && rev.Name == cfg.Spec.Template.Name ||
			!byName && rev.Labels[servingv1.ConfigurationGenerationLabelKey] == gen {
			latest = rev
		}
	}
	if latest == nil {
		rev, err := r.createRevision(ctx, &cfg)
		if err != nil {
			conds.MarkFalse(duck.ConditionReady, "RevisionFailed", "Revision creation failed with message: %s.", err.Error())
			if uerr := r.updateStatus(ctx, &cfg, before); uerr != nil {
				return reconcile.Result{}, uerr
			}
			if apierrors.IsAlreadyExists(err) {
				return reconcile.Result{}, nil
			}
			return reconcile.Result{}, err
		}
		latest = rev
		revs.Items = append(revs.Items, *rev)
		r.Recorder.Eventf(&cfg, corev1.EventTypeNormal, "Created", "Created Revision %q", rev.Name)
	}
	cfg.Status.LatestCreatedRevisionName = latest.Name

	// Latest ready: the latest created once it is ready, else the ready
	// revision of the highest generation.
	var ready *servingv1.Revision
	for i := range revs.Items {
		rev := &revs.Items[i]
		if !isReady(rev) || !metav1.IsControlledBy(rev, &cfg) {
			continue
		}
		if ready == nil || generation(rev) > generation(ready) {
			ready = rev
		}
	}
	if isReady(latest) {
		ready = latest
	}
	if ready != nil && cfg.Status.LatestReadyRevisionName != ready.Name {
		r.Recorder.Eventf(&cfg, corev1.EventTypeNormal, "LatestReadyUpdate", "LatestReadyRevisionName updated to %q", ready.Name)
		cfg.Status.LatestReadyRevisionName = ready.Name
	} else if ready == nil && cfg.Status.LatestReadyRevisionName != "" {
		if !exists(revs.Items, cfg.Status.LatestReadyRevisionName) {
			conds.MarkFalse(duck.ConditionReady, "RevisionDeleted", "Revision %q was deleted.", cfg.Status.LatestReadyRevisionName)
			cfg.Status.LatestReadyRevisionName = ""
		}
	}

	switch c := latest.Status.GetCondition(duck.ConditionReady); {
	case cfg.Status.LatestReadyRevisionName == latest.Name:
		conds.MarkTrue(duck.ConditionReady)
	case c != nil && c.Status == corev1.ConditionFalse:
		conds.MarkFalse(duck.ConditionReady, "RevisionFailed", "Revision %q failed with message: %s.", latest.Name, c.Message)
	default:
		conds.MarkUnknown(duck.ConditionReady, "", "")
	}
	return reconcile.Result{}, r.updateStatus(ctx, &cfg, before)
}

func (r *Reconciler) updateStatus(ctx context.Context, cfg *servingv1.Configuration, before *servingv1.ConfigurationStatus) error {
	if equality.Semantic.DeepEqual(before, &cfg.Status) {
		return nil
	}
	return r.Client.Status().Update(ctx, cfg)
}

// createRevision stamps out the revision of the configuration's current
// generation. A BYO name already used by another revision is refused
// unless that revision is ours with the same spec.
func (r *Reconciler) createRevision(ctx context.Context, cfg *servingv1.Configuration) (*servingv1.Revision, error) {
	rev := MakeRevision(cfg)
	if err := controllerutil.SetControllerReference(cfg, rev, r.Client.Scheme()); err != nil {
		return nil, err
	}
	err := r.Client.Create(ctx, rev)
	if apierrors.IsAlreadyExists(err) {
		var existing servingv1.Revision
		if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(rev), &existing); gerr == nil &&
			metav1.IsControlledBy(&existing, cfg) &&
			(existing.Labels[servingv1.ConfigurationGenerationLabelKey] == rev.Labels[servingv1.ConfigurationGenerationLabelKey] ||
				equality.Semantic.DeepEqual(existing.Spec, rev.Spec)) {
			return &existing, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return rev, nil
}

// MakeRevision is the revision a configuration's current generation means.
func MakeRevision(cfg *servingv1.Configuration) *servingv1.Revision {
	t := cfg.Spec.Template
	name := t.Name
	if name == "" {
		name = reconciler.ChildName(cfg.Name, fmt.Sprintf("-%05d", cfg.Generation))
	}
	rev := &servingv1.Revision{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: cfg.Namespace,
			Labels: map[string]string{}, Annotations: map[string]string{},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	for k, v := range t.Labels {
		rev.Labels[k] = v
	}
	for k, v := range t.Annotations {
		rev.Annotations[k] = v
	}
	rev.Labels[servingv1.ConfigurationLabelKey] = cfg.Name
	rev.Labels[servingv1.ConfigurationGenerationLabelKey] = strconv.FormatInt(cfg.Generation, 10)
	rev.Labels[servingv1.ConfigurationUIDLabelKey] = string(cfg.UID)
	for _, k := range []string{servingv1.ServiceLabelKey, servingv1.ServiceUIDLabelKey} {
		if v, ok := cfg.Labels[k]; ok {
			rev.Labels[k] = v
		}
	}
	if m := cfg.Annotations[servingv1.UpdaterAnnotation]; m != "" {
		rev.Annotations[servingv1.CreatorAnnotation] = m
	}
	rev.Labels[servingv1.RoutingStateLabelKey] = servingv1.RoutingStatePending
	if routes := cfg.Annotations[servingv1.RoutesAnnotationKey]; routes != "" {
		rev.Annotations[servingv1.RoutesAnnotationKey] = routes
		rev.Labels[servingv1.RoutingStateLabelKey] = servingv1.RoutingStateActive
	}
	rev.Annotations[servingv1.RoutingStateModifiedAnnotation] = metav1.Now().UTC().Format("2006-01-02T15:04:05Z")
	return rev
}

func isReady(rev *servingv1.Revision) bool {
	c := rev.Status.GetCondition(duck.ConditionReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func generation(rev *servingv1.Revision) int64 {
	g, _ := strconv.ParseInt(rev.Labels[servingv1.ConfigurationGenerationLabelKey], 10, 64)
	return g
}

func exists(revs []servingv1.Revision, name string) bool {
	for _, r := range revs {
		if r.Name == name {
			return true
		}
	}
	return false
}
