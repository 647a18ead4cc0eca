package install

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// TestListTypesAsUpstream: in the Service schema only env, volumeMounts,
// imagePullSecrets and volumes merge by key; containers and ports are
// atomic, so a server-side apply of a container without a name works.
func TestListTypesAsUpstream(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	var svc *apiextensionsv1.CustomResourceDefinition
	for _, c := range crds {
		if c.Spec.Group == "serving.knative.dev" && c.Spec.Names.Kind == "Service" {
			svc = c
		}
	}
	if svc == nil {
		t.Fatal("no Service CRD")
	}
	maps := map[string]bool{}
	eachSchema(svc.Spec.Versions[0].Schema.OpenAPIV3Schema, "", func(s *apiextensionsv1.JSONSchemaProps, name string) {
		if s.XListType != nil && *s.XListType == "map" {
			maps[name] = true
		}
	})
	for _, name := range []string{"env", "volumeMounts", "imagePullSecrets", "volumes"} {
		if !maps[name] {
			t.Errorf("%s is not merged by key", name)
		}
		delete(maps, name)
	}
	if len(maps) > 0 {
		t.Errorf("lists merged by key that upstream keeps atomic: %v", maps)
	}
}
