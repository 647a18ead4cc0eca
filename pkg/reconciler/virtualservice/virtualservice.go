// Package virtualservice reports on VirtualServices whether knd's gateway
// serves them: Ready, or why not (a rule it cannot serve, a destination
// that does not exist, gateways that are not knd's). The gateway reads the
// VirtualServices themselves; this status is for the user.
package virtualservice

import (
	"context"
	"fmt"
	"strings"

	"github.com/knd-dev/knd/pkg/apis/duck"
	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/customroute"
	"github.com/knd-dev/knd/pkg/reconciler"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Reasons of a VirtualService that is not Ready.
const (
	ReasonInvalidRule         = "InvalidRule"
	ReasonDestinationNotFound = "DestinationNotFound"
	ReasonNotForThisGateway   = "NotForThisGateway"
)

var conditions = duck.NewConditionSet()

// Reconciler sets VirtualServices' status.
type Reconciler struct {
	Client client.Client
}

// SetupWithManager watches VirtualServices, and the Revisions and Routes
// their destinations name.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	all := reconciler.EnqueueAll(r.Client, &istiov1.VirtualServiceList{})
	return ctrl.NewControllerManagedBy(mgr).
		For(&istiov1.VirtualService{}).
		Watches(&servingv1.Revision{}, all).
		Watches(&servingv1.Route{}, all).
		Complete(r)
}

// Reconcile checks one VirtualService and writes its Ready condition.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var vs istiov1.VirtualService
	if err := r.Client.Get(ctx, req.NamespacedName, &vs); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if vs.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	before := vs.Status.DeepCopy()
	conds := conditions.Manage(&vs.Status)
	conds.Initialize()
	vs.Status.ObservedGeneration = vs.Generation
	reason, msg, err := r.check(ctx, &vs)
	switch {
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("checking the destinations of VirtualService %s: %w", req, err)
	case reason != "":
		conds.MarkFalse(duck.ConditionReady, reason, "%s", msg)
	default:
		conds.MarkTrue(duck.ConditionReady)
	}
	if equality.Semantic.DeepEqual(before, &vs.Status) {
		return reconcile.Result{}, nil
	}
	if err := r.Client.Status().Update(ctx, &vs); err != nil {
		return reconcile.Result{}, fmt.Errorf("updating the status of VirtualService %s: %w", req, err)
	}
	return reconcile.Result{}, nil
}

// check says why the gateway does not serve vs, or nothing when it does.
func (r *Reconciler) check(ctx context.Context, vs *istiov1.VirtualService) (reason, msg string, err error) {
	if !istiov1.AppliesToKnd(vs.Spec.Gateways) {
		return ReasonNotForThisGateway, fmt.Sprintf("none of the gateways %s is knd's (knative-serving/knative-ingress-gateway, knative-serving/knative-local-gateway or mesh)",
			strings.Join(vs.Spec.Gateways, ", ")), nil
	}
	if _, err := customroute.CompileOne(vs); err != nil {
		return ReasonInvalidRule, err.Error(), nil
	}
	paths, hosts := customroute.Destinations(vs)
	for i, host := range hosts {
		if istiov1.IsGatewayHost(host) {
			continue
		}
		name, ns := customroute.ServiceOf(host, vs.Namespace)
		found, err := reconciler.RevisionOrRoute(ctx, r.Client, types.NamespacedName{Namespace: ns, Name: name})
		if err != nil {
			return "", "", err
		}
		if !found {
			return ReasonDestinationNotFound, fmt.Sprintf("%s: %q is neither a Revision nor a Knative Service (Route) in namespace %q", paths[i], host, ns), nil
		}
	}
	return "", "", nil
}
