package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestConfigMaps(t *testing.T) {
	cms := knd.Clientset(t).CoreV1().ConfigMaps("knative-serving")
	for _, name := range []string{"config-defaults", "config-network", "config-domain", "config-features",
		"config-autoscaler", "config-gc", "config-deployment"} {
		if _, err := cms.Get(testContext(t), name, metav1.GetOptions{}); err != nil {
			t.Errorf("ConfigMap %s: %v", name, err)
		}
	}
	domain, err := cms.Get(testContext(t), "config-domain", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := domain.Data["example.com"]; !ok {
		t.Errorf("config-domain data = %v, want example.com", domain.Data)
	}

	refused := []struct{ name, patch, want string }{
		{"config-autoscaler", `{"data":{"stable-window":"2s"}}`, "stable-window = 2s, must be in [6s; 1h0m0s] range"},
		{"config-autoscaler", `{"data":{"scale-to-zero-grace-period":"-1s"}}`, "scale-to-zero-grace-period must be positive, was: -1s"},
		{"config-defaults", `{"data":{"revision-timeout-seconds":"700"}}`, "revision-timeout-seconds (700) cannot be greater than max-revision-timeout-seconds (600)"},
		{"config-network", `{"data":{"rollout-duration":"soon"}}`, `failed to parse "rollout-duration": strconv.Atoi: parsing "soon": invalid syntax`},
		{"config-features", `{"data":{"multi-container":"Maybe"}}`, `failed to parse "multi-container": "Maybe" is not one of Enabled, Disabled, Allowed`},
	}
	for _, c := range refused {
		_, err := cms.Patch(testContext(t), c.name, types.MergePatchType, []byte(c.patch), metav1.PatchOptions{})
		want := `admission webhook "config.webhook.serving.knative.dev" denied the request: validation failed: failed to parse updated ConfigMap, err: ` + c.want
		if err == nil || err.Error() != want {
			t.Errorf("%s %s: got %v\nwant %s", c.name, c.patch, err, want)
		}
	}

	// A valid change is kept, and is what defaulting uses from then on.
	if _, err := cms.Patch(testContext(t), "config-network", types.MergePatchType, []byte(`{"data":{"rollout-duration":"380"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// Later tests expect updates to move traffic at once.
	t.Cleanup(func() {
		cms.Patch(context.Background(), "config-network", types.MergePatchType, []byte(`{"data":{"rollout-duration":null}}`), metav1.PatchOptions{})
	})
	network, err := cms.Get(testContext(t), "config-network", metav1.GetOptions{})
	if err != nil || network.Data["rollout-duration"] != "380" {
		t.Fatalf("config-network = %v, %v", network.Data, err)
	}
	if _, err := cms.Patch(testContext(t), "config-defaults", types.MergePatchType, []byte(`{"data":{"revision-timeout-seconds":"120"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cms.Patch(context.Background(), "config-defaults", types.MergePatchType, []byte(`{"data":{"revision-timeout-seconds":null}}`), metav1.PatchOptions{})
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := create(t, ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n"), true)
		if err != nil {
			t.Fatal(err)
		}
		if v := field(t, got, "spec.template.spec.timeoutSeconds"); v == "120" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("timeoutSeconds = %s 30s after config-defaults changed, want 120", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestKubectlView(t *testing.T) {
	out, err := knd.Kubectl(t, "", "api-resources")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range [][]string{
		{"services", "kservice,ksvc", "serving.knative.dev/v1", "true", "Service"},
		{"configurations", "config,cfg", "serving.knative.dev/v1", "true", "Configuration"},
		{"revisions", "rev", "serving.knative.dev/v1", "true", "Revision"},
		{"routes", "rt", "serving.knative.dev/v1", "true", "Route"},
		{"domainmappings", "dm", "serving.knative.dev/v1beta1", "true", "DomainMapping"},
		{"clusterdomainclaims", "cdc", "networking.internal.knative.dev/v1alpha1", "false", "ClusterDomainClaim"},
		{"podautoscalers", "kpa,pa", "autoscaling.internal.knative.dev/v1alpha1", "true", "PodAutoscaler"},
	} {
		if !hasRow(out, want) {
			t.Errorf("api-resources has no row %v:\n%s", want, out)
		}
	}

	createService(t, strings.Replace(ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n"), "name: foo", "name: columns", 1))
	// The controllers make its revision and PodAutoscaler, so every kind has a row.
	poll(t, time.Minute, "revision and PodAutoscaler columns-00001", func() (bool, string) {
		out, err := knd.Kubectl(t, "", "get", "rev,kpa", "columns-00001", "-n", "default")
		return err == nil, out
	})
	for resource, header := range map[string][]string{
		"ksvc":   {"NAME", "URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"},
		"config": {"NAME", "LATESTCREATED", "LATESTREADY", "READY", "REASON"},
		"rt":     {"NAME", "URL", "READY", "REASON"},
		"rev":    {"NAME", "CONFIG NAME", "K8S SERVICE NAME", "GENERATION", "READY", "REASON", "ACTUAL REPLICAS", "DESIRED REPLICAS"},
		"kpa":    {"NAME", "DESIREDSCALE", "ACTUALSCALE", "READY", "REASON"},
		"dm":     {"NAME", "URL", "READY", "REASON"},
	} {
		out, err := knd.Kubectl(t, "", "get", resource, "-n", "default")
		if err != nil && !strings.Contains(out, "No resources found") {
			t.Fatalf("kubectl get %s: %v\n%s", resource, err, out)
		}
		if strings.Contains(out, "No resources found") {
			continue
		}
		first := strings.SplitN(out, "\n", 2)[0]
		if got := splitColumns(first); strings.Join(got, "|") != strings.Join(header, "|") {
			t.Errorf("kubectl get %s header = %q, want %q", resource, got, header)
		}
	}
}

func hasRow(table string, want []string) bool {
	for _, line := range strings.Split(table, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}

// splitColumns splits a kubectl header on runs of two or more spaces.
func splitColumns(line string) []string {
	var cols []string
	for _, c := range strings.Split(line, "  ") {
		if c = strings.TrimSpace(c); c != "" {
			cols = append(cols, c)
		}
	}
	return cols
}
