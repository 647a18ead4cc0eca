package config

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDefaultsAreUpstreams(t *testing.T) {
	c := Default()
	if c.Defaults.RevisionTimeoutSeconds != 300 || c.Defaults.MaxRevisionTimeoutSeconds != 600 || c.Defaults.ContainerConcurrencyMaxLimit != 1000 {
		t.Errorf("config-defaults = %+v", c.Defaults)
	}
	a := c.Autoscaler
	if a.TargetUtilization != 0.7 || a.StableWindow != time.Minute || a.TargetBurstCapacity != 211 || a.ScaleToZeroGracePeriod != 30*time.Second || a.InitialScale != 1 {
		t.Errorf("config-autoscaler = %+v", a)
	}
	if got := c.Domain.LookupDomain(nil); got != "example.com" {
		t.Errorf("default domain = %q, want example.com", got)
	}
	if c.GC.MinNonActiveRevisions != 20 || c.GC.MaxNonActiveRevisions != 1000 || c.GC.RetainSinceCreateTime != 48*time.Hour {
		t.Errorf("config-gc = %+v", c.GC)
	}
	if !c.Features.Enabled(MultiContainer) || c.Features.Enabled(TagHeaderBasedRouting) {
		t.Errorf("features: multi-container must be on, tag-header-based-routing off")
	}
	if host, _ := c.Network.Host(DomainTemplateValues{Name: "hello", Namespace: "default", Domain: "example.com"}); host != "hello.default.example.com" {
		t.Errorf("host = %q", host)
	}
	if tag, _ := c.Network.TagName("hello", "green"); tag != "green-hello" {
		t.Errorf("tag name = %q", tag)
	}
}

func TestInvalidDataKeepsPreviousConfig(t *testing.T) {
	c := Default()
	err := c.Apply(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: AutoscalerName}, Data: map[string]string{"stable-window": "2s"}})
	if err == nil || err.Error() != "stable-window = 2s, must be in [6s; 1h0m0s] range" {
		t.Fatalf("err = %v", err)
	}
	if c.Autoscaler.StableWindow != time.Minute {
		t.Errorf("stable window changed to %v by invalid data", c.Autoscaler.StableWindow)
	}
	if err := c.Apply(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: NetworkName}, Data: map[string]string{"rollout-duration": "380", "_example": "docs"}}); err != nil {
		t.Fatal(err)
	}
	if c.Network.RolloutDurationSeconds != 380 {
		t.Errorf("rollout-duration = %d", c.Network.RolloutDurationSeconds)
	}
}

func TestDomainSelectors(t *testing.T) {
	d, err := NewDomain(map[string]string{
		"example.com": "",
		"internal.io": "selector:\n  app: internal\n",
		"special.io":  "selector:\n  app: internal\n  tier: gold\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	for labels, want := range map[string]string{"": "example.com", "internal": "internal.io", "gold": "special.io"} {
		l := map[string]string{}
		switch labels {
		case "internal":
			l["app"] = "internal"
		case "gold":
			l["app"], l["tier"] = "internal", "gold"
		}
		if got := d.LookupDomain(l); got != want {
			t.Errorf("labels %v: domain %q, want %q", l, got, want)
		}
	}
}
