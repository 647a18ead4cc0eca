package cli

import (
	"context"
	"fmt"
	"io"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// listSorted fills list for a list command: in -n's namespace (every one
// with -A), only the object called name when name is given, sorted by
// namespace and name. items is the list's Items.
func listSorted[T any, PT interface {
	*T
	metav1.Object
}](ctx context.Context, p *Params, list client.ObjectList, items *[]T, name string, opts ...client.ListOption) (client.Client, error) {
	ns, err := p.listNamespace()
	if err != nil {
		return nil, err
	}
	c, err := p.Client()
	if err != nil {
		return nil, err
	}
	if err := c.List(ctx, list, append(opts, client.InNamespace(ns))...); err != nil {
		return nil, err
	}
	if name != "" {
		kept := (*items)[:0]
		for i := range *items {
			if PT(&(*items)[i]).GetName() == name {
				kept = append(kept, (*items)[i])
			}
		}
		*items = kept
	}
	sort.SliceStable(*items, func(i, j int) bool {
		a, b := PT(&(*items)[i]), PT(&(*items)[j])
		return a.GetNamespace() < b.GetNamespace() || a.GetNamespace() == b.GetNamespace() && a.GetName() < b.GetName()
	})
	return c, nil
}

// printedOtherwise prints list as yaml or json when -o asks, or says that
// none was found; it says whether that was all there was to print.
func printedOtherwise(out io.Writer, list runtime.Object, count int, output, none string) (bool, error) {
	if output != "" {
		return true, printObject(out, list, output)
	}
	if count == 0 {
		fmt.Fprintln(out, none)
		return true, nil
	}
	return false, nil
}

// nameArg is the optional NAME of a list command.
func nameArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return ""
}
