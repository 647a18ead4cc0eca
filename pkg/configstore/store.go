// Package configstore keeps the parsed knative-serving ConfigMaps current by
// watching them, so webhooks and controllers always read the latest valid
// configuration.
package configstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/knd-dev/knd/pkg/apis/config"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Store holds the current configuration.
type Store struct {
	current  atomic.Pointer[config.Config]
	mu       sync.Mutex
	onChange []func()
}

// New returns a store holding upstream defaults until Start loads the
// ConfigMaps.
func New() *Store {
	s := &Store{}
	s.current.Store(config.Default())
	return s
}

// Get returns the current configuration; callers must not change it.
func (s *Store) Get() *config.Config { return s.current.Load() }

// OnChange registers a function called after every configuration change.
// It may be called while the store runs.
func (s *Store) OnChange(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, fn)
}

// Start watches the ConfigMaps and returns once they have been read.
func (s *Store) Start(ctx context.Context, client kubernetes.Interface) error {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Hour, informers.WithNamespace(config.Namespace))
	informer := factory.Core().V1().ConfigMaps().Informer()
	update := func(obj any) {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok || !config.Known(cm.Name) {
			return
		}
		next := s.Get().Copy()
		if err := next.Apply(cm); err != nil {
			// The validating webhook refuses invalid data, so this only
			// happens for data written while knd was not running.
			klog.ErrorS(err, "Ignoring invalid ConfigMap", "name", cm.Name)
			return
		}
		s.current.Store(next)
		s.mu.Lock()
		fns := s.onChange
		s.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
		DeleteFunc: func(obj any) {
			if cm, ok := obj.(*corev1.ConfigMap); ok && config.Known(cm.Name) {
				update(&corev1.ConfigMap{ObjectMeta: cm.ObjectMeta, Data: config.DefaultData()[cm.Name]})
			}
		},
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return ctx.Err()
}
