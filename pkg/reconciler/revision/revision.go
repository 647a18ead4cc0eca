// Package revision reconciles Revisions: a Deployment, a PodAutoscaler and
// two Services per revision, and the revision's conditions from what its
// pods do.
package revision

import (
	"context"
	"fmt"
	"strings"

	autoscalingv1alpha1 "github.com/knd-dev/knd/pkg/apis/autoscaling/v1alpha1"
	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/configstore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Conditions of a Revision; Active is informational.
var Conditions = duck.NewConditionSet(servingv1.ConditionResourcesAvailable, servingv1.ConditionContainerHealthy)

// Reconciler reconciles Revisions.
type Reconciler struct {
	Client client.Client
	Config *configstore.Store
}

// SetupWithManager registers the reconciler: Revisions, their Deployments
// and PodAutoscalers, and their pods (for crash and image failures).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&servingv1.Revision{}).
		Owns(&appsv1.Deployment{}).
		Owns(&autoscalingv1alpha1.PodAutoscaler{}).
		Owns(&corev1.Service{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			rev := o.GetLabels()[servingv1.RevisionLabelKey]
			if rev == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: rev}}}
		})).
		Complete(r)
}

// Reconcile keeps a revision's Deployment and PodAutoscaler and reports
// its conditions.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var rev servingv1.Revision
	if err := r.Client.Get(ctx, req.NamespacedName, &rev); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if rev.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	before := rev.Status.DeepCopy()
	conds := Conditions.Manage(&rev.Status.Status)
	conds.Initialize()
	rev.Status.ObservedGeneration = rev.Generation

	deploy, err := r.reconcileDeployment(ctx, &rev)
	if err != nil {
		return reconcile.Result{}, err
	}
	pa, err := r.reconcilePodAutoscaler(ctx, &rev)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.reconcileServices(ctx, &rev); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.computeStatus(ctx, &rev, deploy, conds); err != nil {
		return reconcile.Result{}, err
	}
	// A revision created at zero (initial-scale 0) is ready once the
	// autoscaler has initialized its scale target, as upstream.
	if c := pa.Status.GetCondition("ScaleTargetInitialized"); c != nil && c.Status == corev1.ConditionTrue &&
		ptr.Deref(deploy.Spec.Replicas, 1) == 0 {
		for _, t := range []duck.ConditionType{servingv1.ConditionResourcesAvailable, servingv1.ConditionContainerHealthy} {
			if cond := conds.Get(t); cond == nil || cond.Status != corev1.ConditionFalse {
				conds.MarkTrue(t)
			}
		}
	}
	// Active and the replica counts come from the autoscaler once it has
	// reported on the PodAutoscaler.
	if c := pa.Status.GetCondition("Active"); c != nil {
		switch c.Status {
		case corev1.ConditionTrue:
			conds.MarkTrue(servingv1.ConditionActive)
		case corev1.ConditionFalse:
			conds.MarkFalse(servingv1.ConditionActive, c.Reason, "%s", c.Message)
			// At zero without ever reaching its initial scale: failed.
			if init := pa.Status.GetCondition("ScaleTargetInitialized"); init == nil || init.Status != corev1.ConditionTrue {
				conds.MarkFalse(servingv1.ConditionResourcesAvailable, "ProgressDeadlineExceeded", "Initial scale was never achieved")
			}
		default:
			conds.MarkUnknown(servingv1.ConditionActive, c.Reason, "%s", c.Message)
		}
		if pa.Status.DesiredScale != nil {
			rev.Status.DesiredReplicas = pa.Status.DesiredScale
		}
		if pa.Status.ActualScale != nil {
			rev.Status.ActualReplicas = pa.Status.ActualScale
		}
	}
	if equality.Semantic.DeepEqual(before, &rev.Status) {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, r.Client.Status().Update(ctx, &rev)
}

// reconcileDeployment creates the Deployment at the initial scale, or
// updates its template; replicas then belong to the autoscaler.
func (r *Reconciler) reconcileDeployment(ctx context.Context, rev *servingv1.Revision) (*appsv1.Deployment, error) {
	cfg := r.Config.Get()
	want := MakeDeployment(rev, cfg, InitialReplicas(rev, cfg))
	if err := controllerutil.SetControllerReference(rev, want, r.Client.Scheme()); err != nil {
		return nil, err
	}
	var have appsv1.Deployment
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), &have)
	if apierrors.IsNotFound(err) {
		if err := r.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		return want, nil
	}
	if err != nil {
		return nil, err
	}
	if !metav1.IsControlledBy(&have, rev) {
		return nil, fmt.Errorf("revision %q does not own Deployment %q", rev.Name, have.Name)
	}
	if equality.Semantic.DeepDerivative(want.Spec.Template, have.Spec.Template) &&
		equality.Semantic.DeepEqual(want.Labels, have.Labels) {
		return &have, nil
	}
	next := have.DeepCopy()
	next.Labels, next.Annotations = want.Labels, want.Annotations
	next.Spec.Template = want.Spec.Template
	next.Spec.ProgressDeadlineSeconds = want.Spec.ProgressDeadlineSeconds
	if err := r.Client.Update(ctx, next); err != nil {
		return nil, err
	}
	return next, nil
}

func (r *Reconciler) reconcilePodAutoscaler(ctx context.Context, rev *servingv1.Revision) (*autoscalingv1alpha1.PodAutoscaler, error) {
	want := MakePodAutoscaler(rev, r.Config.Get())
	pa := &autoscalingv1alpha1.PodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, pa, func() error {
		if !pa.CreationTimestamp.IsZero() && !metav1.IsControlledBy(pa, rev) {
			return fmt.Errorf("revision %q does not own PodAutoscaler %q", rev.Name, pa.Name)
		}
		pa.Labels, pa.Annotations, pa.Spec = want.Labels, want.Annotations, want.Spec
		return controllerutil.SetControllerReference(rev, pa, r.Client.Scheme())
	})
	return pa, err
}

// reconcileServices keeps the revision's public and private Services.
func (r *Reconciler) reconcileServices(ctx context.Context, rev *servingv1.Revision) error {
	for _, want := range MakeServices(rev) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
		_, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
			if !svc.CreationTimestamp.IsZero() && !metav1.IsControlledBy(svc, rev) {
				return fmt.Errorf("revision %q does not own Service %q", rev.Name, svc.Name)
			}
			svc.Labels, svc.Spec.Selector, svc.Spec.Ports = want.Labels, want.Spec.Selector, want.Spec.Ports
			return controllerutil.SetControllerReference(rev, svc, r.Client.Scheme())
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// computeStatus derives ResourcesAvailable, ContainerHealthy and Active
// from the Deployment and, while no pod is ready, from one of its pods.
func (r *Reconciler) computeStatus(ctx context.Context, rev *servingv1.Revision, d *appsv1.Deployment, conds *duck.Conditions) error {
	desired := ptr.Deref(d.Spec.Replicas, 1)
	ready := d.Status.ReadyReplicas
	rev.Status.DesiredReplicas, rev.Status.ActualReplicas = &desired, &ready
	for _, c := range d.Status.Conditions {
		if (c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse) ||
			(c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue) {
			conds.MarkFalse(servingv1.ConditionResourcesAvailable, c.Reason, "%s", c.Message)
		}
	}
	switch {
	case ready > 0:
		conds.MarkTrue(servingv1.ConditionResourcesAvailable)
		conds.MarkTrue(servingv1.ConditionContainerHealthy)
		conds.MarkTrue(servingv1.ConditionActive)
		if len(rev.Status.ContainerStatuses) == 0 {
			return r.recordDigests(ctx, rev)
		}
		return nil
	case desired == 0:
		// Scaled to zero: a revision that was ready stays ready.
		conds.MarkFalse(servingv1.ConditionActive, "NoTraffic", "The target is not receiving traffic.")
		return nil
	}
	conds.MarkUnknown(servingv1.ConditionActive, "Queued", "Requests to the target are being buffered as resources are provisioned.")
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(rev.Namespace),
		client.MatchingLabels{servingv1.RevisionLabelKey: rev.Name}); err != nil {
		return err
	}
	if len(pods.Items) == 0 {
		deploying(conds, servingv1.ConditionResourcesAvailable)
		return nil
	}
	pod := &pods.Items[0]
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			conds.MarkFalse(servingv1.ConditionResourcesAvailable, c.Reason, "%s", c.Message)
			return nil
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.LastTerminationState.Terminated; t != nil {
			conds.MarkFalse(servingv1.ConditionContainerHealthy, fmt.Sprintf("ExitCode%d", t.ExitCode), "Container failed with: %s", terminationMessage(t))
			return nil
		}
		if t := cs.State.Terminated; t != nil {
			conds.MarkFalse(servingv1.ConditionContainerHealthy, fmt.Sprintf("ExitCode%d", t.ExitCode), "Container failed with: %s", terminationMessage(t))
			return nil
		}
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName":
				// knd resolves images when the pod starts, so a missing image
				// surfaces here (upstream finds it while resolving digests).
				conds.MarkFalse(servingv1.ConditionContainerHealthy, "ContainerMissing", "Unable to fetch image %q: %s", cs.Image, w.Message)
				return nil
			case "CreateContainerConfigError", "CreateContainerError":
				conds.MarkFalse(servingv1.ConditionContainerHealthy, w.Reason, "%s", w.Message)
				return nil
			case "ContainerCreating", "PodInitializing":
				// A message says why the pod cannot start yet: a volume
				// whose ConfigMap or Secret is missing, say.
				if w.Message != "" {
					conds.MarkFalse(servingv1.ConditionResourcesAvailable, w.Reason, "%s", w.Message)
					return nil
				}
			}
		}
	}
	deploying(conds, servingv1.ConditionResourcesAvailable)
	deploying(conds, servingv1.ConditionContainerHealthy)
	return nil
}

// recordDigests sets status.containerStatuses from a running pod: the
// digest each container's image resolved to, as upstream records when it
// resolves tags (knd resolves them when the first pod pulls the image).
func (r *Reconciler) recordDigests(ctx context.Context, rev *servingv1.Revision) error {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(rev.Namespace),
		client.MatchingLabels{servingv1.RevisionLabelKey: rev.Name}); err != nil {
		return err
	}
	for _, pod := range pods.Items {
		var statuses []servingv1.ContainerStatus
		for _, cs := range pod.Status.ContainerStatuses {
			if digest := imageDigest(cs.ImageID); digest != "" {
				statuses = append(statuses, servingv1.ContainerStatus{Name: cs.Name, ImageDigest: digest})
			}
		}
		if len(statuses) > 0 && len(statuses) == len(pod.Status.ContainerStatuses) {
			rev.Status.ContainerStatuses = statuses
			return nil
		}
	}
	return nil
}

// imageDigest turns a pod's imageID ("knd://dev.local/app:v1@sha256:...",
// "docker-pullable://repo@sha256:...") into upstream's "repo@sha256:...".
func imageDigest(imageID string) string {
	if i := strings.Index(imageID, "://"); i >= 0 {
		imageID = imageID[i+3:]
	}
	repo, digest, ok := strings.Cut(imageID, "@")
	if !ok || !strings.HasPrefix(digest, "sha256:") {
		return ""
	}
	// Drop a tag: a colon after the last slash.
	if colon := strings.LastIndex(repo, ":"); colon > strings.LastIndex(repo, "/") {
		repo = repo[:colon]
	}
	return repo + "@" + digest
}

// deploying marks a condition Unknown while pods come up, unless it has
// already settled: a revision that was ready stays ready while it scales
// from zero, and a failure stays visible.
func deploying(conds *duck.Conditions, t duck.ConditionType) {
	if c := conds.Get(t); c == nil || c.Status == corev1.ConditionUnknown {
		conds.MarkUnknown(t, "Deploying", "")
	}
}

func terminationMessage(t *corev1.ContainerStateTerminated) string {
	if t.Message != "" {
		return t.Message
	}
	if t.ExitCode == 0 {
		return "container exited with no error"
	}
	return fmt.Sprintf("exit code %d", t.ExitCode)
}
