package revision

import (
	"strconv"

	"github.com/knd-dev/knd/pkg/apis/autoscaling"
	autoscalingv1alpha1 "github.com/knd-dev/knd/pkg/apis/autoscaling/v1alpha1"
	"github.com/knd-dev/knd/pkg/apis/config"
	"github.com/knd-dev/knd/pkg/apis/podport"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// DrainSeconds is how long a revision pod keeps serving after deletion.
const DrainSeconds = 1

// DeploymentName is the Deployment that runs a revision's pods.
func DeploymentName(rev string) string { return rev + "-deployment" }

// servingContainer is the only container, or the one with ports.
func servingContainer(spec *corev1.PodSpec) int {
	for i, c := range spec.Containers {
		if len(c.Ports) > 0 {
			return i
		}
	}
	return 0
}

// UserPort is the port the revision's serving container listens on.
func UserPort(rev *servingv1.Revision) int32 {
	if len(rev.Spec.Containers) == 0 {
		return podport.Default
	}
	c := rev.Spec.Containers[servingContainer(&rev.Spec.PodSpec)]
	if len(c.Ports) > 0 && c.Ports[0].ContainerPort != 0 {
		return c.Ports[0].ContainerPort
	}
	return podport.Default
}

// podLabels are the revision's labels without routing state, plus the
// revision's identity and app=<revision>.
func podLabels(rev *servingv1.Revision) map[string]string {
	l := map[string]string{}
	for k, v := range rev.Labels {
		if k != servingv1.RoutingStateLabelKey && k != servingv1.RouteLabelKey {
			l[k] = v
		}
	}
	l[servingv1.RevisionLabelKey] = rev.Name
	l[servingv1.RevisionUIDLabelKey] = string(rev.UID)
	l["app"] = rev.Name
	return l
}

func podAnnotations(rev *servingv1.Revision) map[string]string {
	a := map[string]string{}
	for k, v := range rev.Annotations {
		switch k {
		case servingv1.RoutesAnnotationKey, servingv1.RoutingStateModifiedAnnotation, servingv1.LastAppliedAnnotation:
		default:
			a[k] = v
		}
	}
	return a
}

// MakeDeployment is the Deployment a revision needs. There is no
// queue-proxy sidecar: the gateway does its job, so probes stay on the
// user container (with port 0 meaning the user port).
func MakeDeployment(rev *servingv1.Revision, cfg *config.Config, replicas int32) *appsv1.Deployment {
	ps := rev.Spec.PodSpec.DeepCopy()
	port := UserPort(rev)
	i := servingContainer(ps)
	c := &ps.Containers[i]
	portName := "user-port"
	if len(c.Ports) > 0 && c.Ports[0].Name != "" {
		portName = c.Ports[0].Name
	}
	c.Ports = []corev1.ContainerPort{{Name: portName, ContainerPort: port, Protocol: corev1.ProtocolTCP}}
	c.Env = append(c.Env,
		corev1.EnvVar{Name: "PORT", Value: strconv.Itoa(int(port))},
		corev1.EnvVar{Name: "K_REVISION", Value: rev.Name},
		corev1.EnvVar{Name: "K_CONFIGURATION", Value: rev.Labels[servingv1.ConfigurationLabelKey]},
		corev1.EnvVar{Name: "K_SERVICE", Value: rev.Labels[servingv1.ServiceLabelKey]},
	)
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
		fixProbePort(p, port)
	}
	// Like upstream's drain hook: a deleted pod keeps serving for a moment,
	// so the gateway stops sending it requests before it gets SIGTERM.
	if c.Lifecycle == nil {
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: DrainSeconds}}}
	}
	if ps.EnableServiceLinks == nil {
		ps.EnableServiceLinks = ptr.To(false)
	}
	if rev.Spec.TimeoutSeconds != nil && ps.TerminationGracePeriodSeconds == nil {
		ps.TerminationGracePeriodSeconds = ptr.To(*rev.Spec.TimeoutSeconds)
	}
	labels := podLabels(rev)
	deadline := int32(servingv1.ProgressDeadline(rev.Annotations, cfg.Deployment.ProgressDeadline).Seconds())
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: DeploymentName(rev.Name), Namespace: rev.Namespace,
			Labels: labels, Annotations: podAnnotations(rev)},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			Selector:                &metav1.LabelSelector{MatchLabels: map[string]string{servingv1.RevisionUIDLabelKey: string(rev.UID)}},
			ProgressDeadlineSeconds: &deadline,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations(rev)},
				Spec:       *ps,
			},
		},
	}
}

// PrivateServiceName is the revision's Service that selects its pods.
func PrivateServiceName(rev string) string { return rev + "-private" }

// MakeServices are the core/v1 Services upstream gives every revision, by
// its names: "<rev>-private", which upstream has select the revision's
// pods, and "<rev>", which it points at the activator or the pods. knd's
// gateway reaches pods itself, so they are for `kubectl get svc` and for
// tools that look them up: each has one port, 80, to the user port (there
// is no queue-proxy to give the others), and neither selects pods: the
// Endpoints and EndpointSlice writes a selector brings on every pod's
// readiness cost the API server time during cold starts, for nothing
// that reads them here.
func MakeServices(rev *servingv1.Revision) []*corev1.Service {
	portName := "http"
	if c := rev.Spec.Containers[servingContainer(&rev.Spec.PodSpec)]; len(c.Ports) > 0 && c.Ports[0].Name == "h2c" {
		portName = "http2"
	}
	service := func(name, kind string) *corev1.Service {
		labels := map[string]string{servingv1.ServiceTypeLabelKey: kind, servingv1.RevisionLabelKey: rev.Name,
			servingv1.RevisionUIDLabelKey: string(rev.UID)}
		for _, k := range []string{servingv1.ConfigurationLabelKey, servingv1.ServiceLabelKey} {
			if v := rev.Labels[k]; v != "" {
				labels[k] = v
			}
		}
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rev.Namespace, Labels: labels},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
				Name: portName, Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(UserPort(rev))}}},
		}
	}
	return []*corev1.Service{
		service(rev.Name, "Public"),
		service(PrivateServiceName(rev.Name), "Private"),
	}
}

// fixProbePort points probes without a port at the user port (pod
// validation refuses port 0) and fills in the API server's defaults, so
// the Deployment read back compares equal to the one wanted (a derivative
// comparison ignores unset strings and pointers, not zero integers).
func fixProbePort(p *corev1.Probe, port int32) {
	if p == nil {
		return
	}
	for _, f := range []struct {
		field *int32
		def   int32
	}{{&p.TimeoutSeconds, 1}, {&p.PeriodSeconds, 10}, {&p.SuccessThreshold, 1}, {&p.FailureThreshold, 3}} {
		if *f.field == 0 {
			*f.field = f.def
		}
	}
	zero := func(v intstr.IntOrString) bool { return v.Type == intstr.Int && v.IntVal == 0 }
	switch {
	case p.TCPSocket != nil && zero(p.TCPSocket.Port):
		p.TCPSocket.Port = intstr.FromInt32(port)
	case p.HTTPGet != nil && zero(p.HTTPGet.Port):
		p.HTTPGet.Port = intstr.FromInt32(port)
	case p.GRPC != nil && p.GRPC.Port == 0:
		p.GRPC.Port = port
	}
}

// InitialReplicas is the revision's initial scale: the initial-scale
// annotation or config-autoscaler's initial-scale, at least min-scale.
func InitialReplicas(rev *servingv1.Revision, cfg *config.Config) int32 {
	n := cfg.Autoscaler.InitialScale
	if _, v, ok := autoscaling.InitialScaleAnnotation.Get(rev.Annotations); ok {
		if i, err := strconv.Atoi(v); err == nil {
			n = int32(i)
		}
	}
	if _, v, ok := autoscaling.MinScaleAnnotation.Get(rev.Annotations); ok {
		if i, err := strconv.Atoi(v); err == nil && int32(i) > n {
			n = int32(i)
		}
	}
	return n
}

// MakePodAutoscaler is the revision's PodAutoscaler.
func MakePodAutoscaler(rev *servingv1.Revision, cfg *config.Config) *autoscalingv1alpha1.PodAutoscaler {
	ann := podAnnotations(rev)
	if _, _, ok := autoscaling.ClassAnnotation.Get(ann); !ok {
		ann[autoscaling.ClassAnnotation.Canonical()] = cfg.Autoscaler.PodAutoscalerClass
	}
	if _, _, ok := autoscaling.MetricAnnotation.Get(ann); !ok {
		ann[autoscaling.MetricAnnotation.Canonical()] = autoscaling.Concurrency
	}
	reach := autoscalingv1alpha1.ReachabilityUnknown
	switch rev.Labels[servingv1.RoutingStateLabelKey] {
	case servingv1.RoutingStateActive:
		reach = autoscalingv1alpha1.ReachabilityReachable
	case servingv1.RoutingStateReserve:
		reach = autoscalingv1alpha1.ReachabilityUnreachable
	}
	protocol := "http1"
	if c := rev.Spec.Containers[servingContainer(&rev.Spec.PodSpec)]; len(c.Ports) > 0 && c.Ports[0].Name == "h2c" {
		protocol = "h2c"
	}
	return &autoscalingv1alpha1.PodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: rev.Name, Namespace: rev.Namespace, Labels: podLabels(rev), Annotations: ann},
		Spec: autoscalingv1alpha1.PodAutoscalerSpec{
			ContainerConcurrency: ptr.Deref(rev.Spec.ContainerConcurrency, 0),
			ScaleTargetRef:       corev1.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: DeploymentName(rev.Name)},
			Reachability:         reach,
			ProtocolType:         protocol,
		},
	}
}
