package gc

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/apis/config"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func rev(i int, state string, ageHours int, noGC bool) servingv1.Revision {
	r := servingv1.Revision{ObjectMeta: metav1.ObjectMeta{
		Name:              fmt.Sprintf("r-%05d", i),
		CreationTimestamp: metav1.NewTime(now.Add(-time.Duration(ageHours) * time.Hour)),
		Labels:            map[string]string{servingv1.RoutingStateLabelKey: state},
		Annotations:       map[string]string{},
	}}
	if noGC {
		r.Annotations[servingv1.NoGCAnnotation] = "true"
	}
	return r
}

func TestCollect(t *testing.T) {
	old := 100 // hours: past both default retentions (48 h, 15 h)
	for _, tc := range []struct {
		name string
		gc   config.GC
		revs []servingv1.Revision
		want []string
	}{{
		name: "at or under min: nothing",
		gc:   config.GC{RetainSinceCreateTime: 48 * time.Hour, RetainSinceLastActiveTime: 15 * time.Hour, MinNonActiveRevisions: 2, MaxNonActiveRevisions: 1000},
		revs: []servingv1.Revision{rev(1, "reserve", old, false), rev(2, "reserve", old, false)},
	}, {
		name: "stale beyond min, oldest first; active, latest ready and no-gc kept",
		gc:   config.GC{RetainSinceCreateTime: 48 * time.Hour, RetainSinceLastActiveTime: 15 * time.Hour, MinNonActiveRevisions: 1, MaxNonActiveRevisions: 1000},
		revs: []servingv1.Revision{rev(1, "reserve", old+3, false), rev(2, "reserve", old+2, true), rev(3, "active", old+1, false),
			rev(4, "reserve", old, false), rev(5, "reserve", 1, false), rev(6, "reserve", old, false)},
		want: []string{"r-00001", "r-00004"},
	}, {
		name: "max caps young revisions too",
		gc:   config.GC{RetainSinceCreateTime: -1, RetainSinceLastActiveTime: -1, MinNonActiveRevisions: 0, MaxNonActiveRevisions: 1},
		revs: []servingv1.Revision{rev(1, "reserve", 3, false), rev(2, "reserve", 2, false), rev(3, "reserve", 1, false)},
		want: []string{"r-00001", "r-00002"},
	}} {
		got := Collect("r-00006", tc.revs, &tc.gc, now)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: collected %v, want %v", tc.name, got, tc.want)
		}
	}
}
