package acme

import "testing"

// FuzzHTTPChallenge: the http-01 matcher never panics and answers only GET
// requests under the challenge path (no challenge is active here, so it
// answers nothing at all).
func FuzzHTTPChallenge(f *testing.F) {
	f.Add("GET", "example.com", "/.well-known/acme-challenge/abc")
	f.Add("GET", "[::1]:80", "/.well-known/acme-challenge/")
	f.Add("POST", "example.com:8080", "/.well-known/acme-challenge/x/../y")
	f.Add("GET", "", "/")
	f.Fuzz(func(t *testing.T, method, host, path string) {
		key, ok := HTTPChallenge(method, host, path)
		if ok || key != "" {
			t.Fatalf("answered %q for %s %s %s with no challenge active", key, method, host, path)
		}
	})
}
