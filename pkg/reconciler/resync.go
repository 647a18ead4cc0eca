package reconciler

import (
	"context"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/configstore"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// ResyncOnConfigChange is a source that enqueues every object of list's
// kind whenever the knative-serving configuration changes, as upstream's
// reconcilers do when a ConfigMap they read changes (a new domain,
// autocreate-cluster-domain-claims turned on, ...). Changes that come
// while a resync waits are folded into it.
func ResyncOnConfigChange(store *configstore.Store, c client.Client, list client.ObjectList) source.Source {
	changed := make(chan event.GenericEvent, 1)
	store.OnChange(func() {
		select {
		case changed <- event.GenericEvent{}:
		default:
		}
	})
	return source.Channel(changed, EnqueueAll(c, list))
}

// EnqueueAll is an event handler that enqueues every object of list's kind,
// for reconcilers whose objects all depend on another kind.
func EnqueueAll(c client.Client, list client.ObjectList) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		objs := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, objs); err != nil {
			return nil
		}
		var out []reconcile.Request
		_ = meta.EachListItem(objs, func(o runtime.Object) error {
			if m, err := meta.Accessor(o); err == nil {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.GetNamespace(), Name: m.GetName()}})
			}
			return nil
		})
		return out
	})
}

// RevisionOrRoute says whether a Revision or a Route (a Knative Service's
// traffic) has that name: what a custom route's destination names.
func RevisionOrRoute(ctx context.Context, c client.Client, key types.NamespacedName) (bool, error) {
	for _, obj := range []client.Object{&servingv1.Revision{}, &servingv1.Route{}} {
		err := c.Get(ctx, key, obj)
		if err == nil {
			return true, nil
		}
		if !apierrors.IsNotFound(err) {
			return false, err
		}
	}
	return false, nil
}
