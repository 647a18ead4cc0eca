package v1alpha1

import "github.com/knd-dev/knd/pkg/apis/config"

// Annotation keys defaulted on every PodAutoscaler.
const (
	ClassAnnotationKey  = "autoscaling.knative.dev/class"
	MetricAnnotationKey = "autoscaling.knative.dev/metric"
)

// SetDefaults adds the class and metric annotations.
func (pa *PodAutoscaler) SetDefaults(cfg *config.Autoscaler) {
	if pa.Annotations == nil {
		pa.Annotations = map[string]string{}
	}
	if pa.Annotations[ClassAnnotationKey] == "" {
		pa.Annotations[ClassAnnotationKey] = cfg.PodAutoscalerClass
	}
	if pa.Annotations[MetricAnnotationKey] == "" {
		metric := "concurrency"
		if pa.Annotations[ClassAnnotationKey] == config.HPA {
			metric = "cpu"
		}
		pa.Annotations[MetricAnnotationKey] = metric
	}
}
