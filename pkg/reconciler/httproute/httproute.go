// Package httproute puts knd's gateway into the Gateway API: it publishes
// the GatewayClass "knd" and the Gateway knative-serving/knd-gateway with
// their status, and reports on each HTTPRoute attached to that Gateway
// whether it is Accepted and its backends resolved. The gateway reads the
// HTTPRoutes themselves; this status is for the user.
package httproute

import (
	"context"
	"fmt"

	"github.com/knd-dev/knd/pkg/apis/gatewayapi"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/customroute"
	"github.com/knd-dev/knd/pkg/reconciler"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var gatewayKey = types.NamespacedName{Namespace: gatewayapi.GatewayNamespace, Name: gatewayapi.GatewayName}

// Reconciler reconciles knd's Gateway and the HTTPRoutes attached to it.
type Reconciler struct {
	Client client.Client
}

// SetupWithManager registers two controllers: one for knd's Gateway (and
// its class), run once at start and whenever a route or the Gateway
// changes, and one for HTTPRoutes, run again when the Revisions and
// Routes their backends name change.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	start := make(chan event.GenericEvent, 1)
	start <- event.GenericEvent{}
	toGateway := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: gatewayKey}}
	})
	if err := ctrl.NewControllerManagedBy(mgr).Named("knd-gateway").
		For(&gatewayv1.Gateway{}).
		Watches(&gatewayv1.GatewayClass{}, toGateway).
		Watches(&gatewayv1.HTTPRoute{}, toGateway).
		WatchesRawSource(source.Channel(start, toGateway)).
		Complete(reconcile.Func(r.reconcileGateway)); err != nil {
		return err
	}
	all := reconciler.EnqueueAll(r.Client, &gatewayv1.HTTPRouteList{})
	return ctrl.NewControllerManagedBy(mgr).
		For(&gatewayv1.HTTPRoute{}).
		Watches(&servingv1.Revision{}, all).
		Watches(&servingv1.Route{}, all).
		Complete(reconcile.Func(r.reconcileRoute))
}

// reconcileGateway makes sure knd's GatewayClass and Gateway exist and says
// in their status that they are accepted and programmed, with the number
// of routes attached to the listener.
func (r *Reconciler) reconcileGateway(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.NamespacedName != gatewayKey {
		return reconcile.Result{}, nil
	}
	class := &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: gatewayapi.ClassName},
		Spec: gatewayv1.GatewayClassSpec{ControllerName: gatewayapi.ControllerName}}
	if err := r.ensure(ctx, class); err != nil {
		return reconcile.Result{}, fmt.Errorf("publishing GatewayClass %s: %w", class.Name, err)
	}
	before := class.Status.DeepCopy()
	setCondition(&class.Status.Conditions, class.Generation, string(gatewayv1.GatewayClassConditionStatusAccepted), string(gatewayv1.GatewayClassReasonAccepted), "knd's gateway serves this class")
	if err := r.updateStatus(ctx, class, before, &class.Status); err != nil {
		return reconcile.Result{}, fmt.Errorf("updating the status of GatewayClass %s: %w", class.Name, err)
	}

	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: gatewayKey.Namespace, Name: gatewayKey.Name},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: gatewayapi.ClassName, Listeners: []gatewayv1.Listener{{
			Name: gatewayapi.ListenerName, Port: 80, Protocol: gatewayv1.HTTPProtocolType,
			AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}},
		}}}}
	if err := r.ensure(ctx, gw); err != nil {
		return reconcile.Result{}, fmt.Errorf("publishing Gateway %s: %w", gatewayKey, err)
	}
	var routes gatewayv1.HTTPRouteList
	if err := r.Client.List(ctx, &routes); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing HTTPRoutes: %w", err)
	}
	attached := int32(0)
	for i := range routes.Items {
		if customroute.Attached(&routes.Items[i]) {
			attached++
		}
	}
	before2 := gw.Status.DeepCopy()
	gw.Status.Addresses = []gatewayv1.GatewayStatusAddress{{Type: ptr.To(gatewayv1.IPAddressType), Value: "127.0.0.1"}}
	setCondition(&gw.Status.Conditions, gw.Generation, string(gatewayv1.GatewayConditionAccepted), string(gatewayv1.GatewayReasonAccepted), "")
	setCondition(&gw.Status.Conditions, gw.Generation, string(gatewayv1.GatewayConditionProgrammed), string(gatewayv1.GatewayReasonProgrammed), "")
	var listener gatewayv1.ListenerStatus
	if len(gw.Status.Listeners) == 1 {
		listener = gw.Status.Listeners[0]
	}
	listener.Name, listener.AttachedRoutes = gatewayapi.ListenerName, attached
	listener.SupportedKinds = []gatewayv1.RouteGroupKind{{Group: ptr.To(gatewayv1.Group(gatewayv1.GroupName)), Kind: "HTTPRoute"}}
	for _, c := range [][2]string{
		{string(gatewayv1.ListenerConditionAccepted), string(gatewayv1.ListenerReasonAccepted)},
		{string(gatewayv1.ListenerConditionProgrammed), string(gatewayv1.ListenerReasonProgrammed)},
		{string(gatewayv1.ListenerConditionResolvedRefs), string(gatewayv1.ListenerReasonResolvedRefs)},
	} {
		setCondition(&listener.Conditions, gw.Generation, c[0], c[1], "")
	}
	meta.SetStatusCondition(&listener.Conditions, metav1.Condition{Type: string(gatewayv1.ListenerConditionConflicted),
		Status: metav1.ConditionFalse, Reason: string(gatewayv1.ListenerReasonNoConflicts), ObservedGeneration: gw.Generation})
	gw.Status.Listeners = []gatewayv1.ListenerStatus{listener}
	if err := r.updateStatus(ctx, gw, before2, &gw.Status); err != nil {
		return reconcile.Result{}, fmt.Errorf("updating the status of Gateway %s: %w", gatewayKey, err)
	}
	return reconcile.Result{}, nil
}

// ensure reads obj, creating it as given when it does not exist.
func (r *Reconciler) ensure(ctx context.Context, obj client.Object) error {
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if apierrors.IsNotFound(err) {
		err = r.Client.Create(ctx, obj)
	}
	return err
}

// updateStatus writes obj's status unless it is still before.
func (r *Reconciler) updateStatus(ctx context.Context, obj client.Object, before, after any) error {
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	return r.Client.Status().Update(ctx, obj)
}

// setCondition sets a True condition, keeping its transition time when it
// was True already.
func setCondition(conds *[]metav1.Condition, generation int64, typ, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: generation})
}

// reconcileRoute writes, for each parentRef of an HTTPRoute that names
// knd's Gateway, whether the route is Accepted and its refs resolved,
// leaving other controllers' parent statuses alone.
func (r *Reconciler) reconcileRoute(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var hr gatewayv1.HTTPRoute
	if err := r.Client.Get(ctx, req.NamespacedName, &hr); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	before := hr.Status.DeepCopy()
	var ours []gatewayv1.RouteParentStatus
	old := map[string]gatewayv1.RouteParentStatus{}
	var others []gatewayv1.RouteParentStatus
	for _, p := range hr.Status.Parents {
		if p.ControllerName == gatewayapi.ControllerName {
			old[parentKey(p.ParentRef)] = p
		} else {
			others = append(others, p)
		}
	}
	var accepted, resolved metav1.Condition
	if customroute.Attached(&hr) { // else only a status of ours that is left goes
		accepted = metav1.Condition{Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionTrue, Reason: string(gatewayv1.RouteReasonAccepted)}
		if _, err := customroute.CompileHTTPRoute(&hr); err != nil {
			accepted.Status, accepted.Reason, accepted.Message = metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue), err.Error()
		}
		var err error
		if resolved, err = r.resolved(ctx, &hr); err != nil {
			return reconcile.Result{}, fmt.Errorf("resolving the backends of HTTPRoute %s: %w", req, err)
		}
	}
	for _, ref := range hr.Spec.ParentRefs {
		if !gatewayapi.IsKndGateway(ref, hr.Namespace) {
			continue
		}
		ps := old[parentKey(ref)]
		ps.ParentRef, ps.ControllerName = ref, gatewayapi.ControllerName
		for _, c := range []metav1.Condition{accepted, resolved} {
			c.ObservedGeneration = hr.Generation
			meta.SetStatusCondition(&ps.Conditions, c)
		}
		ours = append(ours, ps)
	}
	hr.Status.Parents = append(others, ours...)
	if err := r.updateStatus(ctx, &hr, before, &hr.Status); err != nil {
		return reconcile.Result{}, fmt.Errorf("updating the status of HTTPRoute %s: %w", req, err)
	}
	return reconcile.Result{}, nil
}

// resolved is the route's ResolvedRefs condition: every backendRef and
// mirror is of a kind knd serves, in the route's namespace, and names a
// Revision or a Knative Service (Route) that exists.
func (r *Reconciler) resolved(ctx context.Context, hr *gatewayv1.HTTPRoute) (metav1.Condition, error) {
	cond := metav1.Condition{Type: string(gatewayv1.RouteConditionResolvedRefs), Status: metav1.ConditionTrue, Reason: string(gatewayv1.RouteReasonResolvedRefs)}
	var refs []gatewayv1.BackendObjectReference
	for _, rule := range hr.Spec.Rules {
		for _, b := range rule.BackendRefs {
			refs = append(refs, b.BackendObjectReference)
		}
		for _, f := range rule.Filters {
			if f.RequestMirror != nil {
				refs = append(refs, f.RequestMirror.BackendRef)
			}
		}
	}
	for _, ref := range refs {
		if reason, msg := customroute.BackendProblem(ref, hr.Namespace); reason != "" {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, reason, msg
			return cond, nil
		}
		found, err := reconciler.RevisionOrRoute(ctx, r.Client, types.NamespacedName{Namespace: hr.Namespace, Name: string(ref.Name)})
		if err != nil {
			return cond, err
		}
		if !found {
			cond.Status, cond.Reason = metav1.ConditionFalse, string(gatewayv1.RouteReasonBackendNotFound)
			cond.Message = fmt.Sprintf("backendRef %s: no Revision or Knative Service of that name in namespace %s", ref.Name, hr.Namespace)
			return cond, nil
		}
	}
	return cond, nil
}

func parentKey(ref gatewayv1.ParentReference) string {
	return fmt.Sprintf("%v/%v/%s/%v", ptr.Deref(ref.Namespace, ""), ptr.Deref(ref.Kind, ""), ref.Name, ptr.Deref(ref.SectionName, ""))
}
