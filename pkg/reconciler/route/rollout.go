package route

import (
	"encoding/json"
	"math"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"k8s.io/utils/ptr"
)

// RolloutAnnotation holds the rollout state in the Route's status
// annotations (upstream keeps it on the KIngress, which knd does not have).
const RolloutAnnotation = "networking.internal.knative.dev/rollout"

// Rollout is the gradual rollout state of every configuration target.
type Rollout struct {
	Configurations []ConfigurationRollout `json:"configurations,omitempty"`
}

// ConfigurationRollout moves one configuration target's percent from its
// older revisions to the newest, step by step.
type ConfigurationRollout struct {
	ConfigurationName string `json:"configurationName"`
	Tag               string `json:"tag,omitempty"`
	Percent           int64  `json:"percent"`
	// Revisions, oldest first; the last is the newest.
	Revisions []RevisionShare `json:"revisions"`
	// StepSize percent points move every StepDuration; NextStep is when.
	StepSize   int64     `json:"stepSize,omitempty"`
	StepMillis int64     `json:"stepDurationMillis,omitempty"`
	NextStep   time.Time `json:"nextStep,omitempty"`
	StartTime  time.Time `json:"startTime"`
}

// RevisionShare is one revision's share in a rollout.
type RevisionShare struct {
	RevisionName string `json:"revisionName"`
	Percent      int64  `json:"percent"`
}

// ParseRollout reads the state kept in a route's status annotations.
func ParseRollout(route *servingv1.Route) *Rollout {
	r := &Rollout{}
	if v := route.Status.Annotations[RolloutAnnotation]; v != "" {
		_ = json.Unmarshal([]byte(v), r)
	}
	return r
}

func (r *Rollout) encode() string {
	if len(r.Configurations) == 0 {
		return ""
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// Step advances the rollout to now for the resolved targets and returns
// the targets to serve (a rolling configuration target becomes one target
// per revision), whether a rollout is in progress, and when to look again.
// duration 0 disables gradual rollout.
func (r *Rollout) Step(targets []servingv1.TrafficTarget, duration time.Duration, now time.Time) ([]servingv1.TrafficTarget, bool, time.Duration) {
	next := &Rollout{}
	var out []servingv1.TrafficTarget
	inProgress := false
	var requeue time.Duration
	for _, tt := range targets {
		pct := ptr.Deref(tt.Percent, 0)
		if duration <= 0 || !ptr.Deref(tt.LatestRevision, false) || pct <= 1 {
			out = append(out, tt)
			continue
		}
		cr := r.find(tt.Tag)
		cr = advance(cr, tt, pct, duration, now)
		next.Configurations = append(next.Configurations, *cr)
		for _, share := range cr.Revisions {
			out = append(out, servingv1.TrafficTarget{Tag: tt.Tag, RevisionName: share.RevisionName,
				LatestRevision: ptr.To(true), Percent: ptr.To(share.Percent)})
		}
		if len(cr.Revisions) > 1 {
			inProgress = true
			if wait := cr.NextStep.Sub(now); requeue == 0 || wait < requeue {
				requeue = max(wait, 10*time.Millisecond)
			}
		}
	}
	*r = *next
	return out, inProgress, requeue
}

func (r *Rollout) find(tag string) *ConfigurationRollout {
	for i := range r.Configurations {
		if r.Configurations[i].Tag == tag {
			c := r.Configurations[i]
			return &c
		}
	}
	return nil
}

// advance applies upstream's rollout rules to one configuration target.
func advance(cr *ConfigurationRollout, tt servingv1.TrafficTarget, pct int64, duration time.Duration, now time.Time) *ConfigurationRollout {
	newest := tt.RevisionName
	if cr == nil || len(cr.Revisions) == 0 {
		// First sight: no rollout, the newest revision has it all.
		return &ConfigurationRollout{Tag: tt.Tag, Percent: pct, StartTime: now,
			Revisions: []RevisionShare{{RevisionName: newest, Percent: pct}}}
	}
	// A changed target percent goes to (or comes from) the newest revisions.
	if diff := pct - cr.Percent; diff > 0 {
		cr.Revisions[len(cr.Revisions)-1].Percent += diff
	} else if diff < 0 {
		take(cr, -diff)
	}
	cr.Percent = pct
	if last := cr.Revisions[len(cr.Revisions)-1]; last.RevisionName != newest {
		// A new ready revision: 1 % moves to it now, the rest in steps.
		take(cr, 1)
		cr.Revisions = append(cr.Revisions, RevisionShare{RevisionName: newest, Percent: 1})
		cr.StartTime = now
		minStep := time.Second
		d := max(time.Second, duration-minStep)
		steps := max(int64(1), int64(d/minStep))
		steps = min(steps, max(pct-1, 1))
		cr.StepSize = int64(math.Round(float64(pct-1) / float64(steps)))
		cr.StepSize = max(cr.StepSize, 1)
		cr.StepMillis = max(1, (d / time.Duration(steps)).Milliseconds())
		cr.NextStep = now.Add(time.Duration(cr.StepMillis) * time.Millisecond)
		return cr
	}
	for len(cr.Revisions) > 1 && !now.Before(cr.NextStep) {
		moved := take(cr, cr.StepSize)
		cr.Revisions[len(cr.Revisions)-1].Percent += moved
		cr.NextStep = cr.NextStep.Add(time.Duration(cr.StepMillis) * time.Millisecond)
	}
	return cr
}

// take removes n percent points from the oldest revisions (dropping the
// ones that reach zero), never from the newest; it returns what it took.
func take(cr *ConfigurationRollout, n int64) int64 {
	var taken int64
	for n > 0 && len(cr.Revisions) > 1 {
		r := &cr.Revisions[0]
		k := min(r.Percent, n)
		r.Percent -= k
		n -= k
		taken += k
		if r.Percent == 0 {
			cr.Revisions = cr.Revisions[1:]
		}
	}
	if n > 0 && len(cr.Revisions) == 1 && cr.Revisions[0].Percent > n {
		cr.Revisions[0].Percent -= n
		taken += n
	}
	return taken
}
