package cli

import (
	"fmt"
	"testing"

	"github.com/knd-dev/knd/pkg/apis/autoscaling"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// applyFlags parses args as `service update` flags and applies them to svc.
func applyFlags(t *testing.T, svc *servingv1.Service, args ...string) error {
	t.Helper()
	var f serviceFlags
	cmd := &cobra.Command{Use: "update", RunE: func(*cobra.Command, []string) error { return nil }}
	f.addFlags(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return f.apply(cmd, svc)
}

func existingService() *servingv1.Service {
	svc := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"}}
	svc.Spec.Template.Spec.Containers = []corev1.Container{{Image: "dev.local/hello:v1", Env: []corev1.EnvVar{
		{Name: "A", Value: "1"}, {Name: "B", Value: "2"}, {Name: "C", Value: "3"},
	}}}
	return svc
}

func TestEnvSetAndRemove(t *testing.T) {
	svc := existingService()
	if err := applyFlags(t, svc, "--env", "B-", "--env", "A=10", "--env", "D=4", "-e", "C=30"); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(svc.Spec.Template.Spec.Containers[0].Env)
	want := fmt.Sprint([]corev1.EnvVar{{Name: "A", Value: "10"}, {Name: "C", Value: "30"}, {Name: "D", Value: "4"}})
	if got != want {
		t.Errorf("env %s, want %s", got, want)
	}
	if err := applyFlags(t, svc, "--env", "=x"); err == nil || err.Error() != "Invalid env: =x" {
		t.Errorf("bad env: %v", err)
	}
}

func TestRevisionNameGetsServicePrefix(t *testing.T) {
	for flag, want := range map[string]string{"v2": "hello-v2", "hello-v3": "hello-v3"} {
		svc := existingService()
		if err := applyFlags(t, svc, "--revision-name", flag); err != nil {
			t.Fatal(err)
		}
		if svc.Spec.Template.Name != want {
			t.Errorf("--revision-name %s: %q, want %q", flag, svc.Spec.Template.Name, want)
		}
	}
}

func TestScaleConcurrencyPortAndAnnotations(t *testing.T) {
	svc := existingService()
	err := applyFlags(t, svc, "--scale-min", "1", "--scale-max", "5", "--concurrency-limit", "10", "--port", "h2c:8081",
		"--annotation", "team=web", "--annotation", "autoscaling.knative.dev/window=10s", "--image", "dev.local/hello:v2",
		"--limit", "cpu=500m,memory=128Mi", "--cluster-local")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := svc.Spec.Template
	for k, v := range map[string]string{
		autoscaling.MinScaleAnnotation.Canonical(): "1", autoscaling.MaxScaleAnnotation.Canonical(): "5", "team": "web", autoscaling.WindowAnnotation.Canonical(): "10s", userImageAnnotation: "dev.local/hello:v2",
	} {
		if tmpl.Annotations[k] != v {
			t.Errorf("template annotation %s = %q, want %q", k, tmpl.Annotations[k], v)
		}
	}
	if svc.Annotations["team"] != "web" || svc.Annotations[autoscaling.WindowAnnotation.Canonical()] != "" {
		t.Errorf("service annotations %v: autoscaling keys belong to the template only", svc.Annotations)
	}
	ctr := tmpl.Spec.Containers[0]
	if ptr.Deref(tmpl.Spec.ContainerConcurrency, -1) != 10 || ctr.Image != "dev.local/hello:v2" ||
		fmt.Sprint(ctr.Ports) != fmt.Sprint([]corev1.ContainerPort{{Name: "h2c", ContainerPort: 8081}}) {
		t.Errorf("template %+v", tmpl.Spec)
	}
	if ctr.Resources.Limits.Cpu().String() != "500m" || ctr.Resources.Limits.Memory().String() != "128Mi" {
		t.Errorf("limits %v", ctr.Resources.Limits)
	}
	if svc.Labels[servingv1.VisibilityLabelKey] != "cluster-local" {
		t.Errorf("labels %v", svc.Labels)
	}
	if err := applyFlags(t, svc, "--scale", "2", "--scale-min", "1"); err == nil || err.Error() != "only --scale or --scale-min can be specified" {
		t.Errorf("--scale with --scale-min: %v", err)
	}
	if err := applyFlags(t, svc, "--port", "http:x"); err == nil {
		t.Error("bad --port accepted")
	}
	if err := applyFlags(t, svc, "--annotation", "team-"); err != nil || svc.Annotations["team"] != "" || svc.Spec.Template.Annotations["team"] != "" {
		t.Errorf("removing an annotation: %v %v", err, svc.Annotations)
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]string{
		"hello": "Service/default/hello", "ksvc:hello": "Service/default/hello",
		"kroute:hello": "Route/default/hello", "ksvc:hello:other": "Service/other/hello",
	} {
		ref, err := parseRef(in, "default")
		if err != nil || ref.Kind+"/"+ref.Namespace+"/"+ref.Name != want {
			t.Errorf("parseRef(%q) = %+v, %v; want %s", in, ref, err, want)
		}
	}
	for _, bad := range []string{"ksvc:", "foo:bar", "a:b:c:d"} {
		if _, err := parseRef(bad, "default"); err == nil {
			t.Errorf("parseRef(%q) accepted", bad)
		}
	}
}

// TestScaleRanges: kn's --scale forms, and its messages for bad ones.
func TestScaleRanges(t *testing.T) {
	min, max := autoscaling.MinScaleAnnotation.Canonical(), autoscaling.MaxScaleAnnotation.Canonical()
	for _, tc := range []struct{ scale, min, max, err string }{
		{"5", "5", "5", ""},
		{"1..3", "1", "3", ""},
		{"2..", "2", "9", ""},
		{"..4", "7", "4", ""},
		{"1--", "", "", "Scale must be of the format x..y or x"},
		{"a..3", "", "", `strconv.Atoi: parsing "a": invalid syntax`},
	} {
		svc := existingService()
		svc.Spec.Template.Annotations = map[string]string{min: "7", max: "9"}
		err := applyFlags(t, svc, "--scale", tc.scale)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("--scale %s: %v, want %q", tc.scale, err, tc.err)
			}
			continue
		}
		if a := svc.Spec.Template.Annotations; err != nil || a[min] != tc.min || a[max] != tc.max {
			t.Errorf("--scale %s: %v, min %q max %q; want %s %s", tc.scale, err, a[min], a[max], tc.min, tc.max)
		}
	}
	if err := applyFlags(t, existingService(), "--scale", "2", "--scale-max", "3"); err == nil || err.Error() != "only --scale or --scale-max can be specified" {
		t.Errorf("--scale with --scale-max: %v", err)
	}
}
