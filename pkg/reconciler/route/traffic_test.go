package route

import (
	"reflect"
	"testing"

	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

type fakeLookup struct {
	revs map[string]*servingv1.Revision
	cfgs map[string]*servingv1.Configuration
}

func (f fakeLookup) Revision(n string) (*servingv1.Revision, error)           { return f.revs[n], nil }
func (f fakeLookup) Configuration(n string) (*servingv1.Configuration, error) { return f.cfgs[n], nil }

func revision(name, svc string, ready corev1.ConditionStatus) *servingv1.Revision {
	r := &servingv1.Revision{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	if svc != "" {
		r.Labels[servingv1.ServiceLabelKey] = svc
	}
	r.Status.Conditions = []duck.Condition{{Type: "Ready", Status: ready}}
	return r
}

func world() fakeLookup {
	return fakeLookup{
		revs: map[string]*servingv1.Revision{
			"hello-00001":  revision("hello-00001", "hello", corev1.ConditionTrue),
			"hello-00002":  revision("hello-00002", "hello", corev1.ConditionTrue),
			"hello-00003":  revision("hello-00003", "hello", corev1.ConditionUnknown),
			"broken-00001": revision("broken-00001", "broken", corev1.ConditionFalse),
			"other-00001":  revision("other-00001", "other", corev1.ConditionTrue),
		},
		cfgs: map[string]*servingv1.Configuration{
			"hello": {ObjectMeta: metav1.ObjectMeta{Name: "hello"},
				Status: servingv1.ConfigurationStatus{ConfigurationStatusFields: servingv1.ConfigurationStatusFields{LatestReadyRevisionName: "hello-00002"}}},
			"waiting": {ObjectMeta: metav1.ObjectMeta{Name: "waiting"}},
		},
	}
}

func route(targets ...servingv1.TrafficTarget) *servingv1.Route {
	return &servingv1.Route{ObjectMeta: metav1.ObjectMeta{Name: "hello", Labels: map[string]string{servingv1.ServiceLabelKey: "hello"}},
		Spec: servingv1.RouteSpec{Traffic: targets}}
}

func pct(n int64) *int64 { return &n }

func TestResolveSplitsAndTags(t *testing.T) {
	rt := route(
		servingv1.TrafficTarget{Tag: "staging", RevisionName: "hello-00001", Percent: pct(0)},
		servingv1.TrafficTarget{RevisionName: "hello-00001", Percent: pct(40)},
		servingv1.TrafficTarget{ConfigurationName: "hello", Percent: pct(30)},
		servingv1.TrafficTarget{ConfigurationName: "hello", Percent: pct(30)},
	)
	got, err := Resolve(rt, world())
	if err != nil {
		t.Fatal(err)
	}
	want := []servingv1.TrafficTarget{
		{Tag: "staging", RevisionName: "hello-00001", LatestRevision: ptr.To(false), Percent: pct(0)},
		{RevisionName: "hello-00001", LatestRevision: ptr.To(false), Percent: pct(40)},
		{RevisionName: "hello-00002", LatestRevision: ptr.To(true), Percent: pct(60)}, // merged
	}
	if !reflect.DeepEqual(got.Targets, want) {
		t.Errorf("targets %+v\nwant %+v", got.Targets, want)
	}
	splits := servingv1.Splits(got.Targets)
	if !reflect.DeepEqual(splits[""], []servingv1.Split{{Revision: "hello-00001", Percent: 40}, {Revision: "hello-00002", Percent: 60}}) {
		t.Errorf("default splits %+v", splits[""])
	}
	// A 0 % tag still reaches its revision at 100 %.
	if !reflect.DeepEqual(splits["staging"], []servingv1.Split{{Revision: "hello-00001", Percent: 100}}) {
		t.Errorf("staging splits %+v", splits["staging"])
	}
}

func TestResolveErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target servingv1.TrafficTarget
		want   TargetError
	}{
		{"missing revision", servingv1.TrafficTarget{RevisionName: "nope", Percent: pct(100)},
			TargetError{Reason: "RevisionMissing", Failed: true, Message: `Revision "nope" referenced in traffic not found`}},
		{"not ready", servingv1.TrafficTarget{RevisionName: "hello-00003", Percent: pct(100)},
			TargetError{Reason: "RevisionMissing", Message: `Revision "hello-00003" is not yet ready.`}},
		{"failed", servingv1.TrafficTarget{RevisionName: "broken-00001", Percent: pct(100)},
			TargetError{Reason: "RevisionNotOwned", Failed: true, Message: `Revision "broken-00001" belongs to Service "broken", not Service "hello".`}},
		{"missing configuration", servingv1.TrafficTarget{ConfigurationName: "gone", Percent: pct(100)},
			TargetError{Reason: "ConfigurationMissing", Failed: true, Message: `Configuration "gone" referenced in traffic not found`}},
		{"configuration without a ready revision", servingv1.TrafficTarget{ConfigurationName: "waiting", Percent: pct(100)},
			TargetError{Reason: "RevisionMissing", Message: `Configuration "waiting" is waiting for a Revision to become ready.`}},
	} {
		_, err := Resolve(route(tc.target), world())
		te, ok := err.(*TargetError)
		if !ok || *te != tc.want {
			t.Errorf("%s: %v, want %+v", tc.name, err, tc.want)
		}
	}
	// A failure beats a not-ready target, wherever it comes.
	_, err := Resolve(route(
		servingv1.TrafficTarget{RevisionName: "hello-00003", Percent: pct(50)},
		servingv1.TrafficTarget{RevisionName: "nope", Percent: pct(50)},
	), world())
	if te, ok := err.(*TargetError); !ok || !te.Failed || te.Reason != "RevisionMissing" {
		t.Errorf("mixed errors: %v", err)
	}
}
