package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fixClock makes ages relative to t0 for one test.
func fixClock(t *testing.T) {
	now = func() time.Time { return t0 }
	t.Cleanup(func() { now = time.Now })
}

func ago(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(-d)) }

func cond(typ string, status corev1.ConditionStatus, reason string, d time.Duration) duck.Condition {
	c := duck.Condition{Type: duck.ConditionType(typ), Status: status, Reason: reason, LastTransitionTime: ago(d)}
	if typ == "Active" {
		c.Severity = duck.SeverityInfo
	}
	return c
}

func revision(name string, gen string, created time.Duration, replicas int32, conds ...duck.Condition) *servingv1.Revision {
	return &servingv1.Revision{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(created), Labels: map[string]string{
			servingv1.ConfigurationGenerationLabelKey: gen, servingv1.ServiceLabelKey: "hello",
		}},
		Spec: servingv1.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{
			Image: "ghcr.io/knative/helloworld-go:latest", Env: []corev1.EnvVar{{Name: "TARGET", Value: "Second"}},
		}}}},
		Status: servingv1.RevisionStatus{Status: duck.Status{Conditions: conds},
			ActualReplicas: ptr.To(replicas), DesiredReplicas: ptr.To(replicas)},
	}
}

func TestDescribeServiceLayout(t *testing.T) {
	fixClock(t)
	svc := &servingv1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default", CreationTimestamp: ago(10 * 24 * time.Hour),
			Annotations: map[string]string{servingv1.CreatorAnnotation: "admin"}},
		Status: servingv1.ServiceStatus{
			Status: duck.Status{Conditions: []duck.Condition{
				cond("RoutesReady", "True", "", 4*time.Minute), cond("Ready", "True", "", 4*time.Minute),
				cond("ConfigurationsReady", "True", "", 9*24*time.Hour),
			}},
			ConfigurationStatusFields: servingv1.ConfigurationStatusFields{LatestReadyRevisionName: "hello-00004", LatestCreatedRevisionName: "hello-00004"},
			RouteStatusFields:         servingv1.RouteStatusFields{URL: "http://hello.default.example.com"},
		},
	}
	ready := cond("Ready", "True", "", time.Hour)
	revs := []serviceRevision{
		{rev: revision("hello-00004", "4", 9*24*time.Hour, 0, ready), percent: 50, generation: 4},
		{rev: revision("hello-00002", "2", 10*24*time.Hour, 1, ready), percent: 25, generation: 2, tag: "green"},
		{rev: revision("hello-00005", "5", 5*time.Second, 0, cond("Ready", "Unknown", "", time.Second)), generation: 5},
	}
	var out bytes.Buffer
	describeService(&out, svc, revs, false)
	want := `Name:       hello
Namespace:  default
Age:        10d
URL:        http://hello.default.example.com

Revisions:  
   50%  hello-00004 (current @latest) [4] (9d)
        Image:     ghcr.io/knative/helloworld-go:latest
        Replicas:  0/0
   25%  hello-00002 #green [2] (10d)
        Image:     ghcr.io/knative/helloworld-go:latest
        Replicas:  1/1
     ?  hello-00005 [5] (5s)
        Image:     ghcr.io/knative/helloworld-go:latest
        Replicas:  0/0

Conditions:  
  OK TYPE                   AGE REASON
  ++ Ready                   4m 
  ++ ConfigurationsReady     9d 
  ++ RoutesReady             4m 
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestRevisionDescribeAndListLayout(t *testing.T) {
	fixClock(t)
	rev := revision("hello-00002", "2", 2*time.Hour, 1,
		cond("Ready", "True", "", 2*time.Hour), cond("ContainerHealthy", "True", "", 2*time.Hour),
		cond("ResourcesAvailable", "True", "", 2*time.Hour), cond("Active", "False", "NoTraffic", 2*time.Hour))
	rev.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
	var out bytes.Buffer
	d := newDescriber(&out)
	describeMetadata(d, &rev.ObjectMeta)
	revisionAttrs(d, rev, false, true)
	d.attr("Service", "hello")
	d.blank()
	d.conditions(rev.Status.Conditions, false)
	want := `Name:       hello-00002
Namespace:  default
Age:        2h
Image:      ghcr.io/knative/helloworld-go:latest
Replicas:   1/1
Port:       8080
Env:        TARGET=Second
Service:    hello

Conditions:  
  OK TYPE                  AGE REASON
  ++ Ready                  2h 
  ++ ContainerHealthy       2h 
  ++ ResourcesAvailable     2h 
   I Active                 2h NoTraffic
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	tbl := newTable(&out, true, "NAME", "SERVICE", "TRAFFIC", "TAGS", "GENERATION", "AGE", "CONDITIONS", "READY", "REASON")
	tbl.row("hello-00002", "hello", "100%", "", "2", age(rev.CreationTimestamp.Time), conditionsSummary(rev.Status.Status), "True", "")
	tbl.row("hello-00001", "hello", "", "", "1", "126m", "3 OK / 4", "True", "")
	if err := tbl.flush(); err != nil {
		t.Fatal(err)
	}
	wantTable := "NAME          SERVICE   TRAFFIC   TAGS   GENERATION   AGE    CONDITIONS   READY   REASON\n" +
		"hello-00002   hello     100%             2            2h     3 OK / 4     True    \n" +
		"hello-00001   hello                      1            126m   3 OK / 4     True    \n"
	if out.String() != wantTable {
		t.Errorf("got:\n%q\nwant:\n%q", out.String(), wantTable)
	}
}

func TestImageDescription(t *testing.T) {
	rev := revision("r", "1", 0, 0)
	if got := imageDescription(rev); got != "ghcr.io/knative/helloworld-go:latest" {
		t.Errorf("no digest: %q", got)
	}
	rev.Status.ContainerStatuses = []servingv1.ContainerStatus{{ImageDigest: "ghcr.io/knative/helloworld-go@sha256:5ea96ba4b8"}}
	if got := imageDescription(rev); got != "ghcr.io/knative/helloworld-go:latest (at 5ea96b)" {
		t.Errorf("digest: %q", got)
	}
	rev.Annotations = map[string]string{userImageAnnotation: "ghcr.io/knative/helloworld-go:latest"}
	if got := imageDescription(rev); got != "ghcr.io/knative/helloworld-go:latest (pinned to 5ea96b)" {
		t.Errorf("pinned: %q", got)
	}
}

func TestBullets(t *testing.T) {
	for _, tc := range []struct {
		percent int64
		status  string
		want    string
	}{{100, "True", "100%"}, {0, "True", "   +"}, {0, "False", "   !"}, {5, "Unknown", "  5?"}} {
		if got := bullet(tc.percent, tc.status); got != tc.want {
			t.Errorf("bullet(%d, %s) = %q, want %q", tc.percent, tc.status, got, tc.want)
		}
	}
	if got := elapsed(45 * time.Millisecond); got != "  0.045s" {
		t.Errorf("elapsed %q", got)
	}
	if !strings.HasPrefix(elapsed(132577*time.Millisecond), "132.577s") {
		t.Errorf("elapsed %q", elapsed(132577*time.Millisecond))
	}
}
