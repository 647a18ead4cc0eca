package integration

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// readIn is what the pod's server reads at path (or the error it got).
func readIn(t *testing.T, pod *corev1.Pod, path string) string {
	t.Helper()
	return ask(t, pod, "/read?path="+url.QueryEscape(path))
}

// volumePod mounts every kind of volume a revision may have.
func volumePod(name string) *corev1.Pod {
	mode := func(m int32) *int32 { return &m }
	sizeLimit := resource.MustParse("1Mi")
	return testPod(name, nil, func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{
			{Name: "whole", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
			{Name: "items", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}, DefaultMode: mode(0o640),
				Items: []corev1.KeyToPath{{Key: "greeting", Path: "nested/greeting.txt", Mode: mode(0o600)}, {Key: "app.conf", Path: "app.conf"}}}}},
			{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "app-secret", DefaultMode: mode(0o400)}}},
			{Name: "optional", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "not-there"}, Optional: ptr.To(true)}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "memory", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				Medium: corev1.StorageMediumMemory, SizeLimit: &sizeLimit}}},
			{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				{Path: "memory-mi", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory",
					Divisor: resource.MustParse("1Mi")}},
			}}}},
			{Name: "projected", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"},
					Items: []corev1.KeyToPath{{Key: "greeting", Path: "greeting"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "knd-test", ExpirationSeconds: ptr.To[int64](600), Path: "token"}},
			}}}},
		}
		c := &p.Spec.Containers[0]
		c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
		c.VolumeMounts = []corev1.VolumeMount{
			{Name: "whole", MountPath: "/config"},
			{Name: "items", MountPath: "/items"},
			{Name: "secret", MountPath: "/secret"},
			{Name: "optional", MountPath: "/optional"},
			{Name: "scratch", MountPath: "/scratch"},
			{Name: "scratch", MountPath: "/scratch-ro", ReadOnly: true},
			{Name: "memory", MountPath: "/memory"},
			{Name: "info", MountPath: "/info"},
			{Name: "projected", MountPath: "/projected"},
			{Name: "whole", MountPath: "/etc/app.conf", SubPath: "app.conf"},
		}
	})
}

// Every kind of volume a revision may mount, with items, modes, optional
// sources, subPath and read-only mounts, kept up to date as the kubelet
// keeps them.
func TestPodVolumes(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "volumes")
	cs := knd.Clientset(t)
	ctx := testContext(t)
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-config"},
		Data: map[string]string{"greeting": "hello", "app.conf": "level=info"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-secret"},
		StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, volumePod("volumes"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "pod ready", func() (bool, string) { return len(readyPods(t, ns, "app=volumes")) == 1, "" })
	pod := readyPods(t, ns, "app=volumes")[0]

	for path, want := range map[string]string{
		"/config/greeting":           "hello",
		"/config/app.conf":           "level=info",
		"/items/nested/greeting.txt": "hello",
		"/items/app.conf":            "level=info",
		"/secret/password":           "s3cret",
		"/info/name":                 "volumes",
		"/info/labels":               `app="volumes"`,
		"/info/memory-mi":            "64",
		"/projected/greeting":        "hello",
		"/projected/password":        "s3cret",
		"/projected/namespace":       ns,
		"/etc/app.conf":              "level=info",
	} {
		if got := readIn(t, &pod, path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	if got := readIn(t, &pod, "/config/not-a-key"); !strings.Contains(got, "no such file") {
		t.Errorf("/config/not-a-key: %q", got)
	}
	if got := ask(t, &pod, "/stat?path=/optional"); !strings.HasPrefix(got, "d") {
		t.Errorf("an optional volume of a missing ConfigMap: %q, want an empty directory", got)
	}
	for path, want := range map[string]string{
		"/items/nested/greeting.txt": "-rw------- 0 0",
		"/items/app.conf":            "-rw-r----- 0 0",
		"/secret/password":           "-r-------- 0 0",
		"/config/greeting":           "-rw-r--r-- 0 0",
		"/scratch":                   "drwxrwxrwx 0 0",
	} {
		if got := ask(t, &pod, "/stat?path="+path); got != want {
			t.Errorf("stat %s: %q, want %q", path, got, want)
		}
	}
	// API volumes are read-only; an emptyDir is writable where not mounted read-only.
	for path, want := range map[string]string{
		"/config/new":         "read-only file system",
		"/projected/new":      "read-only file system",
		"/scratch-ro/new":     "read-only file system",
		"/scratch/new":        "ok",
		"/memory/new":         "ok",
		"/etc/app.conf":       "read-only file system",
		"/config/..data/new":  "read-only file system",
		"/secret/password":    "read-only file system",
		"/info/labels":        "read-only file system",
		"/projected/token":    "read-only file system",
		"/items/nested/other": "read-only file system",
	} {
		if got := ask(t, &pod, "/write?path="+path); !strings.Contains(got, want) {
			t.Errorf("write %s: %q, want %q", path, got, want)
		}
	}
	if got := readIn(t, &pod, "/scratch-ro/new"); got != "1" {
		t.Errorf("the emptyDir's two mounts differ: %q", got)
	}
	mounts := readIn(t, &pod, "/proc/self/mounts")
	if !strings.Contains(mounts, "tmpfs /memory tmpfs rw,nosuid,nodev,relatime,size=1024k") {
		t.Errorf("the memory emptyDir is not a 1Mi tmpfs:\n%s", mounts)
	}

	// The token is the pod's service account's, for the audience asked.
	review, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{
		Token: readIn(t, &pod, "/projected/token"), Audiences: []string{"knd-test"}}}, metav1.CreateOptions{})
	if err != nil || !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:"+ns+":default" ||
		review.Status.User.Extra["authentication.kubernetes.io/pod-name"].String() != "[volumes]" {
		t.Errorf("token review: %v %+v", err, review.Status)
	}

	// The API access volume every pod gets: its token comes just after the
	// pod starts, bound to the pod, for the API server's audience.
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
	if got := readIn(t, &pod, sa+"namespace"); got != ns {
		t.Errorf("%snamespace: %q", sa, got)
	}
	if got := readIn(t, &pod, sa+"ca.crt"); !strings.HasPrefix(got, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("%sca.crt: %q", sa, got)
	}
	poll(t, 30*time.Second, "the API access token", func() (bool, string) {
		tok := readIn(t, &pod, sa+"token")
		review, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: tok}}, metav1.CreateOptions{})
		return err == nil && review.Status.Authenticated && review.Status.User.Username == "system:serviceaccount:"+ns+":default",
			fmt.Sprint(tok, err, review.Status)
	})

	// Changes show, but not in a subPath mount (as on a kubelet).
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-config"},
		Data: map[string]string{"greeting": "bonjour", "app.conf": "level=debug"}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, "volumes", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"tier":"web"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "volumes showing the changes", func() (bool, string) {
		got := fmt.Sprintf("%q %q %q %q", readIn(t, &pod, "/config/greeting"), readIn(t, &pod, "/items/nested/greeting.txt"),
			readIn(t, &pod, "/projected/greeting"), readIn(t, &pod, "/info/labels"))
		return got == `"bonjour" "bonjour" "bonjour" "app=\"volumes\"\ntier=\"web\""`, got
	})
	if got := readIn(t, &pod, "/etc/app.conf"); got != "level=info" {
		t.Errorf("a subPath mount changed: %q", got)
	}
}

// A revision whose volume names a missing ConfigMap is not ready, with the
// kubelet's reason; once the ConfigMap exists it becomes ready.
func TestRevisionWaitsForItsConfigMap(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "volumes-missing")
	c := typedClient(t)
	svc := helloService(ns, "mounts", "hi")
	svc.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "later"}}}}}
	svc.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	want := `MountVolume.SetUp failed for volume "cfg" : configmap "later" not found`
	poll(t, time.Minute, "revision not ready for its ConfigMap", func() (bool, string) {
		var rev servingv1.Revision
		if err := c.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: "mounts-00001"}, &rev); err != nil {
			return false, err.Error()
		}
		cond := rev.Status.GetCondition(servingv1.ConditionResourcesAvailable)
		return cond != nil && cond.Status == corev1.ConditionFalse && cond.Message == want, fmt.Sprintf("%+v", cond)
	})
	events, err := knd.Clientset(t).CoreV1().Events(ns).List(testContext(t), metav1.ListOptions{FieldSelector: "reason=FailedMount"})
	if err != nil || len(events.Items) == 0 || events.Items[0].Message != want || events.Items[0].Type != corev1.EventTypeWarning {
		t.Errorf("FailedMount events: %v %+v", err, events)
	}
	if _, err := knd.Clientset(t).CoreV1().ConfigMaps(ns).Create(testContext(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later"},
		Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "mounts", "ready", readyAt("mounts-00001"))
}

// A subPath that a symlink in the volume leads out of it is refused, with
// the kubelet's reason.
func TestSubPathEscapeRefused(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "volumes-escape")
	pod := testPod("escape", nil, func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		p.Spec.InitContainers = []corev1.Container{{Name: "link", Image: testImage,
			Command:      []string{"/testserver", "symlink", "/", "/data/out"},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/host", SubPath: "out"}}
	})
	cs := knd.Clientset(t)
	if _, err := cs.CoreV1().Pods(ns).Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the escaping subPath refused", func() (bool, string) {
		p, err := cs.CoreV1().Pods(ns).Get(testContext(t), "escape", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, fmt.Sprint(err)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w.Reason == "CreateContainerConfigError" &&
			strings.HasPrefix(w.Message, `failed to prepare subPath for volumeMount "data" of container "app"`), fmt.Sprintf("%+v", w)
	})
}

// A claim without a class gets the default local-path one and a directory
// under the data dir; what one pod writes there the next reads; the claim
// stays while a pod uses it; deleting it releases the directory; its
// namespace deletes cleanly.
func TestPersistentVolumeClaims(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "volumes-pvc")
	cs := knd.Clientset(t)
	ctx := testContext(t)
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pvc *corev1.PersistentVolumeClaim
	poll(t, time.Minute, "claim bound", func() (bool, string) {
		var err error
		pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		return err == nil && pvc.Status.Phase == corev1.ClaimBound, fmt.Sprint(err, pvc.Status)
	})
	if got := ptr.Deref(pvc.Spec.StorageClassName, ""); got != "local-path" {
		t.Errorf("storage class %q, want the default local-path", got)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil || pv.Spec.HostPath == nil || !strings.HasPrefix(pv.Spec.HostPath.Path, knd.DataDir+"/storage/pvc-") ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Fatalf("volume: %v %+v", err, pv)
	}
	dir := pv.Spec.HostPath.Path

	run := func(name string) corev1.Pod {
		t.Helper()
		pod := testPod(name, nil, func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
			// Not root: the directory is writable by any of the pod's users.
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}
		})
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, time.Minute, name+" ready", func() (bool, string) { return len(readyPods(t, ns, "app="+name)) == 1, "" })
		return readyPods(t, ns, "app="+name)[0]
	}
	first := run("writer")
	if got := ask(t, &first, "/write?path=/data/kept"); got != "ok" {
		t.Fatalf("writing the claim: %q", got)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "writer", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	second := run("reader")
	if got := readIn(t, &second, "/data/kept"); got != "1" {
		t.Errorf("the next pod reads %q, want what the first wrote", got)
	}

	// In use, the claim waits for its pod before it goes.
	if err := cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the protection controller has had its chance to let it go
	if got, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{}); err != nil || got.DeletionTimestamp == nil {
		t.Fatalf("a claim in use: %v %+v, want it terminating", err, got)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "reader", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "claim, volume and directory gone", func() (bool, string) {
		_, errClaim := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		_, errVol := cs.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		_, errDir := os.Stat(dir)
		return apierrors.IsNotFound(errClaim) && apierrors.IsNotFound(errVol) && os.IsNotExist(errDir), fmt.Sprint(errClaim, errVol, errDir)
	})
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "namespace gone", func() (bool, string) {
		n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return apierrors.IsNotFound(err), err.Error()
		}
		return false, fmt.Sprint(n.Status.Conditions)
	})
}

// TestEmptyDirOverItsSizeLimitEvicts: a pod whose disk emptyDir outgrows
// its sizeLimit is evicted as the kubelet does (Failed, Evicted, the
// kubelet's message, a DisruptionTarget condition, a Warning event), and
// deleting it afterwards completes.
func TestEmptyDirOverItsSizeLimitEvicts(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "evict")
	cs := knd.Clientset(t)
	limit := resource.MustParse("1Mi")
	pod := testPod("filler", nil, func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &limit}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	})
	if _, err := cs.CoreV1().Pods(ns).Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "pod ready", func() (bool, string) { return len(readyPods(t, ns, "app=filler")) == 1, "" })
	running := readyPods(t, ns, "app=filler")[0]
	if got := ask(t, &running, "/fill?path=/scratch/big&mb=2"); got != "ok" {
		t.Fatalf("writing 2 MiB to the emptyDir: %q", got)
	}
	msg := `Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". `
	poll(t, 30*time.Second, "the pod evicted", func() (bool, string) {
		p, err := cs.CoreV1().Pods(ns).Get(testContext(t), "filler", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		disruption := false
		for _, c := range p.Status.Conditions {
			disruption = disruption || (c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "TerminationByKubelet" && c.Message == msg)
		}
		return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted" && p.Status.Message == msg && disruption,
			fmt.Sprintf("%s %s %q %v", p.Status.Phase, p.Status.Reason, p.Status.Message, p.Status.Conditions)
	})
	poll(t, 10*time.Second, "the Evicted event", func() (bool, string) {
		evs, err := cs.CoreV1().Events(ns).List(testContext(t), metav1.ListOptions{FieldSelector: "involvedObject.name=filler,reason=Evicted"})
		return err == nil && len(evs.Items) == 1 && evs.Items[0].Type == corev1.EventTypeWarning && evs.Items[0].Message == msg, fmt.Sprint(err, evs)
	})
	if err := cs.CoreV1().Pods(ns).Delete(testContext(t), "filler", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "the evicted pod deleted", func() (bool, string) {
		_, err := cs.CoreV1().Pods(ns).Get(testContext(t), "filler", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}
