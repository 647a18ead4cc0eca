package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/knd-dev/knd/pkg/apis/duck"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// now is the clock ages are measured against.
var now = time.Now

// age prints how long ago t was, as kubectl and kn do ("5m", "2d3h").
func age(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return duration.ShortHumanDuration(now().Sub(t))
}

// table prints rows in columns three spaces apart, as kn's lists do.
type table struct {
	w *tabwriter.Writer
}

// newTable starts a table, with its header line unless withHeader is
// false (--no-headers).
func newTable(out io.Writer, withHeader bool, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)}
	if withHeader {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) { fmt.Fprintln(t.w, strings.Join(cells, "\t")) }

func (t *table) flush() error { return t.w.Flush() }

// withNamespace puts a NAMESPACE column first when listing every namespace.
func withNamespace(all bool, ns string, cells ...string) []string {
	if !all {
		return cells
	}
	return append([]string{ns}, cells...)
}

// readyCondition returns the Ready condition, or an Unknown one.
func readyCondition(st duck.Status) duck.Condition {
	if c := st.GetCondition(duck.ConditionReady); c != nil {
		return *c
	}
	return duck.Condition{Type: duck.ConditionReady, Status: corev1.ConditionUnknown}
}

// conditionsSummary is kn's CONDITIONS column: "3 OK / 4".
func conditionsSummary(st duck.Status) string {
	ok := 0
	for _, c := range st.Conditions {
		if c.Status == corev1.ConditionTrue {
			ok++
		}
	}
	return fmt.Sprintf("%d OK / %d", ok, len(st.Conditions))
}

// readyColumns are the READY and REASON columns.
func readyColumns(st duck.Status) (string, string) {
	if c := st.GetCondition(duck.ConditionReady); c != nil {
		return string(c.Status), c.Reason
	}
	return "<unknown>", ""
}

// describer prints kn's "describe" layout: attribute groups whose values
// line up two spaces after the longest label, and section headers.
type describer struct {
	out   io.Writer
	attrs [][2]string
	inset string
}

func newDescriber(out io.Writer) *describer { return &describer{out: out} }

// attr queues "Label:  value" at the current inset.
func (d *describer) attr(label, value string) { d.attrs = append(d.attrs, [2]string{label, value}) }

// flush writes the queued attributes, aligned.
func (d *describer) flush() {
	width := 0
	for _, a := range d.attrs {
		width = max(width, len(a[0])+1)
	}
	for _, a := range d.attrs {
		fmt.Fprintf(d.out, "%s%-*s  %s\n", d.inset, width, a[0]+":", a[1])
	}
	d.attrs = nil
}

// section writes a header such as "Revisions:  " on its own.
func (d *describer) section(label string) {
	d.flush()
	fmt.Fprintf(d.out, "%s%s:  \n", d.inset, label)
}

func (d *describer) line(format string, args ...any) {
	d.flush()
	fmt.Fprintf(d.out, format+"\n", args...)
}

// blank ends a group with an empty line.
func (d *describer) blank() {
	d.flush()
	fmt.Fprintln(d.out)
}

// boringPrefixes are label and annotation domains kn leaves out of describe.
var boringPrefixes = []string{"serving.knative.dev/", "client.knative.dev/", "kubectl.kubernetes.io/"}

// mapAttr queues labels or annotations as "k=v, k=v", without boring keys,
// truncated as kn does.
func (d *describer) mapAttr(label string, m map[string]string) {
	var keys []string
	for k := range m {
		boring := false
		for _, p := range boringPrefixes {
			boring = boring || strings.HasPrefix(k, p)
		}
		if !boring {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	d.attr(label, truncate(strings.Join(parts, ", "), 100-len(label)-2))
}

func truncate(s string, width int) string {
	if len(s) <= width {
		return s
	}
	return s[:width-4] + " ..."
}

// conditionSymbol is kn's OK column: ++ true, !! error, " I" info,
// " W" warning, ?? unknown.
func conditionSymbol(c duck.Condition) string {
	switch c.Status {
	case corev1.ConditionTrue:
		return "++"
	case corev1.ConditionFalse:
		switch c.Severity {
		case duck.SeverityError:
			return "!!"
		case duck.SeverityInfo:
			return " I"
		case "Warning":
			return " W"
		}
		return " !"
	}
	return "??"
}

// conditions writes the Conditions section: Ready first, then errors,
// warnings and infos, each by type; with verbose, reasons carry messages.
func (d *describer) conditions(conds []duck.Condition, verbose bool) {
	d.section("Conditions")
	sorted := append([]duck.Condition(nil), conds...)
	rank := func(c duck.Condition) int {
		switch {
		case c.Type == duck.ConditionReady:
			return 0
		case c.Severity == duck.SeverityError:
			return 1
		case c.Severity == "Warning":
			return 2
		}
		return 3
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		if rank(sorted[i]) != rank(sorted[j]) {
			return rank(sorted[i]) < rank(sorted[j])
		}
		return sorted[i].Type < sorted[j].Type
	})
	width := 0
	for _, c := range sorted {
		width = max(width, len(c.Type))
	}
	fmt.Fprintf(d.out, "%s  %-2s %-*s %6s %s\n", d.inset, "OK", width, "TYPE", "AGE", "REASON")
	for _, c := range sorted {
		reason := c.Reason
		if verbose && reason != "" {
			reason = fmt.Sprintf("%s (%s)", reason, c.Message)
		}
		fmt.Fprintf(d.out, "%s  %-2s %-*s %6s %s\n", d.inset, conditionSymbol(c), width, c.Type, age(c.LastTransitionTime.Time), reason)
	}
}
