// Package docker runs knd with --runtime=docker and checks that pods are
// real containers of the engine that behave as the process provider's do.
// Without an engine every test skips, saying so.
package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/knd-dev/knd/pkg/node/docker"
	"github.com/knd-dev/knd/pkg/node/nodetest"
	"github.com/knd-dev/knd/test/kndtest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

const testImage = "dev.local/testserver:docker"

var knd *kndtest.Server

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	if !docker.Available(context.Background()) {
		fmt.Println("no Docker engine answers (DOCKER_HOST or /var/run/docker.sock): skipping the docker runtime tests")
		os.Exit(m.Run())
	}
	os.Exit(kndtest.RunSharedWith(m, []string{"--runtime=docker"}, func(s *kndtest.Server) { knd = s }))
}

func needServer(t *testing.T) {
	t.Helper()
	if knd == nil {
		t.Skip("no Docker engine answers: the docker runtime is not tested")
	}
}

func importImage(t *testing.T) {
	t.Helper()
	bin := nodetest.BuildTestServer(t, t.TempDir())
	out, err := knd.Knd(t, "image", "import", bin, "--name", testImage)
	if err != nil || !strings.Contains(out, "loaded into the Docker engine too") {
		t.Fatalf("knd image import: %v\n%s", err, out)
	}
}

func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	kndtest.Poll(t, timeout, what, cond)
}

func viaGateway(host string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", knd.GatewayPort), nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// A Knative Service runs as engine containers: it becomes Ready, answers
// through the gateway from zero, and its pod is the engine's container.
func TestServiceRunsAsContainers(t *testing.T) {
	needServer(t)
	importImage(t)
	if out, err := knd.Knd(t, "service", "create", "web", "--image", testImage, "--env", "GREETING=containers", "--scale-min", "2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	code, body, err := viaGateway("web.default.example.com")
	if code != 200 || !strings.HasSuffix(body, " containers\n") {
		t.Fatalf("gateway: %d %q %v", code, body, err)
	}
	// Two pods, both listening on 8080 inside their own network namespace.
	pods, err := knd.Clientset(t).CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "serving.knative.dev/service=web"})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "two ready pods", func() (bool, string) {
		pods, err = knd.Clientset(t).CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "serving.knative.dev/service=web"})
		ready := 0
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return err == nil && ready == 2, fmt.Sprint(ready, err)
	})
	for _, p := range pods.Items {
		cs := p.Status.ContainerStatuses[0]
		if !strings.HasPrefix(cs.ContainerID, "docker://") || !strings.HasPrefix(cs.ImageID, "docker-pullable://") {
			t.Errorf("pod %s: container %q image %q", p.Name, cs.ContainerID, cs.ImageID)
		}
		id := strings.TrimPrefix(cs.ContainerID, "docker://")
		out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}} {{index .Config.Labels \"knd.dev/pod-uid\"}}", id).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "true "+string(p.UID) {
			t.Errorf("docker inspect %s: %v %s", id, err, out)
		}
		logs, err := knd.Kubectl(t, "", "logs", "-n", "default", p.Name)
		if err != nil || !strings.Contains(logs, "listening on :8080") {
			t.Errorf("kubectl logs %s: %v %s", p.Name, err, logs)
		}
	}
}

// A container over its memory limit shows as OOMKilled on its pod.
func TestOOMKilledPod(t *testing.T) {
	needServer(t)
	importImage(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hog", Namespace: "default"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "hog", Image: testImage, Env: []corev1.EnvVar{{Name: "ALLOC_MB", Value: "256"}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resourceQuantity("32Mi")}},
		}}},
	}
	pods := knd.Clientset(t).CoreV1().Pods("default")
	if _, err := pods.Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "OOMKilled", func() (bool, string) {
		p, err := pods.Get(context.Background(), "hog", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		return term != nil && term.Reason == "OOMKilled" && term.ExitCode == 137, fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
	})
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// A pod is on knd's engine network at its pause container's address: the
// API shows that IP, the gateway dials it (no port is published), its
// containers share it, it reaches Knative Services by name through the
// node's DNS server, and knd's API server is out of its reach.
func TestPodsOnKndsNetwork(t *testing.T) {
	needServer(t)
	importImage(t)
	if out, err := knd.Knd(t, "service", "create", "target", "--image", testImage, "--env", "GREETING=by-name"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if code, body, err := viaGateway("target.default.example.com"); code != 200 || !strings.HasSuffix(body, " by-name\n") {
		t.Fatalf("gateway: %d %q %v", code, body, err)
	}
	client := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: testImage, Ports: []corev1.ContainerPort{{ContainerPort: 8080}}},
			{Name: "sidecar", Image: testImage, Env: []corev1.EnvVar{{Name: "PORT", Value: "8882"}}},
		}},
	}
	client = runPod(t, client)
	ip := net.ParseIP(client.Status.PodIP)
	if ip == nil || !ip.IsPrivate() || len(client.Status.PodIPs) != 1 || client.Status.PodIPs[0].IP != client.Status.PodIP {
		t.Fatalf("pod IP %q %v: want the pause container's private address", client.Status.PodIP, client.Status.PodIPs)
	}
	ask := func(port int, path string) string { t.Helper(); return askPod(t, client, port, path) }
	for _, cs := range client.Status.ContainerStatuses {
		id := strings.TrimPrefix(cs.ContainerID, "docker://")
		out, err := exec.Command("docker", "inspect", "-f", "{{.HostConfig.NetworkMode}} {{len .HostConfig.PortBindings}}", id).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "container:") || !strings.HasSuffix(strings.TrimSpace(string(out)), " 0") {
			t.Errorf("container %s: %v %s; want the pause container's network and nothing published", cs.Name, err, out)
		}
	}
	if got := ask(8882, "/fetch?url="+url.QueryEscape("http://localhost:8080/env?k=PORT")); got != "8080" {
		t.Errorf("the sidecar fetching its pod's app on localhost: %q", got)
	}
	for _, u := range []string{"http://target.default.svc.cluster.local/", "http://target.default/", "http://target.default.example.com/"} {
		if got := ask(8080, "/fetch?url="+url.QueryEscape(u)); !strings.HasSuffix(got, " by-name\n") {
			t.Errorf("GET %s from a pod: %q", u, got)
		}
	}
	if got := ask(8080, "/dial?addr="+net.JoinHostPort("127.0.0.1", fmt.Sprint(knd.Ports(t).API))); !strings.Contains(got, "connection refused") {
		t.Errorf("knd's API server from a pod: %q, want connection refused", got)
	}
	// The API server as an in-cluster client finds it: TLS verified against
	// the service account's CA, authenticated by the pod's token; the
	// default service account may not read pods.
	want := `403 {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"client\" is forbidden: ` +
		`User \"system:serviceaccount:default:default\" cannot get resource \"pods\" in API group \"\" in the namespace \"default\""`
	for _, host := range []string{"", "kubernetes.default.svc"} {
		if got := ask(8080, "/kube?path=/api/v1/namespaces/default/pods/client&host="+host); !strings.HasPrefix(got, want) {
			t.Errorf("the API server from a container (host %q): %q, want %s...", host, got, want)
		}
	}
}

// runPod creates pod in default and returns it once Ready.
func runPod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	pods := knd.Clientset(t).CoreV1().Pods("default")
	if _, err := pods.Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, pod.Name+" ready", func() (bool, string) {
		p, err := pods.Get(context.Background(), pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		return false, fmt.Sprint(p.Status.Conditions, p.Status.ContainerStatuses)
	})
	return pod
}

// askPod GETs path from pod's container listening on port, at the pod's IP.
func askPod(t *testing.T, pod *corev1.Pod, port int, path string) string {
	t.Helper()
	body, err := get(fmt.Sprintf("http://%s%s", net.JoinHostPort(pod.Status.PodIP, fmt.Sprint(port)), path))
	if err != nil {
		t.Fatalf("GET %s from the pod: %v", path, err)
	}
	return body
}

func get(u string) (string, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Volumes are the node agent's, bind-mounted into the engine's containers:
// a ConfigMap read-only and kept up to date, a subPath, and an emptyDir
// the pod's two containers share.
func TestVolumesInContainers(t *testing.T) {
	needServer(t)
	importImage(t)
	ctx := context.Background()
	cs := knd.Clientset(t)
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-config"},
		Data: map[string]string{"greeting": "hello", "app.conf": "level=info"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-secret"},
		StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	shared := []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
	sizeLimit := resource.MustParse("1Mi")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "mounts", Namespace: "default"},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}},
				{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "memory", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					Medium: corev1.StorageMediumMemory, SizeLimit: &sizeLimit}}},
				{Name: "projected", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "web-secret"}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				}}}},
			},
			Containers: []corev1.Container{
				{Name: "app", Image: testImage, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					VolumeMounts: append([]corev1.VolumeMount{{Name: "config", MountPath: "/config"},
						{Name: "config", MountPath: "/etc/app.conf", SubPath: "app.conf"},
						{Name: "memory", MountPath: "/memory"}, {Name: "projected", MountPath: "/projected"}}, shared...)},
				{Name: "sidecar", Image: testImage, Env: []corev1.EnvVar{{Name: "PORT", Value: "8882"}}, VolumeMounts: shared},
			},
		},
	}
	pod = runPod(t, pod)
	ask := func(port int, path string) string { t.Helper(); return askPod(t, pod, port, path) }
	for path, want := range map[string]string{"/read?path=/config/greeting": "hello", "/read?path=/etc/app.conf": "level=info",
		"/write?path=/config/x": "read-only file system", "/write?path=/shared/from-sidecar": "ok",
		"/read?path=/projected/password": "s3cret", "/read?path=/projected/name": "mounts", "/read?path=/projected/token": "eyJ",
		"/read?path=/proc/self/mounts": "tmpfs /memory tmpfs rw,nosuid,nodev,relatime,size=1024k"} {
		port := 8080
		if strings.Contains(path, "sidecar") {
			port = 8882
		}
		if got := ask(port, path); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	if got := ask(8080, "/read?path=/shared/from-sidecar"); got != "1" {
		t.Errorf("the app reading what its sidecar wrote to their emptyDir: %q", got)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-config"},
		Data: map[string]string{"greeting": "bonjour", "app.conf": "level=debug"}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "the ConfigMap's change shown", func() (bool, string) {
		got := ask(8080, "/read?path=/config/greeting")
		return got == "bonjour", got
	})
}

// A container's limits and CPU request show in its cgroups, read-only.
func TestLimitsVisibleInContainers(t *testing.T) {
	needServer(t)
	importImage(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "limited", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: testImage,
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("500m")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("125m")},
			}}}},
	}
	pod = runPod(t, pod)
	files := map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "67108864", "/sys/fs/cgroup/cpu/cpu.shares": "128",
		"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "50000"}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		files = map[string]string{"/sys/fs/cgroup/memory.max": "67108864", "/sys/fs/cgroup/cpu.weight": "5", "/sys/fs/cgroup/cpu.max": "50000 100000"}
	}
	for file, want := range files {
		if got := askPod(t, pod, 8080, "/read?path="+url.QueryEscape(file)); strings.TrimSpace(got) != want {
			t.Errorf("%s: %q, want %q", file, got, want)
		}
		if got := askPod(t, pod, 8080, "/write?path="+url.QueryEscape(file)); !strings.Contains(got, "read-only file system") {
			t.Errorf("writing %s: %q, want read-only", file, got)
		}
	}
}

// TestEmptyDirOverItsSizeLimitEvictsContainers: the node agent measures a
// disk emptyDir the engine's container writes through its bind mount, and
// evicts the pod past its sizeLimit as on the process runtime.
func TestEmptyDirOverItsSizeLimitEvictsContainers(t *testing.T) {
	needServer(t)
	importImage(t)
	limit := resource.MustParse("1Mi")
	pod := runPod(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "filler", Namespace: "default"},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &limit}}}},
			Containers: []corev1.Container{{Name: "app", Image: testImage, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}}},
		},
	})
	if got := askPod(t, pod, 8080, "/fill?path=/scratch/big&mb=2"); got != "ok" {
		t.Fatalf("writing 2 MiB to the emptyDir: %q", got)
	}
	pods := knd.Clientset(t).CoreV1().Pods("default")
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := pods.Get(context.Background(), "filler", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted" &&
			p.Status.Message == `Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not evicted: %v %+v", err, p.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := pods.Delete(context.Background(), "filler", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}
