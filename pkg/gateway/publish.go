package gateway

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// ServiceName is the gateway's core/v1 Service in knative-serving; route
// placeholder Services point at it.
const ServiceName = "knd-gateway"

// Publish records where the gateway listens as a LoadBalancer Service in
// knative-serving, so `kubectl get svc -n knative-serving` shows it.
func Publish(ctx context.Context, client kubernetes.Interface, ip string, port int) error {
	services := client.CoreV1().Services("knative-serving")
	want := corev1.ServiceSpec{
		Type:                          corev1.ServiceTypeLoadBalancer,
		AllocateLoadBalancerNodePorts: ptr.To(false),
		Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP,
			Port: int32(port), TargetPort: intstr.FromInt32(int32(port))}},
	}
	svc, err := services.Get(ctx, ServiceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		svc, err = services.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Labels: map[string]string{"app.kubernetes.io/name": "knd-gateway"}},
			Spec:       want,
		}, metav1.CreateOptions{})
	case err == nil && (len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != int32(port)):
		svc.Spec.Ports = want.Ports
		svc, err = services.Update(ctx, svc, metav1.UpdateOptions{})
	}
	if err != nil {
		return err
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip,
		Ports: []corev1.PortStatus{{Port: int32(port), Protocol: corev1.ProtocolTCP}}}}
	_, err = services.UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	return err
}
