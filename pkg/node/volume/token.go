package volume

import (
	"cmp"
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// token is a service-account token and when to ask for a new one.
type token struct {
	data      []byte
	refreshAt time.Time
}

// prefetch is the tokens asked for a pod before it was bound to a node.
type prefetch struct {
	asked  time.Time
	done   chan struct{}
	tokens map[string]*token // by "<volume>/<path>"; set when done
}

// prefetchKeep is how long a prefetched token waits for its pod to be
// bound here (it may be bound elsewhere, or deleted).
const prefetchKeep = time.Minute

// Prefetch asks for the service-account tokens of a pod that no node runs
// yet (its API access volume's among them), so that if it is bound here
// its start does not wait for them: a TokenRequest takes the API server
// 10-30 ms while a cold start keeps it busy, about as long as scheduling
// the pod takes.
func (r *Root) Prefetch(ctx context.Context, pod *corev1.Pod) {
	asked := map[string]*corev1.ServiceAccountTokenProjection{} // by "<volume>/<path>"
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if sat := src.ServiceAccountToken; sat != nil {
				asked[v.Name+"/"+sat.Path] = sat
			}
		}
	}
	if len(asked) == 0 {
		return
	}
	r.mu.Lock()
	for uid, f := range r.prefetched {
		if time.Since(f.asked) > prefetchKeep {
			delete(r.prefetched, uid)
		}
	}
	if _, ok := r.prefetched[pod.UID]; ok {
		r.mu.Unlock()
		return
	}
	f := &prefetch{asked: time.Now(), done: make(chan struct{}), tokens: map[string]*token{}}
	r.prefetched[pod.UID] = f
	r.mu.Unlock()
	go func() {
		defer close(f.done)
		for key, sat := range asked {
			if t, err := r.requestToken(ctx, pod, sat); err == nil {
				f.tokens[key] = t
			}
		}
	}()
}

// prefetchedToken is the token prefetched for pod's key, waiting for one
// still being asked for; nil when there is none.
func (r *Root) prefetchedToken(ctx context.Context, uid types.UID, key string) *token {
	r.mu.Lock()
	f := r.prefetched[uid]
	r.mu.Unlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := f.tokens[key]
	delete(f.tokens, key)
	if len(f.tokens) == 0 {
		delete(r.prefetched, uid)
	}
	return t
}

// token is the pod's service-account token for src, asked for with the
// TokenRequest API as the kubelet does (bound to the pod, so it ends with
// it), or taken from the prefetch, and asked for again after 80% of its
// lifetime. An in-cluster client reads it as it starts, so it is there
// before the containers start.
func (p *Pod) token(ctx context.Context, pod *corev1.Pod, volume string, src *corev1.ServiceAccountTokenProjection) (*token, error) {
	key := volume + "/" + src.Path
	if have := p.tokens[key]; have != nil && time.Now().Before(have.refreshAt) {
		return have, nil
	}
	t := p.root.prefetchedToken(ctx, pod.UID, key)
	if t == nil || !time.Now().Before(t.refreshAt) {
		ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
		defer cancel()
		var err error
		if t, err = p.root.requestToken(ctx, pod, src); err != nil {
			return nil, err
		}
	}
	p.tokens[key] = t
	return t, nil
}

// tokenTimeout bounds a TokenRequest; past it the volume is retried as any
// other that could not be set up.
const tokenTimeout = 30 * time.Second

func (r *Root) requestToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (*token, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	sa := cmp.Or(pod.Spec.ServiceAccountName, "default")
	now := time.Now()
	tr, err := r.cfg.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to fetch token: %w", err)
	}
	life := tr.Status.ExpirationTimestamp.Sub(now)
	return &token{data: []byte(tr.Status.Token), refreshAt: now.Add(life * 8 / 10)}, nil
}
