package integration

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

func services(t *testing.T, c dynamic.Interface) dynamic.ResourceInterface {
	return c.Resource(resources["Service"]).Namespace("default")
}

// createService creates a real (not dry-run) Service and deletes it after the test.
func createService(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	obj, err := create(t, manifest, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = services(t, knd.Dynamic(t)).Delete(testContext(t), obj.GetName(), metav1.DeleteOptions{}) })
	return obj
}

func update(t *testing.T, c dynamic.Interface, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return c.Resource(resources[obj.GetKind()]).Namespace(obj.GetNamespace()).Update(testContext(t), obj, metav1.UpdateOptions{})
}

func TestUpdateValidation(t *testing.T) {
	t.Run("template changed while keeping its name", func(t *testing.T) {
		obj := createService(t, strings.Replace(ksvc("  template:\n    metadata:\n      name: byo-v1\n    spec:\n      containers:\n      - image: example.com/hello\n"), "name: foo", "name: byo", 1))
		containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = "example.com/hello:v2"
		unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers")
		_, err := update(t, knd.Dynamic(t), obj)
		want := deniedPrefix + "Saw the following changes without a name change (-old +new): spec.template.metadata.name\n"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("got %v, want prefix %q", err, want)
		}
	})
	t.Run("creator is immutable", func(t *testing.T) {
		obj := createService(t, strings.Replace(ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n"), "name: foo", "name: creator", 1))
		anns := obj.GetAnnotations()
		anns["serving.knative.dev/creator"] = "mallory"
		obj.SetAnnotations(anns)
		_, err := update(t, knd.Dynamic(t), obj)
		want := deniedPrefix + "annotation value is immutable: metadata.annotations.serving.knative.dev/creator"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	})
	t.Run("lastModifier without a spec change", func(t *testing.T) {
		obj := createService(t, strings.Replace(ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n"), "name: foo", "name: modifier", 1))
		anns := obj.GetAnnotations()
		anns["serving.knative.dev/lastModifier"] = "mallory"
		obj.SetAnnotations(anns)
		_, err := update(t, knd.Dynamic(t), obj)
		want := deniedPrefix + "invalid value: mallory: metadata.annotations.serving.knative.dev/lastModifier"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	})
	t.Run("a spec change records the user who made it", func(t *testing.T) {
		obj := createService(t, strings.Replace(ksvc("  template:\n    spec:\n      containers:\n      - image: example.com/hello\n"), "name: foo", "name: alice", 1))
		cfg := rest.CopyConfig(knd.RestConfig)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice", Groups: []string{"system:masters"}}
		alice, err := dynamic.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		unstructured.SetNestedField(obj.Object, int64(42), "spec", "template", "spec", "timeoutSeconds")
		got, err := update(t, alice, obj)
		if err != nil {
			t.Fatal(err)
		}
		anns := got.GetAnnotations()
		if anns["serving.knative.dev/creator"] != "knd-admin" || anns["serving.knative.dev/lastModifier"] != "alice" {
			t.Errorf("creator/lastModifier = %q/%q, want knd-admin/alice", anns["serving.knative.dev/creator"], anns["serving.knative.dev/lastModifier"])
		}
	})
	t.Run("revision spec is immutable", func(t *testing.T) {
		obj, err := create(t, "apiVersion: serving.knative.dev/v1\nkind: Revision\nmetadata:\n  name: rev-immutable\nspec:\n  containers:\n  - image: example.com/hello\n", false)
		if err != nil {
			t.Fatal(err)
		}
		revs := knd.Dynamic(t).Resource(resources["Revision"]).Namespace("default")
		t.Cleanup(func() { _ = revs.Delete(testContext(t), obj.GetName(), metav1.DeleteOptions{}) })
		unstructured.SetNestedField(obj.Object, int64(42), "spec", "timeoutSeconds")
		_, err = update(t, knd.Dynamic(t), obj)
		want := deniedPrefix + "Immutable fields changed (-old +new): spec\n"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("got %v, want prefix %q", err, want)
		}
	})
}
