// Package webhook serves knd's admission webhooks: defaulting and validation
// of the serving API and validation of the knative-serving ConfigMaps. They
// are real admission webhooks, served over loopback TLS and registered with
// the API server, so the same code path works against any cluster.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/knd-dev/knd/pkg/apis"
	autoscalingv1alpha1 "github.com/knd-dev/knd/pkg/apis/autoscaling/v1alpha1"
	"github.com/knd-dev/knd/pkg/apis/config"
	istiov1 "github.com/knd-dev/knd/pkg/apis/istio/v1"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	servingv1beta1 "github.com/knd-dev/knd/pkg/apis/serving/v1beta1"
	"github.com/knd-dev/knd/pkg/configstore"
	"github.com/knd-dev/knd/pkg/customroute"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// resource ties a kind to its defaulting and validation.
type resource interface {
	metav1.Object
	// defaults applies defaulting; old is nil on create.
	defaults(cfg *config.Config, old resource, user string)
	// validate returns the errors; old is nil on create.
	validate(cfg *config.Config, old resource) *apis.FieldError
}

// newResource returns an empty object of the admitted kind.
func newResource(kind metav1.GroupVersionKind) resource {
	switch kind.Group + "/" + kind.Kind {
	case "serving.knative.dev/Service":
		return &service{}
	case "serving.knative.dev/Configuration":
		return &configuration{}
	case "serving.knative.dev/Route":
		return &route{}
	case "serving.knative.dev/Revision":
		return &revision{}
	case "serving.knative.dev/DomainMapping":
		return &domainMapping{}
	case "autoscaling.internal.knative.dev/PodAutoscaler":
		return &podAutoscaler{}
	}
	return nil
}

// defaulter answers the mutating webhook.
type defaulter struct{ store *configstore.Store }

func (d defaulter) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	obj, old, resp := decode(req)
	if obj == nil {
		return resp
	}
	obj.defaults(d.store.Get(), old, req.UserInfo.Username)
	patched, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, patched)
}

// validator answers the validating webhook.
type validator struct{ store *configstore.Store }

func (v validator) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	obj, old, resp := decode(req)
	if obj == nil {
		return resp
	}
	if errs := obj.validate(v.store.Get(), old); errs != nil {
		return denied("validation failed: " + errs.Error())
	}
	return admission.Allowed("")
}

// configValidator refuses invalid knative-serving ConfigMaps.
type configValidator struct{}

func (configValidator) Handle(_ context.Context, req admission.Request) admission.Response {
	var cm corev1.ConfigMap
	if err := json.Unmarshal(req.Object.Raw, &cm); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if cm.Namespace != config.Namespace || !config.Known(cm.Name) {
		return admission.Allowed("")
	}
	if err := config.Validate(&cm); err != nil {
		return denied(fmt.Sprintf("validation failed: failed to parse updated ConfigMap, err: %v", err))
	}
	return admission.Allowed("")
}

// virtualServiceValidator refuses VirtualServices the gateway could not
// serve (a regex that does not compile, a rule with both route and
// redirect, ...), in the words of Istio's webhook.
type virtualServiceValidator struct{}

func (virtualServiceValidator) Handle(_ context.Context, req admission.Request) admission.Response {
	var vs istiov1.VirtualService
	if err := json.Unmarshal(req.Object.Raw, &vs); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if _, err := customroute.CompileOne(&vs); err != nil {
		return denied("configuration is invalid: " + err.Error())
	}
	return admission.Allowed("")
}

// denied is upstream's answer to an invalid object: 400 Bad Request.
func denied(message string) admission.Response {
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest, Message: message},
	}}
}

func decode(req admission.Request) (obj, old resource, resp admission.Response) {
	obj = newResource(req.Kind)
	if obj == nil {
		return nil, nil, admission.Allowed("")
	}
	if err := json.Unmarshal(req.Object.Raw, obj); err != nil {
		return nil, nil, admission.Errored(http.StatusBadRequest, err)
	}
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		old = newResource(req.Kind)
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return nil, nil, admission.Errored(http.StatusBadRequest, err)
		}
	}
	return obj, old, admission.Response{}
}

// setUserInfo stamps creator and last modifier as upstream: both on create,
// the last modifier on an update that changes the spec.
func setUserInfo(obj metav1.Object, oldSpec, newSpec any, isUpdate bool, user string) {
	if user == "" {
		return
	}
	anns := obj.GetAnnotations()
	if anns == nil {
		anns = map[string]string{}
	}
	if isUpdate {
		if equality.Semantic.DeepEqual(oldSpec, newSpec) {
			return
		}
	} else {
		anns[servingv1.CreatorAnnotation] = user
	}
	anns[servingv1.UpdaterAnnotation] = user
	obj.SetAnnotations(anns)
}

type service struct{ servingv1.Service }

func (s *service) defaults(cfg *config.Config, old resource, user string) {
	var oldSvc *servingv1.Service
	if old != nil {
		oldSvc = &old.(*service).Service
	}
	s.SetDefaults(cfg, oldSvc)
	if oldSvc != nil {
		setUserInfo(s, oldSvc.Spec, s.Spec, true, user)
	} else {
		setUserInfo(s, nil, s.Spec, false, user)
	}
}

func (s *service) validate(cfg *config.Config, old resource) *apis.FieldError {
	if old == nil {
		return s.Validate(cfg, nil)
	}
	return s.Validate(cfg, &old.(*service).Service)
}

type configuration struct{ servingv1.Configuration }

func (c *configuration) defaults(cfg *config.Config, old resource, user string) {
	var oldC *servingv1.Configuration
	if old != nil {
		oldC = &old.(*configuration).Configuration
	}
	c.SetDefaults(cfg, oldC)
	// Children of a Service inherit these annotations from it.
	if len(c.OwnerReferences) == 0 {
		if oldC != nil {
			setUserInfo(c, oldC.Spec, c.Spec, true, user)
		} else {
			setUserInfo(c, nil, c.Spec, false, user)
		}
	}
}

func (c *configuration) validate(cfg *config.Config, old resource) *apis.FieldError {
	if old == nil {
		return c.Validate(cfg, nil)
	}
	return c.Validate(cfg, &old.(*configuration).Configuration)
}

type route struct{ servingv1.Route }

func (r *route) defaults(_ *config.Config, old resource, user string) {
	r.Spec.SetDefaults()
	if len(r.OwnerReferences) == 0 {
		if old != nil {
			setUserInfo(r, old.(*route).Spec, r.Spec, true, user)
		} else {
			setUserInfo(r, nil, r.Spec, false, user)
		}
	}
}

func (r *route) validate(cfg *config.Config, old resource) *apis.FieldError {
	if old == nil {
		return r.Validate(cfg, nil)
	}
	return r.Validate(cfg, &old.(*route).Route)
}

type revision struct{ servingv1.Revision }

// A revision is defaulted on create only; its spec never changes.
func (r *revision) defaults(cfg *config.Config, old resource, _ string) {
	if old == nil {
		r.Spec.SetDefaults(cfg, true)
	}
}

func (r *revision) validate(cfg *config.Config, old resource) *apis.FieldError {
	if old == nil {
		return r.Validate(cfg, nil)
	}
	return r.Validate(cfg, &old.(*revision).Revision)
}

type domainMapping struct{ servingv1beta1.DomainMapping }

func (d *domainMapping) defaults(_ *config.Config, old resource, user string) {
	d.SetDefaults()
	if old != nil {
		setUserInfo(d, old.(*domainMapping).Spec, d.Spec, true, user)
	} else {
		setUserInfo(d, nil, d.Spec, false, user)
	}
}

func (d *domainMapping) validate(_ *config.Config, old resource) *apis.FieldError {
	errs := d.Validate()
	if old != nil {
		o := old.(*domainMapping)
		errs = errs.Also(servingv1.ValidateCreatorAndModifier(o.Spec, d.Spec, o.Annotations, d.Annotations).ViaField("metadata.annotations"))
	}
	return errs
}

type podAutoscaler struct {
	autoscalingv1alpha1.PodAutoscaler
}

func (p *podAutoscaler) defaults(cfg *config.Config, _ resource, _ string) {
	p.SetDefaults(cfg.Autoscaler)
}

func (p *podAutoscaler) validate(*config.Config, resource) *apis.FieldError { return nil }
