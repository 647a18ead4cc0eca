package integration

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/node/process/podnet"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// sandboxedServer skips a test when the shared server runs pods on the
// host's network (knd not root).
func sandboxedServer(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("pods get a network and sandbox of their own only when knd runs as root")
	}
}

// Apps that ignore PORT and listen on :8080, as most images do, serve as
// revisions, two at once.
func TestRevisionsOfAppsIgnoringPort(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "sandbox-fixed-port")
	c := typedClient(t)
	for _, name := range []string{"first", "second"} {
		svc := helloService(ns, name, name)
		svc.Spec.Template.Spec.Containers[0].Env = append(svc.Spec.Template.Spec.Containers[0].Env,
			corev1.EnvVar{Name: "LISTEN", Value: ":8080"})
		if err := c.Create(testContext(t), svc); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"first", "second"} {
		waitService(t, c, ns, name, "ready", readyAt(name+"-00001"))
		code, body, err := viaGateway(name+"."+ns+".example.com", "/", nil)
		if err != nil || code != 200 || !strings.HasPrefix(body, "hello from "+name+"-00001-deployment-") || !strings.HasSuffix(body, " "+name+"\n") {
			t.Errorf("%s: %d %q %v", name, code, body, err)
		}
	}
	out, err := knd.Kubectl(t, "", "get", "pods", "-n", ns, "-o", "custom-columns=IP:.status.podIP", "--no-headers")
	if ips := strings.Fields(out); err != nil || len(ips) != 2 || ips[0] == ips[1] || !inPodCIDR(ips[0]) || !inPodCIDR(ips[1]) {
		t.Errorf("kubectl get pods: want two pod IPs of the pod CIDR: %v\n%s", err, out)
	}
}

// inPodCIDR says whether ip is in knd's default --pod-cidr.
func inPodCIDR(ip string) bool {
	_, cidr, _ := net.ParseCIDR(podnet.DefaultClusterCIDR)
	return cidr.Contains(net.ParseIP(ip))
}

// ask GETs path from a test pod's server.
func ask(t *testing.T, pod *corev1.Pod, path string) string {
	t.Helper()
	code, body, err := httpGet(podURL(pod) + path)
	if err != nil || code != 200 {
		t.Fatalf("GET %s%s: %d %v", podURL(pod), path, code, err)
	}
	return body
}

// A pod reaches Knative Services by name, as on a cluster; its own IP is
// in its status and its Service's EndpointSlice; knd's ports are out of
// its reach.
func TestPodsReachServicesNotKnd(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "sandbox-client")
	c := typedClient(t)
	if err := c.Create(testContext(t), helloService(ns, "target", "by-name")); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "target", "ready", readyAt("target-00001"))
	cs := knd.Clientset(t)
	if _, err := cs.CoreV1().Pods(ns).Create(testContext(t), testPod("client", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "client ready", func() (bool, string) { return len(readyPods(t, ns, "app=client")) == 1, "" })
	client := readyPods(t, ns, "app=client")[0]
	if !inPodCIDR(client.Status.PodIP) || len(client.Status.PodIPs) != 1 || client.Status.PodIPs[0].IP != client.Status.PodIP || client.Status.HostIP != "127.0.0.1" {
		t.Errorf("pod IPs %q %v host %q: want an address of the pod subnet", client.Status.PodIP, client.Status.PodIPs, client.Status.HostIP)
	}
	for _, u := range []string{"http://target." + ns + ".svc.cluster.local/", "http://target." + ns + "/", "http://target." + ns + ".example.com/"} {
		if got := ask(t, &client, "/fetch?url="+url.QueryEscape(u)); !strings.HasPrefix(got, "hello from target-00001-deployment-") {
			t.Errorf("GET %s from a pod: %q", u, got)
		}
	}
	if got := ask(t, &client, "/fetch?url="+url.QueryEscape("http://nothing."+ns+".svc.cluster.local/")); !strings.Contains(got, "no such host") {
		t.Errorf("an unknown Service from a pod: %q, want no such host", got)
	}

	// The pod's Service lists it at its own IP.
	if _, err := cs.CoreV1().Services(ns).Create(testContext(t), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "client"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "EndpointSlice with the pod's IP", func() (bool, string) {
		slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(testContext(t), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=client"})
		if err != nil || len(slices.Items) == 0 || len(slices.Items[0].Endpoints) == 0 {
			return false, fmt.Sprint(err)
		}
		got := slices.Items[0].Endpoints[0].Addresses
		return len(got) == 1 && got[0] == client.Status.PodIP, fmt.Sprint(got)
	})

	// knd's API server, etcd, webhook, kubelet endpoint, gateway and
	// metrics: on the host's loopback and through the bridge, refused.
	ports := knd.Ports(t)
	nodes, err := cs.CoreV1().Nodes().List(testContext(t), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("nodes: %v", err)
	}
	kubelet := int(nodes.Items[0].Status.DaemonEndpoints.KubeletEndpoint.Port)
	bridge := hostOnPodNetwork(t, &client)
	for name, port := range map[string]int{"API server": ports.API, "etcd": ports.EtcdClient, "etcd peer": ports.EtcdPeer,
		"webhook": ports.Webhook, "kubelet": kubelet, "gateway": knd.GatewayPort, "metrics": knd.MetricsPort} {
		for _, host := range []string{"127.0.0.1", bridge} {
			addr := net.JoinHostPort(host, fmt.Sprint(port))
			if got := ask(t, &client, "/dial?addr="+addr); !strings.Contains(got, "connection refused") {
				t.Errorf("%s at %s from a pod: %q, want connection refused", name, addr, got)
			}
		}
	}
	// And the data dir's keys are not in the pod's filesystem.
	if got := ask(t, &client, "/escape?path="+url.QueryEscape(filepath.Join(knd.DataDir, "pki", "ca.key"))); strings.Contains(got, "READ") {
		t.Errorf("a pod read knd's CA key:\n%s", got)
	}
}

// hostOnPodNetwork is the host's address on the pod network: the pod's
// nameserver.
func hostOnPodNetwork(t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	for _, line := range strings.Split(ask(t, pod, "/read?path=/etc/resolv.conf"), "\n") {
		if ns, ok := strings.CutPrefix(line, "nameserver "); ok {
			return ns
		}
	}
	t.Fatal("no nameserver in the pod's /etc/resolv.conf")
	return ""
}

// cgroupFiles are where a container reads its memory limit, CPU weight
// and CPU quota, and what they hold for a 64Mi limit, a 125m request and
// a 500m limit: cgroup v2's files when the host has only v2, else v1's.
func cgroupFiles() map[string]string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return map[string]string{"/sys/fs/cgroup/memory.max": "67108864", "/sys/fs/cgroup/cpu.weight": "5",
			"/sys/fs/cgroup/cpu.max": "50000 100000"}
	}
	return map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "67108864", "/sys/fs/cgroup/cpu/cpu.shares": "128",
		"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "50000"}
}

// A container sees its own cgroups, read-only, at /sys/fs/cgroup: its
// limits, and its CPU request as the kubelet's shares (weight).
func TestLimitsVisibleInside(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "sandbox-limits")
	pod := testPod("limited", nil, func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("500m")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("125m")},
		}
	})
	cs := knd.Clientset(t)
	if _, err := cs.CoreV1().Pods(ns).Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "pod ready", func() (bool, string) { return len(readyPods(t, ns, "app=limited")) == 1, "" })
	p := readyPods(t, ns, "app=limited")[0]
	for file, want := range cgroupFiles() {
		if got := strings.TrimSpace(readIn(t, &p, file)); got != want {
			t.Errorf("%s: %q, want %q", file, got, want)
		}
		if got := ask(t, &p, "/write?path="+url.QueryEscape(file)); !strings.Contains(got, "read-only file system") {
			t.Errorf("writing %s: %q, want read-only", file, got)
		}
	}
}

// A sidecar (an init container with restartPolicy Always) starts before
// the pod's containers and stops after them: while the app, which ignores
// SIGTERM, still serves during its grace period, so does its sidecar.
func TestSidecarStopsAfterTheApp(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "sandbox-sidecar")
	pod := testPod("with-sidecar", map[string]string{"IGNORE_SIGTERM": "1"}, func(p *corev1.Pod) {
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](3)
		p.Spec.InitContainers = []corev1.Container{{Name: "sidecar", Image: testImage,
			RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Env: []corev1.EnvVar{{Name: "PORT", Value: "8882"}}}}
	})
	cs := knd.Clientset(t)
	if _, err := cs.CoreV1().Pods(ns).Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "pod ready", func() (bool, string) { return len(readyPods(t, ns, "app=with-sidecar")) == 1, "" })
	p := readyPods(t, ns, "app=with-sidecar")[0]
	sidecar := fmt.Sprintf("http://%s/", net.JoinHostPort(p.Status.PodIP, "8882"))
	if code, _, err := httpGet(sidecar); err != nil || code != 200 {
		t.Fatalf("the sidecar: %d %v", code, err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(testContext(t), "with-sidecar", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Until the app is killed at the end of its grace period, both serve.
	checked := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, _, err := httpGet(podURL(&p) + "/"); err != nil {
			break
		}
		if code, _, err := httpGet(sidecar); err != nil || code != 200 {
			t.Fatalf("the sidecar stopped while the app still served: %d %v", code, err)
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("the app served only %d checks into its grace period", checked)
	}
	poll(t, 30*time.Second, "the sidecar stopped too", func() (bool, string) {
		_, _, err := httpGet(sidecar)
		return err != nil, fmt.Sprint(err)
	})
}
