package controlplane

import (
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	encryptidentity "k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// sharedEtcd serves every resource of the embedded API server from one etcd
// client. kube-apiserver opens a client, a gRPC connection and its watch
// streams per resource (over 80 here, each with a dozen goroutines and
// their buffers on both ends, since etcd runs in the same process): about
// 1,000 goroutines and 8 MB at idle, for a single local etcd that one
// connection serves as well. Everything else about storage is upstream's:
// the same etcd3 store, codec, transformer and lease settings per resource.
type sharedEtcd struct {
	once          sync.Once
	err           error
	client        *kubernetes.Client
	compactor     etcd3.Compactor
	stopCompactor func()
}

// connect makes the shared client from the first resource's transport
// settings (all resources have the same: one etcd).
func (s *sharedEtcd) connect(c storagebackend.TransportConfig, compaction time.Duration) error {
	s.once.Do(func() {
		var tlsConfig *tls.Config
		if c.CertFile != "" || c.TrustedCAFile != "" {
			tlsInfo := transport.TLSInfo{CertFile: c.CertFile, KeyFile: c.KeyFile, TrustedCAFile: c.TrustedCAFile}
			if tlsConfig, s.err = tlsInfo.ClientConfig(); s.err != nil {
				s.err = fmt.Errorf("etcd client TLS: %w", s.err)
				return
			}
		}
		s.client, s.err = kubernetes.New(clientv3.Config{
			TLS:                  tlsConfig,
			Endpoints:            c.ServerList,
			DialTimeout:          20 * time.Second,
			DialKeepAliveTime:    30 * time.Second,
			DialKeepAliveTimeout: 10 * time.Second,
			Logger:               zap.NewNop(), // failures reach the API server as errors
		})
		if s.err != nil {
			s.err = fmt.Errorf("etcd client: %w", s.err)
			return
		}
		s.client.KV = etcd3.NewETCDLatencyTracker(s.client.KV)
		if compaction > 0 {
			c := etcd3.StartCompactorPerEndpoint(s.client.Client, compaction)
			s.compactor, s.stopCompactor = c, c.Stop
		}
	})
	return s.err
}

// close stops the compactor and the client, once the API server is done.
func (s *sharedEtcd) close() {
	if s.client == nil {
		return
	}
	if s.stopCompactor != nil {
		s.stopCompactor()
	}
	if err := s.client.Close(); err != nil {
		klog.V(2).InfoS("closing the shared etcd client", "err", err)
	}
}

// decorate is a generic.StorageDecorator (knd runs without the watch
// cache, so the storage is undecorated) that builds the resource's etcd3
// store on the shared client.
func (s *sharedEtcd) decorate(c *storagebackend.ConfigForResource, resourcePrefix string, _ func(runtime.Object) (string, error),
	newFunc, newListFunc func() runtime.Object, _ storage.AttrFunc, _ storage.IndexerFuncs, _ *cache.Indexers) (storage.Interface, factory.DestroyFunc, error) {
	if err := s.connect(c.Transport, c.CompactionInterval); err != nil {
		return nil, nil, err
	}
	transformer := c.Transformer
	if transformer == nil {
		transformer = encryptidentity.NewEncryptCheckTransformer()
	}
	versioner := storage.APIObjectVersioner{}
	store, err := etcd3.New(s.client, s.compactor, c.Codec, newFunc, newListFunc, c.Prefix, resourcePrefix, c.GroupResource,
		transformer, c.LeaseManagerConfig, etcd3.NewDefaultDecoder(c.Codec, versioner), versioner)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	// The API server may call a destroy function more than once; the
	// client outlives every store and is closed with the server.
	return store, func() { once.Do(store.Close) }, nil
}

// getter gives every resource of inner the shared client.
func (s *sharedEtcd) getter(inner generic.RESTOptionsGetter) generic.RESTOptionsGetter {
	if inner == nil {
		return nil
	}
	return sharedGetter{inner: inner, shared: s}
}

type sharedGetter struct {
	inner  generic.RESTOptionsGetter
	shared *sharedEtcd
}

func (g sharedGetter) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (generic.RESTOptions, error) {
	opts, err := g.inner.GetRESTOptions(resource, example)
	if err != nil {
		return opts, err
	}
	if opts.StorageConfig != nil && (opts.StorageConfig.Type == "" || opts.StorageConfig.Type == storagebackend.StorageTypeETCD3) {
		opts.Decorator = g.shared.decorate
	}
	return opts, nil
}
