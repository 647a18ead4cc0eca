package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestUnauthenticatedRequestsAreRefused(t *testing.T) {
	ca, err := os.ReadFile(filepath.Join(knd.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	for _, path := range []string{"/api/v1/namespaces", "/apis/serving.knative.dev/v1/services", "/readyz"} {
		res, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d%s", knd.APIPort, path))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", path, res.StatusCode)
		}
	}
}

// TestEtcdRefusesOtherClients: etcd serves only TLS clients with a
// certificate from its own CA; neither a plain-HTTP client nor one holding
// knd's admin certificate (from the main CA) reads it, and its peer port
// is closed.
func TestEtcdRefusesOtherClients(t *testing.T) {
	ports := knd.Ports(t)
	etcdCA, err := os.ReadFile(filepath.Join(knd.DataDir, "pki", "etcd", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(etcdCA)
	admin, err := tls.LoadX509KeyPair(filepath.Join(knd.DataDir, "pki", "admin.crt"), filepath.Join(knd.DataDir, "pki", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	const rangeAll = `{"key":"Lw==","range_end":"AA==","count_only":true}`
	// The API server's certificate reads it: the request below is right.
	apiserver, err := tls.LoadX509KeyPair(filepath.Join(knd.DataDir, "pki", "etcd", "apiserver-client.crt"), filepath.Join(knd.DataDir, "pki", "etcd", "apiserver-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	good := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{apiserver}}}}
	res, err := good.Post(fmt.Sprintf("https://127.0.0.1:%d/v3/kv/range", ports.EtcdClient), "application/json", strings.NewReader(rangeAll))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("etcd with the API server's certificate: %d", res.StatusCode)
	}
	// A single member has no peer: nothing listens on the peer port.
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports.EtcdPeer), 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("something listens on etcd's peer port %d", ports.EtcdPeer)
	}
	for _, port := range []int{ports.EtcdClient} {
		for name, c := range map[string]*http.Client{
			"plain http":        {Timeout: 5 * time.Second},
			"no certificate":    {Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}},
			"admin certificate": {Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{admin}}}},
		} {
			scheme := "https"
			if name == "plain http" {
				scheme = "http"
			}
			res, err := c.Post(fmt.Sprintf("%s://127.0.0.1:%d/v3/kv/range", scheme, port), "application/json", strings.NewReader(rangeAll))
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					t.Errorf("etcd port %d, %s: %d %.200s", port, name, res.StatusCode, b)
				}
			}
		}
	}
}

// TestExamplesApply applies every tutorial manifest, in folder and name
// order, as a user would; those named refused-* must be refused.
func TestExamplesApply(t *testing.T) {
	dirs, err := filepath.Glob("../../examples/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if len(files) == 0 {
			continue
		}
		sort.Strings(files) // files are numbered by step
		for _, f := range files {
			out, err := knd.Kubectl(t, "", "apply", "-f", f)
			if strings.HasPrefix(filepath.Base(f), "refused-") {
				// Shows what the API server refuses, and why.
				if err == nil {
					t.Errorf("kubectl apply -f %s was not refused: %s", f, out)
				}
				continue
			}
			if err != nil {
				t.Errorf("kubectl apply -f %s: %v\n%s", f, err, out)
				continue
			}
			if !strings.Contains(out, " created") && !strings.Contains(out, " configured") && !strings.Contains(out, " unchanged") {
				t.Errorf("kubectl apply -f %s: %s", f, out)
			}
		}
	}
	// The last split of the first tutorial is what the Service now says.
	svc, err := knd.Dynamic(t).Resource(resources["Service"]).Namespace("knative-demo").Get(testContext(t), "helloworld-go", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"latestRevision":false,"percent":0,"revisionName":"helloworld-go-00001","tag":"staging"},{"latestRevision":false,"percent":40,"revisionName":"helloworld-go-00002"},{"latestRevision":false,"percent":60,"revisionName":"helloworld-go-00003"}]`
	if got := field(t, svc, "spec.traffic"); got != want {
		t.Errorf("spec.traffic = %s, want %s", got, want)
	}
	if gen := svc.GetGeneration(); gen != 4 {
		t.Errorf("generation = %d after four applies, want 4", gen)
	}
}

// TestTryHint runs the two commands `knd server` printed after "Try:" in a
// shell, as a user would, and expects the sample app's answer.
func TestTryHint(t *testing.T) {
	output := knd.Output.String()
	i := strings.Index(output, "Try: ")
	if i < 0 {
		t.Fatalf("knd server printed no Try: hint:\n%s", output)
	}
	lines := strings.SplitN(output[i+len("Try: "):], "\n", 3)
	if len(lines) < 2 {
		t.Fatalf("the Try: hint is not two lines:\n%s", output[i:])
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KND_DATA_DIR=") && !strings.HasPrefix(kv, "KUBECONFIG=") {
			env = append(env, kv)
		}
	}
	var out []byte
	for _, line := range lines[:2] {
		cmd := exec.Command("sh", "-c", strings.TrimSpace(line))
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		var err error
		if out, err = cmd.Output(); err != nil {
			t.Fatalf("%s: %v\n%s%s", line, err, out, stderr.String())
		}
	}
	if string(out) != "Hello knd!\n" {
		t.Errorf("the hint's request answered %q, want %q", out, "Hello knd!\n")
	}
}

// TestRestartKeepsEverything stops the shared server and starts it again on
// the same data dir; it runs last (file order).
func TestRestartKeepsEverything(t *testing.T) {
	createService(t, strings.Replace(ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n"), "name: foo", "name: survivor", 1))
	cms := knd.Clientset(t).CoreV1().ConfigMaps("knative-serving")
	if _, err := cms.Patch(testContext(t), "config-gc", "application/merge-patch+json", []byte(`{"data":{"min-non-active-revisions":"7"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	importTestServer(t)
	ns := namespace(t, "node-restart")
	if _, err := knd.Clientset(t).CoreV1().Pods(ns).Create(testContext(t), testPod("keeper", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "pod ready", func() (bool, string) { return len(readyPods(t, ns, "app=keeper")) == 1, "" })
	before := readyPods(t, ns, "app=keeper")[0]

	// Requests the gateway accepted before the stop, one in flight and one
	// queued behind it (containerConcurrency 1), are answered.
	inflight := helloService(ns, "inflight", "")
	inflight.Spec.Template.Spec.ContainerConcurrency = ptr.To[int64](1)
	c := typedClient(t)
	if err := c.Create(testContext(t), inflight); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "inflight", "ready", readyAt("inflight-00001"))
	type answer struct {
		code int
		body string
		err  error
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			code, body, err := viaGateway("inflight.node-restart.example.com", "/slow?ms=1500", nil)
			answers <- answer{code, body, err}
		}()
	}
	poll(t, 30*time.Second, "a request queued behind one in flight", func() (bool, string) {
		_, metrics, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", knd.MetricsPort))
		return err == nil && strings.Contains(metrics, `knd_gateway_queue_depth{namespace="node-restart",revision="inflight-00001"} 1`), ""
	})

	children, _ := exec.Command("pgrep", "-P", fmt.Sprint(knd.Pid())).Output()
	if len(strings.Fields(string(children))) == 0 {
		t.Fatal("knd runs no pod process before the restart")
	}
	stopped := time.Now()
	if err := knd.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, knd.Output)
	}
	t.Logf("stopped in %s", time.Since(stopped).Round(time.Millisecond))
	for range 2 {
		if a := <-answers; a.err != nil || a.code != 200 || !strings.HasPrefix(a.body, "slept 1500 ms") {
			t.Errorf("a request accepted before the stop got %d %q %v", a.code, a.body, a.err)
		}
	}
	// Stopping knd stops every pod process it started.
	for _, pid := range strings.Fields(string(children)) {
		if ps, err := exec.Command("ps", "-o", "pid,stat,args", "-p", pid).CombinedOutput(); err == nil {
			t.Errorf("pod process left after knd stopped:\n%s", ps)
		}
	}
	if _, _, err := httpGet(podURL(&before)); err == nil {
		t.Errorf("pod %s still answers after knd stopped", before.Name)
	}
	started := time.Now()
	if err := knd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("ready again in %s", time.Since(started).Round(time.Millisecond))

	svc, err := knd.Dynamic(t).Resource(resources["Service"]).Namespace("default").Get(testContext(t), "survivor", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Service lost across restart: %v", err)
	}
	if got := field(t, svc, "spec.template.spec.containers[0].image"); got != "example.com/hello" {
		t.Errorf("image = %s", got)
	}
	cm, err := cms.Get(testContext(t), "config-gc", metav1.GetOptions{})
	if err != nil || cm.Data["min-non-active-revisions"] != "7" {
		t.Errorf("config-gc after restart = %v, %v; the user's change must be kept", cm.Data, err)
	}
	// The pod runs again.
	poll(t, time.Minute, "pod ready after restart", func() (bool, string) { return len(readyPods(t, ns, "app=keeper")) == 1, "" })
	after := readyPods(t, ns, "app=keeper")[0]
	if code, body, err := httpGet(podURL(&after) + "/"); err != nil || code != 200 || body != "hello from keeper \n" {
		t.Errorf("after restart GET / = %d %q %v", code, body, err)
	}
	// Admission still works: the webhooks were registered again.
	_, err = create(t, ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 90\n    latestRevision: true\n"), true)
	if err == nil || err.Error() != deniedPrefix+"Traffic targets sum to 90, want 100: spec.traffic" {
		t.Errorf("after restart: %v", err)
	}
}
