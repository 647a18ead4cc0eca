package apis

import "testing"

func TestFieldErrorRendering(t *testing.T) {
	cases := []struct {
		name string
		err  *FieldError
		want string
	}{{
		name: "index attaches to its field",
		err:  ErrOutOfBoundsValue(101, 0, 100, "percent").ViaIndex(0).ViaField("traffic").ViaField("spec"),
		want: "expected 0 <= 101 <= 100: spec.traffic[0].percent",
	}, {
		name: "array value puts the index after the field",
		err:  ErrInvalidArrayValue("bad", "tag", 2).ViaField("spec.traffic"),
		want: "invalid value: bad: spec.traffic.tag[2]",
	}, {
		name: "same message merges paths, sorted; messages sorted",
		err: ErrMissingField("b").Also(ErrMissingField("a"), ErrGeneric("Traffic targets sum to 90, want 100", CurrentField)).
			ViaField("spec"),
		want: "Traffic targets sum to 90, want 100: spec\nmissing field(s): spec.a, spec.b",
	}, {
		name: "details on the next line",
		err:  ErrInvalidKeyName("autoscaling.knative.dev/min-scale", CurrentField, "put it elsewhere").ViaField("annotations").ViaField("metadata"),
		want: "invalid key name \"autoscaling.knative.dev/min-scale\": metadata.annotations\nput it elsewhere",
	}, {
		name: "nil also is nil",
		err:  (*FieldError)(nil).Also(nil),
		want: "",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ""
			if c.err != nil {
				got = c.err.Error()
			}
			if got != c.want {
				t.Errorf("got %q\nwant %q", got, c.want)
			}
		})
	}
}
