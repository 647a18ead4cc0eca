package v1

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/knd-dev/knd/pkg/apis"
	"github.com/knd-dev/knd/pkg/apis/config"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
)

// QueueContainerName is upstream's sidecar name, reserved for compatibility.
const QueueContainerName = "queue-proxy"

var (
	reservedEnvVars        = sets.New("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")
	reservedSidecarEnvVars = sets.New("K_SERVICE", "K_CONFIGURATION", "K_REVISION")
	reservedPorts          = sets.New[int32](8012, 8013, 8022, 9090, 9091, 8008)
	validPortNames         = sets.New("h2c", "http1", "")
	reservedPaths          = sets.New("/", "/dev", "/dev/log", "/tmp", "/var", "/var/log")

	// Container fields a revision may set; everything else is refused.
	allowedContainerFields = sets.New("name", "args", "command", "env", "workingDir", "envFrom", "image",
		"imagePullPolicy", "livenessProbe", "ports", "readinessProbe", "startupProbe", "resources",
		"securityContext", "terminationMessagePath", "terminationMessagePolicy", "volumeMounts")
	// PodSpec fields always allowed; the rest need a feature flag.
	allowedPodSpecFields = sets.New("containers", "volumes", "serviceAccountName", "imagePullSecrets",
		"enableServiceLinks", "automountServiceAccountToken")
)

// jsonFields lists the JSON keys a value sets (those that are not empty).
func jsonFields(v any) []string {
	raw, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ValidatePodSpec checks the pod part of a revision spec.
func ValidatePodSpec(cfg *config.Config, ps corev1.PodSpec) (errs *apis.FieldError) {
	for _, f := range jsonFields(ps) {
		if allowedPodSpecFields.Has(f) {
			continue
		}
		if flag, ok := config.PodSpecFieldFlags[f]; ok && flag != "" && cfg.Features.Get(flag) != config.Disabled {
			continue
		}
		if f == "initContainers" {
			errs = errs.Also(&apis.FieldError{Message: fmt.Sprintf("pod spec support for init-containers is off, but found %d init containers", len(ps.InitContainers))})
			continue
		}
		errs = errs.Also(apis.ErrDisallowedFields(f))
	}
	if ps.SecurityContext != nil && cfg.Features.Get(config.PodSpecSecurityContext) != config.Disabled {
		errs = errs.Also(validatePodSecurityContext(ps.SecurityContext).ViaField("securityContext"))
	}

	volumes, verr := validateVolumes(cfg, ps.Volumes, append(append([]corev1.Container{}, ps.InitContainers...), ps.Containers...))
	errs = errs.Also(verr.ViaField("volumes"))

	port, perr := validateContainersPorts(ps.Containers)
	errs = errs.Also(perr.ViaField("containers[*]"))

	switch len(ps.Containers) {
	case 0:
		errs = errs.Also(apis.ErrMissingField("containers"))
	case 1:
		errs = errs.Also(validateContainer(cfg, ps.Containers[0], volumes, port, true).ViaFieldIndex("containers", 0))
	default:
		if !cfg.Features.Enabled(config.MultiContainer) {
			errs = errs.Also(&apis.FieldError{Message: fmt.Sprintf("multi-container is off, but found %d containers", len(ps.Containers))})
			break
		}
		for i, c := range ps.Containers {
			errs = errs.Also(validateContainer(cfg, c, volumes, port, len(c.Ports) > 0).ViaFieldIndex("containers", i))
		}
	}
	for i, c := range ps.InitContainers {
		errs = errs.Also(validateContainer(cfg, c, volumes, port, false).ViaFieldIndex("initContainers", i))
	}
	errs = errs.Also(validateContainerNames(ps))
	if ps.ServiceAccountName != "" {
		for _, msg := range validation.IsDNS1123Subdomain(ps.ServiceAccountName) {
			errs = errs.Also(apis.ErrInvalidValue(ps.ServiceAccountName, "serviceAccountName", msg))
		}
	}
	return errs
}

func validateContainerNames(ps corev1.PodSpec) (errs *apis.FieldError) {
	seen := sets.New[string]()
	check := func(field string, list []corev1.Container) {
		for i, c := range list {
			if c.Name == "" {
				continue
			}
			if seen.Has(c.Name) {
				errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("duplicate container name %q", c.Name), "name").ViaFieldIndex(field, i))
			}
			seen.Insert(c.Name)
		}
	}
	check("containers", ps.Containers)
	check("initContainers", ps.InitContainers)
	return errs
}

// validateContainersPorts finds the serving port: the only port across all
// containers (8080 named http when none is given).
func validateContainersPorts(containers []corev1.Container) (corev1.ContainerPort, *apis.FieldError) {
	count := 0
	var port corev1.ContainerPort
	for _, c := range containers {
		if len(c.Ports) > 0 {
			count += len(c.Ports)
			port = c.Ports[0]
		}
	}
	if port.Name == "" {
		port.Name = "http"
	}
	if port.ContainerPort == 0 {
		port.ContainerPort = 8080
	}
	if count == 0 && len(containers) > 1 {
		return port, apis.ErrMissingField("ports")
	}
	if count > 1 {
		return port, &apis.FieldError{Message: "more than one container port is set", Paths: []string{"ports"},
			Details: "Only a single port is allowed across all containers"}
	}
	return port, nil
}

func validateContainer(cfg *config.Config, c corev1.Container, volumes sets.Set[string], port corev1.ContainerPort, serving bool) *apis.FieldError {
	var errs *apis.FieldError
	for _, f := range jsonFields(c) {
		if !allowedContainerFields.Has(f) {
			errs = errs.Also(apis.ErrDisallowedFields(f))
		}
	}
	if c.Name == QueueContainerName {
		errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("%q is a reserved container name", c.Name), "name"))
	}
	if serving {
		errs = errs.Also(validateContainerPorts(c.Ports).ViaField("ports"))
		errs = errs.Also(validateReadinessProbe(c.ReadinessProbe, port).ViaField("readinessProbe"))
		errs = errs.Also(validateProbe(c.LivenessProbe, port, true).ViaField("livenessProbe"))
		errs = errs.Also(validateProbe(c.StartupProbe, port, true).ViaField("startupProbe"))
	} else {
		errs = errs.Also(validateProbe(c.LivenessProbe, port, false).ViaField("livenessProbe"))
		errs = errs.Also(validateProbe(c.ReadinessProbe, port, false).ViaField("readinessProbe"))
	}
	reserved := reservedEnvVars
	if !serving {
		reserved = reservedSidecarEnvVars
	}
	for i, env := range c.Env {
		var e *apis.FieldError
		if env.Name == "" {
			e = apis.ErrMissingField("name")
		} else if reserved.Has(env.Name) {
			e = apis.ErrGeneric(fmt.Sprintf("%q is a reserved environment variable", env.Name), "name")
		}
		if env.ValueFrom != nil {
			e = e.Also(validateEnvValueFrom(cfg, env.ValueFrom).ViaField("valueFrom"))
		}
		errs = errs.Also(e.ViaFieldIndex("env", i))
	}
	for i, from := range c.EnvFrom {
		if (from.ConfigMapRef == nil) == (from.SecretRef == nil) {
			if from.ConfigMapRef == nil {
				errs = errs.Also(apis.ErrMissingOneOf("configMapRef", "secretRef").ViaFieldIndex("envFrom", i))
			} else {
				errs = errs.Also(apis.ErrMultipleOneOf("configMapRef", "secretRef").ViaFieldIndex("envFrom", i))
			}
		}
	}
	if c.Image == "" {
		errs = errs.Also(apis.ErrMissingField("image"))
	} else if _, err := name.ParseReference(c.Image, name.WeakValidation); err != nil {
		errs = errs.Also(&apis.FieldError{Message: "Failed to parse image reference", Paths: []string{"image"},
			Details: fmt.Sprintf("image: %q, error: %v", c.Image, err)})
	}
	switch c.TerminationMessagePolicy {
	case "", corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError:
	default:
		errs = errs.Also(apis.ErrInvalidValue(c.TerminationMessagePolicy, "terminationMessagePolicy"))
	}
	if c.SecurityContext != nil {
		errs = errs.Also(validateSecurityContext(cfg, c.SecurityContext).ViaField("securityContext"))
	}
	errs = errs.Also(validateVolumeMounts(c.VolumeMounts, volumes).ViaField("volumeMounts"))
	return errs
}

func validateEnvValueFrom(cfg *config.Config, from *corev1.EnvVarSource) *apis.FieldError {
	if from.FieldRef != nil && !cfg.Features.Enabled(config.PodSpecFieldRef) {
		return apis.ErrDisallowedFields("fieldRef")
	}
	if from.ResourceFieldRef != nil && !cfg.Features.Enabled(config.PodSpecFieldRef) {
		return apis.ErrDisallowedFields("resourceFieldRef")
	}
	return nil
}

func validateContainerPorts(ports []corev1.ContainerPort) *apis.FieldError {
	if len(ports) == 0 {
		return nil
	}
	var errs *apis.FieldError
	if len(ports) > 1 {
		errs = errs.Also(&apis.FieldError{Message: "more than one container port is set", Paths: []string{apis.CurrentField},
			Details: "Only a single port is allowed"})
	}
	p := ports[0]
	if p.HostPort != 0 {
		errs = errs.Also(apis.ErrDisallowedFields("hostPort"))
	}
	if p.HostIP != "" {
		errs = errs.Also(apis.ErrDisallowedFields("hostIP"))
	}
	if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
		errs = errs.Also(apis.ErrInvalidValue(p.Protocol, "protocol"))
	}
	if reservedPorts.Has(p.ContainerPort) {
		errs = errs.Also(apis.ErrInvalidValue(fmt.Sprintf("%d is a reserved port", p.ContainerPort), "containerPort",
			fmt.Sprintf("%d is a reserved port, please use a different value", p.ContainerPort)))
	}
	if p.ContainerPort < 0 || p.ContainerPort > 65535 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(p.ContainerPort, 0, 65535, "containerPort"))
	}
	if !validPortNames.Has(p.Name) {
		errs = errs.Also(&apis.FieldError{Message: fmt.Sprintf("Port name %v is not allowed", p.Name),
			Paths: []string{apis.CurrentField}, Details: "Name must be empty, or one of: 'h2c', 'http1'"})
	}
	return errs
}

func validateReadinessProbe(p *corev1.Probe, port corev1.ContainerPort) *apis.FieldError {
	if p == nil {
		return nil
	}
	errs := validateProbe(p, port, true)
	if p.PeriodSeconds < 0 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(p.PeriodSeconds, 0, math.MaxInt32, "periodSeconds"))
	}
	if p.InitialDelaySeconds < 0 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(p.InitialDelaySeconds, 0, math.MaxInt32, "initialDelaySeconds"))
	}
	if p.SuccessThreshold < 1 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(p.SuccessThreshold, 1, math.MaxInt32, "successThreshold"))
	}
	if p.PeriodSeconds == 0 {
		if p.FailureThreshold != 0 {
			errs = errs.Also(apis.ErrGeneric("failureThreshold is disallowed when periodSeconds is zero", "failureThreshold"))
		}
		if p.TimeoutSeconds != 0 {
			errs = errs.Also(apis.ErrGeneric("timeoutSeconds is disallowed when periodSeconds is zero", "timeoutSeconds"))
		}
	} else {
		if p.TimeoutSeconds < 1 {
			errs = errs.Also(apis.ErrOutOfBoundsValue(p.TimeoutSeconds, 1, math.MaxInt32, "timeoutSeconds"))
		}
		if p.FailureThreshold < 1 {
			errs = errs.Also(apis.ErrOutOfBoundsValue(p.FailureThreshold, 1, math.MaxInt32, "failureThreshold"))
		}
	}
	return errs
}

func validateProbe(p *corev1.Probe, port corev1.ContainerPort, serving bool) *apis.FieldError {
	if p == nil {
		return nil
	}
	var errs *apis.FieldError
	var handlers []string
	checkPort := func(field string, probePort intstr.IntOrString) {
		if !serving || probePort == (intstr.IntOrString{}) {
			return
		}
		if probePort.Type == intstr.Int && probePort.IntValue() != int(port.ContainerPort) && probePort.IntValue() != 0 {
			errs = errs.Also(apis.ErrInvalidValue(probePort.String(), field+".port",
				"May only probe containerPort"))
		}
		if probePort.Type == intstr.String && probePort.StrVal != port.Name {
			errs = errs.Also(apis.ErrInvalidValue(probePort.String(), field+".port", "Probe port must match container port"))
		}
	}
	if p.HTTPGet != nil {
		handlers = append(handlers, "httpGet")
		checkPort("httpGet", p.HTTPGet.Port)
	}
	if p.TCPSocket != nil {
		handlers = append(handlers, "tcpSocket")
		checkPort("tcpSocket", p.TCPSocket.Port)
	}
	if p.Exec != nil {
		handlers = append(handlers, "exec")
	}
	if p.GRPC != nil {
		handlers = append(handlers, "grpc")
	}
	switch {
	case len(handlers) == 0:
		errs = errs.Also(apis.ErrMissingOneOf("httpGet", "tcpSocket", "exec", "grpc"))
	case len(handlers) > 1:
		errs = errs.Also(apis.ErrMultipleOneOf(handlers...))
	}
	return errs
}

func validatePodSecurityContext(sc *corev1.PodSecurityContext) (errs *apis.FieldError) {
	if sc.RunAsUser != nil && *sc.RunAsUser < 0 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(*sc.RunAsUser, 0, math.MaxInt32, "runAsUser"))
	}
	if sc.RunAsGroup != nil && *sc.RunAsGroup < 0 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(*sc.RunAsGroup, 0, math.MaxInt32, "runAsGroup"))
	}
	return errs
}

func validateSecurityContext(cfg *config.Config, sc *corev1.SecurityContext) (errs *apis.FieldError) {
	allowed := sets.New("allowPrivilegeEscalation", "capabilities", "readOnlyRootFilesystem", "runAsGroup",
		"runAsNonRoot", "runAsUser", "seccompProfile")
	for _, f := range jsonFields(sc) {
		if !allowed.Has(f) {
			errs = errs.Also(apis.ErrDisallowedFields(f))
		}
	}
	if sc.RunAsUser != nil && *sc.RunAsUser < 0 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(*sc.RunAsUser, 0, math.MaxInt32, "runAsUser"))
	}
	if sc.RunAsGroup != nil && *sc.RunAsGroup < 0 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(*sc.RunAsGroup, 0, math.MaxInt32, "runAsGroup"))
	}
	if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 && !cfg.Features.Enabled(config.ContainerSpecAddCapabilities) {
		errs = errs.Also(apis.ErrDisallowedFields("capabilities.add"))
	}
	return errs
}

func validateVolumes(cfg *config.Config, volumes []corev1.Volume, containers []corev1.Container) (sets.Set[string], *apis.FieldError) {
	var errs *apis.FieldError
	names := sets.New[string]()
	mounted := sets.New[string]()
	for _, c := range containers {
		for _, m := range c.VolumeMounts {
			mounted.Insert(m.Name)
		}
	}
	for i, v := range volumes {
		if names.Has(v.Name) {
			errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("duplicate volume name %q", v.Name), "name").ViaIndex(i))
		}
		names.Insert(v.Name)
		if !mounted.Has(v.Name) {
			errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("volume with name %q not mounted", v.Name), "name").ViaIndex(i))
		}
		errs = errs.Also(validateVolumeSource(cfg, v.VolumeSource).ViaIndex(i))
	}
	return names, errs
}

func validateVolumeSource(cfg *config.Config, vs corev1.VolumeSource) *apis.FieldError {
	var kinds []string
	var errs *apis.FieldError
	for _, f := range jsonFields(vs) {
		kinds = append(kinds, f)
		switch f {
		case "secret", "configMap", "projected":
		case "emptyDir":
			if !cfg.Features.Enabled(config.PodSpecVolumesEmptyDir) {
				errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("EmptyDir volume support is disabled, but found EmptyDir volume %s", f), f))
			}
		case "persistentVolumeClaim":
			if !cfg.Features.Enabled(config.PodSpecPersistentVolumeClaim) {
				errs = errs.Also(apis.ErrGeneric("Persistent volume claim support is disabled, but found persistent volume claim", f))
			}
		case "hostPath":
			if !cfg.Features.Enabled(config.PodSpecHostPath) {
				errs = errs.Also(apis.ErrDisallowedFields(f))
			}
		default:
			errs = errs.Also(apis.ErrDisallowedFields(f))
		}
	}
	switch {
	case len(kinds) == 0:
		errs = errs.Also(apis.ErrMissingOneOf("secret", "configMap", "projected", "emptyDir"))
	case len(kinds) > 1:
		errs = errs.Also(apis.ErrMultipleOneOf(kinds...))
	}
	return errs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, volumes sets.Set[string]) (errs *apis.FieldError) {
	seen := sets.New[string]()
	for i, m := range mounts {
		var e *apis.FieldError
		if !volumes.Has(m.Name) {
			e = e.Also(&apis.FieldError{Message: "volumeMount has no matching volume", Paths: []string{"name"}})
		}
		switch {
		case m.MountPath == "":
			e = e.Also(apis.ErrMissingField("mountPath"))
		case reservedPaths.Has(path.Clean(m.MountPath)):
			e = e.Also(apis.ErrInvalidValue(fmt.Sprintf("mountPath %q is a reserved path", path.Clean(m.MountPath)), "mountPath"))
		case !path.IsAbs(m.MountPath):
			e = e.Also(apis.ErrInvalidValue(m.MountPath, "mountPath"))
		case seen.Has(path.Clean(m.MountPath)):
			e = e.Also(apis.ErrInvalidValue(fmt.Sprintf("%q must be unique", m.MountPath), "mountPath"))
		}
		seen.Insert(path.Clean(m.MountPath))
		errs = errs.Also(e.ViaIndex(i))
	}
	return errs
}
