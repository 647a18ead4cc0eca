package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1beta1 "github.com/knd-dev/knd/pkg/apis/serving/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func domainMapping(ns, domain, svc string) *servingv1beta1.DomainMapping {
	return &servingv1beta1.DomainMapping{
		ObjectMeta: metav1.ObjectMeta{Name: domain, Namespace: ns},
		Spec: servingv1beta1.DomainMappingSpec{Ref: duck.KReference{
			APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: svc, Namespace: ns}},
	}
}

func waitMapping(t *testing.T, c client.Client, ns, name, what string, cond func(*servingv1beta1.DomainMapping) bool) {
	t.Helper()
	poll(t, time.Minute, what, func() (bool, string) {
		var dm servingv1beta1.DomainMapping
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &dm); err != nil {
			return false, err.Error()
		}
		return dm.Status.ObservedGeneration == dm.Generation && cond(&dm),
			fmt.Sprintf("url %q Ready=%s DomainClaimed=%s ReferenceResolved=%s", dm.Status.URL, condition(dm.Status.Status, "Ready"),
				condition(dm.Status.Status, "DomainClaimed"), condition(dm.Status.Status, "ReferenceResolved"))
	})
}

// TestDomainMappingClaims follows upstream's conformance scenario: a
// mapping serves its Service; the same domain in another namespace is
// refused until the first mapping is deleted.
func TestDomainMappingClaims(t *testing.T) {
	importTestServer(t)
	c := typedClient(t)
	a, b := namespace(t, "dm-a"), namespace(t, "dm-b")
	const domain = "hello.cropy.test"

	// Without autocreate there is no claim, so the domain is refused.
	if err := c.Create(testContext(t), helloService(a, "site", "from-a")); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(testContext(t), domainMapping(a, "unclaimed.cropy.test", "site")); err != nil {
		t.Fatal(err)
	}
	waitMapping(t, c, a, "unclaimed.cropy.test", "refused without a claim", func(dm *servingv1beta1.DomainMapping) bool {
		return condition(dm.Status.Status, "DomainClaimed") == "False/DomainAlreadyClaimed/The domain name is already in use by another DomainMapping"
	})

	waitService(t, c, a, "site", "site ready", readyAt("site-00001"))
	time.Sleep(time.Second) // what the Service's last status changes set off has run
	setConfig(t, "config-network", map[string]string{"autocreate-cluster-domain-claims": "true"})
	// The mapping refused before is reconciled again once autocreate is on.
	waitMapping(t, c, a, "unclaimed.cropy.test", "the refused mapping ready after autocreate was turned on", func(dm *servingv1beta1.DomainMapping) bool {
		return condition(dm.Status.Status, "Ready") == "True//"
	})
	if err := c.Create(testContext(t), domainMapping(a, domain, "site")); err != nil {
		t.Fatal(err)
	}
	waitMapping(t, c, a, domain, "mapping ready", func(dm *servingv1beta1.DomainMapping) bool {
		return dm.Status.URL == "http://"+domain && condition(dm.Status.Status, "Ready") == "True//"
	})
	poll(t, 30*time.Second, "gateway serves the domain", func() (bool, string) {
		code, body, err := viaGateway(domain, "/", nil)
		return err == nil && code == 200 && strings.HasSuffix(body, "from-a\n"), fmt.Sprintf("%d %q %v", code, body, err)
	})

	// The same domain in another namespace is refused while a holds it.
	if err := c.Create(testContext(t), helloService(b, "site", "from-b")); err != nil {
		t.Fatal(err)
	}
	waitService(t, c, b, "site", "b site ready", readyAt("site-00001"))
	if err := c.Create(testContext(t), domainMapping(b, domain, "site")); err != nil {
		t.Fatal(err)
	}
	waitMapping(t, c, b, domain, "b refused", func(dm *servingv1beta1.DomainMapping) bool {
		return condition(dm.Status.Status, "DomainClaimed") == "False/DomainAlreadyClaimed/The domain name is already in use by another DomainMapping"
	})
	if _, body, _ := viaGateway(domain, "/", nil); !strings.HasSuffix(body, "from-a\n") {
		t.Errorf("a must keep serving while b waits; got %q", body)
	}

	// Deleting a's mapping releases the claim; b takes over.
	if err := c.Delete(testContext(t), domainMapping(a, domain, "site")); err != nil {
		t.Fatal(err)
	}
	waitMapping(t, c, b, domain, "b ready", func(dm *servingv1beta1.DomainMapping) bool {
		return condition(dm.Status.Status, "Ready") == "True//"
	})
	poll(t, 30*time.Second, "gateway serves b", func() (bool, string) {
		code, body, err := viaGateway(domain, "/", nil)
		return err == nil && code == 200 && strings.HasSuffix(body, "from-b\n"), fmt.Sprintf("%d %q %v", code, body, err)
	})
}
