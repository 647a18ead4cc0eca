package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const tutorialIntro = `# knd tutorial: Knative Serving on one machine

This guide follows the Knative Serving tutorials knd was started from, step by step, with knd's
commands. Every command below was run by ` + "`make tutorial`" + ` (the end-to-end test in ` + "`test/e2e`" + `
replays the same steps and checks what they print), and the output shown is what knd printed in
that run; ages, pod names and request counts differ from run to run.

Start the server in one terminal and run the commands in another. The tutorials' sample apps are
built into knd (from ` + "`examples/apps`" + `) and are in its image store from the first start, under
the image names the tutorials' manifests use, so no registry is needed:

` + "```console" + `
$ make run
` + "```" + `

The gateway listens on http://127.0.0.1:8080; requests pick a service with their Host header, as
with Knative's ingress.
`

// TestTutorial replays the tutorials in order; each part starts from where
// the previous one left the server.
func TestTutorial(t *testing.T) {
	d := &tutorial{}
	d.b.WriteString(tutorialIntro)
	for _, part := range []struct {
		name string
		run  func(*testing.T, *tutorial)
	}{
		{"deploy and update", deployAndUpdate},
		{"traffic split", trafficSplit},
		{"tags", tags},
		{"gradual rollout", gradualRollout},
		{"tag routing", tagRouting},
		{"rest-api", restAPI},
		{"kn updates", knUpdates},
		{"scale to zero", scaleToZero},
		{"revision names", revisionNames},
		{"domain mapping", domainMapping},
		{"volumes", volumes},
		{"virtual services", virtualServices},
		{"http routes and session affinity", httpRoutesAndAffinity},
	} {
		if !t.Run(part.name, func(t *testing.T) { part.run(t, d) }) {
			return
		}
	}
	if *tutorialFile != "" {
		if err := os.WriteFile(*tutorialFile, []byte(d.b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func deployAndUpdate(t *testing.T, d *tutorial) {
	d.heading(2, "1. Deploy helloworld-go, then update it twice")
	d.para("A Knative Service is a manifest away. knd defaults and validates it like upstream, creates its " +
		"Configuration, Route and first Revision, and starts a pod for it:")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/traffic-split/00-namespace.yaml")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/traffic-split/01-hello-world-v1.yaml")
	waitReady(t, "knative-demo", "helloworld-go", "helloworld-go-00001")
	out := d.knd(t, false, "kubectl", "get", "ksvc", "-n", "knative-demo")
	mustContain(t, out, "helloworld-go   http://helloworld-go.knative-demo.example.com   helloworld-go-00001   helloworld-go-00001   True")
	if body := d.curl(t, "helloworld-go.knative-demo.example.com"); body != "Hello Go Sample v1!\n" {
		t.Errorf("v1 answered %q", body)
	}
	d.para("Every change to the template makes exactly one new revision; traffic follows the latest ready one:")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/traffic-split/02-hello-world-v2.yaml")
	waitReady(t, "knative-demo", "helloworld-go", "helloworld-go-00002")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/traffic-split/03-hello-world-v3.yaml")
	waitReady(t, "knative-demo", "helloworld-go", "helloworld-go-00003")
	out = d.knd(t, false, "kubectl", "get", "rev", "-n", "knative-demo")
	mustContain(t, out, "helloworld-go-00001   helloworld-go", "helloworld-go-00002   helloworld-go", "helloworld-go-00003   helloworld-go")
	out = d.knd(t, false, "route", "describe", "helloworld-go", "-n", "knative-demo")
	mustContain(t, out, "URL:        http://helloworld-go.knative-demo.example.com", "  100%  @latest (helloworld-go-00003)")
	if body := d.curl(t, "helloworld-go.knative-demo.example.com"); body != "Hello Go Sample v3!\n" {
		t.Errorf("v3 answered %q", body)
	}
}

func trafficSplit(t *testing.T, d *tutorial) {
	d.heading(2, "2. Split traffic 0/40/60 with a staging tag")
	d.para("The traffic block pins percentages to revisions; a tag gives a revision its own URL, even at 0%:")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/traffic-split/04-hello-world-v3-split.yaml")
	poll(t, time.Minute, "0/40/60 split", func() (bool, string) {
		svc := waitReady(t, "knative-demo", "helloworld-go", "helloworld-go-00003")
		return len(svc.Status.Traffic) == 3, fmt.Sprint(svc.Status.Traffic)
	})
	out := d.knd(t, false, "route", "describe", "helloworld-go", "-n", "knative-demo")
	mustContain(t, out, "    0%  helloworld-go-00001 #staging\n        URL:  http://staging-helloworld-go.knative-demo.example.com\n",
		"   40%  helloworld-go-00002\n", "   60%  helloworld-go-00003\n")
	counts := d.curlMany(t, 200, "helloworld-go.knative-demo.example.com")
	if !within(counts["Hello Go Sample v2!"], 80, 0.3) || counts["Hello Go Sample v2!"]+counts["Hello Go Sample v3!"] != 200 {
		t.Errorf("40/60 split over 200 requests: %v", counts)
	}
	if body := d.curl(t, "staging-helloworld-go.knative-demo.example.com"); body != "Hello Go Sample v1!\n" {
		t.Errorf("staging answered %q", body)
	}
}

func tags(t *testing.T, d *tutorial) {
	d.heading(2, "3. Tag revisions, move traffic by tag, untag")
	d.para("`knd service update` takes kn's `--tag`, `--traffic` and `--untag` flags. `@latest` is the latest " +
		"ready revision:")
	out := d.knd(t, false, "service", "update", "helloworld-go", "--tag", "helloworld-go-00002=green", "--tag", "@latest=blue", "-n", "knative-demo")
	mustContain(t, out, "Service 'helloworld-go' with latest revision 'helloworld-go-00003' (unchanged) is available at URL:\nhttp://helloworld-go.knative-demo.example.com\n")
	out = d.knd(t, false, "route", "describe", "helloworld-go", "-n", "knative-demo")
	mustContain(t, out, "   40%  helloworld-go-00002 #green\n        URL:  http://green-helloworld-go.knative-demo.example.com\n",
		"    0%  @latest (helloworld-go-00003) #blue\n        URL:  http://blue-helloworld-go.knative-demo.example.com\n")
	if body := d.curl(t, "green-helloworld-go.knative-demo.example.com"); body != "Hello Go Sample v2!\n" {
		t.Errorf("green answered %q", body)
	}
	d.para("A tag stands for its revision in `--traffic`; here all traffic moves to `blue`:")
	d.knd(t, false, "service", "update", "helloworld-go", "--traffic", "blue=100", "--traffic", "green=0", "-n", "knative-demo")
	out = d.knd(t, false, "route", "describe", "helloworld-go", "-n", "knative-demo")
	mustContain(t, out, "    0%  helloworld-go-00002 #green\n", "  100%  @latest (helloworld-go-00003) #blue\n")
	counts := d.curlMany(t, 20, "helloworld-go.knative-demo.example.com")
	if counts["Hello Go Sample v3!"] != 20 {
		t.Errorf("all traffic on blue: %v", counts)
	}
	d.para("Percentages must add up to 100; knd refuses anything else before sending it, as kn does:")
	out = d.knd(t, true, "service", "update", "helloworld-go", "--traffic", "helloworld-go-00001=50", "--traffic", "helloworld-go-00002=60", "-n", "knative-demo")
	mustContain(t, out, "Error: given traffic percents sum to 110, want 100")
	out = d.knd(t, true, "service", "update", "helloworld-go", "--traffic", "helloworld-go-00001=50", "--traffic", "helloworld-go-00002=40", "-n", "knative-demo")
	mustContain(t, out, "Error: given traffic percents sum to 90, want 100")
	d.para("Removing a tag removes its URL; the traffic stays:")
	d.knd(t, false, "service", "update", "helloworld-go", "--untag", "blue", "-n", "knative-demo")
	if code, body := get(t, "blue-helloworld-go.knative-demo.example.com"); code != 404 {
		t.Errorf("untagged blue host: %d %s", code, body)
	}
	d.console(curlCommand("blue-helloworld-go.knative-demo.example.com")+" -w '%{http_code}\\n'", func() string {
		code, body := get(t, "blue-helloworld-go.knative-demo.example.com")
		return fmt.Sprintf("%s%d\n", body, code)
	}())
}

func gradualRollout(t *testing.T, d *tutorial) {
	d.heading(2, "4. Gradual rollout")
	d.para("With `serving.knative.dev/rollout-duration` on the Service (or `rollout-duration` in " +
		"`config-network`), a new revision takes traffic over gradually: 1% first, then the rest in equal " +
		"steps over the duration.")
	d.knd(t, false, "kubectl", "annotate", "ksvc", "helloworld-go", "-n", "knative-demo", "serving.knative.dev/rollout-duration=20s")
	d.knd(t, false, "service", "update", "helloworld-go", "--env", "TARGET=Go Sample v4", "-n", "knative-demo", "--no-wait")
	c := apiClient(t)
	var route servingv1.Route
	poll(t, time.Minute, "rollout started", func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "knative-demo", Name: "helloworld-go"}, &route); err != nil {
			return false, err.Error()
		}
		latest := 0
		for _, tt := range route.Status.Traffic {
			if ptr.Deref(tt.LatestRevision, false) {
				latest++
			}
		}
		return latest == 2, fmt.Sprint(route.Status.Traffic)
	})
	out := d.knd(t, false, "route", "describe", "helloworld-go", "-n", "knative-demo")
	mustContain(t, out, "@latest (helloworld-go-00004)", "@latest (helloworld-go-00003)", "IngressReady")
	d.para("When the duration has passed, the new revision has all of it:")
	poll(t, time.Minute, "rollout done", func() (bool, string) {
		svc := waitReady(t, "knative-demo", "helloworld-go", "helloworld-go-00004")
		for _, tt := range svc.Status.Traffic {
			if tt.RevisionName == "helloworld-go-00004" && ptr.Deref(tt.Percent, 0) == 100 {
				return true, ""
			}
		}
		return false, fmt.Sprint(svc.Status.Traffic)
	})
	out = d.knd(t, false, "route", "describe", "helloworld-go", "-n", "knative-demo")
	mustContain(t, out, "  100%  @latest (helloworld-go-00004)\n")
}

func tagRouting(t *testing.T, d *tutorial) {
	d.heading(2, "5. Canary by tag: tag hosts and the Knative-Serving-Tag header")
	d.para("Two revisions share traffic 50/50, each tagged; a tag's host reaches its revision alone:")
	for _, f := range []string{"00-namespace", "01-helloworld-go-v1"} {
		d.knd(t, false, "kubectl", "apply", "-f", "examples/tag-routing/"+f+".yaml")
	}
	waitReady(t, "example", "helloworld-go", "helloworld-go-00001")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/tag-routing/04-helloworld-go-tags.yaml")
	poll(t, time.Minute, "tags a and b", func() (bool, string) {
		svc := waitReady(t, "example", "helloworld-go", "helloworld-go-00002")
		return len(svc.Status.Traffic) == 2 && svc.Status.Traffic[1].Tag == "b", fmt.Sprint(svc.Status.Traffic)
	})
	d.knd(t, false, "service", "describe", "helloworld-go", "-n", "example")
	if body := d.curl(t, "a-helloworld-go.example.example.com"); body != "Hello Go Sample v1!\n" {
		t.Errorf("tag a answered %q", body)
	}
	if body := d.curl(t, "b-helloworld-go.example.example.com"); body != "Hello Go Sample v2!\n" {
		t.Errorf("tag b answered %q", body)
	}
	d.para("With `tag-header-based-routing` enabled in `config-features`, the `Knative-Serving-Tag` header picks " +
		"the tag on the service's own host:")
	d.knd(t, false, "kubectl", "patch", "configmap", "config-features", "-n", "knative-serving", "-p", `{"data":{"tag-header-based-routing":"Enabled"}}`)
	poll(t, 30*time.Second, "header routing on", func() (bool, string) {
		counts := map[string]int{}
		for range 10 {
			_, body := get(t, "helloworld-go.example.example.com", "Knative-Serving-Tag", "b")
			counts[body]++
		}
		return counts["Hello Go Sample v2!\n"] == 10, fmt.Sprint(counts)
	})
	if body := d.curl(t, "helloworld-go.example.example.com", "Knative-Serving-Tag", "b"); body != "Hello Go Sample v2!\n" {
		t.Errorf("header b answered %q", body)
	}
	if body := d.curl(t, "helloworld-go.example.example.com", "Knative-Serving-Tag", "a"); body != "Hello Go Sample v1!\n" {
		t.Errorf("header a answered %q", body)
	}
}

func restAPI(t *testing.T, d *tutorial) {
	d.heading(2, "6. The rest-api stock example: tags v1/v2/v3, 50/50, 40/30/30 and rollback")
	d.para("These manifests are the tutorial's original `v1alpha1` ones; knd serves that version too. " +
		"Revision names are chosen in the manifests:")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/rest-api/01-revision-v1.yaml")
	waitReady(t, "default", "stock-service-example", "stock-service-example-v1")
	if body := d.curl(t, "stock-service-example.default.example.com"); body != "Welcome to the v1 app!\n" {
		t.Errorf("v1 answered %q", body)
	}
	d.knd(t, false, "kubectl", "apply", "-f", "examples/rest-api/02-revision-v2.yaml")
	waitReady(t, "default", "stock-service-example", "stock-service-example-v2")
	counts := d.curlMany(t, 200, "stock-service-example.default.example.com")
	if !within(counts["Welcome to the v1 app!"], 100, 0.25) || counts["Welcome to the v1 app!"]+counts["Welcome to the v2 app!"] != 200 {
		t.Errorf("50/50 over 200 requests: %v", counts)
	}
	d.para("v3 arrives with 0% under the `latest` tag, reachable before it takes any traffic:")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/rest-api/03-revision-v3.yaml")
	waitReady(t, "default", "stock-service-example", "stock-service-example-v3")
	if body := d.curl(t, "latest-stock-service-example.default.example.com"); body != "Welcome to the v3 app!\n" {
		t.Errorf("latest answered %q", body)
	}
	d.knd(t, false, "kubectl", "apply", "-f", "examples/rest-api/04-revision-v3-2.yaml")
	poll(t, time.Minute, "40/30/30", func() (bool, string) {
		svc := waitReady(t, "default", "stock-service-example", "stock-service-example-v3")
		return len(svc.Status.Traffic) == 4, fmt.Sprint(svc.Status.Traffic)
	})
	out := d.knd(t, false, "revision", "list", "-s", "stock-service-example")
	mustContain(t, out, "stock-service-example-v3   stock-service-example   30%       v3,latest",
		"stock-service-example-v2   stock-service-example   30%       v2", "stock-service-example-v1   stock-service-example   40%       v1")
	counts = d.curlMany(t, 300, "stock-service-example.default.example.com")
	if !within(counts["Welcome to the v1 app!"], 120, 0.3) || !within(counts["Welcome to the v3 app!"], 90, 0.35) {
		t.Errorf("40/30/30 over 300 requests: %v", counts)
	}
	d.para("Rolling back is a traffic change: everything to the `v1` tag, no new revision:")
	d.knd(t, false, "service", "update", "stock-service-example", "--traffic", "v1=100")
	counts = d.curlMany(t, 20, "stock-service-example.default.example.com")
	if counts["Welcome to the v1 app!"] != 20 {
		t.Errorf("rollback: %v", counts)
	}
}

func knUpdates(t *testing.T, d *tutorial) {
	d.heading(2, "7. Updating env and image with `knd service update`")
	d.para("`knd service create` and `update` wait for the service and print kn's progress lines:")
	out := d.knd(t, false, "service", "create", "hello", "--image", "ikubernetes/helloworld-go", "--env", "TARGET=First")
	mustContain(t, out, "Creating service 'hello' in namespace 'default':", "Ready to serve.",
		"Service 'hello' created to latest revision 'hello-00001' is available at URL:\nhttp://hello.default.example.com\n")
	out = d.knd(t, false, "service", "update", "hello", "--env", "TARGET=Second")
	mustContain(t, out, "Updating Service 'hello' in namespace 'default':", "Service 'hello' updated to latest revision 'hello-00002' is available at URL:")
	out = d.knd(t, false, "revision", "list", "-s", "hello")
	mustContain(t, out, "hello-00002   hello     100%             2", "hello-00001   hello                      1")
	out = d.knd(t, false, "revision", "describe", "hello-00002")
	mustContain(t, out, "Env:        TARGET=Second", "Service:    hello", "  ++ Ready")
	if body := d.curl(t, "hello.default.example.com"); body != "Hello Second!\n" {
		t.Errorf("hello answered %q", body)
	}
	d.para("A new image is a new revision too:")
	d.knd(t, false, "service", "update", "hello", "--image", "ghcr.dockerproxy.com/knative/helloworld-go:latest")
	d.knd(t, false, "service", "update", "hello", "--traffic", "hello-00003=50", "--traffic", "hello-00002=25", "--traffic", "hello-00001=25")
	out = d.knd(t, false, "service", "describe", "hello")
	mustContain(t, out, "   50%  hello-00003 (current @latest) [3]", "   25%  hello-00002 [2]", "   25%  hello-00001 [1]",
		"Image:     ghcr.dockerproxy.com/knative/helloworld-go:latest (pinned to ")
	counts := d.curlMany(t, 200, "hello.default.example.com")
	if !within(counts["Hello First!"], 50, 0.4) || counts["Hello First!"]+counts["Hello Second!"] != 200 {
		t.Errorf("25/25/50 over 200 requests: %v", counts)
	}
}

func scaleToZero(t *testing.T, d *tutorial) {
	d.heading(2, "8. Scale to zero and back")
	d.para("A revision that receives no traffic for the stable window (60 s by default) plus " +
		"`scale-to-zero-grace-period` goes to zero pods. Shorter windows make the tutorial quicker:")
	d.knd(t, false, "kubectl", "patch", "configmap", "config-autoscaler", "-n", "knative-serving", "-p",
		`{"data":{"stable-window":"6s","scale-to-zero-grace-period":"2s"}}`)
	c := apiClient(t)
	poll(t, 2*time.Minute, "hello scaled to zero", func() (bool, string) {
		var rev servingv1.Revision
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "hello-00003"}, &rev); err != nil {
			return false, err.Error()
		}
		active := rev.Status.GetCondition("Active")
		return active != nil && active.Reason == "NoTraffic" && ptr.Deref(rev.Status.ActualReplicas, -1) == 0, fmt.Sprint(rev.Status.Conditions)
	})
	out := d.knd(t, false, "revision", "describe", "hello-00003")
	mustContain(t, out, "Replicas:   0/0", "   I Active", "NoTraffic")
	d.knd(t, false, "kubectl", "get", "kpa", "hello-00003")
	d.para("The next request is held by the gateway while a pod starts, and answered:")
	start := time.Now()
	body := d.curl(t, "hello.default.example.com")
	coldStart := time.Since(start)
	if !strings.HasPrefix(body, "Hello ") {
		t.Errorf("cold request answered %q", body)
	}
	if coldStart > 5*time.Second {
		t.Errorf("a scaled-to-zero service took %v to answer", coldStart)
	}
	d.para(fmt.Sprintf("That request took %d ms from zero pods in this run (upstream Knative takes seconds).", coldStart.Milliseconds()))
}

func revisionNames(t *testing.T, d *tutorial) {
	d.heading(2, "9. Revision names of your own, and containerConcurrency")
	d.knd(t, false, "service", "delete", "hello")
	d.para("`spec.template.metadata.name` names the revision; it must start with the service name:")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/byo-revision-name/01-hello-world.yaml")
	waitReady(t, "default", "hello", "hello-world")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/byo-revision-name/02-hello-world-002.yaml")
	waitReady(t, "default", "hello", "hello-world-002")
	out := d.knd(t, false, "service", "list")
	mustContain(t, out, "hello                   http://hello.default.example.com                   hello-world-002")
	out = d.knd(t, false, "revision", "list", "-s", "hello")
	mustContain(t, out, "hello-world-002   hello     100%             2", "hello-world       hello                      1")
	d.para("`containerConcurrency: 10` means a pod never gets more than ten requests at once; more wait " +
		"in the gateway's queue and a second pod starts:")
	out = d.knd(t, false, "revision", "describe", "hello-world-002")
	mustContain(t, out, "Concurrency:  Limit: 10")
	var wg sync.WaitGroup
	failures := make(chan string, 30)
	for range 30 {
		wg.Go(func() {
			if code, body := get(t, "hello.default.example.com"); code != 200 || body != "Hello World-002!\n" {
				failures <- fmt.Sprint(code, body)
			}
		})
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("concurrent request: %s", f)
	}
	if body := d.curl(t, "hello.default.example.com"); body != "Hello World-002!\n" {
		t.Errorf("hello answered %q", body)
	}
}

func domainMapping(t *testing.T, d *tutorial) {
	d.heading(2, "10. DomainMapping with a ClusterDomainClaim")
	d.para("A DomainMapping routes its own domain to a service. The namespace must hold a ClusterDomainClaim " +
		"for the domain, created here by hand (or automatically with `autocreate-cluster-domain-claims: \"true\"` " +
		"in `config-network`):")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/domainmapping/01-cdc-hello.cropy.cn.yaml")
	out := d.knd(t, false, "domain", "create", "hello.cropy.cn", "--ref", "ksvc:hello")
	mustContain(t, out, "Domain mapping 'hello.cropy.cn' created in namespace 'default'.")
	poll(t, 30*time.Second, "mapping ready", func() (bool, string) {
		code, body := get(t, "hello.cropy.cn")
		return code == 200, fmt.Sprint(code, body)
	})
	out = d.knd(t, false, "domain", "list")
	mustContain(t, out, "hello.cropy.cn   http://hello.cropy.cn   True    hello")
	d.knd(t, false, "domain", "describe", "hello.cropy.cn")
	if body := d.curl(t, "hello.cropy.cn"); body != "Hello World-002!\n" {
		t.Errorf("mapped domain answered %q", body)
	}
}

func volumes(t *testing.T, d *tutorial) {
	d.heading(2, "11. Files from a ConfigMap, kept up to date")
	d.para("Revisions mount ConfigMaps, Secrets, projected and emptyDir volumes (and PersistentVolumeClaims with " +
		"`kubernetes.podspec-persistent-volume-claim` enabled in `config-features`), as pods on a cluster do. " +
		"knd's build of helloworld-go reads its target from the file `TARGET_FILE` names, when set. " +
		"Put the target in a ConfigMap and mount it with kn's `--mount`:")
	d.knd(t, false, "kubectl", "create", "configmap", "greeting", "--from-literal=target=Volumes")
	out := d.knd(t, false, "service", "create", "greeter", "--image", "ghcr.dockerproxy.com/knative/helloworld-go:latest",
		"--mount", "/etc/greeting=cm:greeting", "--env", "TARGET_FILE=/etc/greeting/target")
	mustContain(t, out, "Service 'greeter' created to latest revision 'greeter-00001' is available at URL:")
	if body := d.curl(t, "greeter.default.example.com"); body != "Hello Volumes!\n" {
		t.Errorf("greeter answered %q", body)
	}
	d.para("The volume is read-only in the container, and a change to the ConfigMap reaches the running pod " +
		"within seconds (on a cluster, within a minute or so), with no new revision:")
	d.knd(t, false, "kubectl", "patch", "configmap", "greeting", "-p", `{"data":{"target":"Files"}}`)
	poll(t, 30*time.Second, "the change shown", func() (bool, string) {
		code, body := get(t, "greeter.default.example.com")
		return code == 200 && body == "Hello Files!\n", fmt.Sprint(code, body)
	})
	if body := d.curl(t, "greeter.default.example.com"); body != "Hello Files!\n" {
		t.Errorf("greeter answered %q", body)
	}
	d.para("Each revision also has upstream's two Services, `<revision>` and `<revision>-private`, beside the " +
		"route's (knd's gateway reaches the pods itself, so they select none):")
	out = d.knd(t, false, "kubectl", "get", "svc", "-l", "serving.knative.dev/service=greeter")
	mustContain(t, out, "greeter-00001           ClusterIP", "greeter-00001-private   ClusterIP")
	d.para("A ConfigMap or Secret that does not exist keeps the revision from becoming ready, with the reason " +
		"the kubelet gives:")
	d.knd(t, false, "service", "update", "greeter", "--mount", "/etc/extra=cm:missing", "--no-wait")
	poll(t, time.Minute, "the revision not ready", func() (bool, string) {
		var rev servingv1.Revision
		err := apiClient(t).Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "greeter-00002"}, &rev)
		c := rev.Status.GetCondition(servingv1.ConditionResourcesAvailable)
		return err == nil && c != nil && c.Status == "False", fmt.Sprint(err, c)
	})
	out = d.knd(t, false, "revision", "describe", "greeter-00002", "-v")
	mustContain(t, out, `configmap "missing" not found`)
}

// virtualServices replays the tutorial's Istio VirtualServices (seed 002,
// section 3), on the tagged helloworld-go that tagRouting left in example.
func virtualServices(t *testing.T, d *tutorial) {
	d.heading(2, "12. Istio VirtualServices: a header canary, a redirect, straight to a revision")
	d.para("knd's gateway serves `networking.istio.io` VirtualServices (v1alpha3, v1beta1 and v1) itself, " +
		"no mesh needed; `knative-serving/knative-ingress-gateway`, `knative-serving/knative-local-gateway` " +
		"and `mesh` all mean knd's gateway, and so do `istio-ingressgateway.istio-system.svc.cluster.local` " +
		"and `knd-gateway.knative-serving.svc.cluster.local` as destinations (\"route again by the new " +
		"authority\"). The tutorial's first VirtualService sends a header `wid` starting with `a` or `b` to " +
		"the tag hosts of section 5:")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/virtualservice/01-rewrite.yaml")
	waitVirtualService(t, "example", "helloworld-go-rewrite-ingress")
	d.knd(t, false, "kubectl", "get", "vs", "-n", "example")
	if body := d.curl(t, "helloworld-go.weimobb.com", "wid", "a"); body != "Hello Go Sample v1!\n" {
		t.Errorf("wid a answered %q", body)
	}
	if body := d.curl(t, "helloworld-go.weimobb.com", "wid", "b"); body != "Hello Go Sample v2!\n" {
		t.Errorf("wid b answered %q", body)
	}
	d.para("A request no rule matches gets Envoy's answer, a 404 without a body:")
	if code, _ := d.curlHead(t, "helloworld-go.weimobb.com", []string{"Content-Length"}); code != http.StatusNotFound {
		t.Errorf("no wid: %d, want 404", code)
	}
	d.para("The second answers with a redirect to the tag host (the tutorial's `curl -L` then follows it; " +
		"here the second request names that host itself):")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/virtualservice/02-redirect.yaml")
	waitVirtualService(t, "example", "helloworld-go-redirect-ingress")
	code, h := d.curlHead(t, "helloworld-go.weimoba.com", []string{"Location", "Content-Length"})
	if code != http.StatusMovedPermanently || h.Get("Location") != "http://a-helloworld-go.example.example.com/" {
		t.Errorf("redirect: %d to %q", code, h.Get("Location"))
	}
	if body := d.curl(t, "a-helloworld-go.example.example.com"); body != "Hello Go Sample v1!\n" {
		t.Errorf("the redirect's target answered %q", body)
	}
	d.para("The third sends each `wid` straight to a revision by its in-cluster name, " +
		"`<revision>.<namespace>.svc.cluster.local`:")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/virtualservice/03-to-revisions.yaml")
	waitVirtualService(t, "example", "helloworld-go-weimob-com-ingress")
	if body := d.curl(t, "helloworld-go.weimob.com", "wid", "b"); body != "Hello Go Sample v2!\n" {
		t.Errorf("wid b answered %q", body)
	}
	if body := d.curl(t, "helloworld-go.weimob.com", "wid", "a"); body != "Hello Go Sample v1!\n" {
		t.Errorf("wid a answered %q", body)
	}
	d.para("Fields knd's gateway does not serve are refused by name rather than ignored (`kubectl apply`, `create` and `replace` validate strictly by default; `kubectl patch` only warns), and each " +
		"VirtualService says in its Ready condition whether the gateway serves it:")
	out := d.knd(t, true, "kubectl", "apply", "-f", "examples/virtualservice/refused-cors-policy.yaml")
	mustContain(t, out, `unknown field "spec.http[0].corsPolicy"`)
	out = d.knd(t, false, "kubectl", "get", "vs", "-n", "example")
	mustContain(t, out, "helloworld-go-redirect-ingress")
}

// waitVirtualService waits until the gateway serves a VirtualService, as
// its Ready condition says.
func waitVirtualService(t *testing.T, ns, name string) {
	t.Helper()
	poll(t, time.Minute, "VirtualService "+name+" Ready", func() (bool, string) {
		var vs istiov1.VirtualService
		err := apiClient(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &vs)
		c := vs.Status.GetCondition("Ready")
		return err == nil && c != nil && c.Status == "True", fmt.Sprint(err, c)
	})
}

// httpRoutesAndAffinity: the same scenarios as a Gateway API HTTPRoute, and
// a cookie that keeps a client on its revision of a split.
func httpRoutesAndAffinity(t *testing.T, d *tutorial) {
	d.heading(2, "13. Gateway API HTTPRoutes, and sessions that stay on their revision")
	d.para("knd publishes a GatewayClass `knd` and a Gateway `knative-serving/knd-gateway` (the CRDs are the " +
		"Gateway API's own, v1.6.3); HTTPRoutes that name it as their parent are served by the same gateway:")
	out := d.knd(t, false, "kubectl", "get", "gateway", "-n", "knative-serving")
	mustContain(t, out, "knd-gateway   knd     127.0.0.1   True")
	d.knd(t, false, "kubectl", "apply", "-f", "examples/httproute/01-helloworld-go-canary.yaml")
	poll(t, time.Minute, "the HTTPRoute served", func() (bool, string) {
		code, body := get(t, "helloworld-go.weimobd.com", "wid", "b")
		return code == 200 && body == "Hello Go Sample v2!\n", fmt.Sprint(code, body)
	})
	if body := d.curl(t, "helloworld-go.weimobd.com", "wid", "a"); body != "Hello Go Sample v1!\n" {
		t.Errorf("wid a answered %q", body)
	}
	if body := d.curl(t, "helloworld-go.weimobd.com", "wid", "b"); body != "Hello Go Sample v2!\n" {
		t.Errorf("wid b answered %q", body)
	}
	code, h := d.curlHead(t, "helloworld-go.weimobd.com", []string{"Location", "Content-Length"})
	if code != http.StatusNotFound {
		t.Errorf("no wid: %d %v", code, h)
	}
	d.para("The route's status says knd's gateway accepted it and found its backends (the revisions' Services):")
	out = d.knd(t, false, "kubectl", "get", "httproute", "helloworld-go-canary", "-n", "example",
		"-o", `jsonpath={range .status.parents[*].conditions[*]}{.type}={.status} {.reason}{"\n"}{end}`)
	mustContain(t, out, "Accepted=True Accepted", "ResolvedRefs=True ResolvedRefs")
	d.para("A Service's traffic split can keep each client on the revision it first got, as Cloud Run's session " +
		"affinity does: annotate the Service with `knd.dev/session-affinity: cookie`, and the answer sets a " +
		"`knd-revision` cookie that later requests follow while that revision has a share of the traffic:")
	d.knd(t, false, "kubectl", "annotate", "ksvc", "helloworld-go", "-n", "example", "knd.dev/session-affinity=cookie")
	poll(t, 30*time.Second, "a knd-revision cookie", func() (bool, string) {
		resp, _ := server.Request(t, http.MethodGet, "helloworld-go.example.example.com", "/")
		cookie := resp.Header.Get("Set-Cookie")
		return strings.HasPrefix(cookie, "knd-revision="), cookie
	})
	_, h = d.curlHead(t, "helloworld-go.example.example.com", []string{"Set-Cookie"})
	mustContain(t, h.Get("Set-Cookie"), "knd-revision=helloworld-go-0000", "; Path=/; HttpOnly; SameSite=Lax")
	for range 3 {
		if body := d.curl(t, "helloworld-go.example.example.com", "Cookie", "knd-revision=helloworld-go-00002"); body != "Hello Go Sample v2!\n" {
			t.Errorf("a client of helloworld-go-00002 answered %q", body)
		}
	}
}
