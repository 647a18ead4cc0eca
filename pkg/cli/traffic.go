package cli

import (
	"fmt"
	"strconv"
	"strings"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"k8s.io/utils/ptr"
)

// latestRef stands for the latest ready revision in --traffic and --tag.
const latestRef = "@latest"

// TrafficFlags are the values of kn's --traffic REF=PERCENT, --tag REF=TAG and
// --untag TAG flags. A REF is a revision name, a tag, or @latest.
type TrafficFlags struct {
	Traffic []string
	Tags    []string
	Untag   []string
}

// Empty says whether no traffic flag was given.
func (f TrafficFlags) Empty() bool {
	return len(f.Traffic) == 0 && len(f.Tags) == 0 && len(f.Untag) == 0
}

// splitPair splits REF=VALUE; a trailing % on the value is dropped.
func splitPair(pair string) (string, string, error) {
	parts := strings.Split(pair, "=")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", fmt.Errorf("expecting the value format in value1=value2, given %s", pair)
	}
	return parts[0], strings.TrimSuffix(parts[1], "%"), nil
}

func repetitionError(flag, ref string) error {
	what := "revision reference " + ref
	if ref == latestRef {
		what = "identifier " + latestRef
	}
	return fmt.Errorf("repetition of %s is not allowed, use only once with %s flag", what, flag)
}

// Validate checks the flags on their own, before anything is sent: pairs are
// well formed, @latest is tagged once, no reference repeats in --traffic,
// percents are integers in [0, 100] and, when --traffic is given, sum to 100.
func (f TrafficFlags) Validate() error {
	latestTagged := false
	for _, pair := range f.Tags {
		ref, _, err := splitPair(pair)
		if err != nil {
			return err
		}
		if ref == latestRef {
			if latestTagged {
				return repetitionError("--tag", latestRef)
			}
			latestTagged = true
		}
	}
	seen := map[string]bool{}
	sum := 0
	for _, pair := range f.Traffic {
		ref, value, err := splitPair(pair)
		if err != nil {
			return err
		}
		if seen[ref] {
			return repetitionError("--traffic", ref)
		}
		seen[ref] = true
		percent, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("error converting given %s to integer value for traffic distribution", value)
		}
		if percent < 0 || percent > 100 {
			return fmt.Errorf("invalid value for traffic percent %d, expected 0 <= percent <= 100", percent)
		}
		sum += percent
	}
	if len(f.Traffic) > 0 && sum != 100 {
		return fmt.Errorf("given traffic percents sum to %d, want 100", sum)
	}
	return nil
}

// trafficBlock is a Service's spec.traffic being edited.
type trafficBlock []servingv1.TrafficTarget

func isLatest(t servingv1.TrafficTarget) bool {
	if t.LatestRevision != nil {
		return *t.LatestRevision
	}
	return t.RevisionName == ""
}

func (b trafficBlock) indexOf(match func(servingv1.TrafficTarget) bool) int {
	for i, t := range b {
		if match(t) {
			return i
		}
	}
	return -1
}

func (b trafficBlock) byTag(tag string) int {
	return b.indexOf(func(t servingv1.TrafficTarget) bool { return t.Tag == tag })
}

func (b trafficBlock) byRevision(rev string) int {
	return b.indexOf(func(t servingv1.TrafficTarget) bool { return !isLatest(t) && t.RevisionName == rev })
}

func (b trafficBlock) latest() int { return b.indexOf(isLatest) }

func newTarget(revision, tag string, percent int64) servingv1.TrafficTarget {
	t := servingv1.TrafficTarget{Tag: tag, Percent: ptr.To(percent), LatestRevision: ptr.To(revision == "")}
	if revision != "" {
		t.RevisionName = revision
	}
	return t
}

// ComputeTraffic applies the flags to a Service's current spec.traffic with
// kn's precedence: untag first, then tag @latest, then tag revisions, and, if
// --traffic is given, its percentages, which replace every existing one.
// Targets left with neither percent nor tag are dropped.
func ComputeTraffic(current []servingv1.TrafficTarget, f TrafficFlags, service string) ([]servingv1.TrafficTarget, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	block := trafficBlock{}
	for _, t := range current {
		block = append(block, *t.DeepCopy())
	}

	var missing []string
	for _, tag := range f.Untag {
		if i := block.byTag(tag); i >= 0 {
			block[i].Tag = ""
		} else {
			missing = append(missing, tag)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("tag(s) %s not present for any revisions of service %s", strings.Join(missing, ", "), service)
	}

	for _, pair := range f.Tags {
		ref, tag, _ := splitPair(pair)
		if ref == latestRef {
			i := block.latest()
			existing := ""
			if i >= 0 {
				existing = block[i].Tag
			}
			switch {
			case existing == tag:
			case block.byTag(tag) >= 0:
				return nil, overwriteTagError(tag)
			case existing != "":
				return nil, fmt.Errorf("tag '%s' exists on latest ready revision of service, refusing to overwrite existing tag with '%s', add flag '--untag %s' in command to untag it", existing, tag, existing)
			case i >= 0:
				block[i].Tag = tag
			default:
				block = append(block, newTarget("", tag, 0))
			}
			continue
		}
		if i := block.byTag(tag); i >= 0 {
			if block[i].RevisionName == ref && !isLatest(block[i]) {
				continue
			}
			return nil, overwriteTagError(tag)
		}
		// An untagged target of the revision takes the tag; a revision that
		// already has a tag gets a second, 0% target.
		if i := block.indexOf(func(t servingv1.TrafficTarget) bool {
			return !isLatest(t) && t.RevisionName == ref && t.Tag == ""
		}); i >= 0 {
			block[i].Tag = tag
		} else {
			block = append(block, newTarget(ref, tag, 0))
		}
	}

	if len(f.Traffic) > 0 {
		for i := range block {
			block[i].Percent = ptr.To[int64](0)
		}
		for _, pair := range f.Traffic {
			ref, value, _ := splitPair(pair)
			percent, _ := strconv.ParseInt(value, 10, 64)
			switch {
			case ref == latestRef:
				if i := block.latest(); i >= 0 {
					block[i].Percent = ptr.To(percent)
				} else {
					block = append(block, newTarget("", "", percent))
				}
			// A tag wins over a revision of the same name: tags are unique.
			case block.byTag(ref) >= 0:
				block[block.byTag(ref)].Percent = ptr.To(percent)
			case block.byRevision(ref) >= 0:
				block[block.byRevision(ref)].Percent = ptr.To(percent)
			default:
				block = append(block, newTarget(ref, "", percent))
			}
		}
	}

	out := []servingv1.TrafficTarget{}
	for _, t := range block {
		if t.Tag != "" || ptr.Deref(t.Percent, 0) != 0 {
			out = append(out, t)
		}
	}
	return out, nil
}

func overwriteTagError(tag string) error {
	return fmt.Errorf("refusing to overwrite existing tag in service, add flag '--untag %s' in command to untag it", tag)
}
