package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/knd-dev/knd/pkg/reconciler/manager"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func typedClient(t *testing.T) client.Client {
	t.Helper()
	scheme, err := manager.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(knd.RestConfig, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func helloService(ns, name, greeting string) *servingv1.Service {
	return &servingv1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: servingv1.ServiceSpec{ConfigurationSpec: servingv1.ConfigurationSpec{Template: servingv1.RevisionTemplateSpec{
			Spec: servingv1.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{
				Image: testImage, Env: []corev1.EnvVar{{Name: "GREETING", Value: greeting}},
			}}}},
		}}},
	}
}

func condition(st duck.Status, t duck.ConditionType) string {
	c := st.GetCondition(t)
	if c == nil {
		return "<none>"
	}
	return fmt.Sprintf("%s/%s/%s", c.Status, c.Reason, c.Message)
}

// waitService polls the Service until cond holds.
func waitService(t *testing.T, c client.Client, ns, name, what string, cond func(*servingv1.Service) bool) *servingv1.Service {
	t.Helper()
	var svc servingv1.Service
	poll(t, time.Minute, what, func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
			return false, err.Error()
		}
		return cond(&svc), fmt.Sprintf("gen %d observed %d created %s ready %s Ready=%s traffic=%v",
			svc.Generation, svc.Status.ObservedGeneration, svc.Status.LatestCreatedRevisionName,
			svc.Status.LatestReadyRevisionName, condition(svc.Status.Status, "Ready"), trafficString(svc.Status.Traffic))
	})
	return &svc
}

func readyAt(rev string) func(*servingv1.Service) bool {
	return func(s *servingv1.Service) bool {
		return s.Status.ObservedGeneration == s.Generation && s.Status.LatestReadyRevisionName == rev &&
			s.Status.GetCondition("Ready") != nil && s.Status.GetCondition("Ready").Status == corev1.ConditionTrue
	}
}

func trafficString(tt []servingv1.TrafficTarget) string {
	var parts []string
	for _, t := range tt {
		parts = append(parts, fmt.Sprintf("{tag=%s rev=%s latest=%v percent=%d url=%s}", t.Tag, t.RevisionName,
			ptr.Deref(t.LatestRevision, false), ptr.Deref(t.Percent, -1), t.URL))
	}
	return strings.Join(parts, " ")
}

func updateService(t *testing.T, c client.Client, ns, name string, mutate func(*servingv1.Service)) {
	t.Helper()
	for range 10 {
		var svc servingv1.Service
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
			t.Fatal(err)
		}
		mutate(&svc)
		err := c.Update(context.Background(), &svc)
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("update kept conflicting")
}

func revisionNames(t *testing.T, c client.Client, ns, cfg string) []string {
	var revs servingv1.RevisionList
	if err := c.List(context.Background(), &revs, client.InNamespace(ns), client.MatchingLabels{servingv1.ConfigurationLabelKey: cfg}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range revs.Items {
		names = append(names, r.Name)
	}
	return names
}

// TestServiceLifecycle follows the traffic-splitting tutorial: a Service,
// two template updates, a metadata-only update, then a 0/40/60 split with
// a tag, and checks every name, URL and status field on the way.
func TestServiceLifecycle(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "serving-lifecycle")
	c := typedClient(t)
	ctx := testContext(t)
	if err := c.Create(ctx, helloService(ns, "helloworld-go", "v1")); err != nil {
		t.Fatal(err)
	}
	svc := waitService(t, c, ns, "helloworld-go", "Service Ready at 00001", readyAt("helloworld-go-00001"))
	if svc.Status.URL != "http://helloworld-go.serving-lifecycle.example.com" ||
		svc.Status.Address == nil || svc.Status.Address.URL != "http://helloworld-go.serving-lifecycle.svc.cluster.local" ||
		svc.Status.LatestCreatedRevisionName != "helloworld-go-00001" {
		t.Errorf("status: url %q address %+v latestCreated %q", svc.Status.URL, svc.Status.Address, svc.Status.LatestCreatedRevisionName)
	}
	if got := trafficString(svc.Status.Traffic); got != "{tag= rev=helloworld-go-00001 latest=true percent=100 url=}" {
		t.Errorf("traffic %s", got)
	}
	for _, cond := range []duck.ConditionType{"Ready", "ConfigurationsReady", "RoutesReady"} {
		if got := condition(svc.Status.Status, cond); got != "True//" {
			t.Errorf("Service %s = %s", cond, got)
		}
	}

	// Children, with upstream's names and labels.
	var deploy appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "helloworld-go-00001-deployment"}, &deploy); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, e := range deploy.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["PORT"] != "8080" || env["K_SERVICE"] != "helloworld-go" || env["K_CONFIGURATION"] != "helloworld-go" || env["K_REVISION"] != "helloworld-go-00001" {
		t.Errorf("pod env %v", env)
	}
	if lc := deploy.Spec.Template.Spec.Containers[0].Lifecycle; lc == nil || lc.PreStop == nil || lc.PreStop.Sleep == nil || lc.PreStop.Sleep.Seconds != 1 {
		t.Errorf("the user container needs a 1 s preStop drain; lifecycle %+v", lc)
	}
	if l := deploy.Spec.Template.Labels; l["serving.knative.dev/revision"] != "helloworld-go-00001" || l["app"] != "helloworld-go-00001" || l["serving.knative.dev/service"] != "helloworld-go" {
		t.Errorf("pod labels %v", l)
	}
	out, err := knd.Kubectl(t, "", "get", "kpa,svc", "-n", ns, "-o", "name")
	if err != nil || !strings.Contains(out, "podautoscaler.autoscaling.internal.knative.dev/helloworld-go-00001") || !strings.Contains(out, "service/helloworld-go\n") {
		t.Errorf("kubectl get kpa,svc: %v\n%s", err, out)
	}
	pods := readyPods(t, ns, "serving.knative.dev/revision=helloworld-go-00001")
	if len(pods) != 1 {
		t.Fatalf("%d ready pods", len(pods))
	}
	if _, body, err := httpGet(podURL(&pods[0]) + "/"); err != nil || body != fmt.Sprintf("hello from %s v1\n", pods[0].Name) {
		t.Errorf("revision pod answered %q, %v", body, err)
	}

	// A template change makes exactly one new revision; metadata does not.
	updateService(t, c, ns, "helloworld-go", func(s *servingv1.Service) { s.Spec.Template.Spec.Containers[0].Env[0].Value = "v2" })
	waitService(t, c, ns, "helloworld-go", "Ready at 00002", readyAt("helloworld-go-00002"))
	updateService(t, c, ns, "helloworld-go", func(s *servingv1.Service) { s.Labels = map[string]string{"team": "a"} })
	updateService(t, c, ns, "helloworld-go", func(s *servingv1.Service) { s.Spec.Template.Spec.Containers[0].Env[0].Value = "v3" })
	waitService(t, c, ns, "helloworld-go", "Ready at 00003", readyAt("helloworld-go-00003"))
	if names := revisionNames(t, c, ns, "helloworld-go"); strings.Join(names, ",") != "helloworld-go-00001,helloworld-go-00002,helloworld-go-00003" {
		t.Errorf("revisions %v, want exactly 00001..00003", names)
	}

	// The tutorial's split: 00001 tagged staging at 0 %, 40/60 on the others.
	updateService(t, c, ns, "helloworld-go", func(s *servingv1.Service) {
		s.Spec.Traffic = []servingv1.TrafficTarget{
			{Tag: "staging", RevisionName: "helloworld-go-00001", Percent: ptr.To[int64](0)},
			{RevisionName: "helloworld-go-00002", Percent: ptr.To[int64](40)},
			{RevisionName: "helloworld-go-00003", Percent: ptr.To[int64](60)},
		}
	})
	want := "{tag=staging rev=helloworld-go-00001 latest=false percent=0 url=http://staging-helloworld-go.serving-lifecycle.example.com} " +
		"{tag= rev=helloworld-go-00002 latest=false percent=40 url=} {tag= rev=helloworld-go-00003 latest=false percent=60 url=}"
	svc = waitService(t, c, ns, "helloworld-go", "the 0/40/60 split", func(s *servingv1.Service) bool {
		return s.Status.ObservedGeneration == s.Generation && trafficString(s.Status.Traffic) == want && condition(s.Status.Status, "Ready") == "True//"
	})
	if names := revisionNames(t, c, ns, "helloworld-go"); len(names) != 3 {
		t.Errorf("a traffic change made a revision: %v", names)
	}
	var staging corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "staging-helloworld-go"}, &staging); err != nil {
		t.Errorf("tag placeholder Service: %v", err)
	} else if staging.Labels["serving.knative.dev/route"] != "helloworld-go" || staging.Labels["team"] != "a" {
		t.Errorf("placeholder labels %v", staging.Labels)
	}
	for _, rev := range []string{"helloworld-go-00001", "helloworld-go-00002", "helloworld-go-00003"} {
		var r servingv1.Revision
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: rev}, &r); err != nil {
			t.Fatal(err)
		}
		if r.Labels["serving.knative.dev/routingState"] != "active" || r.Annotations["serving.knative.dev/routes"] != "helloworld-go" {
			t.Errorf("%s routing labels %v annotations %v", rev, r.Labels, r.Annotations)
		}
	}
	out, err = knd.Kubectl(t, "", "get", "ksvc", "-n", ns)
	if err != nil || !strings.Contains(out, "http://helloworld-go.serving-lifecycle.example.com   helloworld-go-00003   helloworld-go-00003   True") {
		t.Errorf("kubectl get ksvc:\n%s", out)
	}

	// A missing revision leaves the previous traffic in place.
	updateService(t, c, ns, "helloworld-go", func(s *servingv1.Service) {
		s.Spec.Traffic = []servingv1.TrafficTarget{{RevisionName: "helloworld-go-00009", Percent: ptr.To[int64](100)}}
	})
	svc = waitService(t, c, ns, "helloworld-go", "RevisionMissing", func(s *servingv1.Service) bool {
		return s.Status.ObservedGeneration == s.Generation &&
			condition(s.Status.Status, "RoutesReady") == `False/RevisionMissing/Revision "helloworld-go-00009" referenced in traffic not found`
	})
	if got := trafficString(svc.Status.Traffic); got != want {
		t.Errorf("traffic after a bad target %s, want the previous %s", got, want)
	}
	if got := condition(svc.Status.Status, "Ready"); got != `False/RevisionMissing/Revision "helloworld-go-00009" referenced in traffic not found` {
		t.Errorf("Ready %s", got)
	}

	// Rollback: all traffic to the first revision; 00002 and 00003 lose their routes.
	updateService(t, c, ns, "helloworld-go", func(s *servingv1.Service) {
		s.Spec.Traffic = []servingv1.TrafficTarget{{RevisionName: "helloworld-go-00001", Percent: ptr.To[int64](100)}}
	})
	waitService(t, c, ns, "helloworld-go", "rollback to 00001", func(s *servingv1.Service) bool {
		return s.Status.ObservedGeneration == s.Generation && condition(s.Status.Status, "Ready") == "True//" &&
			trafficString(s.Status.Traffic) == "{tag= rev=helloworld-go-00001 latest=false percent=100 url=}"
	})
	poll(t, 30*time.Second, "00002 reserve", func() (bool, string) {
		var r servingv1.Revision
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "helloworld-go-00002"}, &r); err != nil {
			return false, err.Error()
		}
		return r.Labels["serving.knative.dev/routingState"] == "reserve", fmt.Sprint(r.Labels)
	})

	// Deleting the Service removes everything it made.
	if err := c.Delete(ctx, &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "helloworld-go"}}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "children deleted", func() (bool, string) {
		var revs servingv1.RevisionList
		var deps appsv1.DeploymentList
		var pods corev1.PodList
		_ = c.List(ctx, &revs, client.InNamespace(ns))
		_ = c.List(ctx, &deps, client.InNamespace(ns))
		_ = c.List(ctx, &pods, client.InNamespace(ns))
		return len(revs.Items)+len(deps.Items)+len(pods.Items) == 0, fmt.Sprintf("%d revisions, %d deployments, %d pods", len(revs.Items), len(deps.Items), len(pods.Items))
	})
}

func TestTagsAndLatestRevision(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "serving-tags")
	c := typedClient(t)
	svc := helloService(ns, "tagged", "blue")
	svc.Spec.Template.Name = "tagged-blue"
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "tagged", "blue ready", readyAt("tagged-blue"))
	updateService(t, c, ns, "tagged", func(s *servingv1.Service) {
		s.Spec.Template.Name = "tagged-green"
		s.Spec.Template.Spec.Containers[0].Env[0].Value = "green"
		s.Spec.Traffic = []servingv1.TrafficTarget{
			{Tag: "blue", RevisionName: "tagged-blue", Percent: ptr.To[int64](50)},
			{Tag: "green", LatestRevision: ptr.To(true), Percent: ptr.To[int64](50)},
		}
	})
	want := "{tag=blue rev=tagged-blue latest=false percent=50 url=http://blue-tagged.serving-tags.example.com} " +
		"{tag=green rev=tagged-green latest=true percent=50 url=http://green-tagged.serving-tags.example.com}"
	waitService(t, c, ns, "tagged", "blue/green", func(s *servingv1.Service) bool {
		return readyAt("tagged-green")(s) && trafficString(s.Status.Traffic) == want
	})
	// Untag blue: its placeholder Service stays (never removed by upstream either) but status drops the URL.
	updateService(t, c, ns, "tagged", func(s *servingv1.Service) {
		s.Spec.Traffic = []servingv1.TrafficTarget{{LatestRevision: ptr.To(true), Percent: ptr.To[int64](100)}}
	})
	waitService(t, c, ns, "tagged", "untagged", func(s *servingv1.Service) bool {
		return s.Status.ObservedGeneration == s.Generation && trafficString(s.Status.Traffic) == "{tag= rev=tagged-green latest=true percent=100 url=}"
	})
}

func TestClusterLocalVisibility(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "serving-private")
	c := typedClient(t)
	svc := helloService(ns, "private", "shh")
	svc.Labels = map[string]string{"networking.knative.dev/visibility": "cluster-local"}
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	got := waitService(t, c, ns, "private", "ready", readyAt("private-00001"))
	if got.Status.URL != "http://private.serving-private.svc.cluster.local" {
		t.Errorf("url %q", got.Status.URL)
	}
}

func TestRevisionFailures(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "serving-failures")
	c := typedClient(t)
	missing := helloService(ns, "missing-image", "x")
	missing.Spec.Template.Spec.Containers[0].Image = "dev.local/nothing-here:v1"
	crashing := helloService(ns, "crashing", "x")
	crashing.Spec.Template.Spec.Containers[0].Env = append(crashing.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "EXIT_CODE", Value: "5"})
	for _, s := range []*servingv1.Service{missing, crashing} {
		if err := c.Create(testContext(t), s); err != nil {
			t.Fatal(err)
		}
	}
	svc := waitService(t, c, ns, "missing-image", "ContainerMissing", func(s *servingv1.Service) bool {
		return strings.HasPrefix(condition(s.Status.Status, "Ready"), `False/RevisionFailed/Revision "missing-image-00001" failed with message: Unable to fetch image "dev.local/nothing-here:v1": `)
	})
	if got := condition(svc.Status.Status, "ConfigurationsReady"); !strings.HasPrefix(got, "False/RevisionFailed/") {
		t.Errorf("ConfigurationsReady %s", got)
	}
	var rev servingv1.Revision
	if err := c.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: "missing-image-00001"}, &rev); err != nil {
		t.Fatal(err)
	}
	if got := condition(rev.Status.Status, "ContainerHealthy"); !strings.HasPrefix(got, "False/ContainerMissing/") {
		t.Errorf("revision ContainerHealthy %s", got)
	}
	waitService(t, c, ns, "crashing", "ExitCode5", func(s *servingv1.Service) bool {
		return strings.HasPrefix(condition(s.Status.Status, "Ready"), `False/RevisionFailed/Revision "crashing-00001" failed with message: Container failed with: `)
	})
	if err := c.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: "crashing-00001"}, &rev); err != nil {
		t.Fatal(err)
	}
	if got := condition(rev.Status.Status, "ContainerHealthy"); !strings.HasPrefix(got, "False/ExitCode5/Container failed with: ") {
		t.Errorf("revision ContainerHealthy %s", got)
	}
}

func TestGarbageCollection(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "serving-gc")
	c := typedClient(t)
	setConfig(t, "config-gc", map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "1",
		"retain-since-create-time": "disabled", "retain-since-last-active-time": "disabled"})
	if err := c.Create(testContext(t), helloService(ns, "gc", "1")); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "gc", "00001", readyAt("gc-00001"))
	for i, greeting := range []string{"2", "3"} {
		updateService(t, c, ns, "gc", func(s *servingv1.Service) { s.Spec.Template.Spec.Containers[0].Env[0].Value = greeting })
		waitService(t, c, ns, "gc", "next revision", readyAt(fmt.Sprintf("gc-%05d", i+2)))
	}
	// 00001 and 00002 carry no traffic (reserve); only one non-active revision may stay.
	poll(t, time.Minute, "oldest reserve revision collected", func() (bool, string) {
		names := revisionNames(t, c, ns, "gc")
		return strings.Join(names, ",") == "gc-00002,gc-00003", fmt.Sprint(names)
	})
}

func TestGradualRollout(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "serving-rollout")
	c := typedClient(t)
	svc := helloService(ns, "gradual", "v1")
	svc.Annotations = map[string]string{"serving.knative.dev/rollout-duration": "4s"}
	if err := c.Create(testContext(t), svc); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "gradual", "v1", readyAt("gradual-00001"))
	p := startProber("gradual.serving-rollout.example.com")
	updateService(t, c, ns, "gradual", func(s *servingv1.Service) { s.Spec.Template.Spec.Containers[0].Env[0].Value = "v2" })
	// The rollout starts with 1 % on the new revision and says so.
	var route servingv1.Route
	poll(t, time.Minute, "rollout in progress", func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "gradual"}, &route); err != nil {
			return false, err.Error()
		}
		return condition(route.Status.Status, "IngressReady") == "Unknown/RolloutInProgress/A gradual rollout of the latest revision(s) is in progress." &&
			len(route.Status.Traffic) == 2, trafficString(route.Status.Traffic)
	})
	if got := trafficString(route.Status.Traffic); !strings.HasPrefix(got, "{tag= rev=gradual-00001 latest=true percent=") {
		t.Errorf("during the rollout: %s", got)
	}
	// It ends with everything on the new revision.
	waitService(t, c, ns, "gradual", "rollout done", func(s *servingv1.Service) bool {
		return readyAt("gradual-00002")(s) && trafficString(s.Status.Traffic) == "{tag= rev=gradual-00002 latest=true percent=100 url=}"
	})
	p.finish(t)
}

// TestRollbackByReapplyingNamedRevision: re-applying an earlier manifest
// whose template names its revision (BYO name) makes that revision the
// latest created and latest ready again, and the Service Ready, as upstream
// (it looks the revision up by name first).
func TestRollbackByReapplyingNamedRevision(t *testing.T) {
	importTestServer(t)
	c := typedClient(t)
	ns := namespace(t, "rollback")
	v1 := helloService(ns, "stock", "v1")
	v1.Spec.Template.Name = "stock-v1"
	if err := c.Create(testContext(t), v1.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "stock", "v1 ready", readyAt("stock-v1"))
	for _, step := range []struct{ name, greeting string }{{"stock-v2", "v2"}, {"stock-v1", "v1"}} {
		var svc servingv1.Service
		if err := c.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: "stock"}, &svc); err != nil {
			t.Fatal(err)
		}
		svc.Spec.Template.Name = step.name
		svc.Spec.Template.Spec.Containers[0].Env[0].Value = step.greeting
		if err := c.Update(testContext(t), &svc); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got := waitService(t, c, ns, "stock", step.name+" latest and ready", func(s *servingv1.Service) bool {
			return readyAt(step.name)(s) && s.Status.LatestCreatedRevisionName == step.name
		})
		if got.Status.LatestCreatedRevisionName != step.name {
			t.Errorf("latestCreatedRevisionName = %s, want %s", got.Status.LatestCreatedRevisionName, step.name)
		}
	}
	poll(t, 30*time.Second, "v1 answers again", func() (bool, string) {
		_, body, err := viaGateway("stock.rollback.example.com", "/", nil)
		return strings.HasSuffix(body, " v1\n"), fmt.Sprint(body, err)
	})
}

// Each revision has upstream's two Services, "<rev>" and "<rev>-private";
// the route's is an ExternalName, as `kubectl get svc` shows them in the
// tutorials. Neither selects pods (nothing here reads their endpoints).
func TestRevisionServices(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "revision-services")
	c := typedClient(t)
	if err := c.Create(testContext(t), helloService(ns, "hello", "hi")); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, ns, "hello", "ready", readyAt("hello-00001"))
	poll(t, time.Minute, "kubectl get svc", func() (bool, string) {
		out, err := knd.Kubectl(t, "", "get", "svc", "-n", ns, "--no-headers", "-o",
			"custom-columns=NAME:.metadata.name,TYPE:.spec.type,PORTS:.spec.ports[*].port,SELECTOR:.spec.selector,KIND:.metadata.labels.networking\\.internal\\.knative\\.dev/serviceType,OWNER:.metadata.ownerReferences[0].name")
		got := strings.Join(strings.Fields(out), " ")
		return err == nil && strings.Contains(got, "hello ExternalName <none> <none> <none>") &&
			strings.Contains(got, "hello-00001 ClusterIP 80 <none> Public hello-00001") &&
			strings.Contains(got, "hello-00001-private ClusterIP 80 <none> Private hello-00001"), got
	})
}
