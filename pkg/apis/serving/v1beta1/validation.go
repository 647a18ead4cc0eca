package v1beta1

import (
	"fmt"
	"strings"

	"github.com/knd-dev/knd/pkg/apis"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ClusterLocalDomain is the suffix mappings may not use.
const ClusterLocalDomain = "cluster.local"

// SetDefaults points a reference without a namespace at the mapping's own.
func (dm *DomainMapping) SetDefaults() {
	if dm.Spec.Ref.Namespace == "" {
		dm.Spec.Ref.Namespace = dm.Namespace
	}
}

// Validate checks a DomainMapping as upstream does.
func (dm *DomainMapping) Validate() *apis.FieldError {
	var errs *apis.FieldError
	if dm.GenerateName != "" {
		errs = errs.Also(apis.ErrDisallowedFields("metadata.generateName"))
	}
	if dm.Name == "" {
		errs = errs.Also(apis.ErrMissingField("metadata.name"))
	} else if fieldErrs := apimachineryvalidation.NameIsDNSSubdomain(dm.Name, false); len(fieldErrs) > 0 {
		list := field.ErrorList{field.Invalid(field.NewPath("name"), dm.Name, strings.Join(fieldErrs, ", "))}
		errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("invalid name %q: %s", dm.Name, list.ToAggregate()), "metadata.name"))
	} else if dm.Name == ClusterLocalDomain || strings.HasSuffix(dm.Name, "."+ClusterLocalDomain) {
		errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("invalid name %q: must not be a subdomain of cluster local domain %q",
			dm.Name, ClusterLocalDomain), "metadata.name"))
	}
	ref := dm.Spec.Ref
	if ref.Name == "" {
		errs = errs.Also(apis.ErrMissingField("spec.ref.name"))
	}
	if ref.Kind == "" {
		errs = errs.Also(apis.ErrMissingField("spec.ref.kind"))
	}
	if ref.APIVersion == "" {
		errs = errs.Also(apis.ErrMissingField("spec.ref.apiVersion"))
	}
	if ref.Namespace != "" && ref.Namespace != dm.Namespace {
		errs = errs.Also(&apis.FieldError{Message: "mismatched namespaces", Paths: []string{"spec.ref.namespace"},
			Details: fmt.Sprintf("parent namespace: %q does not match ref: %q", dm.Namespace, ref.Namespace)})
	}
	if dm.Spec.TLS != nil && dm.Spec.TLS.SecretName == "" {
		errs = errs.Also(apis.ErrMissingField("spec.tls.secretName"))
	}
	return errs
}
