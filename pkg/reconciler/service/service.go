// Package service reconciles Services: each owns a Configuration and a
// Route of its own name, and mirrors their status.
package service

import (
	"context"
	"strings"

	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Conditions of a Service.
var Conditions = duck.NewConditionSet(servingv1.ConditionConfigurationsReady, servingv1.ConditionRoutesReady)

// Reconciler reconciles Services.
type Reconciler struct {
	Client client.Client
}

// SetupWithManager registers the reconciler for Services and their
// Configurations and Routes.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&servingv1.Service{}).
		Owns(&servingv1.Configuration{}).Owns(&servingv1.Route{}).Complete(r)
}

// Reconcile writes the Service's Configuration and Route and mirrors them.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var svc servingv1.Service
	if err := r.Client.Get(ctx, req.NamespacedName, &svc); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if svc.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	before := svc.Status.DeepCopy()
	conds := Conditions.Manage(&svc.Status.Status)
	conds.Initialize()
	svc.Status.ObservedGeneration = svc.Generation

	cfg := MakeConfiguration(&svc)
	cfgOwned, err := r.apply(ctx, &svc, cfg, &servingv1.Configuration{}, func(have client.Object) bool {
		h := have.(*servingv1.Configuration)
		changed := !equality.Semantic.DeepEqual(h.Spec, cfg.Spec) || !equality.Semantic.DeepEqual(h.Labels, cfg.Labels) ||
			!equality.Semantic.DeepEqual(h.Annotations, cfg.Annotations)
		h.Spec, h.Labels, h.Annotations = cfg.Spec, cfg.Labels, cfg.Annotations
		*cfg = *h
		return changed
	})
	if err != nil {
		return reconcile.Result{}, err
	}
	route := MakeRoute(&svc)
	routeOwned, err := r.apply(ctx, &svc, route, &servingv1.Route{}, func(have client.Object) bool {
		h := have.(*servingv1.Route)
		changed := !equality.Semantic.DeepEqual(h.Spec, route.Spec) || !equality.Semantic.DeepEqual(h.Labels, route.Labels) ||
			!equality.Semantic.DeepEqual(h.Annotations, route.Annotations)
		h.Spec, h.Labels, h.Annotations = route.Spec, route.Labels, route.Annotations
		*route = *h
		return changed
	})
	if err != nil {
		return reconcile.Result{}, err
	}

	if !cfgOwned {
		conds.MarkFalse(servingv1.ConditionConfigurationsReady, "NotOwned", "There is an existing Configuration %q that we do not own.", cfg.Name)
	} else {
		propagateConfiguration(&svc, cfg, conds)
	}
	if !routeOwned {
		conds.MarkFalse(servingv1.ConditionRoutesReady, "NotOwned", "There is an existing Route %q that we do not own.", route.Name)
	} else {
		propagateRoute(&svc, cfg, route, conds)
	}
	if equality.Semantic.DeepEqual(before, &svc.Status) {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, r.Client.Status().Update(ctx, &svc)
}

// apply creates want, or overwrites the existing child through update
// (which copies want into it and says whether anything changed). It
// returns false when the child exists but is not the Service's.
func (r *Reconciler) apply(ctx context.Context, svc *servingv1.Service, want, have client.Object, update func(client.Object) bool) (bool, error) {
	if err := controllerutil.SetControllerReference(svc, want, r.Client.Scheme()); err != nil {
		return false, err
	}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), have)
	if apierrors.IsNotFound(err) {
		return true, r.Client.Create(ctx, want)
	}
	if err != nil {
		return false, err
	}
	if !metav1.IsControlledBy(have, svc) {
		return false, nil
	}
	if update(have) {
		return true, r.Client.Update(ctx, want)
	}
	return true, nil
}

func propagateConfiguration(svc *servingv1.Service, cfg *servingv1.Configuration, conds *duck.Conditions) {
	if cfg.Generation != cfg.Status.ObservedGeneration {
		conds.MarkUnknown(servingv1.ConditionConfigurationsReady, "OutOfDate",
			"The Configuration is still working to reflect the latest desired specification.")
		return
	}
	svc.Status.LatestCreatedRevisionName = cfg.Status.LatestCreatedRevisionName
	svc.Status.LatestReadyRevisionName = cfg.Status.LatestReadyRevisionName
	mirror(conds, servingv1.ConditionConfigurationsReady, cfg.Status.GetCondition(duck.ConditionReady))
}

func propagateRoute(svc *servingv1.Service, cfg *servingv1.Configuration, route *servingv1.Route, conds *duck.Conditions) {
	if ready := cfg.Status.GetCondition(duck.ConditionReady); svc.Spec.Template.Name != "" && ready != nil &&
		ready.Reason == "RevisionFailed" && strings.Contains(ready.Message, "already exists") {
		conds.MarkFalse(servingv1.ConditionRoutesReady, "RevisionNameTaken",
			"The revision name %q is taken by a conflicting Revision, so traffic will not be migrated", svc.Spec.Template.Name)
		return
	}
	if route.Generation != route.Status.ObservedGeneration {
		conds.MarkUnknown(servingv1.ConditionRoutesReady, "OutOfDate",
			"The Route is still working to reflect the latest desired specification.")
		return
	}
	svc.Status.URL = route.Status.URL
	svc.Status.Address = route.Status.Address.DeepCopy()
	svc.Status.Traffic = nil
	for _, tt := range route.Status.Traffic {
		svc.Status.Traffic = append(svc.Status.Traffic, *tt.DeepCopy())
	}
	mirror(conds, servingv1.ConditionRoutesReady, route.Status.GetCondition(duck.ConditionReady))
	if conds.IsTrue(servingv1.ConditionRoutesReady) && !migrated(route, cfg) {
		conds.MarkUnknown(servingv1.ConditionRoutesReady, "TrafficNotMigrated", "Traffic is not yet migrated to the latest revision.")
	}
}

// migrated says whether the route's status is its spec with the
// configuration's targets resolved to its latest ready revision.
func migrated(route *servingv1.Route, cfg *servingv1.Configuration) bool {
	type entry struct {
		tag, rev string
		percent  int64
	}
	var want []entry
	for _, tt := range route.Spec.Traffic {
		rev := tt.RevisionName
		if rev == "" {
			rev = cfg.Status.LatestReadyRevisionName
		}
		merged := false
		for i := range want {
			if want[i].tag == tt.Tag && want[i].rev == rev {
				want[i].percent += ptr.Deref(tt.Percent, 0)
				merged = true
			}
		}
		if !merged {
			want = append(want, entry{tt.Tag, rev, ptr.Deref(tt.Percent, 0)})
		}
	}
	if len(want) != len(route.Status.Traffic) {
		return false
	}
	for i, tt := range route.Status.Traffic {
		if want[i] != (entry{tt.Tag, tt.RevisionName, ptr.Deref(tt.Percent, 0)}) {
			return false
		}
	}
	return true
}

func mirror(conds *duck.Conditions, t duck.ConditionType, c *duck.Condition) {
	switch {
	case c == nil:
		conds.MarkUnknown(t, "", "")
	case c.Status == corev1.ConditionTrue:
		conds.MarkTrue(t)
	case c.Status == corev1.ConditionFalse:
		conds.MarkFalse(t, c.Reason, "%s", c.Message)
	default:
		conds.MarkUnknown(t, c.Reason, "%s", c.Message)
	}
}

// MakeConfiguration is the Configuration a Service means.
func MakeConfiguration(svc *servingv1.Service) *servingv1.Configuration {
	labels := copyMap(svc.Labels)
	labels[servingv1.ServiceLabelKey] = svc.Name
	labels[servingv1.ServiceUIDLabelKey] = string(svc.UID)
	ann := copyMap(svc.Annotations)
	for _, k := range []string{servingv1.LastAppliedAnnotation, servingv1.RolloutDurationKey, servingv1.RolloutDurationAltKey} {
		delete(ann, k)
	}
	ann[servingv1.RoutesAnnotationKey] = svc.Name
	return &servingv1.Configuration{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: labels, Annotations: ann},
		Spec:       *svc.Spec.ConfigurationSpec.DeepCopy(),
	}
}

// MakeRoute is the Route a Service means: its traffic, with targets that
// name no revision pointing at the Service's Configuration.
func MakeRoute(svc *servingv1.Service) *servingv1.Route {
	labels := copyMap(svc.Labels)
	labels[servingv1.ServiceLabelKey] = svc.Name
	ann := copyMap(svc.Annotations)
	delete(ann, servingv1.LastAppliedAnnotation)
	route := &servingv1.Route{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: labels, Annotations: ann},
		Spec:       *svc.Spec.RouteSpec.DeepCopy(),
	}
	for i := range route.Spec.Traffic {
		if route.Spec.Traffic[i].RevisionName == "" {
			route.Spec.Traffic[i].ConfigurationName = svc.Name
		}
	}
	return route
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}
