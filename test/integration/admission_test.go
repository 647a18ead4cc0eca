package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

var resources = map[string]schema.GroupVersionResource{
	"Service":            {Group: "serving.knative.dev", Version: "v1", Resource: "services"},
	"Configuration":      {Group: "serving.knative.dev", Version: "v1", Resource: "configurations"},
	"Route":              {Group: "serving.knative.dev", Version: "v1", Resource: "routes"},
	"Revision":           {Group: "serving.knative.dev", Version: "v1", Resource: "revisions"},
	"DomainMapping":      {Group: "serving.knative.dev", Version: "v1beta1", Resource: "domainmappings"},
	"PodAutoscaler":      {Group: "autoscaling.internal.knative.dev", Version: "v1alpha1", Resource: "podautoscalers"},
	"ClusterDomainClaim": {Group: "networking.internal.knative.dev", Version: "v1alpha1", Resource: "clusterdomainclaims"},
}

func parse(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatalf("bad test manifest: %v\n%s", err, manifest)
	}
	if obj.GetNamespace() == "" && obj.GetKind() != "ClusterDomainClaim" {
		obj.SetNamespace("default")
	}
	return obj
}

// create sends the manifest through admission; dryRun keeps nothing.
func create(t *testing.T, manifest string, dryRun bool) (*unstructured.Unstructured, error) {
	t.Helper()
	obj := parse(t, manifest)
	gvr := resources[obj.GetKind()]
	gvr.Version = strings.TrimPrefix(obj.GetAPIVersion(), gvr.Group+"/")
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	client := knd.Dynamic(t).Resource(gvr)
	if obj.GetKind() == "ClusterDomainClaim" {
		return client.Create(testContext(t), obj, opts)
	}
	return client.Namespace(obj.GetNamespace()).Create(testContext(t), obj, opts)
}

// ksvc is a Service named foo whose spec is the given YAML (indented by 2).
func ksvc(spec string) string {
	return "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: foo\nspec:\n" + spec
}

// container is a Service with one container whose extra fields are given
// (indented by 8).
func container(fields string) string {
	return ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n" + fields)
}

func withTemplateAnnotations(anns string) string {
	return ksvc("  template:\n    metadata:\n      annotations:\n" + anns +
		"    spec:\n      containers:\n      - image: example.com/hello\n")
}

const deniedPrefix = `admission webhook "validation.webhook.serving.knative.dev" denied the request: validation failed: `

func TestValidationMessages(t *testing.T) {
	cases := []struct {
		name     string
		manifest string
		want     string // the denial after deniedPrefix, or a full message when it starts with "admission"
	}{
		{"traffic sums to 110", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 60\n    revisionName: foo-00001\n  - percent: 50\n    latestRevision: true\n"),
			"Traffic targets sum to 110, want 100: spec.traffic"},
		{"v1alpha1 (schemaless in the CRD) is validated too", strings.Replace(ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 60\n    revisionName: foo-00001\n  - percent: 50\n    latestRevision: true\n"), "serving.knative.dev/v1\n", "serving.knative.dev/v1alpha1\n", 1),
			"Traffic targets sum to 110, want 100: spec.traffic"},
		{"traffic sums to 90", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 90\n    latestRevision: true\n"),
			"Traffic targets sum to 90, want 100: spec.traffic"},
		{"percent above 100", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 101\n    latestRevision: true\n"),
			"Traffic targets sum to 101, want 100: spec.traffic\nexpected 0 <= 101 <= 100: spec.traffic[0].percent"},
		{"duplicate tag", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 50\n    tag: a\n    revisionName: foo-00001\n  - percent: 50\n    tag: a\n    latestRevision: true\n"),
			`Multiple definitions for "a": spec.traffic[0].tag, spec.traffic[1].tag`},
		{"tag not a DNS label", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 100\n    tag: 1bad\n    latestRevision: true\n"),
			"invalid value: not a DNS 1035 label: [a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]: spec.traffic.tag[0]"},
		{"revisionName with latestRevision true", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 100\n    revisionName: foo-x\n    latestRevision: true\n"),
			`may not set revisionName "foo-x" when latestRevision is true: spec.traffic[0].latestRevision`},
		{"latestRevision false without revisionName", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 100\n    latestRevision: false\n"),
			`may not set revisionName "" when latestRevision is false: spec.traffic[0].latestRevision`},
		{"configurationName in a Service", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 100\n    configurationName: foo\n"),
			"must not set the field(s): spec.traffic[0].configurationName"},
		{"url in spec traffic", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - percent: 100\n    latestRevision: true\n    url: http://foo\n"),
			"must not set the field(s): spec.traffic[0].url"},
		{"revision name without the service prefix", ksvc("  template:\n    metadata:\n      name: bar-1\n    spec:\n      containers:\n      - image: example.com/hello\n"),
			`invalid value: "bar-1" must have prefix "foo-": spec.template.metadata.name`},
		{"reserved env K_SERVICE", container("        env:\n        - name: K_SERVICE\n          value: x\n"),
			`"K_SERVICE" is a reserved environment variable: spec.template.spec.containers[0].env[0].name`},
		{"reserved env PORT", container("        env:\n        - name: A\n          value: x\n        - name: PORT\n          value: \"1\"\n"),
			`"PORT" is a reserved environment variable: spec.template.spec.containers[0].env[1].name`},
		{"reserved port 8012", container("        ports:\n        - containerPort: 8012\n"),
			"invalid value: 8012 is a reserved port: spec.template.spec.containers[0].ports.containerPort\n8012 is a reserved port, please use a different value"},
		{"port name", container("        ports:\n        - containerPort: 8080\n          name: arbitrary\n"),
			"Port name arbitrary is not allowed: spec.template.spec.containers[0].ports\nName must be empty, or one of: 'h2c', 'http1'"},
		{"two ports", container("        ports:\n        - containerPort: 8080\n        - containerPort: 8081\n"),
			"more than one container port is set: spec.template.spec.containers[0].ports\nOnly a single port is allowed\nmore than one container port is set: spec.template.spec.containers[*].ports\nOnly a single port is allowed across all containers"},
		{"queue-proxy container name", container("        name: queue-proxy\n"),
			`"queue-proxy" is a reserved container name: spec.template.spec.containers[0].name`},
		{"missing image", ksvc("  template:\n    spec:\n      containers:\n      - name: app\n"),
			"missing field(s): spec.template.spec.containers[0].image"},
		{"unparsable image", ksvc("  template:\n    spec:\n      containers:\n      - image: 'Not A Ref'\n"),
			"Failed to parse image reference: spec.template.spec.containers[0].image\nimage: \"Not A Ref\", error: could not parse reference: Not A Ref"},
		{"timeout above max", ksvc("  template:\n    spec:\n      timeoutSeconds: 601\n      containers:\n      - image: example.com/hello\n"),
			"expected 0 <= 601 <= 600: spec.template.spec.timeoutSeconds"},
		{"container concurrency above limit", ksvc("  template:\n    spec:\n      containerConcurrency: 1001\n      containers:\n      - image: example.com/hello\n"),
			"expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency"},
		{"autoscaling annotation on Service metadata", "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: foo\n  annotations:\n    autoscaling.knative.dev/min-scale: \"1\"\nspec:\n  template:\n    spec:\n      containers:\n      - image: example.com/hello\n",
			"invalid key name \"autoscaling.knative.dev/min-scale\": metadata.annotations\nautoscaling annotations must be put under \"spec.template.metadata.annotations\" to work"},
		{"max-scale below min-scale", withTemplateAnnotations("        autoscaling.knative.dev/min-scale: \"5\"\n        autoscaling.knative.dev/max-scale: \"2\"\n"),
			"max-scale=2 is less than min-scale=5: spec.template.metadata.annotations.autoscaling.knative.dev/max-scale, spec.template.metadata.annotations.autoscaling.knative.dev/min-scale"},
		{"window too short", withTemplateAnnotations("        autoscaling.knative.dev/window: 2s\n"),
			"expected 6s <= 2s <= 1h0m0s: spec.template.metadata.annotations.autoscaling.knative.dev/window"},
		{"window not whole seconds", withTemplateAnnotations("        autoscaling.knative.dev/window: 10500ms\n"),
			"must be specified with at most second precision: spec.template.metadata.annotations.autoscaling.knative.dev/window"},
		{"target too small", withTemplateAnnotations("        autoscaling.knative.dev/target: \"0.001\"\n"),
			"target 0.001 should be at least 0.01: spec.template.metadata.annotations.autoscaling.knative.dev/target"},
		{"unknown knative class", withTemplateAnnotations("        autoscaling.knative.dev/class: foo.knative.dev\n"),
			"invalid value: foo.knative.dev: spec.template.metadata.annotations.autoscaling.knative.dev/class"},
		{"unknown KPA metric", withTemplateAnnotations("        autoscaling.knative.dev/metric: cpu\n"),
			"invalid value: cpu: spec.template.metadata.annotations.autoscaling.knative.dev/metric"},
		{"initial scale zero", withTemplateAnnotations("        autoscaling.knative.dev/initial-scale: \"0\"\n"),
			"invalid value: 0: spec.template.metadata.annotations.autoscaling.knative.dev/initial-scale\ninitial-scale=0 not allowed by cluster"},
		{"utilization above 100", withTemplateAnnotations("        autoscaling.knative.dev/target-utilization-percentage: \"101\"\n"),
			"expected 1 <= 101 <= 100: spec.template.metadata.annotations.autoscaling.knative.dev/target-utilization-percentage"},
		{"scale-down-delay above an hour", withTemplateAnnotations("        autoscaling.knative.dev/scale-down-delay: 2h\n"),
			"expected 0s <= 2h <= 1h0m0s: spec.template.metadata.annotations.autoscaling.knative.dev/scale-down-delay"},
		{"activation scale of one", withTemplateAnnotations("        autoscaling.knative.dev/activation-scale: \"1\"\n"),
			"activation-scale=1 must be greater than 1: spec.template.metadata.annotations.autoscaling.knative.dev/activation-scale"},
		{"name not a DNS-1035 label", "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: 1foo\nspec:\n  template:\n    spec:\n      containers:\n      - image: example.com/hello\n",
			"not a DNS 1035 label: [a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]: metadata.name"},
		{"rollout duration below a second", "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: foo\n  annotations:\n    serving.knative.dev/rollout-duration: 1.5s\nspec:\n  template:\n    spec:\n      containers:\n      - image: example.com/hello\n",
			"rollout-duration=1.5s is not at second precision: metadata.annotations.serving.knative.dev/rollout-duration"},
		{"negative rollout duration", "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: foo\n  annotations:\n    serving.knative.dev/rollout-duration: -10s\nspec:\n  template:\n    spec:\n      containers:\n      - image: example.com/hello\n",
			"rollout-duration=-10s must be positive: metadata.annotations.serving.knative.dev/rollout-duration"},
		{"service account name", ksvc("  template:\n    spec:\n      serviceAccountName: foo@bar.baz\n      containers:\n      - image: example.com/hello\n"),
			"invalid value: foo@bar.baz: spec.template.spec.serviceAccountName\na lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"},
		{"container lifecycle", container("        lifecycle:\n          preStop:\n            exec:\n              command: [\"true\"]\n"),
			"must not set the field(s): spec.template.spec.containers[0].lifecycle"},
		{"container tty", container("        tty: true\n"),
			"must not set the field(s): spec.template.spec.containers[0].tty"},
		{"node selector behind a feature flag", ksvc("  template:\n    spec:\n      nodeSelector:\n        disk: ssd\n      containers:\n      - image: example.com/hello\n"),
			"must not set the field(s): spec.template.spec.nodeSelector"},
		{"aggressive probe with failureThreshold", container("        readinessProbe:\n          periodSeconds: 0\n          failureThreshold: 2\n          httpGet:\n            path: /\n"),
			"failureThreshold is disallowed when periodSeconds is zero: spec.template.spec.containers[0].readinessProbe.failureThreshold"},
		{"probe with two handlers", container("        readinessProbe:\n          httpGet:\n            path: /\n          tcpSocket:\n            port: 8080\n"),
			"expected exactly one, got both: spec.template.spec.containers[0].readinessProbe.httpGet, spec.template.spec.containers[0].readinessProbe.tcpSocket"},
		{"probe on a named port that is not the container's", container("        ports:\n        - containerPort: 8080\n        readinessProbe:\n          httpGet:\n            port: metrics\n"),
			"invalid value: metrics: spec.template.spec.containers[0].readinessProbe.httpGet.port\nProbe port must match container port"},
		{"mount on a reserved path", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n        volumeMounts:\n        - name: data\n          mountPath: /\n      volumes:\n      - name: data\n        emptyDir: {}\n"),
			`invalid value: mountPath "/" is a reserved path: spec.template.spec.containers[0].volumeMounts[0].mountPath`},
		{"volume not mounted", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n      volumes:\n      - name: data\n        emptyDir: {}\n"),
			`volume with name "data" not mounted: spec.template.spec.volumes[0].name`},
		{"several containers without a port", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n      - image: example.com/sidecar\n"),
			"missing field(s): spec.template.spec.containers[*].ports"},
		{"negative runAsUser", container("        securityContext:\n          runAsUser: -10\n"),
			"expected 0 <= -10 <= 2147483647: spec.template.spec.containers[0].securityContext.runAsUser"},
		{"init containers behind a feature flag", ksvc("  template:\n    spec:\n      initContainers:\n      - image: example.com/init\n      containers:\n      - image: example.com/hello\n"),
			"pod spec support for init-containers is off, but found 1 init containers: "},
		{"route without traffic", "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata:\n  name: foo\nspec: {}\n",
			"Traffic targets sum to 0, want 100: spec.traffic"},
		{"route target with both names", "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata:\n  name: foo\nspec:\n  traffic:\n  - percent: 100\n    revisionName: foo-1\n    configurationName: foo\n",
			"expected exactly one, got both: spec.traffic[0].configurationName, spec.traffic[0].revisionName"},
		{"route target with neither name", "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata:\n  name: foo\nspec:\n  traffic:\n  - percent: 100\n",
			"expected exactly one, got neither: spec.traffic[0].configurationName, spec.traffic[0].revisionName"},
		{"configuration labelled with a service it does not belong to", "apiVersion: serving.knative.dev/v1\nkind: Configuration\nmetadata:\n  name: foo\n  labels:\n    serving.knative.dev/service: foo\nspec:\n  template:\n    spec:\n      containers:\n      - image: example.com/hello\n",
			"missing field(s): metadata.labels.serving.knative.dev/service"},
		{"domain mapping under cluster.local", "apiVersion: serving.knative.dev/v1beta1\nkind: DomainMapping\nmetadata:\n  name: foo.ns.svc.cluster.local\nspec:\n  ref:\n    apiVersion: serving.knative.dev/v1\n    kind: Service\n    name: foo\n",
			`admission webhook "validation.webhook.domainmapping.serving.knative.dev" denied the request: validation failed: invalid name "foo.ns.svc.cluster.local": must not be a subdomain of cluster local domain "cluster.local": metadata.name`},
		{"domain mapping to another namespace", "apiVersion: serving.knative.dev/v1beta1\nkind: DomainMapping\nmetadata:\n  name: hello.example.org\nspec:\n  ref:\n    apiVersion: serving.knative.dev/v1\n    kind: Service\n    name: foo\n    namespace: other\n",
			"admission webhook \"validation.webhook.domainmapping.serving.knative.dev\" denied the request: validation failed: mismatched namespaces: spec.ref.namespace\nparent namespace: \"default\" does not match ref: \"other\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := create(t, c.manifest, true)
			want := c.want
			if !strings.HasPrefix(want, "admission webhook") {
				want = deniedPrefix + want
			}
			if err == nil {
				t.Fatalf("accepted; want denial:\n%s", want)
			}
			if err.Error() != want {
				t.Errorf("got:\n%s\nwant:\n%s", err, want)
			}
		})
	}
}

// field reads a value from an object by a dotted path, indexing lists with [i].
func field(t *testing.T, obj *unstructured.Unstructured, path string) string {
	t.Helper()
	var cur any = obj.Object
	for _, part := range strings.Split(path, ".") {
		name, index := part, -1
		if i := strings.Index(part, "["); i >= 0 {
			name = part[:i]
			fmt.Sscanf(part[i:], "[%d]", &index)
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return "<none>"
		}
		cur, ok = m[name]
		if !ok {
			return "<none>"
		}
		if index >= 0 {
			list, ok := cur.([]any)
			if !ok || index >= len(list) {
				return "<none>"
			}
			cur = list[index]
		}
	}
	if s, ok := cur.(string); ok {
		return s
	}
	raw, _ := json.Marshal(cur)
	return string(raw)
}

func TestDefaulting(t *testing.T) {
	cases := []struct {
		name     string
		manifest string
		want     map[string]string
	}{
		{"service defaults", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n"), map[string]string{
			"spec.template.spec.containers[0].name":           "user-container",
			"spec.template.spec.timeoutSeconds":               "300",
			"spec.template.spec.containerConcurrency":         "0",
			"spec.template.spec.enableServiceLinks":           "false",
			"spec.template.spec.containers[0].readinessProbe": `{"successThreshold":1,"tcpSocket":{"port":0}}`,
			"spec.template.spec.responseStartTimeoutSeconds":  "<none>",
			"spec.traffic": `[{"latestRevision":true,"percent":100}]`,
		}},
		{"traffic targets get percent and latestRevision", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n  traffic:\n  - revisionName: foo-00001\n    tag: old\n  - percent: 100\n"), map[string]string{
			"spec.traffic": `[{"latestRevision":false,"percent":0,"revisionName":"foo-00001","tag":"old"},{"latestRevision":true,"percent":100}]`,
		}},
		{"readiness probe with a period gets thresholds", container("        readinessProbe:\n          httpGet:\n            path: /\n          periodSeconds: 3\n"), map[string]string{
			"spec.template.spec.containers[0].readinessProbe": `{"failureThreshold":3,"httpGet":{"path":"/","port":0},"periodSeconds":3,"successThreshold":1,"timeoutSeconds":1}`,
		}},
		{"several containers: names by index, probe on the serving one", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n        ports:\n        - containerPort: 8888\n      - image: example.com/sidecar\n"), map[string]string{
			"spec.template.spec.containers[0].name":           "user-container-0",
			"spec.template.spec.containers[1].name":           "user-container-1",
			"spec.template.spec.containers[0].readinessProbe": `{"successThreshold":1,"tcpSocket":{"port":0}}`,
			"spec.template.spec.containers[1].readinessProbe": "<none>",
		}},
		{"non-writable volumes are mounted read-only", ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n        volumeMounts:\n        - name: cfg\n          mountPath: /etc/cfg\n        - name: scratch\n          mountPath: /scratch\n      volumes:\n      - name: cfg\n        configMap:\n          name: cfg\n      - name: scratch\n        emptyDir: {}\n"), map[string]string{
			"spec.template.spec.containers[0].volumeMounts": `[{"mountPath":"/etc/cfg","name":"cfg","readOnly":true},{"mountPath":"/scratch","name":"scratch"}]`,
		}},
		{"standalone route target", "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata:\n  name: foo\nspec:\n  traffic:\n  - revisionName: foo-1\n    percent: 100\n", map[string]string{
			"spec.traffic":         `[{"latestRevision":false,"percent":100,"revisionName":"foo-1"}]`,
			"metadata.annotations": `{"serving.knative.dev/creator":"knd-admin","serving.knative.dev/lastModifier":"knd-admin"}`,
		}},
		{"pod autoscaler class and metric", "apiVersion: autoscaling.internal.knative.dev/v1alpha1\nkind: PodAutoscaler\nmetadata:\n  name: foo-00001\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: foo-00001-deployment\n", map[string]string{
			"metadata.annotations": `{"autoscaling.knative.dev/class":"kpa.autoscaling.knative.dev","autoscaling.knative.dev/metric":"concurrency"}`,
		}},
		{"domain mapping ref namespace", "apiVersion: serving.knative.dev/v1beta1\nkind: DomainMapping\nmetadata:\n  name: hello.example.org\nspec:\n  ref:\n    apiVersion: serving.knative.dev/v1\n    kind: Service\n    name: foo\n", map[string]string{
			"spec.ref.namespace":   "default",
			"metadata.annotations": `{"serving.knative.dev/creator":"knd-admin","serving.knative.dev/lastModifier":"knd-admin"}`,
		}},
		{"v1alpha1 manifests from the tutorials are served", "apiVersion: serving.knative.dev/v1alpha1\nkind: Service\nmetadata:\n  name: stock\nspec:\n  template:\n    metadata:\n      name: stock-v1\n    spec:\n      containers:\n      - image: example.com/rest-api:v1\n", map[string]string{
			"apiVersion":                            "serving.knative.dev/v1alpha1",
			"spec.template.spec.containers[0].name": "user-container",
			"spec.template.metadata.name":           "stock-v1",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := create(t, c.manifest, true)
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range c.want {
				if v := field(t, got, path); v != want {
					t.Errorf("%s = %s, want %s", path, v, want)
				}
			}
			anns := got.GetAnnotations()
			if got.GetKind() == "Service" && (anns["serving.knative.dev/creator"] != "knd-admin" || anns["serving.knative.dev/lastModifier"] != "knd-admin") {
				t.Errorf("creator/lastModifier = %q/%q, want knd-admin", anns["serving.knative.dev/creator"], anns["serving.knative.dev/lastModifier"])
			}
		})
	}
}
