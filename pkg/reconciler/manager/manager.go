// Package manager runs the serving reconcilers in one controller-runtime
// manager against any Kubernetes API (knd's own or a real cluster's).
package manager

import (
	"context"

	"github.com/knd-dev/knd/pkg/apis/scheme"
	"github.com/knd-dev/knd/pkg/autoscaler"
	"github.com/knd-dev/knd/pkg/configstore"
	"github.com/knd-dev/knd/pkg/reconciler/configuration"
	"github.com/knd-dev/knd/pkg/reconciler/domainmapping"
	"github.com/knd-dev/knd/pkg/reconciler/gc"
	"github.com/knd-dev/knd/pkg/reconciler/httproute"
	"github.com/knd-dev/knd/pkg/reconciler/revision"
	"github.com/knd-dev/knd/pkg/reconciler/route"
	"github.com/knd-dev/knd/pkg/reconciler/service"
	"github.com/knd-dev/knd/pkg/reconciler/virtualservice"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Scheme knows the built-in types and knd's serving types.
func Scheme() (*runtime.Scheme, error) { return scheme.New() }

// Start runs the reconcilers and the autoscaler until ctx ends; the returned channel reports
// the manager's end.
func Start(ctx context.Context, cfg *rest.Config, store *configstore.Store, as *autoscaler.Autoscaler) (<-chan error, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true), MaxConcurrentReconciles: 4},
	})
	if err != nil {
		return nil, err
	}
	c := mgr.GetClient()
	for _, r := range []interface{ SetupWithManager(ctrl.Manager) error }{
		&service.Reconciler{Client: c},
		&configuration.Reconciler{Client: c, APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorderFor("configuration-controller")},
		&revision.Reconciler{Client: c, Config: store},
		&route.Reconciler{Client: c, Config: store},
		&domainmapping.Reconciler{Client: c, Config: store},
		&gc.Reconciler{Client: c, Config: store},
		&virtualservice.Reconciler{Client: c},
		&httproute.Reconciler{Client: c},
		as,
	} {
		if err := r.SetupWithManager(mgr); err != nil {
			return nil, err
		}
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return done, nil
}
