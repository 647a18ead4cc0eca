package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/apis/duck"
	"github.com/knd-dev/knd/pkg/apis/podport"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/node/nodetest"
	"github.com/knd-dev/knd/pkg/reconciler/manager"
	"github.com/knd-dev/knd/test/kndtest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// imported records the servers (by data dir) the benchmarks' image is in.
var imported sync.Map

// benchService creates Service ns/name running the test server and
// returns the address of its ready pod.
func benchService(b *testing.B, ns, name string, annotations map[string]string, mutate ...func(*servingv1.Service)) string {
	b.Helper()
	if _, done := imported.LoadOrStore(knd.DataDir, true); !done {
		bin := nodetest.BuildTestServer(b, b.TempDir())
		if out, err := exec.Command(knd.Bin, "image", "import", bin, "--name", "dev.local/hello:bench", "--data-dir", knd.DataDir).CombinedOutput(); err != nil {
			b.Fatalf("import: %v %s", err, out)
		}
	}
	scheme, _ := manager.Scheme()
	c, err := client.New(knd.RestConfig, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	svc := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	svc.Spec.Template.Annotations = annotations
	svc.Spec.Template.Spec.Containers = []corev1.Container{{Image: "dev.local/hello:bench"}}
	for _, m := range mutate {
		m(svc)
	}
	if err := c.Create(ctx, svc); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var pods corev1.PodList
		_ = c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{servingv1.ServiceLabelKey: name})
		_ = c.Get(ctx, client.ObjectKeyFromObject(svc), svc)
		if ready := svc.Status.GetCondition(duck.ConditionReady); ready != nil && ready.Status == corev1.ConditionTrue {
			for _, p := range pods.Items {
				for _, cond := range p.Status.Conditions {
					if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
						if port := p.Annotations[podport.Annotation]; port != "" {
							return p.Status.PodIP + ":" + port
						}
						return p.Status.PodIP + ":8080"
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("service %s/%s not ready", ns, name)
	return ""
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}

func get(url, host string) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := benchClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// BenchmarkGatewayLatency sends b.N sequential requests straight to the pod,
// b.N through the gateway and (when installed) b.N through nginx as a
// reverse proxy to the same pod, interleaved, and reports p50/p99 and the
// latency each proxy adds.
func BenchmarkGatewayLatency(b *testing.B) {
	pod := benchService(b, "bench-gw", "hello", nil)
	gw := fmt.Sprintf("http://127.0.0.1:%d/", knd.GatewayPort)
	host := "hello.bench-gw.example.com"
	nginxURL, _, stop := startNginx(b, pod, false)
	if stop != nil {
		defer stop()
	}
	for range 200 { // warm every path's connections
		_ = get("http://"+pod+"/", "")
		_ = get(gw, host)
		if nginxURL != "" {
			_ = get(nginxURL, "")
		}
	}
	timed := func(url, host string, into *[]time.Duration) {
		t := time.Now()
		if err := get(url, host); err != nil {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(t))
	}
	var direct, via, nginx []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		timed("http://"+pod+"/", "", &direct)
		timed(gw, host, &via)
		if nginxURL != "" {
			timed(nginxURL, "", &nginx)
		}
	}
	if len(nginx) > 0 {
		b.ReportMetric(ms(p50(nginx)-p50(direct)), "ms-nginx-added-p50")
		b.ReportMetric(ms(percentile(nginx, 0.99)-percentile(direct, 0.99)), "ms-nginx-added-p99")
	}
	b.ReportMetric(ms(p50(direct)), "ms-direct-p50")
	b.ReportMetric(ms(percentile(direct, 0.99)), "ms-direct-p99")
	b.ReportMetric(ms(p50(via)), "ms-gateway-p50")
	b.ReportMetric(ms(percentile(via, 0.99)), "ms-gateway-p99")
	b.ReportMetric(ms(p50(via)-p50(direct)), "ms-added-p50")
	b.ReportMetric(ms(percentile(via, 0.99)-percentile(direct, 0.99)), "ms-added-p99")
}

// load runs workers concurrent clients for d and returns requests/s, the
// number of failed requests and the first failure.
func load(url, host string, workers int, d time.Duration) (float64, int64, error) {
	var ok, failed atomic.Int64
	var first atomic.Pointer[error]
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := get(url, host); err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, &err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	var err error
	if p := first.Load(); p != nil {
		err = *p
	}
	return float64(ok.Load()) / d.Seconds(), failed.Load(), err
}

// BenchmarkGatewayThroughput compares requests/s with 32 clients: straight
// to the pod, through the gateway, and through nginx as a reverse proxy to
// the same pod (when nginx is installed: apt-get install nginx-light).
// Each iteration runs the three for 2 s each in a rotated order, after knd
// has settled (its API server keeps building schemas for a while after
// start), so that neither proxy always runs in the same moment of the
// machine's drift; the figures are totals over all iterations. It also
// reports each proxy's CPU time per request, which does not depend on how
// the two cores were shared out: nginx's from its worker, the gateway's
// as the knd process's CPU per request through it, less its CPU per
// request going straight to the pod (the pod's log lines, which knd
// copies, and its idle work).
func BenchmarkGatewayThroughput(b *testing.B) {
	pod := benchService(b, "bench-gw", "hello", nil)
	const workers, d = 32, 2 * time.Second
	type phase struct {
		name, url, host string
		pid             int
		requests, cpu   float64 // totals: requests served, µs of CPU
		syscalls, cs    float64 // totals, when KND_PERF is set
		elapsed         time.Duration
	}
	phases := []*phase{
		{name: "direct", url: "http://" + pod + "/", pid: knd.Pid()},
		{name: "gateway", url: fmt.Sprintf("http://127.0.0.1:%d/", knd.GatewayPort), host: "hello.bench-gw.example.com", pid: knd.Pid()},
	}
	if nginxURL, pid, stop := startNginx(b, pod, false); nginxURL != "" {
		defer stop()
		phases = append(phases, &phase{name: "nginx", url: nginxURL, pid: pid})
		u, pid, stop := startNginx(b, pod, true)
		defer stop()
		phases = append(phases, &phase{name: "nginx-same-headers", url: u, pid: pid})
	}
	waitQuiet(b, knd.Pid())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range phases {
			ph := phases[(i+k)%len(phases)]
			var profiled <-chan struct{}
			if ph.name == "gateway" {
				profiled = profileServer(b, d, "gateway")
			}
			counted := countKernelEntries(b, ph.pid, d)
			cpu0 := cpuTime(b, ph.pid)
			rps, failed, err := load(ph.url, ph.host, workers, d)
			ph.cpu += float64((cpuTime(b, ph.pid) - cpu0).Microseconds())
			if c, ok := <-counted; ok {
				ph.syscalls += c.syscalls
				ph.cs += c.switches
			}
			ph.requests += rps * d.Seconds()
			ph.elapsed += d
			if profiled != nil {
				<-profiled
			}
			if failed > 0 {
				b.Errorf("%s: %d failed requests, the first: %v", ph.name, failed, err)
			}
		}
	}
	direct := phases[0]
	rate := func(ph *phase) float64 { return ph.requests / ph.elapsed.Seconds() }
	perRequest := func(ph *phase) float64 { return ph.cpu / ph.requests }
	b.ReportMetric(rate(direct), "rps-direct")
	for _, ph := range phases[1:] {
		b.ReportMetric(rate(ph), "rps-"+ph.name)
		b.ReportMetric(rate(ph)/rate(direct), ph.name+"/direct")
	}
	// knd's CPU going direct is the pod's log copying and idle work.
	b.ReportMetric(perRequest(phases[1])-perRequest(direct), "µs-cpu/req-gateway")
	for _, ph := range phases[2:] {
		b.ReportMetric(perRequest(ph), "µs-cpu/req-"+ph.name)
	}
	if direct.syscalls > 0 {
		per := func(ph *phase, v float64) float64 { return v / ph.requests }
		gw := phases[1]
		b.ReportMetric(per(gw, gw.syscalls)-per(direct, direct.syscalls), "syscalls/req-gateway")
		b.ReportMetric(per(gw, gw.cs)-per(direct, direct.cs), "switches/req-gateway")
		for _, ph := range phases[2:] {
			b.ReportMetric(per(ph, ph.syscalls), "syscalls/req-"+ph.name)
			b.ReportMetric(per(ph, ph.cs), "switches/req-"+ph.name)
		}
	}
}

type kernelEntries struct{ syscalls, switches float64 }

// countKernelEntries, when KND_PERF is set and perf(1) can read
// tracepoints, counts the system calls and context switches of process
// pid (all its threads) for d. Unlike CPU time these counts hardly depend
// on how busy the machine is, so they compare two proxies' work per
// request even on a noisy machine. KND_PERF_EVENTS adds perf events
// (e.g. syscalls:sys_enter_write), printed raw per phase for a breakdown.
// The channel yields one count, or closes without one.
func countKernelEntries(b *testing.B, pid int, d time.Duration) <-chan kernelEntries {
	out := make(chan kernelEntries, 1)
	if os.Getenv("KND_PERF") == "" {
		close(out)
		return out
	}
	events, extra := "raw_syscalls:sys_enter,context-switches", os.Getenv("KND_PERF_EVENTS")
	if extra != "" {
		events += "," + extra
	}
	cmd := exec.Command("perf", "stat", "-x", ",", "-e", events,
		"-p", strconv.Itoa(pid), "--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', -1, 64))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Logf("perf: %v", err)
		close(out)
		return out
	}
	go func() {
		defer close(out)
		if err := cmd.Wait(); err != nil {
			b.Logf("perf: %v: %s", err, stderr.String())
			return
		}
		if extra != "" {
			fmt.Fprintf(os.Stderr, "perf, process %d:\n%s", pid, stderr.String())
		}
		var c kernelEntries
		for _, line := range strings.Split(stderr.String(), "\n") {
			f := strings.Split(line, ",")
			if len(f) < 3 {
				continue
			}
			v, _ := strconv.ParseFloat(f[0], 64)
			switch f[2] {
			case "raw_syscalls:sys_enter":
				c.syscalls = v
			case "context-switches":
				c.switches = v
			}
		}
		out <- c
	}()
	return out
}

// waitQuiet waits (up to a minute) until process pid uses less than a
// tenth of a core over a second.
func waitQuiet(b *testing.B, pid int) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		c0 := cpuTime(b, pid)
		time.Sleep(time.Second)
		if cpuTime(b, pid)-c0 < 100*time.Millisecond {
			return
		}
	}
	b.Log("knd did not settle within a minute; measuring anyway")
}

// cpuTime is the user and system CPU time process pid and its threads have
// used (its children are not counted: pods are apart).
func cpuTime(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks of 1/100 s.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// profileServer, when KND_PPROF names the server's profiler address (the
// server inherits it), records the server's CPU and allocations for d into
// <name>.cpu.pprof and <name>.allocs.pprof, for finding where the
// gateway's time goes. The channel closes when both are written.
func profileServer(b *testing.B, d time.Duration, name string) <-chan struct{} {
	done := make(chan struct{})
	addr := os.Getenv("KND_PPROF")
	if addr == "" {
		close(done)
		return done
	}
	var wg sync.WaitGroup
	for kind, suffix := range map[string]string{"profile": "cpu", "allocs": "allocs"} {
		file := name + "." + suffix + ".pprof"
		wg.Go(func() {
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, int(d.Seconds())))
			if err != nil {
				b.Errorf("profiling the server: %v", err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(file)
			if err != nil {
				b.Error(err)
				return
			}
			defer f.Close()
			_, _ = io.Copy(f, resp.Body)
		})
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// startNginx runs nginx as a reverse proxy to backend on a free port and
// returns its URL and its worker's process ID. With sameHeaders it sends
// the pod the forwarding and Knative headers the gateway sends (the pod
// then parses the same request); without, only what nginx sends by
// default.
func startNginx(b *testing.B, backend string, sameHeaders bool) (string, int, func()) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return "", 0, nil
	}
	port, err := kndtest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	headers := ""
	if sameHeaders {
		headers = `proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Forwarded-Proto http; proxy_set_header Forwarded "for=\"$remote_addr\";proto=http;host=\"$http_host\"";
    proxy_set_header Knative-Serving-Revision hello-00001; proxy_set_header Knative-Serving-Namespace bench-gw;`
	}
	conf := fmt.Sprintf(`daemon off; worker_processes 1; pid %[1]s/nginx.pid; error_log %[1]s/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %[1]s; proxy_temp_path %[1]s;
  upstream app { server %[2]s; keepalive 256; }
  server { listen 127.0.0.1:%[3]d; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
    %[4]s } } }
`, dir, backend, port, headers)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if get(url, "") == nil {
			break
		}
	}
	// SIGTERM stops nginx and its workers at once (a killed master leaves them running).
	return url, nginxWorker(b, cmd.Process.Pid), func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
}

// nginxWorker is the one worker process of the nginx master pid.
func nginxWorker(b *testing.B, master int) int {
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", master, master))
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(children)))
	if err != nil {
		b.Fatalf("nginx's workers: %q", children)
	}
	return pid
}

// shortGracePeriod sets scale-to-zero-grace-period to 1 s, so that cold
// start benchmarks wait less for each scale to zero.
func shortGracePeriod(b *testing.B) {
	b.Helper()
	cms := knd.Clientset(b).CoreV1().ConfigMaps("knative-serving")
	cm, err := cms.Get(context.Background(), "config-autoscaler", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data["scale-to-zero-grace-period"] = "1s"
	if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkColdStart measures the first request to a revision at zero until
// its response, b.N times: each iteration waits for the revision to scale
// to zero (window 6 s, grace 1 s), so keep -benchtime small (e.g. 10x).
func BenchmarkColdStart(b *testing.B) { coldStart(b, "bench-cold", 0) }

// BenchmarkColdStartSettled is BenchmarkColdStart with the request sent a
// second after the last pod is gone, once the controllers have finished
// reacting to the scale-down: what a request arriving at a revision long
// at zero sees.
func BenchmarkColdStartSettled(b *testing.B) { coldStart(b, "bench-cold-settled", time.Second) }

// waitForNoPods waits until namespace ns has no pod left (its revision
// scaled to zero), polling every 100 ms for up to two minutes.
func waitForNoPods(b *testing.B, ns string) {
	cs := knd.Clientset(b)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err == nil && len(pods.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("revision did not scale to zero")
		}
	}
}

// coldStart measures the first request to a revision at zero until its
// response, settle after its last pod is gone.
func coldStart(b *testing.B, ns string, settle time.Duration) {
	shortGracePeriod(b)
	benchService(b, ns, "cold", map[string]string{"autoscaling.knative.dev/window": "6s"})
	gw := fmt.Sprintf("http://127.0.0.1:%d/", knd.GatewayPort)
	var starts []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		waitForNoPods(b, ns)
		time.Sleep(settle)
		b.StartTimer()
		t := time.Now()
		if err := get(gw, "cold."+ns+".example.com"); err != nil {
			b.Fatal(err)
		}
		starts = append(starts, time.Since(t))
	}
	b.ReportMetric(ms(p50(starts)), "ms-cold-p50")
	b.ReportMetric(ms(percentile(starts, 0.99)), "ms-cold-p99")
}

// BenchmarkColdStartSandbox measures cold starts on the sandboxed process
// runtime (the shared server) and on a second server started with
// --sandbox=false (pods on the host's network, unisolated: the runtime
// before the sandbox), alternating between them in the same run, b.N each.
func BenchmarkColdStartSandbox(b *testing.B) {
	plain, err := kndtest.New()
	if err != nil {
		b.Fatal(err)
	}
	plain.ExtraArgs = []string{"--sandbox=false"}
	if err := plain.Start(); err != nil {
		b.Fatal(err)
	}
	defer plain.Stop()
	shared := knd
	defer func() { knd = shared }()
	servers := []struct {
		name   string
		s      *kndtest.Server
		starts []time.Duration
	}{{name: "sandboxed", s: shared}, {name: "plain", s: plain}}
	const ns = "bench-cold-sandbox"
	for i := range servers {
		knd = servers[i].s
		shortGracePeriod(b)
		benchService(b, ns, "cold", map[string]string{"autoscaling.knative.dev/window": "6s"})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range servers {
			srv := &servers[(i+j)%len(servers)]
			knd = srv.s
			waitForNoPods(b, ns)
			t := time.Now()
			if err := get(fmt.Sprintf("http://127.0.0.1:%d/", srv.s.GatewayPort), "cold."+ns+".example.com"); err != nil {
				b.Fatal(err)
			}
			srv.starts = append(srv.starts, time.Since(t))
		}
	}
	for _, srv := range servers {
		b.ReportMetric(ms(p50(srv.starts)), "ms-cold-p50-"+srv.name)
		b.ReportMetric(ms(percentile(srv.starts, 0.99)), "ms-cold-p99-"+srv.name)
	}
}

// BenchmarkBurst goes from 1 to 50 concurrent clients on a revision with
// containerConcurrency 5 (each request takes 100 ms), and measures the time
// from the burst until the revision has the 10 Ready pods that 50 clients
// need, counting failed requests. Each iteration is one burst on a fresh
// service, bounded to 60 s; keep -benchtime small (e.g. 3x).
func BenchmarkBurst(b *testing.B) {
	const clients, cc = 50, 5
	gw := fmt.Sprintf("http://127.0.0.1:%d/slow?ms=100", knd.GatewayPort)
	cs := knd.Clientset(b)
	var toCapacity []time.Duration
	failures := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns, name := "bench-burst", fmt.Sprintf("burst-%d", i)
		benchService(b, ns, name, map[string]string{"autoscaling.knative.dev/window": "6s"}, func(s *servingv1.Service) {
			s.Spec.Template.Spec.ContainerConcurrency = &[]int64{cc}[0]
		})
		host := name + "." + ns + ".example.com"
		// One client for 3 s: the revision settles at one pod.
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
			if err := get(gw, host); err != nil {
				failures++
			}
		}
		b.StartTimer()
		start := time.Now()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range clients {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := get(gw, host); err != nil {
						mu.Lock()
						failures++
						mu.Unlock()
					}
				}
			})
		}
		reached := time.Duration(0)
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "serving.knative.dev/service=" + name})
			if err != nil {
				continue
			}
			ready := 0
			for _, p := range pods.Items {
				for _, cond := range p.Status.Conditions {
					if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
						ready++
					}
				}
			}
			if ready >= clients/cc {
				reached = time.Since(start)
				break
			}
		}
		close(stop)
		wg.Wait()
		b.StopTimer()
		if reached == 0 {
			b.Fatalf("burst %d: fewer than %d Ready pods after 60 s", i, clients/cc)
		}
		toCapacity = append(toCapacity, reached)
		scheme, _ := manager.Scheme()
		if c, err := client.New(knd.RestConfig, client.Options{Scheme: scheme}); err == nil {
			_ = c.Delete(context.Background(), &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
		}
	}
	b.ReportMetric(ms(p50(toCapacity)), "ms-to-capacity-p50")
	b.ReportMetric(float64(failures), "failed-requests")
}
