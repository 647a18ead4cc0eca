package v1

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/knd-dev/knd/pkg/apis"
	"github.com/knd-dev/knd/pkg/apis/autoscaling"
	"github.com/knd-dev/knd/pkg/apis/config"
	"k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ValidateObjectMetadata checks a name and the annotations every serving
// object may carry.
func ValidateObjectMetadata(meta metav1.Object, allowAutoscalingAnnotations bool) *apis.FieldError {
	var errs *apis.FieldError
	name, generateName := meta.GetName(), meta.GetGenerateName()
	if generateName != "" {
		if msgs := apimachineryvalidation.NameIsDNS1035Label(generateName, true); len(msgs) > 0 {
			errs = errs.Also(apis.ErrGeneric(fmt.Sprint("not a DNS 1035 label prefix: ", msgs), "generateName"))
		}
	}
	if name != "" {
		if msgs := apimachineryvalidation.NameIsDNS1035Label(name, false); len(msgs) > 0 {
			errs = errs.Also(apis.ErrGeneric(fmt.Sprint("not a DNS 1035 label: ", msgs), "name"))
		}
	}
	if name == "" && generateName == "" {
		errs = errs.Also(apis.ErrGeneric("name or generateName is required", "name"))
	}
	if !allowAutoscalingAnnotations {
		errs = errs.Also(autoscaling.ValidateNoAutoscalingAnnotation(meta.GetAnnotations()).ViaField("annotations"))
	}
	return errs
}

// validateRolloutDuration checks the rollout-duration annotation.
func validateRolloutDuration(anns map[string]string) *apis.FieldError {
	for _, k := range []string{RolloutDurationKey, RolloutDurationAltKey} {
		v, ok := anns[k]
		if !ok {
			continue
		}
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return apis.ErrInvalidValue(v, k)
		case d.Round(time.Second) != d:
			return apis.ErrGeneric(fmt.Sprintf("rollout-duration=%s is not at second precision", v), k)
		case d < 0:
			return apis.ErrGeneric(fmt.Sprintf("rollout-duration=%s must be positive", v), k)
		}
		return nil
	}
	return nil
}

// validateOwnedLabel checks that label key, when set, names a controller
// owner of the given kind.
func validateOwnedLabel(meta metav1.Object, key, kind string) *apis.FieldError {
	value, ok := meta.GetLabels()[key]
	if !ok {
		return nil
	}
	for _, ref := range meta.GetOwnerReferences() {
		if ref.Kind == kind && ref.Name == value && strings.HasPrefix(ref.APIVersion, GroupName+"/") {
			return nil
		}
	}
	return apis.ErrMissingField("labels." + key)
}

// ValidateCreatorAndModifier refuses edits of the creator, and of the last
// modifier without a spec change.
func ValidateCreatorAndModifier(oldSpec, newSpec any, oldAnns, newAnns map[string]string) (errs *apis.FieldError) {
	if oldAnns[CreatorAnnotation] != newAnns[CreatorAnnotation] {
		errs = errs.Also(apis.ErrGeneric("annotation value is immutable", CreatorAnnotation))
	}
	if equality.Semantic.DeepEqual(oldSpec, newSpec) && oldAnns[UpdaterAnnotation] != newAnns[UpdaterAnnotation] {
		errs = errs.Also(apis.ErrInvalidValue(newAnns[UpdaterAnnotation], UpdaterAnnotation))
	}
	return errs
}

// Validate checks a Service; old is nil on create.
func (s *Service) Validate(cfg *config.Config, old *Service) *apis.FieldError {
	errs := ValidateObjectMetadata(s, false).
		Also(validateRolloutDuration(s.Annotations).ViaField("annotations")).
		ViaField("metadata")
	errs = errs.Also(s.Spec.Template.Validate(cfg, s.ObjectMeta).ViaField("spec.template"))
	errs = errs.Also(validateTraffic(s.Spec.Traffic, true).ViaField("spec.traffic"))
	if old != nil {
		errs = errs.Also(ValidateCreatorAndModifier(old.Spec, s.Spec, old.Annotations, s.Annotations).ViaField("metadata.annotations"))
		errs = errs.Also(s.Spec.Template.verifyNameChange(&old.Spec.Template).ViaField("spec.template"))
	}
	return errs
}

// Validate checks a Configuration; old is nil on create.
func (c *Configuration) Validate(cfg *config.Config, old *Configuration) *apis.FieldError {
	errs := ValidateObjectMetadata(c, false).
		Also(validateOwnedLabel(c, ServiceLabelKey, "Service")).
		ViaField("metadata")
	errs = errs.Also(c.Spec.Template.Validate(cfg, c.ObjectMeta).ViaField("spec.template"))
	if old != nil {
		errs = errs.Also(ValidateCreatorAndModifier(old.Spec, c.Spec, old.Annotations, c.Annotations).ViaField("metadata.annotations"))
		errs = errs.Also(c.Spec.Template.verifyNameChange(&old.Spec.Template).ViaField("spec.template"))
	}
	return errs
}

// Validate checks a Route; old is nil on create.
func (r *Route) Validate(cfg *config.Config, old *Route) *apis.FieldError {
	errs := ValidateObjectMetadata(r, false).
		Also(validateRolloutDuration(r.Annotations).ViaField("annotations")).
		Also(validateOwnedLabel(r, ServiceLabelKey, "Service")).
		ViaField("metadata")
	errs = errs.Also(validateTraffic(r.Spec.Traffic, false).ViaField("spec.traffic"))
	if old != nil {
		errs = errs.Also(ValidateCreatorAndModifier(old.Spec, r.Spec, old.Annotations, r.Annotations).ViaField("metadata.annotations"))
	}
	return errs
}

// Validate checks a Revision; old is nil on create. A revision's spec never
// changes.
func (r *Revision) Validate(cfg *config.Config, old *Revision) *apis.FieldError {
	if old != nil {
		if diff := cmp.Diff(old.Spec, r.Spec); !equality.Semantic.DeepEqual(old.Spec, r.Spec) {
			return &apis.FieldError{Message: "Immutable fields changed (-old +new)", Paths: []string{"spec"}, Details: diff}
		}
		return nil
	}
	errs := ValidateObjectMetadata(r, true).
		Also(validateOwnedLabel(r, ConfigurationLabelKey, "Configuration")).
		Also(validateTemplateAnnotations(cfg, r.Annotations).ViaField("annotations")).
		ViaField("metadata")
	return errs.Also(r.Spec.Validate(cfg).ViaField("spec"))
}

// Validate checks a revision template inside a parent (Service or
// Configuration) with metadata parent.
func (rt *RevisionTemplateSpec) Validate(cfg *config.Config, parent metav1.ObjectMeta) *apis.FieldError {
	errs := validateTemplateAnnotations(cfg, rt.Annotations).ViaField("metadata.annotations")
	errs = errs.Also(rt.Spec.Validate(cfg).ViaField("spec"))
	if rt.GenerateName != "" {
		if msgs := apimachineryvalidation.NameIsDNS1035Label(rt.GenerateName, true); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidValue(fmt.Sprint("not a DNS 1035 label prefix: ", msgs), "metadata.generateName"))
		}
	}
	if rt.Name != "" {
		if msgs := apimachineryvalidation.NameIsDNS1035Label(rt.Name, false); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidValue(fmt.Sprint("not a DNS 1035 label: ", msgs), "metadata.name"))
		} else if parent.Name == "" && parent.GenerateName != "" {
			errs = errs.Also(apis.ErrDisallowedFields("metadata.name"))
		} else if prefix := parent.Name + "-"; !strings.HasPrefix(rt.Name, prefix) {
			errs = errs.Also(apis.ErrInvalidValue(fmt.Sprintf("%q must have prefix %q", rt.Name, prefix), "metadata.name"))
		}
	}
	return errs
}

func validateTemplateAnnotations(cfg *config.Config, anns map[string]string) *apis.FieldError {
	errs := autoscaling.ValidateAnnotations(cfg.Autoscaler, anns)
	for k := range anns {
		if strings.HasPrefix(k, networkingAnnotationPrefix) {
			switch strings.TrimPrefix(k, networkingAnnotationPrefix) {
			case "ingress.class", "ingress-class", "certificate.class", "certificate-class", "disable-auto-tls",
				"disableAutoTLS", "http-option", "httpOption", "disable-external-domain-tls":
			default:
				errs = errs.Also(apis.ErrInvalidKeyName(k, apis.CurrentField))
			}
		}
	}
	if v, ok := anns[ProgressDeadlineAnnotation]; ok {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			errs = errs.Also(apis.ErrInvalidValue(v, ProgressDeadlineAnnotation))
		case d.Round(time.Second) != d:
			errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("progress-deadline=%s is not at second precision", v), ProgressDeadlineAnnotation))
		case d <= 0:
			errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("progress-deadline=%s must be positive", v), ProgressDeadlineAnnotation))
		}
	}
	return errs
}

// verifyNameChange refuses a template change that keeps its explicit name:
// the name belongs to a revision that already exists.
func (rt *RevisionTemplateSpec) verifyNameChange(old *RevisionTemplateSpec) *apis.FieldError {
	if rt.Name == "" || rt.Name != old.Name {
		return nil
	}
	if equality.Semantic.DeepEqual(old, rt) {
		return nil
	}
	return &apis.FieldError{Message: "Saw the following changes without a name change (-old +new)",
		Paths: []string{"metadata.name"}, Details: cmp.Diff(old, rt)}
}

// Validate checks a revision spec.
func (rs *RevisionSpec) Validate(cfg *config.Config) *apis.FieldError {
	errs := ValidatePodSpec(cfg, rs.PodSpec)
	maxTimeout := cfg.Defaults.MaxRevisionTimeoutSeconds
	for field, v := range map[string]*int64{"timeoutSeconds": rs.TimeoutSeconds,
		"responseStartTimeoutSeconds": rs.ResponseStartTimeoutSeconds, "idleTimeoutSeconds": rs.IdleTimeoutSeconds} {
		if v == nil || *v == 0 {
			continue
		}
		upper := maxTimeout
		if field != "timeoutSeconds" && rs.TimeoutSeconds != nil && *rs.TimeoutSeconds != 0 {
			upper = *rs.TimeoutSeconds
		}
		if *v < 0 || *v > upper {
			errs = errs.Also(apis.ErrOutOfBoundsValue(*v, 0, upper, field))
		}
	}
	if cc := rs.ContainerConcurrency; cc != nil {
		var lower int64
		if !cfg.Defaults.AllowContainerConcurrencyZero {
			lower = 1
		}
		if *cc < lower || *cc > cfg.Defaults.ContainerConcurrencyMaxLimit {
			errs = errs.Also(apis.ErrOutOfBoundsValue(*cc, lower, cfg.Defaults.ContainerConcurrencyMaxLimit, "containerConcurrency"))
		}
	}
	return errs
}

// validateTraffic checks a traffic list; inService says the targets belong
// to a Service, whose configuration is implied.
func validateTraffic(traffic []TrafficTarget, inService bool) *apis.FieldError {
	var errs *apis.FieldError
	tags := map[string]int{}
	var sum int64
	for i, tt := range traffic {
		errs = errs.Also(tt.validate(inService).ViaIndex(i))
		if tt.Percent != nil {
			sum += *tt.Percent
		}
		if tt.Tag == "" {
			continue
		}
		if msgs := validation.IsDNS1035Label(tt.Tag); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidArrayValue(fmt.Sprint("not a DNS 1035 label: ", msgs), "tag", i))
		}
		if first, ok := tags[tt.Tag]; ok {
			errs = errs.Also(&apis.FieldError{Message: fmt.Sprintf("Multiple definitions for %q", tt.Tag),
				Paths: []string{fmt.Sprintf("[%d].tag", i), fmt.Sprintf("[%d].tag", first)}})
		} else {
			tags[tt.Tag] = i
		}
	}
	if sum != 100 {
		errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("Traffic targets sum to %d, want 100", sum), apis.CurrentField))
	}
	return errs
}

func (tt *TrafficTarget) validate(inService bool) *apis.FieldError {
	var errs *apis.FieldError
	if tt.LatestRevision != nil && (tt.RevisionName != "") == *tt.LatestRevision {
		errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("may not set revisionName %q when latestRevision is %t",
			tt.RevisionName, *tt.LatestRevision), "latestRevision"))
	}
	switch {
	case inService && tt.ConfigurationName != "":
		errs = errs.Also(apis.ErrDisallowedFields("configurationName"))
	case tt.RevisionName != "" && tt.ConfigurationName != "":
		errs = errs.Also(apis.ErrMultipleOneOf("configurationName", "revisionName"))
	case tt.RevisionName != "":
		if msgs := validation.IsQualifiedName(tt.RevisionName); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidKeyName(tt.RevisionName, "revisionName", msgs...))
		}
	case !inService && tt.ConfigurationName == "":
		errs = errs.Also(apis.ErrMissingOneOf("configurationName", "revisionName"))
	case tt.ConfigurationName != "":
		if msgs := validation.IsQualifiedName(tt.ConfigurationName); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidKeyName(tt.ConfigurationName, "configurationName", msgs...))
		}
	}
	if tt.Percent != nil && (*tt.Percent < 0 || *tt.Percent > 100) {
		errs = errs.Also(apis.ErrOutOfBoundsValue(*tt.Percent, 0, 100, "percent"))
	}
	if tt.URL != "" {
		errs = errs.Also(apis.ErrDisallowedFields("url"))
	}
	return errs
}
