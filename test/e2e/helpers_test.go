package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/reconciler/manager"
	"github.com/knd-dev/knd/test/kndtest"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// tutorial is the markdown being written: each step's commands with what
// they really printed in this run.
type tutorial struct{ b strings.Builder }

func (d *tutorial) heading(level int, title string) {
	fmt.Fprintf(&d.b, "\n%s %s\n\n", strings.Repeat("#", level), title)
}

func (d *tutorial) para(text string) { fmt.Fprintf(&d.b, "%s\n\n", strings.TrimSpace(text)) }

func (d *tutorial) console(command, output string) {
	fmt.Fprintf(&d.b, "```console\n$ %s\n%s", command, output)
	if output != "" && !strings.HasSuffix(output, "\n") {
		d.b.WriteString("\n")
	}
	d.b.WriteString("```\n\n")
}

// shellQuote quotes an argument for display when the shell would need it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \"'$*?[]{}();&|<>#!\\") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// knd runs the knd binary as a user would (its own kubeconfig lookup),
// records the command and its output, and returns the output. wantErr says
// whether the command must fail.
func (d *tutorial) knd(t *testing.T, wantErr bool, args ...string) string {
	t.Helper()
	cmd := exec.Command(server.Bin, args...)
	cmd.Env = append(os.Environ(), "KND_DATA_DIR="+server.DataDir, "KUBECONFIG=")
	cmd.Dir = repoRoot
	b, err := cmd.CombinedOutput()
	out := string(b)
	if (err != nil) != wantErr {
		t.Fatalf("knd %s: error %v, want error %v\n%s", strings.Join(args, " "), err, wantErr, out)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	d.console("knd "+strings.Join(quoted, " "), out)
	return out
}

// curl sends one request through the gateway, records it as the curl
// command a user types, and returns the body.
func (d *tutorial) curl(t *testing.T, host string, header ...string) string {
	t.Helper()
	code, body := get(t, host, header...)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", host, code, body)
	}
	d.console(curlCommand(host, header...), body)
	return body
}

func curlCommand(host string, header ...string) string {
	cmd := fmt.Sprintf("curl -H %s", shellQuote("Host: "+host))
	for i := 0; i+1 < len(header); i += 2 {
		cmd += " -H " + shellQuote(header[i]+": "+header[i+1])
	}
	return cmd + " http://127.0.0.1:8080/"
}

// curlMany sends n requests and records them as a loop piped to uniq -c,
// with the counts this run saw.
func (d *tutorial) curlMany(t *testing.T, n int, host string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		code, body := get(t, host)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", host, code, body)
		}
		counts[strings.TrimSuffix(body, "\n")]++
	}
	var lines []string
	for body, n := range counts {
		lines = append(lines, fmt.Sprintf("%7d %s", n, body))
	}
	sort.Strings(lines)
	d.console(fmt.Sprintf("for i in $(seq %d); do %s; done | sort | uniq -c", n, strings.Replace(curlCommand(host), "curl ", "curl -s ", 1)),
		strings.Join(lines, "\n"))
	return counts
}

// curlHead sends one request, records it as `curl -i` with the status line
// and the headers named in show, and returns the status and those headers.
func (d *tutorial) curlHead(t *testing.T, host string, show []string, header ...string) (int, http.Header) {
	t.Helper()
	resp, body := server.Request(t, http.MethodGet, host, "/", header...)
	out := fmt.Sprintf("HTTP/1.1 %s\n", resp.Status)
	for _, h := range show {
		if v := resp.Header.Get(h); v != "" {
			out += strings.ToLower(h) + ": " + v + "\n"
		}
	}
	d.console(strings.Replace(curlCommand(host, header...), "curl ", "curl -i ", 1), out+"\n"+body)
	return resp.StatusCode, resp.Header
}

func get(t *testing.T, host string, header ...string) (int, string) {
	t.Helper()
	resp, body := server.Request(t, http.MethodGet, host, "/", header...)
	return resp.StatusCode, body
}

func apiClient(t *testing.T) client.Client {
	t.Helper()
	scheme, err := manager.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(server.RestConfig, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// poll calls cond until it is true or the deadline passes.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	kndtest.Poll(t, timeout, what, cond)
}

// waitReady waits (without recording anything) until the service has
// observed its latest spec, is Ready, and its latest ready revision is rev.
func waitReady(t *testing.T, ns, name, rev string) *servingv1.Service {
	t.Helper()
	c := apiClient(t)
	svc := &servingv1.Service{}
	poll(t, time.Minute, fmt.Sprintf("service %s/%s ready at %s", ns, name, rev), func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
			return false, err.Error()
		}
		ready := svc.Status.GetCondition("Ready")
		return svc.Status.ObservedGeneration == svc.Generation && ready != nil && ready.Status == corev1.ConditionTrue &&
			svc.Status.LatestReadyRevisionName == rev, fmt.Sprintf("%+v", svc.Status)
	})
	return svc
}

// within says whether n is within tolerance (a fraction) of want.
func within(n, want int, tolerance float64) bool {
	return float64(n) >= float64(want)*(1-tolerance) && float64(n) <= float64(want)*(1+tolerance)
}

// mustContain fails unless out contains every line.
func mustContain(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}
