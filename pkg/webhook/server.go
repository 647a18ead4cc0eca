package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/knd-dev/knd/pkg/apis/config"
	"github.com/knd-dev/knd/pkg/configstore"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Webhook names, as upstream, since they appear in every denial message.
const (
	DefaultingName              = "webhook.serving.knative.dev"
	ValidationName              = "validation.webhook.serving.knative.dev"
	DomainMappingDefaultingName = "webhook.domainmapping.serving.knative.dev"
	DomainMappingValidationName = "validation.webhook.domainmapping.serving.knative.dev"
	ConfigValidationName        = "config.webhook.serving.knative.dev"
	// IstioValidationName is Istio's own webhook's name, so that a
	// refusal reads as it does on a cluster with Istio.
	IstioValidationName = "validation.istio.io"
)

const (
	defaultingPath       = "/defaulting"
	validationPath       = "/validation"
	configValidationPath = "/config-validation"
	istioValidationPath  = "/istio-validation"
)

// Options say where the webhook server listens and with which certificate.
type Options struct {
	Host string
	Port int
	// CertDir holds tls.crt and tls.key.
	CertDir string
	// CABundle is the PEM of the CA that signed the serving certificate.
	CABundle []byte
}

// Start serves the webhooks until ctx ends and returns once they answer.
func Start(ctx context.Context, opts Options, store *configstore.Store) (<-chan error, error) {
	server := webhook.NewServer(webhook.Options{Host: opts.Host, Port: opts.Port, CertDir: opts.CertDir})
	server.Register(defaultingPath, &admission.Webhook{Handler: defaulter{store: store}})
	server.Register(validationPath, &admission.Webhook{Handler: validator{store: store}})
	server.Register(configValidationPath, &admission.Webhook{Handler: configValidator{}})
	server.Register(istioValidationPath, &admission.Webhook{Handler: virtualServiceValidator{}})
	errs := make(chan error, 1)
	go func() { errs <- server.Start(ctx) }()
	addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(opts.CABundle)
	own, err := os.ReadFile(filepath.Join(opts.CertDir, "tls.crt"))
	if err != nil {
		return nil, err
	}
	ownCert, _ := pem.Decode(own)
	if ownCert == nil {
		return nil, fmt.Errorf("%s: no certificate", filepath.Join(opts.CertDir, "tls.crt"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// A full TLS handshake, so the server logs no aborted connection.
		// The certificate must be the webhook's own: the API server's is
		// from the same CA, and a port taken by it would pass otherwise.
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{RootCAs: roots})
		if err == nil {
			ours := bytes.Equal(conn.ConnectionState().PeerCertificates[0].Raw, ownCert.Bytes)
			conn.Close()
			if ours {
				return errs, nil
			}
			err = fmt.Errorf("another server answers on %s", addr)
		}
		select {
		case err := <-errs:
			return nil, fmt.Errorf("webhook server: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("webhook server not listening on %s: %w", addr, err)
		}
	}
}

// Register writes the webhook configurations pointing at the server; run at
// every start since the CA bundle or address may have changed.
func Register(ctx context.Context, client kubernetes.Interface, opts Options) error {
	base := url.URL{Scheme: "https", Host: net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))}
	clientConfig := func(path string) admissionregistrationv1.WebhookClientConfig {
		u := base
		u.Path = path
		return admissionregistrationv1.WebhookClientConfig{URL: ptr.To(u.String()), CABundle: opts.CABundle}
	}
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	servingRules := []admissionregistrationv1.RuleWithOperations{
		rule(ops, "serving.knative.dev", "v1", "services", "configurations", "routes", "revisions"),
		rule(ops, "autoscaling.internal.knative.dev", "v1alpha1", "podautoscalers"),
	}
	dmRules := []admissionregistrationv1.RuleWithOperations{rule(ops, "serving.knative.dev", "v1beta1", "domainmappings")}
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultingName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			mutatingWebhook(DefaultingName, clientConfig(defaultingPath), servingRules),
			mutatingWebhook(DomainMappingDefaultingName, clientConfig(defaultingPath), dmRules),
		},
	}
	configRules := []admissionregistrationv1.RuleWithOperations{rule(ops, "", "v1", "configmaps")}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ValidationName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			validatingWebhook(ValidationName, clientConfig(validationPath), servingRules),
			validatingWebhook(DomainMappingValidationName, clientConfig(validationPath), dmRules),
		},
	}
	configHook := validatingWebhook(ConfigValidationName, clientConfig(configValidationPath), configRules)
	configHook.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": config.Namespace}}
	validating.Webhooks = append(validating.Webhooks, configHook,
		validatingWebhook(IstioValidationName, clientConfig(istioValidationPath),
			[]admissionregistrationv1.RuleWithOperations{rule(ops, "networking.istio.io", "*", "virtualservices")}))

	if err := apply(ctx, client.AdmissionregistrationV1().MutatingWebhookConfigurations(), mutating); err != nil {
		return err
	}
	return apply(ctx, client.AdmissionregistrationV1().ValidatingWebhookConfigurations(), validating)
}

func rule(ops []admissionregistrationv1.OperationType, group, version string, resources ...string) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
		APIGroups: []string{group}, APIVersions: []string{version}, Resources: resources, Scope: ptr.To(admissionregistrationv1.AllScopes),
	}}
}

func mutatingWebhook(name string, cc admissionregistrationv1.WebhookClientConfig, rules []admissionregistrationv1.RuleWithOperations) admissionregistrationv1.MutatingWebhook {
	return admissionregistrationv1.MutatingWebhook{
		Name: name, ClientConfig: cc, Rules: rules,
		FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		AdmissionReviewVersions: []string{"v1"},
		TimeoutSeconds:          ptr.To[int32](10),
		ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
	}
}

func validatingWebhook(name string, cc admissionregistrationv1.WebhookClientConfig, rules []admissionregistrationv1.RuleWithOperations) admissionregistrationv1.ValidatingWebhook {
	return admissionregistrationv1.ValidatingWebhook{
		Name: name, ClientConfig: cc, Rules: rules,
		FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		AdmissionReviewVersions: []string{"v1"},
		TimeoutSeconds:          ptr.To[int32](10),
	}
}

// writer is what apply needs of a typed client.
type writer[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

func apply[T interface {
	metav1.Object
	comparable
}](ctx context.Context, c writer[T], obj T) error {
	existing, err := c.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if err != nil {
		if _, err := c.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create %s: %w", obj.GetName(), err)
		}
		return nil
	}
	obj.SetResourceVersion(existing.GetResourceVersion())
	if _, err := c.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update %s: %w", obj.GetName(), err)
	}
	return nil
}
