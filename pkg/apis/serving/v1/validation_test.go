package v1

import (
	"slices"
	"strings"
	"testing"

	"github.com/knd-dev/knd/pkg/apis/config"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// service is a valid Service named foo, defaulted as the webhook would.
func service(mutate func(*Service)) *Service {
	s := &Service{ObjectMeta: metav1.ObjectMeta{Name: "foo", Namespace: "default"}}
	s.Spec.Template.Spec.Containers = []corev1.Container{{Image: "example.com/hello"}}
	if mutate != nil {
		mutate(s)
	}
	return s
}

// TestServiceValidationMessages pins upstream's messages (see
// knative-serving-reference.md) for invalid Services, as users see them
// after "validation failed: " (an invalid percent also breaks the sum,
// and both are said, as upstream).
func TestServiceValidationMessages(t *testing.T) {
	cfg := config.Default()
	for _, tc := range []struct {
		name   string
		mutate func(*Service)
		want   string // one line of the error ("" for none)
	}{
		{"valid", nil, ""},
		{"percent over 100", func(s *Service) {
			s.Spec.Traffic = []TrafficTarget{{LatestRevision: ptr.To(true), Percent: ptr.To[int64](101)}}
		}, "expected 0 <= 101 <= 100: spec.traffic[0].percent"},
		{"traffic sum", func(s *Service) {
			s.Spec.Traffic = []TrafficTarget{{LatestRevision: ptr.To(true), Percent: ptr.To[int64](60)},
				{RevisionName: "foo-00001", LatestRevision: ptr.To(false), Percent: ptr.To[int64](50)}}
		}, "Traffic targets sum to 110, want 100: spec.traffic"},
		{"duplicate tag", func(s *Service) {
			s.Spec.Traffic = []TrafficTarget{{Tag: "a", LatestRevision: ptr.To(true), Percent: ptr.To[int64](100)},
				{Tag: "a", RevisionName: "foo-00001", LatestRevision: ptr.To(false), Percent: ptr.To[int64](0)}}
		}, `Multiple definitions for "a": spec.traffic[0].tag, spec.traffic[1].tag`},
		{"configurationName in a Service", func(s *Service) {
			s.Spec.Traffic = []TrafficTarget{{ConfigurationName: "foo", Percent: ptr.To[int64](100)}}
		}, "must not set the field(s): spec.traffic[0].configurationName"},
		{"BYO name without the prefix", func(s *Service) { s.Spec.Template.Name = "bar-1" },
			`invalid value: "bar-1" must have prefix "foo-": spec.template.metadata.name`},
		{"timeout over the maximum", func(s *Service) { s.Spec.Template.Spec.TimeoutSeconds = ptr.To[int64](601) },
			"expected 0 <= 601 <= 600: spec.template.spec.timeoutSeconds"},
		{"containerConcurrency over the maximum", func(s *Service) {
			s.Spec.Template.Spec.ContainerConcurrency = ptr.To[int64](1001)
		}, "expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency"},
		{"reserved env var", func(s *Service) {
			s.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "K_SERVICE", Value: "x"}}
		}, `"K_SERVICE" is a reserved environment variable: spec.template.spec.containers[0].env[0].name`},
		{"reserved port", func(s *Service) {
			s.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8012}}
		}, "invalid value: 8012 is a reserved port: spec.template.spec.containers[0].ports.containerPort"},
		{"reserved container name", func(s *Service) { s.Spec.Template.Spec.Containers[0].Name = "queue-proxy" },
			`"queue-proxy" is a reserved container name: spec.template.spec.containers[0].name`},
		{"missing image", func(s *Service) { s.Spec.Template.Spec.Containers[0].Image = "" },
			"missing field(s): spec.template.spec.containers[0].image"},
		{"negative runAsUser", func(s *Service) {
			s.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](-10)}
		}, "expected 0 <= -10 <= 2147483647: spec.template.spec.containers[0].securityContext.runAsUser"},
		{"max-scale below min-scale", func(s *Service) {
			s.Spec.Template.Annotations = map[string]string{"autoscaling.knative.dev/min-scale": "5", "autoscaling.knative.dev/max-scale": "2"}
		}, "max-scale=2 is less than min-scale=5: spec.template.metadata.annotations.autoscaling.knative.dev/max-scale, spec.template.metadata.annotations.autoscaling.knative.dev/min-scale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := service(tc.mutate)
			s.SetDefaults(cfg, nil)
			err := s.Validate(cfg, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("accepted, want %q", tc.want)
			case tc.want != "" && !slices.Contains(strings.Split(err.Error(), "\n"), tc.want):
				t.Errorf("got  %q\nwant a line %q", err.Error(), tc.want)
			}
		})
	}
}

// TestServiceDefaults: what the defaulting webhook adds to a bare Service,
// as upstream (knative-serving-reference.md, defaults).
func TestServiceDefaults(t *testing.T) {
	s := service(nil)
	s.SetDefaults(config.Default(), nil)
	spec := s.Spec.Template.Spec
	c := spec.Containers[0]
	for _, check := range []struct {
		what      string
		got, want any
	}{
		{"container name", c.Name, "user-container"},
		{"timeoutSeconds", ptr.Deref(spec.TimeoutSeconds, 0), int64(300)},
		{"containerConcurrency", ptr.Deref(spec.ContainerConcurrency, -1), int64(0)},
		{"responseStartTimeoutSeconds unset", spec.ResponseStartTimeoutSeconds == nil, true},
		{"readiness probe on TCP", c.ReadinessProbe != nil && c.ReadinessProbe.TCPSocket != nil, true},
		{"traffic", len(s.Spec.Traffic) == 1 && ptr.Deref(s.Spec.Traffic[0].LatestRevision, false) &&
			ptr.Deref(s.Spec.Traffic[0].Percent, 0) == 100, true},
	} {
		if check.got != check.want {
			t.Errorf("%s: %v, want %v", check.what, check.got, check.want)
		}
	}
}
