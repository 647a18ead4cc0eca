package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/apis/podport"
	"github.com/knd-dev/knd/pkg/node/nodetest"
	"github.com/knd-dev/knd/test/kndtest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const testImage = "dev.local/testserver:v1"

var importOnce sync.Once

// importTestServer builds the test app and loads it into the server's
// image store with `knd image import`, as a user would.
func importTestServer(t *testing.T) {
	t.Helper()
	importOnce.Do(func() {
		bin := nodetest.BuildTestServer(t, t.TempDir())
		cmd := exec.Command(knd.Bin, "image", "import", bin, "--name", testImage, "--data-dir", knd.DataDir)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "imported "+testImage+"@sha256:") {
			t.Fatalf("knd image import: %v\n%s", err, out)
		}
	})
}

func namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := knd.Clientset(t).CoreV1().Namespaces().Create(testContext(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return name
}

// poll calls cond until it returns true or the deadline passes.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	kndtest.Poll(t, timeout, what, cond)
}

// podURL is where a test pod serves.
func podURL(pod *corev1.Pod) string {
	return fmt.Sprintf("http://%s:%s", pod.Status.PodIP, podPort(pod))
}

// podPort is a test pod's port: 8080 at its own IP, or on the host network
// (knd not root) its published loopback port.
func podPort(pod *corev1.Pod) string {
	if port := pod.Annotations[podport.Annotation]; port != "" {
		return port
	}
	return "8080"
}

func httpGet(url string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func readyPods(t *testing.T, ns, selector string) []corev1.Pod {
	pods, err := knd.Clientset(t).CoreV1().Pods(ns).List(testContext(t), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && isReady(&p) {
			out = append(out, p)
		}
	}
	return out
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func testPod(name string, env map[string]string, mutate func(*corev1.Pod)) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: testImage, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			// Ready means serving: without a probe a running container is
			// Ready before its server listens, as with a kubelet.
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}},
		}}},
	}
	for k, v := range env {
		pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env, corev1.EnvVar{Name: k, Value: v})
	}
	if mutate != nil {
		mutate(pod)
	}
	return pod
}

func TestNodeIsReadyWithLease(t *testing.T) {
	nodes, err := knd.Clientset(t).CoreV1().Nodes().List(testContext(t), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("nodes: %v, %v", nodes, err)
	}
	n := nodes.Items[0]
	if len(n.Spec.Taints) != 0 {
		t.Errorf("taints %v: the scheduler would not bind pods", n.Spec.Taints)
	}
	ready := false
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	if !ready || n.Status.Allocatable.Pods().Value() < 100 {
		t.Errorf("node status %+v", n.Status)
	}
	lease, err := knd.Clientset(t).CoordinationV1().Leases("kube-node-lease").Get(testContext(t), n.Name, metav1.GetOptions{})
	if err != nil || time.Since(lease.Spec.RenewTime.Time) > time.Minute {
		t.Errorf("lease %v, %v", lease, err)
	}
	out, err := knd.Kubectl(t, "", "get", "nodes")
	if err != nil || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(n.Name)+`\s+Ready\s`).MatchString(out) {
		t.Errorf("kubectl get nodes: %v\n%s", err, out)
	}
}

func TestDeploymentRunsServesAndLogs(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "node-web")
	cs := knd.Clientset(t)
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(testContext(t), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "greeting"}, Data: map[string]string{"text": "from-configmap"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := testPod("web", nil, func(p *corev1.Pod) {
		p.Spec.Containers[0].Env = []corev1.EnvVar{
			{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "greeting"}, Key: "text"}}},
			{Name: "WHO", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "GREETING_TWICE", Value: "$(GREETING)-$(GREETING)"},
		}
	})
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: pod.Labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(testContext(t), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "two ready pods", func() (bool, string) {
		n := len(readyPods(t, ns, "app=web"))
		return n == 2, fmt.Sprintf("%d ready", n)
	})
	pods := readyPods(t, ns, "app=web")
	if podURL(&pods[0]) == podURL(&pods[1]) {
		t.Fatalf("both pods serve at %s", podURL(&pods[0]))
	}
	for _, p := range pods {
		code, body, err := httpGet(podURL(&p) + "/")
		if want := fmt.Sprintf("hello from %s from-configmap\n", p.Name); err != nil || code != 200 || body != want {
			t.Errorf("GET %s/ = %d %q %v, want %q", podURL(&p), code, body, err, want)
		}
		for k, want := range map[string]string{"WHO": p.Name, "GREETING_TWICE": "from-configmap-from-configmap", "PORT": podPort(&p)} {
			if _, got, _ := httpGet(podURL(&p) + "/env?k=" + k); got != want {
				t.Errorf("%s: $%s = %q, want %q", p.Name, k, got, want)
			}
		}
		if cs := p.Status.ContainerStatuses[0]; !strings.HasPrefix(cs.ContainerID, "process://") ||
			!strings.HasPrefix(cs.ImageID, "knd://"+testImage+"@sha256:") {
			t.Errorf("container status %+v", cs)
		}
	}
	out, err := knd.Kubectl(t, "", "logs", "-n", ns, pods[0].Name)
	if err != nil || !strings.Contains(out, "listening on :"+podPort(&pods[0])+"\nrequest /\n") {
		t.Errorf("kubectl logs: %v\n%s", err, out)
	}
	out, err = knd.Kubectl(t, "", "get", "pods", "-n", ns, "-o", "wide")
	if err != nil || strings.Count(out, "1/1     Running   0") != 2 {
		t.Errorf("kubectl get pods -o wide: %v\n%s", err, out)
	}

	// Deleting a pod stops its process and the ReplicaSet's replacement runs.
	victim := pods[0]
	if _, err := knd.Kubectl(t, "", "delete", "pod", "-n", ns, victim.Name); err != nil {
		t.Fatal(err)
	}
	if _, _, err := httpGet(podURL(&victim)); err == nil {
		t.Errorf("%s still answers after kubectl delete returned", victim.Name)
	}
	poll(t, time.Minute, "a replacement pod", func() (bool, string) {
		ready := readyPods(t, ns, "app=web")
		return len(ready) == 2 && ready[0].Name != victim.Name && ready[1].Name != victim.Name, fmt.Sprint(len(ready))
	})
}

func TestGracePeriodThenSIGKILL(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "node-grace")
	pods := knd.Clientset(t).CoreV1().Pods(ns)
	pod := testPod("stubborn", map[string]string{"IGNORE_SIGTERM": "1"}, func(p *corev1.Pod) {
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](2)
	})
	if _, err := pods.Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "pod ready", func() (bool, string) { return len(readyPods(t, ns, "app=stubborn")) == 1, "" })
	started := time.Now()
	if err := pods.Delete(testContext(t), "stubborn", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "pod gone", func() (bool, string) {
		_, err := pods.Get(testContext(t), "stubborn", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	// It ignores SIGTERM, so it lives out its 2 s grace period.
	if took := time.Since(started); took < 2*time.Second || took > 10*time.Second {
		t.Errorf("deletion took %s; want the 2 s grace period, then SIGKILL", took)
	}
}

func TestCrashLoopBackOff(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "node-crash")
	pods := knd.Clientset(t).CoreV1().Pods(ns)
	if _, err := pods.Create(testContext(t), testPod("crasher", map[string]string{"EXIT_CODE": "3"}, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "CrashLoopBackOff", func() (bool, string) {
		p, err := pods.Get(testContext(t), "crasher", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		cs := p.Status.ContainerStatuses[0]
		last := cs.LastTerminationState.Terminated
		return cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" &&
			last != nil && last.ExitCode == 3 && last.Reason == "Error" && cs.RestartCount >= 1 &&
			p.Status.Phase == corev1.PodRunning, fmt.Sprintf("%+v", cs)
	})
	out, err := knd.Kubectl(t, "", "logs", "-n", ns, "crasher", "--previous")
	if err != nil || !strings.Contains(out, "exiting with 3 as asked") {
		t.Errorf("kubectl logs --previous: %v\n%s", err, out)
	}
	out, err = knd.Kubectl(t, "", "get", "pod", "-n", ns, "crasher")
	if err != nil || !strings.Contains(out, "CrashLoopBackOff") {
		t.Errorf("kubectl get pod: %v\n%s", err, out)
	}
}

func TestProbesDriveReadyAndRestarts(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "node-probes")
	pods := knd.Clientset(t).CoreV1().Pods(ns)
	healthz := corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}
	pod := testPod("probed", nil, func(p *corev1.Pod) {
		p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: healthz, PeriodSeconds: 1, FailureThreshold: 1}
		p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: healthz, PeriodSeconds: 1, FailureThreshold: 2}
	})
	if _, err := pods.Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "pod ready", func() (bool, string) { return len(readyPods(t, ns, "app=probed")) == 1, "" })
	p := readyPods(t, ns, "app=probed")[0]
	if code, _, err := httpGet(podURL(&p) + "/fail"); err != nil || code != 200 {
		t.Fatalf("GET /fail: %d %v", code, err)
	}
	// Readiness fails first (threshold 1), then liveness restarts the
	// container, which comes back healthy and ready.
	poll(t, 30*time.Second, "restart after liveness failure", func() (bool, string) {
		p, err := pods.Get(testContext(t), "probed", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount == 1 && isReady(p) && cs.LastTerminationState.Terminated != nil, fmt.Sprintf("%+v", cs)
	})
	events, err := knd.Clientset(t).CoreV1().Events(ns).List(testContext(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events.Items {
		found = found || (e.Reason == "Unhealthy" && strings.HasPrefix(e.Message, "Liveness probe failed: HTTP probe failed with statuscode: 500"))
	}
	if !found {
		t.Errorf("no Unhealthy event for the liveness failure: %+v", events.Items)
	}
}

func TestMissingImage(t *testing.T) {
	ns := namespace(t, "node-image")
	pods := knd.Clientset(t).CoreV1().Pods(ns)
	pod := testPod("missing", nil, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "dev.local/does-not-exist:v1" })
	if _, err := pods.Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "image pull failure", func() (bool, string) {
		p, err := pods.Get(testContext(t), "missing", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") &&
			strings.Contains(w.Message, "dev.local/does-not-exist:v1 is not in the local store") &&
			p.Status.Phase == corev1.PodPending, fmt.Sprintf("%+v", w)
	})
}

// A container over its memory limit is OOM-killed (where cgroup v1 is
// writable, as knd's start-up note says) and its pod says so.
func TestMemoryLimitOOMKilled(t *testing.T) {
	if strings.Contains(knd.Output.String(), "limits are not enforced") {
		t.Skip("this machine has no writable cgroup v1 memory and cpu controllers")
	}
	importTestServer(t)
	ns := namespace(t, "node-oom")
	pods := knd.Clientset(t).CoreV1().Pods(ns)
	pod := testPod("hog", map[string]string{"ALLOC_MB": "256"}, func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}
	})
	if _, err := pods.Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "OOMKilled", func() (bool, string) {
		p, err := pods.Get(testContext(t), "hog", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		return term != nil && term.Reason == "OOMKilled" && term.ExitCode == 137 && p.Status.Phase == corev1.PodFailed,
			fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses[0].State)
	})
}

// Init containers run in order, each to success, before the containers;
// one that fails under restartPolicy Never fails the pod, and its
// containers never start.
func TestInitContainers(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "node-init")
	pods := knd.Clientset(t).CoreV1().Pods(ns)
	withInit := func(name string, initArgs ...string) *corev1.Pod {
		return testPod(name, nil, func(p *corev1.Pod) {
			for i, a := range initArgs {
				p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{
					Name: fmt.Sprintf("init-%d", i), Image: testImage, Args: []string{a}})
			}
		})
	}
	ok := withInit("init-ok", "true", "true")
	failing := withInit("init-fails", "true", "false")
	failing.Spec.RestartPolicy = corev1.RestartPolicyNever
	for _, p := range []*corev1.Pod{ok, failing} {
		if _, err := pods.Create(testContext(t), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 30*time.Second, "initialized and ready", func() (bool, string) {
		p, err := pods.Get(testContext(t), "init-ok", metav1.GetOptions{})
		if err != nil || len(p.Status.InitContainerStatuses) != 2 {
			return false, fmt.Sprint(err)
		}
		for _, cs := range p.Status.InitContainerStatuses {
			if t := cs.State.Terminated; t == nil || t.ExitCode != 0 || t.Reason != "Completed" {
				return false, fmt.Sprintf("%s: %+v", cs.Name, cs.State)
			}
		}
		return isReady(p), fmt.Sprint(p.Status.Conditions)
	})
	poll(t, 30*time.Second, "failed init", func() (bool, string) {
		p, err := pods.Get(testContext(t), "init-fails", metav1.GetOptions{})
		if err != nil || len(p.Status.InitContainerStatuses) != 2 {
			return false, fmt.Sprint(err)
		}
		term := p.Status.InitContainerStatuses[1].State.Terminated
		app := p.Status.ContainerStatuses[0].State.Waiting
		return p.Status.Phase == corev1.PodFailed && term != nil && term.ExitCode == 1 && app != nil && app.Reason == "PodInitializing",
			fmt.Sprintf("%s %+v %+v", p.Status.Phase, p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
	})
	out, err := knd.Kubectl(t, "", "get", "pod", "-n", ns, "init-fails")
	if err != nil || !strings.Contains(out, "Init:Error") {
		t.Errorf("kubectl get pod:\n%s %v", out, err)
	}
}

func TestImageNeverPulled(t *testing.T) {
	ns := namespace(t, "node-never")
	pods := knd.Clientset(t).CoreV1().Pods(ns)
	pod := testPod("never", nil, func(p *corev1.Pod) {
		p.Spec.Containers[0].Image = "example.com/absent:v1"
		p.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	})
	if _, err := pods.Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "ErrImageNeverPull", func() (bool, string) {
		p, err := pods.Get(testContext(t), "never", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "ErrImageNeverPull" &&
			w.Message == `Container image "example.com/absent:v1" is not present with pull policy of Never`, fmt.Sprintf("%+v", w)
	})
}

func TestKubeletEndpointRefusesStrangers(t *testing.T) {
	nodes, err := knd.Clientset(t).CoreV1().Nodes().List(testContext(t), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/containerLogs/default/x/y", nodes.Items[0].Status.DaemonEndpoints.KubeletEndpoint.Port)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(url)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s without a client certificate: %s, want a refused handshake", url, resp.Status)
	}
}

func TestExecProbesAndFollowedLogs(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "node-exec")
	pods := knd.Clientset(t).CoreV1().Pods(ns)
	for name, cmd := range map[string]string{"exec-ok": "true", "exec-fails": "false"} {
		pod := testPod(name, nil, func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1,
				ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/testserver", cmd}}}}
		})
		if _, err := pods.Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, time.Minute, "exec-ok ready", func() (bool, string) { return len(readyPods(t, ns, "app=exec-ok")) == 1, "" })
	// exec-fails runs but never becomes ready.
	poll(t, 30*time.Second, "exec-fails running", func() (bool, string) {
		p, err := pods.Get(testContext(t), "exec-fails", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 &&
			p.Status.ContainerStatuses[0].State.Running != nil, fmt.Sprint(err)
	})
	time.Sleep(2 * time.Second) // two probe periods
	if p, _ := pods.Get(testContext(t), "exec-fails", metav1.GetOptions{}); isReady(p) {
		t.Error("exec-fails became ready although its probe exits 1")
	}

	// kubectl logs -f streams lines written after it started.
	p := readyPods(t, ns, "app=exec-ok")[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, knd.Bin, "kubectl", "logs", "-f", "-n", ns, p.Name)
	cmd.Env = append(os.Environ(), "KND_DATA_DIR="+knd.DataDir, "KUBECONFIG=")
	var out nodetest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	poll(t, 20*time.Second, "follow shows the start", func() (bool, string) { return strings.Contains(out.String(), "listening on"), out.String() })
	if _, _, err := httpGet(podURL(&p) + "/followed"); err != nil {
		t.Fatal(err)
	}
	poll(t, 20*time.Second, "follow shows the new request", func() (bool, string) {
		return strings.Contains(out.String(), "request /followed"), out.String()
	})
}
