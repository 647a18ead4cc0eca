package revision

import "testing"

func TestImageDigest(t *testing.T) {
	for in, want := range map[string]string{
		"knd://dev.local/app:v1@sha256:abc":              "dev.local/app@sha256:abc",
		"docker-pullable://localhost:5000/app@sha256:ab": "localhost:5000/app@sha256:ab",
		"localhost:5000/app:v2@sha256:ab":                "localhost:5000/app@sha256:ab",
		"sha256:abc":                                     "",
		"":                                               "",
	} {
		if got := imageDigest(in); got != want {
			t.Errorf("imageDigest(%q) = %q, want %q", in, got, want)
		}
	}
}
