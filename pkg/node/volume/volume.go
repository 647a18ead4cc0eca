// Package volume materialises pods' volumes on the node, as a kubelet's
// volume manager does, for any provider to bind-mount: emptyDir (a
// directory, or a tmpfs for medium Memory), configMap, secret, downwardAPI
// and projected volumes (service-account tokens from the TokenRequest API)
// are made before a pod's containers start and kept up to date while it
// runs; a persistentVolumeClaim is its bound volume's directory.
package volume

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// Mount is one of a container's volume mounts, on the host.
type Mount struct {
	// Source is the host directory or file; Target the path in the container.
	Source, Target string
	ReadOnly       bool
	// APIAccess marks the volume the API server's ServiceAccount admission
	// adds to every pod (kube-api-access-*): the pod asked for nothing.
	APIAccess bool
}

// isAPIAccess says whether the volume named name is the one ServiceAccount
// admission adds to every pod (kube-api-access-<random>).
func isAPIAccess(name string) bool { return strings.HasPrefix(name, "kube-api-access-") }

// Config says where a node's volumes live and come from.
type Config struct {
	// Dir holds the volumes, one directory per pod.
	Dir    string
	Client kubernetes.Interface
	// ConfigMaps and Secrets, when set, are an informer's caches, read
	// first (the API is asked when they do not have an object yet).
	ConfigMaps corelisters.ConfigMapLister
	Secrets    corelisters.SecretLister
	// Allocatable is the node's, for resource fields of containers
	// without limits.
	Allocatable corev1.ResourceList
}

// Root holds the volumes of every pod on the node.
type Root struct {
	cfg Config
	// canMount is true as root: memory volumes are tmpfs mounts.
	canMount bool

	mu         sync.Mutex
	prefetched map[types.UID]*prefetch
}

// NewRoot keeps pods' volumes under cfg.Dir (see PrepareDir).
func NewRoot(cfg Config) (*Root, error) {
	r := &Root{cfg: cfg, canMount: os.Geteuid() == 0, prefetched: map[types.UID]*prefetch{}}
	if err := PrepareDir(cfg.Dir); err != nil {
		return nil, err
	}
	return r, nil
}

// PrepareDir makes dir, and as root makes it a shared mount of its own:
// a memory volume mounted there then reaches the mount namespaces of
// sandboxes started ahead, which copied knd's mounts before the volume was
// made. Call it before the first sandbox starts; it does nothing the
// second time.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	// Memory volumes a killed knd left: their pods start afresh.
	if mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir)); err == nil {
		for _, m := range slices.Backward(mounts) {
			if m.Mountpoint != dir {
				_ = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
			}
		}
	}
	if m, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir)); err == nil && len(m) > 0 && strings.Contains(m[len(m)-1].Optional, "shared:") {
		return nil
	}
	for unix.Unmount(dir, unix.MNT_DETACH) == nil {
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("volumes: %w", err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("volumes: %w", err)
	}
	return nil
}

func (r *Root) configMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	if r.cfg.ConfigMaps != nil {
		if cm, err := r.cfg.ConfigMaps.ConfigMaps(ns).Get(name); err == nil {
			return cm, nil
		}
	}
	return r.cfg.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

func (r *Root) secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	if r.cfg.Secrets != nil {
		if s, err := r.cfg.Secrets.Secrets(ns).Get(name); err == nil {
			return s, nil
		}
	}
	return r.cfg.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

// Pod is one pod's volumes.
type Pod struct {
	root *Root
	dir  string

	mu     sync.Mutex
	paths  map[string]string // volume name → its directory, once made
	kinds  map[string]kind
	tokens map[string]*token // "<volume>/<path>" → the token it shows
	tmpfs  []string
}

// kind is how a volume's directory is mounted in containers.
type kind int

const (
	writable kind = iota // emptyDir, persistentVolumeClaim
	readOnly             // persistentVolumeClaim with readOnly
	apiData              // configMap, secret, downwardAPI, projected: read-only, rewritten as a whole
)

// Pod returns the volumes of the pod with uid (nothing is made until Sync).
func (r *Root) Pod(uid types.UID) *Pod {
	return &Pod{root: r, dir: filepath.Join(r.cfg.Dir, string(uid)), paths: map[string]string{},
		kinds: map[string]kind{}, tokens: map[string]*token{}}
}

// Sync makes pod's volumes, or brings those made from the API up to date.
// Its error is the kubelet's FailedMount message for the first volume
// that could not be made.
func (p *Pod) Sync(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range pod.Spec.Volumes {
		if err := p.sync(ctx, pod, v); err != nil {
			return fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", v.Name, err)
		}
	}
	return nil
}

func (p *Pod) sync(ctx context.Context, pod *corev1.Pod, v corev1.Volume) error {
	switch {
	case v.EmptyDir != nil:
		return p.emptyDir(v.Name, v.EmptyDir)
	case v.ConfigMap != nil:
		files, err := p.configMap(ctx, pod.Namespace, &v.ConfigMap.LocalObjectReference, v.ConfigMap.Items,
			v.ConfigMap.Optional, v.ConfigMap.DefaultMode)
		if err != nil {
			return err
		}
		return p.write(v.Name, "kubernetes.io~configmap", files)
	case v.Secret != nil:
		files, err := p.secret(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, v.Secret.DefaultMode)
		if err != nil {
			return err
		}
		return p.write(v.Name, "kubernetes.io~secret", files)
	case v.DownwardAPI != nil:
		files, err := p.downwardAPI(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
		if err != nil {
			return err
		}
		return p.write(v.Name, "kubernetes.io~downward-api", files)
	case v.Projected != nil:
		files, err := p.projected(ctx, pod, v.Name, v.Projected)
		if err != nil {
			return err
		}
		return p.write(v.Name, "kubernetes.io~projected", files)
	case v.PersistentVolumeClaim != nil:
		return p.claim(ctx, pod.Namespace, v.Name, v.PersistentVolumeClaim)
	}
	return fmt.Errorf("knd does not support this volume's type")
}

// claim mounts the directory of the claim's bound volume: a hostPath or
// local PersistentVolume (the local-path provisioner's are hostPath).
func (p *Pod) claim(ctx context.Context, ns, name string, src *corev1.PersistentVolumeClaimVolumeSource) error {
	pvc, err := p.root.cfg.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, src.ClaimName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("persistentvolumeclaim %q not found", src.ClaimName)
	}
	if err != nil {
		return err
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return fmt.Errorf("persistentvolumeclaim %q is not bound", src.ClaimName)
	}
	pv, err := p.root.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var dir string
	switch {
	case pv.Spec.HostPath != nil:
		dir = pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		dir = pv.Spec.Local.Path
	default:
		return fmt.Errorf("persistent volume %q is neither hostPath nor local, the kinds knd mounts", pv.Name)
	}
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	p.paths[name], p.kinds[name] = dir, writable
	if src.ReadOnly {
		p.kinds[name] = readOnly
	}
	return nil
}

func (p *Pod) emptyDir(name string, src *corev1.EmptyDirVolumeSource) error {
	if _, ok := p.paths[name]; ok {
		return nil
	}
	dir := filepath.Join(p.dir, "kubernetes.io~empty-dir", name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	// Any of the pod's users may write it, as on a kubelet.
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	if src.Medium == corev1.StorageMediumMemory && p.root.canMount {
		opts := "mode=0777"
		if src.SizeLimit != nil && !src.SizeLimit.IsZero() {
			opts += fmt.Sprintf(",size=%d", src.SizeLimit.Value())
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return fmt.Errorf("mounting a tmpfs: %w", err)
		}
		p.tmpfs = append(p.tmpfs, dir)
	}
	p.paths[name], p.kinds[name] = dir, writable
	return nil
}

func (p *Pod) write(name, plugin string, files map[string]file) error {
	dir := filepath.Join(p.dir, plugin, name)
	if _, err := writeAtomic(dir, files); err != nil {
		return err
	}
	p.paths[name], p.kinds[name] = dir, apiData
	return nil
}

// mode is an item's mode, else the volume's default, else 0644.
func mode(item, def *int32) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item)
	case def != nil:
		return os.FileMode(*def)
	}
	return 0o644
}

// keyFiles are a ConfigMap's or Secret's keys as files: every key, or
// the items asked for (each key must exist unless optional).
func keyFiles(data map[string][]byte, items []corev1.KeyToPath, optional bool, defaultMode *int32, missingKey string) (map[string]file, error) {
	files := map[string]file{}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = file{data: v, mode: mode(nil, defaultMode)}
		}
		return files, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s%s", missingKey, it.Key)
		}
		files[filepath.Clean(it.Path)] = file{data: v, mode: mode(it.Mode, defaultMode)}
	}
	return files, nil
}

func (p *Pod) configMap(ctx context.Context, ns string, ref *corev1.LocalObjectReference, items []corev1.KeyToPath, optional *bool, defaultMode *int32) (map[string]file, error) {
	cm, err := p.root.configMap(ctx, ns, ref.Name)
	if apierrors.IsNotFound(err) {
		if isTrue(optional) {
			return map[string]file{}, nil
		}
		return nil, fmt.Errorf("configmap %q not found", ref.Name)
	}
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles(data, items, isTrue(optional), defaultMode, "configmap references non-existent config key: ")
}

func (p *Pod) secret(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool, defaultMode *int32) (map[string]file, error) {
	s, err := p.root.secret(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		if isTrue(optional) {
			return map[string]file{}, nil
		}
		return nil, fmt.Errorf("secret %q not found", name)
	}
	if err != nil {
		return nil, err
	}
	return keyFiles(s.Data, items, isTrue(optional), defaultMode, "references non-existent secret key: ")
}

func (p *Pod) downwardAPI(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) (map[string]file, error) {
	files := map[string]file{}
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = FieldValue(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			v, err = p.resource(pod, it.ResourceFieldRef)
		}
		if err != nil {
			return nil, err
		}
		files[filepath.Clean(it.Path)] = file{data: []byte(v), mode: mode(it.Mode, defaultMode)}
	}
	return files, nil
}

func (p *Pod) resource(pod *corev1.Pod, ref *corev1.ResourceFieldSelector) (string, error) {
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; c.Name == ref.ContainerName {
			return ResourceValue(c, ref, p.root.cfg.Allocatable)
		}
	}
	return "", fmt.Errorf("container %q not found in the pod", ref.ContainerName)
}

func (p *Pod) projected(ctx context.Context, pod *corev1.Pod, name string, src *corev1.ProjectedVolumeSource) (map[string]file, error) {
	files := map[string]file{}
	for _, s := range src.Sources {
		var part map[string]file
		var err error
		switch {
		case s.ConfigMap != nil:
			part, err = p.configMap(ctx, pod.Namespace, &s.ConfigMap.LocalObjectReference, s.ConfigMap.Items, s.ConfigMap.Optional, src.DefaultMode)
		case s.Secret != nil:
			part, err = p.secret(ctx, pod.Namespace, s.Secret.Name, s.Secret.Items, s.Secret.Optional, src.DefaultMode)
		case s.DownwardAPI != nil:
			part, err = p.downwardAPI(pod, s.DownwardAPI.Items, src.DefaultMode)
		case s.ServiceAccountToken != nil:
			// Every token, the API access volume's too, is there before the
			// pod starts (prefetched while the pod was scheduled).
			var t *token
			if t, err = p.token(ctx, pod, name, s.ServiceAccountToken); err == nil {
				part = map[string]file{filepath.Clean(s.ServiceAccountToken.Path): {data: t.data, mode: mode(nil, src.DefaultMode)}}
			}
		default:
			err = fmt.Errorf("knd does not support this projected volume source")
		}
		if err != nil {
			return nil, err
		}
		for k, v := range part {
			files[k] = v
		}
	}
	return files, nil
}

// Mounts are c's volume mounts on the host. A subPath is resolved inside
// its volume (made as a directory when a writable volume lacks it); one
// that leads out of the volume is refused, as the kubelet refuses it.
func (p *Pod) Mounts(c *corev1.Container) ([]Mount, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var mounts []Mount
	for _, vm := range c.VolumeMounts {
		src, ok := p.paths[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q of volumeMount %q is not set up", vm.Name, vm.MountPath)
		}
		if vm.SubPath != "" {
			resolved, err := subPath(src, vm.SubPath, p.kinds[vm.Name] == writable)
			if err != nil {
				return nil, fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q: %w", vm.Name, c.Name, err)
			}
			src = resolved
		}
		mounts = append(mounts, Mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly || p.kinds[vm.Name] != writable,
			APIAccess: isAPIAccess(vm.Name) && p.kinds[vm.Name] == apiData})
	}
	// Parents before children, whatever order they were listed in.
	slices.SortStableFunc(mounts, func(a, b Mount) int {
		return cmp.Compare(strings.Count(filepath.Clean(a.Target), "/"), strings.Count(filepath.Clean(b.Target), "/"))
	})
	return mounts, nil
}

// subPath resolves sub inside the volume at dir, following symlinks only
// as far as they stay inside it.
func subPath(dir, sub string, create bool) (string, error) {
	base, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	if create {
		root, err := os.OpenRoot(base)
		if err != nil {
			return "", err
		}
		if _, err = root.Lstat(sub); errors.Is(err, fs.ErrNotExist) {
			err = root.MkdirAll(sub, 0o755)
		}
		root.Close()
		if err != nil {
			return "", err
		}
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(base, sub))
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(base, resolved); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("subPath %q leads outside the volume", sub)
	}
	return resolved, nil
}

// Unmount unmounts the pod's memory volumes (their content goes); what is
// on disk stays for the pod's next start.
func (p *Pod) Unmount() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, dir := range p.tmpfs {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
	}
	p.tmpfs = nil
	clear(p.paths)
}

// TearDown unmounts and removes the pod's volumes.
func (p *Pod) TearDown() error {
	p.Unmount()
	return os.RemoveAll(p.dir)
}

// Uses says whether pod has a volume made from the ConfigMap ("configmap")
// or Secret ("secret") named name, so that a change to it is shown.
func Uses(pod *corev1.Pod, kind, name string) bool {
	match := func(cm *corev1.ConfigMapProjection, s *corev1.SecretProjection) bool {
		return (kind == "configmap" && cm != nil && cm.Name == name) || (kind == "secret" && s != nil && s.Name == name)
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil && kind == "configmap" && v.ConfigMap.Name == name,
			v.Secret != nil && kind == "secret" && v.Secret.SecretName == name:
			return true
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if match(src.ConfigMap, src.Secret) {
					return true
				}
			}
		}
	}
	return false
}

func isTrue(b *bool) bool { return b != nil && *b }
