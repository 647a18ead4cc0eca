package config

import (
	"fmt"
	"time"
)

// Autoscaler is config-autoscaler.
type Autoscaler struct {
	EnableScaleToZero                  bool
	ContainerConcurrencyTargetFraction float64
	ContainerConcurrencyTargetDefault  float64
	RPSTargetDefault                   float64
	TargetUtilization                  float64
	TargetBurstCapacity                float64
	ActivatorCapacity                  float64
	StableWindow                       time.Duration
	PanicWindowPercentage              float64
	PanicThresholdPercentage           float64
	MaxScaleUpRate                     float64
	MaxScaleDownRate                   float64
	ScaleToZeroGracePeriod             time.Duration
	ScaleToZeroPodRetentionPeriod      time.Duration
	ScaleDownDelay                     time.Duration
	PodAutoscalerClass                 string
	AllowZeroInitialScale              bool
	InitialScale                       int32
	MinScale                           int32
	MaxScale                           int32
	MaxScaleLimit                      int32
}

const (
	KPA = "kpa.autoscaling.knative.dev"
	HPA = "hpa.autoscaling.knative.dev"
)

// NewAutoscaler parses config-autoscaler with upstream's defaults and checks.
func NewAutoscaler(data map[string]string) (*Autoscaler, error) {
	a := &Autoscaler{
		EnableScaleToZero:                  true,
		ContainerConcurrencyTargetFraction: 70,
		ContainerConcurrencyTargetDefault:  100,
		RPSTargetDefault:                   200,
		TargetBurstCapacity:                211,
		ActivatorCapacity:                  100,
		StableWindow:                       60 * time.Second,
		PanicWindowPercentage:              10,
		PanicThresholdPercentage:           200,
		MaxScaleUpRate:                     1000,
		MaxScaleDownRate:                   2,
		ScaleToZeroGracePeriod:             30 * time.Second,
		PodAutoscalerClass:                 KPA,
		InitialScale:                       1,
	}
	p := &parser{data: data}
	p.bool(&a.EnableScaleToZero, "enable-scale-to-zero")
	p.float64(&a.ContainerConcurrencyTargetFraction, "container-concurrency-target-percentage")
	p.float64(&a.ContainerConcurrencyTargetDefault, "container-concurrency-target-default")
	p.float64(&a.RPSTargetDefault, "requests-per-second-target-default")
	p.float64(&a.TargetBurstCapacity, "target-burst-capacity")
	p.float64(&a.ActivatorCapacity, "activator-capacity")
	p.duration(&a.StableWindow, "stable-window")
	p.float64(&a.PanicWindowPercentage, "panic-window-percentage")
	p.float64(&a.PanicThresholdPercentage, "panic-threshold-percentage")
	p.float64(&a.MaxScaleUpRate, "max-scale-up-rate")
	p.float64(&a.MaxScaleDownRate, "max-scale-down-rate")
	p.duration(&a.ScaleToZeroGracePeriod, "scale-to-zero-grace-period")
	p.duration(&a.ScaleToZeroPodRetentionPeriod, "scale-to-zero-pod-retention-period")
	p.duration(&a.ScaleDownDelay, "scale-down-delay")
	p.string(&a.PodAutoscalerClass, "pod-autoscaler-class")
	p.bool(&a.AllowZeroInitialScale, "allow-zero-initial-scale")
	p.int32(&a.InitialScale, "initial-scale")
	p.int32(&a.MinScale, "min-scale")
	p.int32(&a.MaxScale, "max-scale")
	p.int32(&a.MaxScaleLimit, "max-scale-limit")
	if p.err != nil {
		return nil, p.err
	}
	// Percentages above 1 are given in percent.
	if a.ContainerConcurrencyTargetFraction > 1 {
		a.ContainerConcurrencyTargetFraction /= 100
	}
	a.TargetUtilization = a.ContainerConcurrencyTargetFraction
	return a, a.validate()
}

func (a *Autoscaler) validate() error {
	switch {
	case a.ScaleToZeroGracePeriod <= 0:
		return fmt.Errorf("scale-to-zero-grace-period must be positive, was: %v", a.ScaleToZeroGracePeriod)
	case a.ScaleDownDelay < 0:
		return fmt.Errorf("scale-down-delay cannot be negative, was: %v", a.ScaleDownDelay)
	case a.ScaleDownDelay.Round(time.Second) != a.ScaleDownDelay:
		return fmt.Errorf("scale-down-delay = %v, must be specified with at most second precision", a.ScaleDownDelay)
	case a.ScaleToZeroPodRetentionPeriod < 0:
		return fmt.Errorf("scale-to-zero-pod-retention-period cannot be negative, was: %v", a.ScaleToZeroPodRetentionPeriod)
	case a.TargetBurstCapacity < 0 && a.TargetBurstCapacity != -1:
		return fmt.Errorf("target-burst-capacity must be either non-negative or -1 (for unlimited), was: %f", a.TargetBurstCapacity)
	case a.ContainerConcurrencyTargetFraction <= 0 || a.ContainerConcurrencyTargetFraction > 1:
		return fmt.Errorf("container-concurrency-target-percentage = %f is outside of valid range of (0, 100]", a.ContainerConcurrencyTargetFraction)
	case a.ContainerConcurrencyTargetDefault < 0.01:
		return fmt.Errorf("container-concurrency-target-default = %f, must be at least 0.01", a.ContainerConcurrencyTargetDefault)
	case a.RPSTargetDefault < 0.01:
		return fmt.Errorf("requests-per-second-target-default = %f, must be at least 0.01", a.RPSTargetDefault)
	case a.ActivatorCapacity < 1:
		return fmt.Errorf("activator-capacity = %v, must be at least 1", a.ActivatorCapacity)
	case a.MaxScaleUpRate <= 1.0:
		return fmt.Errorf("max-scale-up-rate = %v, must be greater than 1.0", a.MaxScaleUpRate)
	case a.MaxScaleDownRate <= 1.0:
		return fmt.Errorf("max-scale-down-rate = %v, must be greater than 1.0", a.MaxScaleDownRate)
	case a.StableWindow < 6*time.Second || a.StableWindow > time.Hour:
		return fmt.Errorf("stable-window = %v, must be in [6s; 1h0m0s] range", a.StableWindow)
	case a.StableWindow.Round(time.Second) != a.StableWindow:
		return fmt.Errorf("stable-window = %v, must be specified with at most second precision", a.StableWindow)
	case a.PanicWindowPercentage < 1 || a.PanicWindowPercentage > 100:
		return fmt.Errorf("panic-window-percentage = %v, must be in [1, 100] interval", a.PanicWindowPercentage)
	case a.PanicThresholdPercentage < 110 || a.PanicThresholdPercentage > 1000:
		return fmt.Errorf("panic-threshold-percentage = %v, must be in [110, 1000] interval", a.PanicThresholdPercentage)
	case a.InitialScale < 0 || (a.InitialScale == 0 && !a.AllowZeroInitialScale):
		return fmt.Errorf("initial-scale = %v, must be at least 0 (or at least 1 when allow-zero-initial-scale is false)", a.InitialScale)
	case a.MinScale < 0:
		return fmt.Errorf("min-scale = %v, must be at least 0", a.MinScale)
	case a.MaxScale < 0 || (a.MaxScaleLimit > 0 && a.MaxScale > a.MaxScaleLimit):
		return fmt.Errorf("max-scale = %d, must be in [0, max-scale-limit] range", a.MaxScale)
	case a.MaxScaleLimit < 0:
		return fmt.Errorf("max-scale-limit = %v, must be at least 0", a.MaxScaleLimit)
	case a.MaxScale > 0 && a.MinScale > a.MaxScale:
		return fmt.Errorf("min-scale (%d) must be less than max-scale (%d)", a.MinScale, a.MaxScale)
	case a.PodAutoscalerClass != KPA && a.PodAutoscalerClass != HPA:
		return fmt.Errorf("pod-autoscaler-class = %q, must be %q or %q", a.PodAutoscalerClass, KPA, HPA)
	}
	return nil
}
