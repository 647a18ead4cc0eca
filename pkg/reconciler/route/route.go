// Package route reconciles Routes: it resolves their traffic to ready
// revisions, computes their URLs (config-domain, domain-template,
// tag-template, cluster-local visibility), publishes a placeholder
// core/v1 Service per traffic name, and labels the revisions and
// configurations it routes to (upstream's labeler).
package route

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/knd-dev/knd/pkg/apis/config"
	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/configstore"
	"github.com/knd-dev/knd/pkg/reconciler"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// GatewayHost is where placeholder Services point: the gateway's
// core/v1 Service in knative-serving (gateway.ServiceName).
const GatewayHost = "knd-gateway.knative-serving.svc.cluster.local"

// Conditions of a Route.
var Conditions = duck.NewConditionSet(servingv1.ConditionAllTrafficAssigned,
	servingv1.ConditionIngressReady, servingv1.ConditionCertificateProvisioned)

// Reconciler reconciles Routes.
type Reconciler struct {
	Client client.Client
	Config *configstore.Store
}

// SetupWithManager registers the reconciler: Routes, their Services, and
// the revisions and configurations they name.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&servingv1.Route{}).
		Owns(&corev1.Service{}).
		Watches(&servingv1.Revision{}, handler.EnqueueRequestsFromMapFunc(r.routesFor)).
		Watches(&servingv1.Configuration{}, handler.EnqueueRequestsFromMapFunc(r.routesFor)).
		WatchesRawSource(reconciler.ResyncOnConfigChange(r.Config, r.Client, &servingv1.RouteList{})).
		Complete(r)
}

// routesFor maps a revision or configuration to the routes in its
// namespace that name it (or its configuration).
func (r *Reconciler) routesFor(ctx context.Context, obj client.Object) []reconcile.Request {
	var routes servingv1.RouteList
	if err := r.Client.List(ctx, &routes, client.InNamespace(obj.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	names := map[string]bool{obj.GetName(): true}
	if cfg := obj.GetLabels()[servingv1.ConfigurationLabelKey]; cfg != "" {
		names[cfg] = true
	}
	var out []reconcile.Request
	for _, rt := range routes.Items {
		for _, tt := range rt.Spec.Traffic {
			if names[tt.RevisionName] || names[tt.ConfigurationName] || slices.ContainsFunc(rt.Status.Traffic, func(s servingv1.TrafficTarget) bool { return names[s.RevisionName] }) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: rt.Namespace, Name: rt.Name}})
				break
			}
		}
	}
	return out
}

// Reconcile brings one Route's status and children up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var route servingv1.Route
	if err := r.Client.Get(ctx, req.NamespacedName, &route); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if route.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	cfg := r.Config.Get()
	before := route.Status.DeepCopy()
	conds := Conditions.Manage(&route.Status.Status)
	conds.Initialize()
	route.Status.ObservedGeneration = route.Generation

	urls, err := computeURLs(&route, cfg)
	if err != nil {
		conds.MarkFalse(servingv1.ConditionAllTrafficAssigned, "ErrorConfig", "%v", err)
		return reconcile.Result{}, r.updateStatus(ctx, &route, before)
	}
	route.Status.URL = urls.url("")
	route.Status.Address = &duck.Addressable{URL: "http://" + urls.clusterLocalHost}

	traffic, err := Resolve(&route, &lookup{ctx: ctx, c: r.Client, ns: route.Namespace})
	var terr *TargetError
	switch {
	case errors.As(err, &terr):
		// The previous traffic stays in place until every target resolves.
		if terr.Failed {
			conds.MarkFalse(servingv1.ConditionAllTrafficAssigned, terr.Reason, "%s", terr.Message)
		} else {
			conds.MarkUnknown(servingv1.ConditionAllTrafficAssigned, terr.Reason, "%s", terr.Message)
		}
		if err := r.label(ctx, &route, traffic, false); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.updateStatus(ctx, &route, before)
	case err != nil:
		conds.MarkUnknown(servingv1.ConditionAllTrafficAssigned, "Unknown", "%v", err)
		_ = r.updateStatus(ctx, &route, before)
		return reconcile.Result{}, err
	}

	// Gradual rollout of configuration targets.
	rollout := ParseRollout(&route)
	var rolling bool
	var requeue time.Duration
	traffic.Targets, rolling, requeue = rollout.Step(traffic.Targets, rolloutDuration(&route, cfg), time.Now())
	for _, tt := range traffic.Targets {
		if !slices.Contains(traffic.Revisions, tt.RevisionName) {
			traffic.Revisions = append(traffic.Revisions, tt.RevisionName)
		}
	}
	if state := rollout.encode(); state != "" {
		if route.Status.Annotations == nil {
			route.Status.Annotations = map[string]string{}
		}
		route.Status.Annotations[RolloutAnnotation] = state
	} else {
		delete(route.Status.Annotations, RolloutAnnotation)
	}

	var status []servingv1.TrafficTarget
	for _, tt := range traffic.Targets {
		tt := *tt.DeepCopy()
		if tt.Tag != "" {
			tt.URL = urls.url(tt.Tag)
		}
		status = append(status, tt)
	}
	route.Status.Traffic = status
	conds.MarkTrue(servingv1.ConditionAllTrafficAssigned)

	if notOwned, err := r.reconcilePlaceholders(ctx, &route, traffic, urls); err != nil {
		return reconcile.Result{}, err
	} else if notOwned != "" {
		conds.MarkFalse(servingv1.ConditionIngressReady, "NotOwned", "There is an existing placeholder Service %q that we do not own.", notOwned)
	} else if rolling {
		conds.MarkUnknown(servingv1.ConditionIngressReady, "RolloutInProgress", "A gradual rollout of the latest revision(s) is in progress.")
	} else {
		// The gateway routes from Route status directly: there is no
		// separate ingress object to wait for.
		conds.MarkTrue(servingv1.ConditionIngressReady)
	}
	if urls.clusterLocal {
		conds.MarkTrueWithReason(servingv1.ConditionCertificateProvisioned, "TLSNotEnabled", "TLS is not enabled for cluster-local")
	} else {
		conds.MarkTrueWithReason(servingv1.ConditionCertificateProvisioned, "TLSNotEnabled", "external-domain-tls is not enabled")
	}
	if err := r.label(ctx, &route, traffic, !rolling); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: requeue}, r.updateStatus(ctx, &route, before)
}

// rolloutDuration is the Route's rollout-duration annotation, else
// config-network's rollout-duration; 0 disables gradual rollout.
func rolloutDuration(route *servingv1.Route, cfg *config.Config) time.Duration {
	for _, k := range []string{servingv1.RolloutDurationKey, servingv1.RolloutDurationAltKey} {
		if v, ok := route.Annotations[k]; ok {
			if d, err := time.ParseDuration(v); err == nil {
				return d
			}
		}
	}
	return time.Duration(cfg.Network.RolloutDurationSeconds) * time.Second
}

func (r *Reconciler) updateStatus(ctx context.Context, route *servingv1.Route, before *servingv1.RouteStatus) error {
	if equality.Semantic.DeepEqual(before, &route.Status) {
		return nil
	}
	return r.Client.Status().Update(ctx, route)
}

// urls holds a route's hosts.
type urls struct {
	clusterLocal     bool
	scheme           string
	hosts            map[string]string // traffic name → host
	clusterLocalHost string
	route            *servingv1.Route
	cfg              *config.Config
}

func (u *urls) url(tag string) string {
	h, ok := u.hosts[tag]
	if !ok {
		h, _ = u.host(tag)
		u.hosts[tag] = h
	}
	return u.scheme + "://" + h
}

func (u *urls) host(tag string) (string, error) {
	name := u.route.Name
	if tag != "" {
		var err error
		if name, err = u.cfg.Network.TagName(u.route.Name, tag); err != nil {
			return "", err
		}
	}
	if u.clusterLocal {
		return fmt.Sprintf("%s.%s.%s", name, u.route.Namespace, config.ClusterLocalDomain), nil
	}
	domain := u.cfg.Domain.LookupDomain(u.route.Labels)
	host, err := u.cfg.Network.Host(config.DomainTemplateValues{Name: name, Namespace: u.route.Namespace,
		Domain: domain, Annotations: u.route.Annotations, Labels: u.route.Labels})
	if err != nil {
		return "", err
	}
	if msgs := validation.IsFullyQualifiedDomainName(nil, host); len(msgs) > 0 {
		return "", fmt.Errorf("domain name error: invalid domain name %q: %s", host, msgs.ToAggregate().Error())
	}
	return host, nil
}

func computeURLs(route *servingv1.Route, cfg *config.Config) (*urls, error) {
	u := &urls{route: route, cfg: cfg, hosts: map[string]string{}, scheme: cfg.Network.DefaultExternalScheme}
	u.clusterLocal = route.Labels[servingv1.VisibilityLabelKey] == servingv1.VisibilityClusterLocal ||
		cfg.Domain.LookupDomain(route.Labels) == config.ClusterLocalDomain
	if u.clusterLocal {
		u.scheme = "http"
	}
	u.clusterLocalHost = fmt.Sprintf("%s.%s.%s", route.Name, route.Namespace, config.ClusterLocalDomain)
	names := []string{""}
	for _, tt := range route.Spec.Traffic {
		if tt.Tag != "" {
			names = append(names, tt.Tag)
		}
	}
	for _, n := range names {
		h, err := u.host(n)
		if err != nil {
			return nil, err
		}
		u.hosts[n] = h
	}
	return u, nil
}

// reconcilePlaceholders keeps one core/v1 Service per traffic name,
// <route> and <tag>-<route>, pointing at the gateway. Labels and
// annotations are merged, never removed. It returns the name of a Service
// that exists but is not the route's.
func (r *Reconciler) reconcilePlaceholders(ctx context.Context, route *servingv1.Route, traffic *Traffic, u *urls) (string, error) {
	names := []string{route.Name}
	for _, tt := range traffic.Targets {
		if tt.Tag != "" {
			n, err := r.Config.Get().Network.TagName(route.Name, tt.Tag)
			if err != nil {
				return "", err
			}
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	for _, name := range names {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: route.Namespace}}
		notOwned := false
		_, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
			if !svc.CreationTimestamp.IsZero() && !metav1.IsControlledBy(svc, route) {
				notOwned = true
				return nil
			}
			if svc.Labels == nil {
				svc.Labels = map[string]string{}
			}
			if svc.Annotations == nil {
				svc.Annotations = map[string]string{}
			}
			for k, v := range route.Labels {
				if k != servingv1.VisibilityLabelKey {
					svc.Labels[k] = v
				}
			}
			svc.Labels[servingv1.RouteLabelKey] = route.Name
			for k, v := range route.Annotations {
				if k != servingv1.LastAppliedAnnotation {
					svc.Annotations[k] = v
				}
			}
			svc.Spec.Type = corev1.ServiceTypeExternalName
			svc.Spec.ExternalName = GatewayHost
			svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
			return controllerutil.SetControllerReference(route, svc, r.Client.Scheme())
		})
		if err != nil {
			return "", err
		}
		if notOwned {
			return name, nil
		}
	}
	// The Services of tags no longer in the traffic go, as upstream.
	var existing corev1.ServiceList
	if err := r.Client.List(ctx, &existing, client.InNamespace(route.Namespace), client.MatchingLabels{servingv1.RouteLabelKey: route.Name}); err != nil {
		return "", err
	}
	for i := range existing.Items {
		svc := &existing.Items[i]
		if slices.Contains(names, svc.Name) || !metav1.IsControlledBy(svc, route) {
			continue
		}
		if err := r.Client.Delete(ctx, svc); client.IgnoreNotFound(err) != nil {
			return "", fmt.Errorf("deleting the Service %s of a removed tag: %w", svc.Name, err)
		}
	}
	return "", nil
}

// label marks the revisions and configurations the route uses (routes
// annotation, routingState=active) and, once the route's traffic is
// settled, unmarks the ones it no longer uses (reserve when unused).
func (r *Reconciler) label(ctx context.Context, route *servingv1.Route, traffic *Traffic, settled bool) error {
	used := map[string]bool{}
	usedCfg := map[string]bool{}
	if traffic != nil {
		for _, rev := range traffic.Revisions {
			used[rev] = true
		}
		for _, c := range traffic.Configurations {
			usedCfg[c] = true
			var cfg servingv1.Configuration
			if err := r.Client.Get(ctx, client.ObjectKey{Namespace: route.Namespace, Name: c}, &cfg); err == nil && cfg.Status.LatestCreatedRevisionName != "" {
				used[cfg.Status.LatestCreatedRevisionName] = true
			}
		}
	}
	for _, tt := range route.Status.Traffic {
		used[tt.RevisionName] = true
	}
	// Read-only views of the cache (a copy is made only to patch): copying
	// every revision and configuration of the namespace on every pass made
	// creating many services at once quadratic.
	var revs servingv1.RevisionList
	if err := r.Client.List(ctx, &revs, client.InNamespace(route.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	for i := range revs.Items {
		rev := &revs.Items[i]
		routes := routeSet(rev.Annotations[servingv1.RoutesAnnotationKey])
		has := slices.Contains(routes, route.Name)
		switch {
		case used[rev.Name] && !has:
			routes = append(routes, route.Name)
		case !used[rev.Name] && has && settled:
			routes = slices.DeleteFunc(routes, func(s string) bool { return s == route.Name })
		case used[rev.Name] && rev.Labels[servingv1.RoutingStateLabelKey] != servingv1.RoutingStateActive:
			// Already named here but still pending: it becomes active.
		default:
			continue
		}
		state := servingv1.RoutingStateActive
		if len(routes) == 0 {
			state = servingv1.RoutingStateReserve
		}
		if err := patchRouting(ctx, r.Client, rev.DeepCopy(), routes, state); err != nil {
			return err
		}
	}
	var cfgs servingv1.ConfigurationList
	if err := r.Client.List(ctx, &cfgs, client.InNamespace(route.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	for i := range cfgs.Items {
		c := &cfgs.Items[i]
		routes := routeSet(c.Annotations[servingv1.RoutesAnnotationKey])
		has := slices.Contains(routes, route.Name)
		switch {
		case usedCfg[c.Name] && !has:
			routes = append(routes, route.Name)
		case !usedCfg[c.Name] && has && settled:
			routes = slices.DeleteFunc(routes, func(s string) bool { return s == route.Name })
		default:
			continue
		}
		if err := patchRouting(ctx, r.Client, c.DeepCopy(), routes, ""); err != nil {
			return err
		}
	}
	return nil
}

func routeSet(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// patchRouting writes the routes annotation (sorted, comma-joined) and, for
// revisions, the routingState label with its modification time.
func patchRouting(ctx context.Context, c client.Client, obj client.Object, routes []string, state string) error {
	sort.Strings(routes)
	base := obj.DeepCopyObject().(client.Object)
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	if len(routes) == 0 {
		delete(ann, servingv1.RoutesAnnotationKey)
	} else {
		ann[servingv1.RoutesAnnotationKey] = strings.Join(routes, ",")
	}
	if state != "" {
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		if labels[servingv1.RoutingStateLabelKey] != state {
			labels[servingv1.RoutingStateLabelKey] = state
			ann[servingv1.RoutingStateModifiedAnnotation] = time.Now().UTC().Format(time.RFC3339)
		}
		obj.SetLabels(labels)
	}
	obj.SetAnnotations(ann)
	err := c.Patch(ctx, obj, client.MergeFrom(base))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// lookup reads revisions and configurations from the manager's cache.
type lookup struct {
	ctx context.Context
	c   client.Client
	ns  string
}

func (l *lookup) Revision(name string) (*servingv1.Revision, error) {
	var rev servingv1.Revision
	err := l.c.Get(l.ctx, client.ObjectKey{Namespace: l.ns, Name: name}, &rev)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return &rev, err
}

func (l *lookup) Configuration(name string) (*servingv1.Configuration, error) {
	var cfg servingv1.Configuration
	err := l.c.Get(l.ctx, client.ObjectKey{Namespace: l.ns, Name: name}, &cfg)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return &cfg, err
}
