// Package install puts the serving API into a cluster: the CRDs, the
// knative-serving namespace and its ConfigMaps with upstream defaults.
package install

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/knd-dev/knd/config/crd"
	"github.com/knd-dev/knd/pkg/apis/config"
	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// legacyServingVersions are served beside v1 for the serving resources whose
// schema did not change since them. Upstream stopped serving them, but the
// tutorials knd follows still use v1alpha1 and v1beta1 manifests; with the
// same schema no conversion is needed.
var legacyServingVersions = []string{"v1alpha1", "v1beta1"}

var legacyServingKinds = map[string]bool{"Service": true, "Configuration": true, "Route": true, "Revision": true}

// CRDs returns the CustomResourceDefinitions knd installs.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := fs.Glob(crd.Files, "*.yaml")
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		raw, err := crd.Files.ReadFile(f)
		if err != nil {
			return nil, err
		}
		c := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, c); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if c.Spec.Group == "serving.knative.dev" {
			for i := range c.Spec.Versions {
				if s := c.Spec.Versions[i].Schema; s != nil && s.OpenAPIV3Schema != nil {
					eachSchema(s.OpenAPIV3Schema, "", upstreamListType)
				}
			}
		}
		if c.Spec.Group == "serving.knative.dev" && legacyServingKinds[c.Spec.Names.Kind] {
			// The admission webhooks validate every version; a schemaless
			// spec and status keep the API server from holding the PodSpec
			// schema three times (about 20 MB of heap).
			serveAlso(c, legacyServingVersions, &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
				Type: "object",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"apiVersion": {Type: "string"}, "kind": {Type: "string"}, "metadata": {Type: "object"},
					"spec":   {Type: "object", XPreserveUnknownFields: ptr.To(true)},
					"status": {Type: "object", XPreserveUnknownFields: ptr.To(true)},
				},
			}})
		}
		if c.Spec.Group == istiov1.SchemeGroupVersion.Group {
			// Istio serves one schema under all three versions, and the
			// tutorials' manifests use each; the full schema on each keeps
			// strict field validation naming unsupported fields.
			serveAlso(c, istioVersions, nil)
		}
		out = append(out, c)
	}
	return out, nil
}

// mergedByKey are the only lists upstream's serving CRDs merge by key in a
// server-side apply (x-kubernetes-list-type: map); every other list is
// atomic there.
var mergedByKey = map[string]bool{"env": true, "volumeMounts": true, "imagePullSecrets": true, "volumes": true}

// serveAlso serves the CRD's first version under more names too, not
// stored, with schema instead of its own unless schema is nil.
func serveAlso(c *apiextensionsv1.CustomResourceDefinition, names []string, schema *apiextensionsv1.CustomResourceValidation) {
	first := c.Spec.Versions[0]
	for _, name := range names {
		v := *first.DeepCopy()
		v.Name, v.Storage = name, false
		if schema != nil {
			v.Schema = schema.DeepCopy()
		}
		c.Spec.Versions = append(c.Spec.Versions, v)
	}
}

// upstreamListType makes a list type of a schema generated from the
// PodSpec (which marks containers, ports and more as maps by name or
// port) that of upstream's CRDs. As generated, a server-side apply of an
// ordinary Service failed (a container without a name, a port without a
// protocol, has no key), and every client-side apply logged that its
// managed fields could not be updated.
func upstreamListType(s *apiextensionsv1.JSONSchemaProps, name string) {
	if s.XListType != nil && *s.XListType == "map" && !mergedByKey[name] {
		s.XListType, s.XListMapKeys = nil, nil
	}
}

// eachSchema calls fn on s and every schema under it, each with the name
// of the property it is ("" for list items and map values), in place.
func eachSchema(s *apiextensionsv1.JSONSchemaProps, name string, fn func(s *apiextensionsv1.JSONSchemaProps, name string)) {
	fn(s, name)
	for k, p := range s.Properties {
		eachSchema(&p, k, fn)
		s.Properties[k] = p
	}
	if s.Items != nil && s.Items.Schema != nil {
		eachSchema(s.Items.Schema, "", fn)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		eachSchema(s.AdditionalProperties.Schema, "", fn)
	}
}

// istioVersions are served beside networking.istio.io/v1, as Istio does.
var istioVersions = []string{"v1alpha3", "v1beta1"}

// CRDs creates or updates the CRDs and waits until all are Established.
func ApplyCRDs(ctx context.Context, cfg *rest.Config) error {
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crds, err := CRDs()
	if err != nil {
		return err
	}
	api := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, c := range crds {
		existing, err := api.Get(ctx, c.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = api.Create(ctx, c, metav1.CreateOptions{})
		case err == nil:
			c.ResourceVersion = existing.ResourceVersion
			_, err = api.Update(ctx, c, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("CRD %s: %w", c.Name, err)
		}
	}
	for _, c := range crds {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := api.Get(ctx, c.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not Established: %w", c.Name, err)
		}
	}
	return nil
}

// ApplyConfig creates the knative-serving namespace and whichever of its
// ConfigMaps are missing. Existing ConfigMaps are the user's and are kept.
func ApplyConfig(ctx context.Context, client kubernetes.Interface) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: config.Namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", config.Namespace, err)
	}
	for name, data := range config.DefaultData() {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: config.Namespace,
				Labels: map[string]string{"app.kubernetes.io/part-of": "knative-serving", "app.kubernetes.io/name": "knd"}},
			Data: data,
		}
		if _, err := client.CoreV1().ConfigMaps(config.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("ConfigMap %s: %w", name, err)
		}
	}
	return nil
}
