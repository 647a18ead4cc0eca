package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

// addOutputFlags adds -o, and for a list command (noHeaders not nil)
// --no-headers, as kn's.
func addOutputFlags(cmd *cobra.Command, output *string, noHeaders *bool) {
	cmd.Flags().StringVarP(output, "output", "o", "", "Output format. One of: json|yaml|name.")
	if noHeaders != nil {
		cmd.Flags().BoolVar(noHeaders, "no-headers", false, "When using the default output format, don't print headers (default: print headers).")
	}
}

// printObject writes obj (an object or a list) as yaml or json, with its
// apiVersion and kind, which typed clients leave empty, and without
// managedFields (as kn); or, for "name", one resource/name line per object.
func printObject(out io.Writer, obj runtime.Object, format string) error {
	if err := setKinds(obj); err != nil {
		return err
	}
	if err := eachObject(obj, func(o runtime.Object) error {
		if m, err := meta.Accessor(o); err == nil {
			m.SetManagedFields(nil)
		}
		return nil
	}); err != nil {
		return err
	}
	switch format {
	case "name":
		return eachObject(obj, func(o runtime.Object) error {
			m, err := meta.Accessor(o)
			if err != nil {
				return err
			}
			gvk := o.GetObjectKind().GroupVersionKind()
			resource := strings.ToLower(gvk.Kind)
			if gvk.Group != "" {
				resource += "." + gvk.Group
			}
			_, err = fmt.Fprintf(out, "%s/%s\n", resource, m.GetName())
			return err
		})
	case "yaml":
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	case "json":
		b, err := json.MarshalIndent(obj, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,name,yaml", format)
}

func setKinds(obj runtime.Object) error {
	gvk, err := apiutil.GVKForObject(obj, clientScheme)
	if err != nil {
		return err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	if !meta.IsListType(obj) {
		return nil
	}
	items, err := meta.ExtractList(obj)
	if err != nil {
		return err
	}
	for _, item := range items {
		if err := setKinds(item); err != nil {
			return err
		}
	}
	return nil
}

// eachObject calls fn for obj, or for each item of a list.
func eachObject(obj runtime.Object, fn func(runtime.Object) error) error {
	if !meta.IsListType(obj) {
		return fn(obj)
	}
	return meta.EachListItem(obj, fn)
}
