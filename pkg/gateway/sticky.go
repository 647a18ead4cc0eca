package gateway

import (
	"net/http"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
)

// stick keeps a client of a route with session affinity on one revision:
// the revision its cookie names while that revision still has a share of
// the traffic the request takes, or else picked, which the answer's
// cookie then names. Served on the net/http path (the loop hands these
// routes over).
func (g *Gateway) stick(w http.ResponseWriter, r *http.Request, entry hostEntry, tag []byte, picked *revision) *revision {
	if c, err := r.Cookie(servingv1.SessionAffinityCookie); err == nil {
		for _, s := range entry.route.splits[g.trafficName(entry, tag)] {
			if s.Revision == c.Value && s.Percent > 0 {
				return g.revision(entry.route.namespace, c.Value)
			}
		}
	}
	http.SetCookie(w, &http.Cookie{Name: servingv1.SessionAffinityCookie, Value: picked.name, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return picked
}
