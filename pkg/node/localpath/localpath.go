// Package localpath is the node's storage provisioner, as k3s's
// local-path one: a default StorageClass "local-path" whose claims each get
// a directory under the data dir, as a hostPath PersistentVolume bound to
// the claim. The API server's DefaultStorageClass admission gives the class
// to claims that name none; the controller manager's binder marks a claim
// for this provisioner and binds the volume made for it; when the claim
// is deleted and the volume released, its directory and the volume go.
package localpath

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const (
	// Name is the provisioner's name and ClassName its StorageClass's.
	Name      = "knd.dev/local-path"
	ClassName = "local-path"
	// The annotations the controller manager's binder and the external
	// provisioner protocol use.
	provisionerAnnotation = "volume.kubernetes.io/storage-provisioner"
	provisionedBy         = "pv.kubernetes.io/provisioned-by"
)

// Provisioner makes and removes the volumes of local-path claims.
type Provisioner struct {
	client kubernetes.Interface
	dir    string
	queue  workqueue.TypedRateLimitingInterface[string]
	claims cache.Indexer
	vols   cache.Indexer
}

// Run provisions claims with directories under dir until ctx ends; it
// makes the StorageClass first unless one of that name exists.
func Run(ctx context.Context, client kubernetes.Interface, dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	if err := ensureClass(ctx, client); err != nil {
		return fmt.Errorf("storage class %s: %w", ClassName, err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	claims, vols := factory.Core().V1().PersistentVolumeClaims().Informer(), factory.Core().V1().PersistentVolumes().Informer()
	p := &Provisioner{client: client, dir: dir, claims: claims.GetIndexer(), vols: vols.GetIndexer(),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())}
	defer p.queue.ShutDown()
	for prefix, inf := range map[string]cache.SharedIndexInformer{"claim/": claims, "volume/": vols} {
		enqueue := func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				p.queue.Add(prefix + key)
			}
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue}); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	factory.WaitForCacheSync(ctx.Done())
	go wait.UntilWithContext(ctx, p.work, time.Second)
	<-ctx.Done()
	return nil
}

func ensureClass(ctx context.Context, client kubernetes.Interface) error {
	reclaim := corev1.PersistentVolumeReclaimDelete
	binding := storagev1.VolumeBindingImmediate
	_, err := client.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: ClassName,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner: Name, ReclaimPolicy: &reclaim, VolumeBindingMode: &binding,
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (p *Provisioner) work(ctx context.Context) {
	for {
		key, quit := p.queue.Get()
		if quit {
			return
		}
		err := p.sync(ctx, key)
		if err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "local-path provisioner", "object", key)
			p.queue.AddRateLimited(key)
		} else {
			p.queue.Forget(key)
		}
		p.queue.Done(key)
	}
}

func (p *Provisioner) sync(ctx context.Context, key string) error {
	if name, ok := strings.CutPrefix(key, "claim/"); ok {
		obj, ok, err := p.claims.GetByKey(name)
		if err != nil || !ok {
			return err
		}
		return p.provision(ctx, obj.(*corev1.PersistentVolumeClaim))
	}
	obj, ok, err := p.vols.GetByKey(strings.TrimPrefix(key, "volume/"))
	if err != nil || !ok {
		return err
	}
	return p.release(ctx, obj.(*corev1.PersistentVolume))
}

// provision makes the volume of a claim the binder left to this
// provisioner: a directory any of the pod's users may write, and a
// hostPath PersistentVolume bound to the claim.
func (p *Provisioner) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName != "" || claim.DeletionTimestamp != nil || claim.Annotations[provisionerAnnotation] != Name {
		return nil
	}
	class, err := p.client.StorageV1().StorageClasses().Get(ctx, ptr.Deref(claim.Spec.StorageClassName, ""), metav1.GetOptions{})
	if err != nil {
		return err
	}
	name := "pvc-" + string(claim.UID)
	path := filepath.Join(p.dir, fmt.Sprintf("%s_%s_%s", name, claim.Namespace, claim.Name))
	if err := os.MkdirAll(path, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o777); err != nil {
		return err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	dirType := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{provisionedBy: Name}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			VolumeMode:                    claim.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &dirType}},
		},
	}
	if _, err := p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// release removes a released volume of this provisioner's whose class
// says to delete it: its directory, then the volume.
func (p *Provisioner) release(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Annotations[provisionedBy] != Name || pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.DeletionTimestamp != nil {
		return nil
	}
	if hp := pv.Spec.HostPath; hp != nil && filepath.Dir(hp.Path) == p.dir {
		if err := os.RemoveAll(hp.Path); err != nil {
			return err
		}
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
