package v1

// Split is one backend of a traffic name: a revision and its percent.
type Split struct {
	Revision string
	Percent  int64
}

// Splits groups a Route's resolved targets (status.traffic) by traffic name ("" is the default
// route, then one per tag), consolidating per revision; a tag that points
// at one revision gets 100% of its traffic, so a 0% tagged target is
// reachable at its tag URL. 0% splits are left out.
func Splits(targets []TrafficTarget) map[string][]Split {
	out := map[string][]Split{}
	add := func(name, rev string, pct int64) {
		for i := range out[name] {
			if out[name][i].Revision == rev {
				out[name][i].Percent += pct
				return
			}
		}
		out[name] = append(out[name], Split{Revision: rev, Percent: pct})
	}
	for _, tt := range targets {
		add("", tt.RevisionName, *tt.Percent)
		if tt.Tag != "" {
			add(tt.Tag, tt.RevisionName, *tt.Percent)
		}
	}
	for name, splits := range out {
		if name != "" && len(splits) == 1 {
			splits[0].Percent = 100
		}
		kept := splits[:0]
		for _, s := range splits {
			if s.Percent > 0 {
				kept = append(kept, s)
			}
		}
		out[name] = kept
	}
	return out
}
