// Package domainmapping reconciles DomainMappings: it claims the domain
// with a ClusterDomainClaim, resolves the referenced Service or Route, and
// reports the mapping's URL. The gateway serves ready mappings.
package domainmapping

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/knd-dev/knd/pkg/apis/duck"
	networkingv1alpha1 "github.com/knd-dev/knd/pkg/apis/networking/v1alpha1"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	servingv1beta1 "github.com/knd-dev/knd/pkg/apis/serving/v1beta1"
	"github.com/knd-dev/knd/pkg/configstore"
	"github.com/knd-dev/knd/pkg/reconciler"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Condition types of a DomainMapping.
const (
	ConditionDomainClaimed     = "DomainClaimed"
	ConditionReferenceResolved = "ReferenceResolved"
)

// Conditions of a DomainMapping.
var Conditions = duck.NewConditionSet(ConditionDomainClaimed, ConditionReferenceResolved,
	servingv1.ConditionIngressReady, servingv1.ConditionCertificateProvisioned)

const finalizer = "domainmappings.serving.knative.dev"

// Reconciler reconciles DomainMappings.
type Reconciler struct {
	Client client.Client
	Config *configstore.Store
}

// SetupWithManager registers the reconciler: DomainMappings, the claims
// they need (a released claim lets a waiting mapping in), and the Services
// and Routes they point at.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	byName := func(ctx context.Context, o client.Object) []reconcile.Request {
		var dms servingv1beta1.DomainMappingList
		if err := r.Client.List(ctx, &dms); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, dm := range dms.Items {
			ref := dm.Spec.Ref
			if dm.Name == o.GetName() || (ref.Name == o.GetName() && refNamespace(&dm) == o.GetNamespace()) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: dm.Namespace, Name: dm.Name}})
			}
		}
		return out
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&servingv1beta1.DomainMapping{}).
		Watches(&networkingv1alpha1.ClusterDomainClaim{}, handler.EnqueueRequestsFromMapFunc(byName)).
		Watches(&servingv1.Service{}, handler.EnqueueRequestsFromMapFunc(byName)).
		Watches(&servingv1.Route{}, handler.EnqueueRequestsFromMapFunc(byName)).
		WatchesRawSource(reconciler.ResyncOnConfigChange(r.Config, r.Client, &servingv1beta1.DomainMappingList{})).
		Complete(r)
}

func refNamespace(dm *servingv1beta1.DomainMapping) string {
	if dm.Spec.Ref.Namespace != "" {
		return dm.Spec.Ref.Namespace
	}
	return dm.Namespace
}

// Reconcile claims the domain, resolves the reference and sets status.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var dm servingv1beta1.DomainMapping
	if err := r.Client.Get(ctx, req.NamespacedName, &dm); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	cfg := r.Config.Get()
	if dm.DeletionTimestamp != nil {
		return reconcile.Result{}, r.finalize(ctx, &dm)
	}
	if !controllerutil.ContainsFinalizer(&dm, finalizer) {
		controllerutil.AddFinalizer(&dm, finalizer)
		if err := r.Client.Update(ctx, &dm); err != nil {
			return reconcile.Result{}, err
		}
	}
	before := dm.Status.DeepCopy()
	conds := Conditions.Manage(&dm.Status.Status)
	conds.Initialize()
	dm.Status.ObservedGeneration = dm.Generation
	scheme := cfg.Network.DefaultExternalScheme
	if dm.Spec.TLS != nil {
		scheme = "https"
	}
	dm.Status.URL = scheme + "://" + dm.Name
	dm.Status.Address = &duck.Addressable{URL: dm.Status.URL}

	claimErr := r.claim(ctx, &dm, cfg.Network.AutocreateClusterDomainClaims)
	if claimErr != nil {
		conds.MarkFalse(ConditionDomainClaimed, "DomainAlreadyClaimed", "The domain name is already in use by another DomainMapping")
	} else {
		conds.MarkTrue(ConditionDomainClaimed)
	}
	if err := r.resolve(ctx, &dm); err != nil {
		conds.MarkFalse(ConditionReferenceResolved, "ResolveFailed", "%s", err.Error())
	} else {
		conds.MarkTrue(ConditionReferenceResolved)
	}
	if conds.IsTrue(ConditionDomainClaimed) && conds.IsTrue(ConditionReferenceResolved) {
		// The gateway serves the mapping straight from this status.
		conds.MarkTrue(servingv1.ConditionIngressReady)
	} else {
		conds.MarkUnknown(servingv1.ConditionIngressReady, "IngressNotConfigured", "Ingress has not yet been reconciled.")
	}
	if dm.Spec.TLS != nil {
		conds.MarkTrueWithReason(servingv1.ConditionCertificateProvisioned, "CertificateExternallyProvided", "TLS certificate was provided externally")
	} else {
		conds.MarkTrueWithReason(servingv1.ConditionCertificateProvisioned, "TLSNotEnabled", "external-domain-tls is not enabled")
	}
	if !equality.Semantic.DeepEqual(before, &dm.Status) {
		if err := r.Client.Status().Update(ctx, &dm); err != nil {
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{}, nil
}

// claim makes sure this namespace holds the ClusterDomainClaim for the domain.
func (r *Reconciler) claim(ctx context.Context, dm *servingv1beta1.DomainMapping, autocreate bool) error {
	var cdc networkingv1alpha1.ClusterDomainClaim
	err := r.Client.Get(ctx, client.ObjectKey{Name: dm.Name}, &cdc)
	if apierrors.IsNotFound(err) {
		if !autocreate {
			return fmt.Errorf("no ClusterDomainClaim found for domain %q (and autocreate-cluster-domain-claims property is not true)", dm.Name)
		}
		cdc = networkingv1alpha1.ClusterDomainClaim{ObjectMeta: metav1.ObjectMeta{Name: dm.Name},
			Spec: networkingv1alpha1.ClusterDomainClaimSpec{Namespace: dm.Namespace}}
		if err := r.Client.Create(ctx, &cdc); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}
	if err != nil {
		return err
	}
	if cdc.Spec.Namespace != dm.Namespace {
		return fmt.Errorf("namespace %q does not own ClusterDomainClaim for %q", dm.Namespace, dm.Name)
	}
	return nil
}

// resolve checks that the reference is an Addressable in the mapping's
// namespace whose URL is <name>.<namespace>.svc.cluster.local.
func (r *Reconciler) resolve(ctx context.Context, dm *servingv1beta1.DomainMapping) error {
	ref := dm.Spec.Ref
	key := client.ObjectKey{Namespace: refNamespace(dm), Name: ref.Name}
	var addr string
	switch {
	case ref.Kind == "Service" && strings.HasPrefix(ref.APIVersion, servingv1.GroupName+"/"):
		var s servingv1.Service
		if err := r.Client.Get(ctx, key, &s); err != nil {
			return fmt.Errorf("failed to resolve reference: %w", err)
		}
		if s.Status.Address != nil {
			addr = s.Status.Address.URL
		}
	case ref.Kind == "Route" && strings.HasPrefix(ref.APIVersion, servingv1.GroupName+"/"):
		var rt servingv1.Route
		if err := r.Client.Get(ctx, key, &rt); err != nil {
			return fmt.Errorf("failed to resolve reference: %w", err)
		}
		if rt.Status.Address != nil {
			addr = rt.Status.Address.URL
		}
	case ref.Kind == "Service" && (ref.APIVersion == "v1" || ref.APIVersion == ""):
		var s corev1.Service
		if err := r.Client.Get(ctx, key, &s); err != nil {
			return fmt.Errorf("failed to resolve reference: %w", err)
		}
		addr = fmt.Sprintf("http://%s.%s.svc.cluster.local", s.Name, s.Namespace)
	default:
		return fmt.Errorf("failed to resolve reference: %s %q is not an addressable kind", ref.Kind, ref.Name)
	}
	if addr == "" {
		return fmt.Errorf("failed to resolve reference: %s %q has no address yet", ref.Kind, ref.Name)
	}
	u, err := url.Parse(addr)
	if err != nil {
		return err
	}
	switch {
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("resolved URI %q contains a path", addr)
	case !strings.HasSuffix(u.Hostname(), ".svc.cluster.local") || strings.Count(u.Hostname(), ".") != 4:
		return fmt.Errorf("resolved URI %q must be of the form {name}.{namespace}.svc.cluster.local", addr)
	case strings.Split(u.Hostname(), ".")[1] != dm.Namespace:
		return fmt.Errorf("resolved URI %q must be in same namespace as DomainMapping", addr)
	}
	return nil
}

// finalize releases an auto-created claim held by this namespace.
func (r *Reconciler) finalize(ctx context.Context, dm *servingv1beta1.DomainMapping) error {
	if !controllerutil.ContainsFinalizer(dm, finalizer) {
		return nil
	}
	if r.Config.Get().Network.AutocreateClusterDomainClaims {
		var cdc networkingv1alpha1.ClusterDomainClaim
		err := r.Client.Get(ctx, client.ObjectKey{Name: dm.Name}, &cdc)
		if err == nil && cdc.Spec.Namespace == dm.Namespace {
			if err := r.Client.Delete(ctx, &cdc); client.IgnoreNotFound(err) != nil {
				return err
			}
		} else if client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	controllerutil.RemoveFinalizer(dm, finalizer)
	return r.Client.Update(ctx, dm)
}
