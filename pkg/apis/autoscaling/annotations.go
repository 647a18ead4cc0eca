// Package autoscaling validates the autoscaling.knative.dev annotations a
// revision template may carry.
package autoscaling

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/knd-dev/knd/pkg/apis"
	"github.com/knd-dev/knd/pkg/apis/config"
)

// GroupName prefixes every autoscaling annotation.
const GroupName = "autoscaling.knative.dev"

// Key lists an annotation's spellings, canonical first; the first present wins.
type Key []string

// Get returns the spelling found, its value and whether one was found.
func (k Key) Get(annotations map[string]string) (string, string, bool) {
	for _, key := range k {
		if v, ok := annotations[key]; ok {
			return key, v, true
		}
	}
	return "", "", false
}

// Canonical is the preferred spelling.
func (k Key) Canonical() string { return k[0] }

func key(names ...string) Key {
	k := make(Key, len(names))
	for i, n := range names {
		k[i] = GroupName + "/" + n
	}
	return k
}

// Annotation keys.
var (
	ClassAnnotation                         = key("class")
	MetricAnnotation                        = key("metric")
	MinScaleAnnotation                      = key("min-scale", "minScale")
	MaxScaleAnnotation                      = key("max-scale", "maxScale")
	InitialScaleAnnotation                  = key("initial-scale", "initialScale")
	ActivationScaleAnnotation               = key("activation-scale")
	TargetAnnotation                        = key("target")
	TargetUtilizationPercentageAnnotation   = key("target-utilization-percentage")
	TargetBurstCapacityAnnotation           = key("target-burst-capacity")
	PanicWindowPercentageAnnotation         = key("panic-window-percentage", "panicWindowPercentage")
	PanicThresholdPercentageAnnotation      = key("panic-threshold-percentage", "panicThresholdPercentage")
	WindowAnnotation                        = key("window")
	ScaleDownDelayAnnotation                = key("scale-down-delay")
	ScaleToZeroPodRetentionPeriodAnnotation = key("scale-to-zero-pod-retention-period")
	MetricAggregationAlgorithmAnnotation    = key("metric-aggregation-algorithm")
)

// Metric values.
const (
	Concurrency = "concurrency"
	RPS         = "rps"
	CPU         = "cpu"
	Memory      = "memory"
)

const (
	windowMin = 6 * time.Second
	windowMax = time.Hour
	targetMin = 0.01
)

// ValidateAnnotations checks a revision template's autoscaling annotations
// against the autoscaler configuration. Paths are annotation keys.
func ValidateAnnotations(cfg *config.Autoscaler, anns map[string]string) *apis.FieldError {
	return validateClass(anns).
		Also(validateMinMaxScale(cfg, anns)).
		Also(validateFloats(anns)).
		Also(validateDuration(anns, WindowAnnotation, windowMin, windowMax)).
		Also(validateDuration(anns, ScaleDownDelayAnnotation, 0, windowMax)).
		Also(validateDuration(anns, ScaleToZeroPodRetentionPeriodAnnotation, 0, windowMax)).
		Also(validateMetric(cfg, anns)).
		Also(validateAlgorithm(anns)).
		Also(validateInitialScale(cfg, anns))
}

// Class returns the autoscaler class: the annotation or the configured default.
func Class(cfg *config.Autoscaler, anns map[string]string) string {
	if _, v, ok := ClassAnnotation.Get(anns); ok {
		return v
	}
	return cfg.PodAutoscalerClass
}

func validateClass(anns map[string]string) *apis.FieldError {
	if k, v, ok := ClassAnnotation.Get(anns); ok {
		if strings.HasSuffix(v, ".knative.dev") && v != config.KPA && v != config.HPA {
			return apis.ErrInvalidValue(v, k)
		}
	}
	return nil
}

func getIntGE0(anns map[string]string, k Key) (int32, *apis.FieldError) {
	key, v, ok := k.Get(anns)
	if !ok {
		return 0, nil
	}
	i, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, apis.ErrOutOfBoundsValue(v, 0, math.MaxInt32, key)
		}
		return 0, apis.ErrInvalidValue(v, key)
	}
	if i < 0 {
		return 0, apis.ErrOutOfBoundsValue(v, 0, math.MaxInt32, key)
	}
	return int32(i), nil
}

func validateMinMaxScale(cfg *config.Autoscaler, anns map[string]string) *apis.FieldError {
	minScale, errs := getIntGE0(anns, MinScaleAnnotation)
	maxScale, err := getIntGE0(anns, MaxScaleAnnotation)
	errs = errs.Also(err)
	if maxScale != 0 && maxScale < minScale {
		errs = errs.Also(&apis.FieldError{
			Message: fmt.Sprintf("max-scale=%d is less than min-scale=%d", maxScale, minScale),
			Paths:   []string{MaxScaleAnnotation.Canonical(), MinScaleAnnotation.Canonical()},
		})
	}
	if k, _, ok := MaxScaleAnnotation.Get(anns); ok && cfg.MaxScaleLimit > 0 {
		if maxScale > cfg.MaxScaleLimit {
			errs = errs.Also(apis.ErrOutOfBoundsValue(maxScale, 1, cfg.MaxScaleLimit, k))
		}
		if maxScale == 0 {
			errs = errs.Also(apis.ErrGeneric(fmt.Sprint("max-scale=0 (unlimited), must be less than ", cfg.MaxScaleLimit), k))
		}
	}
	if k, v, ok := ActivationScaleAnnotation.Get(anns); ok {
		activation, err := strconv.ParseInt(v, 10, 32)
		switch {
		case err != nil:
			errs = errs.Also(apis.ErrInvalidValue(v, k))
		case activation < 2:
			errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("activation-scale=%d must be greater than 1", activation), k))
		default:
			if maxScale != 0 && int64(maxScale) < activation {
				errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("max-scale=%d is less than activation-scale=%d", maxScale, activation),
					MaxScaleAnnotation.Canonical(), k))
			}
			if int64(minScale) > activation {
				errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("min-scale=%d is greater than activation-scale=%d", minScale, activation),
					MinScaleAnnotation.Canonical(), k))
			}
		}
	}
	return errs
}

func validateFloats(anns map[string]string) (errs *apis.FieldError) {
	if k, v, ok := TargetAnnotation.Get(anns); ok {
		if f, err := strconv.ParseFloat(v, 64); err != nil || f < targetMin {
			errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("target %s should be at least %g", v, targetMin), k))
		}
	}
	bounded := func(k Key, lower, upper float64) {
		if key, v, ok := k.Get(anns); ok {
			if f, err := strconv.ParseFloat(v, 64); err != nil {
				errs = errs.Also(apis.ErrInvalidValue(v, key))
			} else if f < lower || f > upper {
				errs = errs.Also(apis.ErrOutOfBoundsValue(v, lower, upper, key))
			}
		}
	}
	bounded(TargetUtilizationPercentageAnnotation, 1, 100)
	bounded(PanicWindowPercentageAnnotation, 1, 100)
	bounded(PanicThresholdPercentageAnnotation, 110, 1000)
	if k, v, ok := TargetBurstCapacityAnnotation.Get(anns); ok {
		if f, err := strconv.ParseFloat(v, 64); err != nil || (f < 0 && f != -1) {
			errs = errs.Also(apis.ErrInvalidValue(v, k))
		}
	}
	return errs
}

func validateDuration(anns map[string]string, k Key, lower, upper time.Duration) *apis.FieldError {
	key, v, ok := k.Get(anns)
	if !ok {
		return nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return apis.ErrInvalidValue(v, key)
	case d < lower || d > upper:
		return apis.ErrOutOfBoundsValue(v, lower, upper, key)
	case d.Round(time.Second) != d:
		return apis.ErrGeneric("must be specified with at most second precision", key)
	}
	return nil
}

func validateMetric(cfg *config.Autoscaler, anns map[string]string) *apis.FieldError {
	k, v, ok := MetricAnnotation.Get(anns)
	if !ok {
		return nil
	}
	switch Class(cfg, anns) {
	case config.KPA:
		if v == Concurrency || v == RPS {
			return nil
		}
	case config.HPA:
		if v != "" {
			return nil
		}
	default:
		return nil // another class validates its own metrics
	}
	return apis.ErrInvalidValue(v, k)
}

func validateAlgorithm(anns map[string]string) *apis.FieldError {
	if k, v, ok := MetricAggregationAlgorithmAnnotation.Get(anns); ok {
		switch v {
		case "linear", "weighted-exponential", "weightedExponential":
		default:
			return apis.ErrInvalidValue(v, k)
		}
	}
	return nil
}

func validateInitialScale(cfg *config.Autoscaler, anns map[string]string) *apis.FieldError {
	if k, v, ok := InitialScaleAnnotation.Get(anns); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return apis.ErrInvalidValue(v, k)
		}
		if n == 0 && !cfg.AllowZeroInitialScale {
			return apis.ErrInvalidValue(v, k, "initial-scale=0 not allowed by cluster")
		}
	}
	return nil
}

// HasAutoscalingAnnotation reports annotations outside a revision template,
// where upstream refuses them.
func ValidateNoAutoscalingAnnotation(anns map[string]string) (errs *apis.FieldError) {
	for k := range anns {
		if strings.HasPrefix(k, GroupName) {
			errs = errs.Also(apis.ErrInvalidKeyName(k, apis.CurrentField,
				`autoscaling annotations must be put under "spec.template.metadata.annotations" to work`))
		}
	}
	return errs
}
