package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// waitOptions are kn's --wait/--no-wait, --wait-timeout and --wait-window.
type waitOptions struct {
	wait, noWait bool
	timeout      int
	window       int
}

// async says whether to return without waiting.
func (w *waitOptions) async() bool { return w.noWait || !w.wait }

func (w *waitOptions) addFlags(flags *pflag.FlagSet, action string) {
	flags.BoolVar(&w.wait, "wait", true, fmt.Sprintf("Wait for '%s' operation to be completed.", action))
	flags.BoolVar(&w.noWait, "no-wait", false, fmt.Sprintf("Do not wait for '%s' operation to be completed.", action))
	flags.IntVar(&w.timeout, "wait-timeout", 600, "Seconds to wait before giving up on waiting for service to be ready.")
	flags.IntVar(&w.window, "wait-window", 2, "Seconds to wait for service to be ready after a false ready condition is returned")
}

// elapsed prints a duration as kn's progress lines do: "%7.3fs".
func elapsed(d time.Duration) string {
	return fmt.Sprintf("%7.3fs", float64(d.Round(time.Millisecond))/float64(time.Second))
}

// waitForService watches the service until its Ready condition is True for
// its current generation, printing each new Ready message with the time
// since start. A False Ready is an error unless it recovers within the
// window, so that a revision still starting does not fail the wait.
func waitForService(ctx context.Context, c client.WithWatch, ns, name string, opts waitOptions, out io.Writer) (*servingv1.Service, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(opts.timeout)*time.Second)
	defer cancel()
	var failedAt time.Time
	var failure error
	lastMessage := ""
	for {
		w, err := c.Watch(ctx, &servingv1.ServiceList{}, client.InNamespace(ns),
			client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)})
		if err != nil {
			return nil, err
		}
		svc, err := func() (*servingv1.Service, error) {
			defer w.Stop()
			for {
				var deadline <-chan time.Time
				if failure != nil {
					deadline = time.After(time.Until(failedAt.Add(time.Duration(opts.window) * time.Second)))
				}
				select {
				case <-ctx.Done():
					return nil, fmt.Errorf("timeout: service '%s' not ready after %d seconds", name, opts.timeout)
				case <-deadline:
					return nil, failure
				case ev, ok := <-w.ResultChan():
					if !ok {
						return nil, nil // the watch ended: start another
					}
					if ev.Type == watch.Deleted {
						return nil, fmt.Errorf("service '%s' was deleted while waiting for it to become ready", name)
					}
					svc, isService := ev.Object.(*servingv1.Service)
					if !isService || svc.Status.ObservedGeneration != svc.Generation {
						continue
					}
					ready := readyCondition(svc.Status.Status)
					switch ready.Status {
					case corev1.ConditionTrue:
						fmt.Fprintf(out, "%s Ready to serve.\n", elapsed(time.Since(start)))
						return svc, nil
					case corev1.ConditionFalse:
						if failure == nil {
							failedAt, failure = time.Now(), fmt.Errorf("%s: %s", ready.Reason, ready.Message)
						}
					default:
						failure = nil
					}
					if ready.Message != "" && ready.Message != lastMessage {
						fmt.Fprintf(out, "%s %s\n", elapsed(time.Since(start)), ready.Message)
						lastMessage = ready.Message
					}
				}
			}
		}()
		if svc != nil || err != nil {
			return svc, err
		}
	}
}
