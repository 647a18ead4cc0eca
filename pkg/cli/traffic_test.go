package cli

import (
	"fmt"
	"strings"
	"testing"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"k8s.io/utils/ptr"
)

// render prints targets compactly: "@latest=100#blue rev-1=0#green".
func render(targets []servingv1.TrafficTarget) string {
	var parts []string
	for _, t := range targets {
		ref := t.RevisionName
		if isLatest(t) {
			ref = latestRef
		}
		s := fmt.Sprintf("%s=%d", ref, ptr.Deref(t.Percent, 0))
		if t.Tag != "" {
			s += "#" + t.Tag
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func latest100() []servingv1.TrafficTarget { return []servingv1.TrafficTarget{newTarget("", "", 100)} }

func TestComputeTraffic(t *testing.T) {
	tutorial := []servingv1.TrafficTarget{
		newTarget("hello-00001", "staging", 0), newTarget("hello-00002", "", 40), newTarget("hello-00003", "", 60),
	}
	for _, tc := range []struct {
		name    string
		current []servingv1.TrafficTarget
		flags   TrafficFlags
		want    string
	}{
		{"all to one revision", latest100(), TrafficFlags{Traffic: []string{"hello-00003=100"}}, "hello-00003=100"},
		{"split with percent signs", latest100(), TrafficFlags{Traffic: []string{"hello-00003=90%", "hello-00002=10"}}, "hello-00003=90 hello-00002=10"},
		{"back to @latest", tutorial, TrafficFlags{Traffic: []string{"@latest=100"}}, "hello-00001=0#staging @latest=100"},
		{"tag a revision and @latest", tutorial, TrafficFlags{Tags: []string{"hello-00002=green", "@latest=blue"}},
			"hello-00001=0#staging hello-00002=40#green hello-00003=60 @latest=0#blue"},
		{"traffic by tag", []servingv1.TrafficTarget{
			newTarget("hello-00002", "green", 40), newTarget("hello-00003", "", 60), newTarget("", "blue", 0),
		}, TrafficFlags{Traffic: []string{"blue=100", "green=0"}}, "hello-00002=0#green @latest=100#blue"},
		{"untag keeps the percent", []servingv1.TrafficTarget{newTarget("", "blue", 100)}, TrafficFlags{Untag: []string{"blue"}}, "@latest=100"},
		{"untag drops an empty target", tutorial, TrafficFlags{Untag: []string{"staging"}}, "hello-00002=40 hello-00003=60"},
		{"second tag on a revision", []servingv1.TrafficTarget{newTarget("r1", "a", 100)}, TrafficFlags{Tags: []string{"r1=b"}}, "r1=100#a r1=0#b"},
		{"same tag again is a no-op", []servingv1.TrafficTarget{newTarget("r1", "a", 100)}, TrafficFlags{Tags: []string{"r1=a"}}, "r1=100#a"},
		{"tag on @latest when no latest target", []servingv1.TrafficTarget{newTarget("r1", "", 100)}, TrafficFlags{Tags: []string{"@latest=new"}}, "r1=100 @latest=0#new"},
		{"tag then route to it", latest100(), TrafficFlags{Tags: []string{"r1=old"}, Traffic: []string{"old=20", "@latest=80"}}, "@latest=80 r1=20#old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ComputeTraffic(tc.current, tc.flags, "hello")
			if err != nil {
				t.Fatal(err)
			}
			if render(got) != tc.want {
				t.Errorf("got %q, want %q", render(got), tc.want)
			}
		})
	}
}

func TestComputeTrafficErrors(t *testing.T) {
	for _, tc := range []struct {
		current []servingv1.TrafficTarget
		flags   TrafficFlags
		want    string
	}{
		{latest100(), TrafficFlags{Traffic: []string{"a=50", "b=60"}}, "given traffic percents sum to 110, want 100"},
		{latest100(), TrafficFlags{Traffic: []string{"a=50", "b=40"}}, "given traffic percents sum to 90, want 100"},
		{latest100(), TrafficFlags{Traffic: []string{"@latest=100p"}}, "error converting given 100p to integer value for traffic distribution"},
		{latest100(), TrafficFlags{Traffic: []string{"@latest=-100"}}, "invalid value for traffic percent -100, expected 0 <= percent <= 100"},
		{latest100(), TrafficFlags{Traffic: []string{"a=40", "a=60"}}, "repetition of revision reference a is not allowed, use only once with --traffic flag"},
		{latest100(), TrafficFlags{Traffic: []string{"@latest=40", "@latest=60"}}, "repetition of identifier @latest is not allowed, use only once with --traffic flag"},
		{latest100(), TrafficFlags{Tags: []string{"@latest=a", "@latest=b"}}, "repetition of identifier @latest is not allowed, use only once with --tag flag"},
		{latest100(), TrafficFlags{Traffic: []string{"a"}}, "expecting the value format in value1=value2, given a"},
		{latest100(), TrafficFlags{Untag: []string{"x", "y"}}, "tag(s) x, y not present for any revisions of service hello"},
		{[]servingv1.TrafficTarget{newTarget("", "current", 100)}, TrafficFlags{Tags: []string{"@latest=candidate"}},
			"tag 'current' exists on latest ready revision of service, refusing to overwrite existing tag with 'candidate', add flag '--untag current' in command to untag it"},
		{[]servingv1.TrafficTarget{newTarget("r1", "x", 100)}, TrafficFlags{Tags: []string{"r2=x"}},
			"refusing to overwrite existing tag in service, add flag '--untag x' in command to untag it"},
	} {
		_, err := ComputeTraffic(tc.current, tc.flags, "hello")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%+v: got error %v, want %q", tc.flags, err, tc.want)
		}
	}
}

// TestTrafficFlagsTakeCommaLists: --traffic, --tag and --untag take comma
// lists as well as repeats, as kn's (string slices).
func TestTrafficFlagsTakeCommaLists(t *testing.T) {
	cmd := newServiceUpdateCommand(&Params{})
	if err := cmd.ParseFlags([]string{"--traffic", "hello-00001=10,hello-00002=90", "--traffic", "@latest=0",
		"--tag", "hello-00001=a,hello-00002=b", "--untag", "c,d"}); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"traffic": "[hello-00001=10,hello-00002=90,@latest=0]",
		"tag":     "[hello-00001=a,hello-00002=b]",
		"untag":   "[c,d]",
	} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %s, want %s", flag, got, want)
		}
	}
}
