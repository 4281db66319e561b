package engine_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// fullCfg is a one-listener configuration in the full form: pool "slow" for
// /slow, pool "web" for the rest (pool "slow" is left out when withSlow is
// false).
func fullCfg(slow, web string, withSlow bool) string {
	pools := fmt.Sprintf(`"web": {"backends": [%q]}`, web)
	routes := `{"pool": "web"}`
	if withSlow {
		pools += fmt.Sprintf(`, "slow": {"backends": [%q]}`, slow)
		routes = `{"match": {"path_prefix": "/slow"}, "pool": "slow"}, ` + routes
	}
	return fmt.Sprintf(`{"admin_addr": "", "health_check_interval": "1h", "retries": 0, "pools": {%s},
 "listeners": [{"name": "public", "listen_addr": "127.0.0.1:0", "routes": [%s]}]}`, pools, routes)
}

// A reload that removes a pool while a request to it is in flight lets the
// request finish; later requests follow the new routes.
func TestReloadRemovesPoolInFlight(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "slow")
	}))
	defer slow.Close()
	web := startBackends(t, "web")
	h := start(t, fullCfg(slow.URL, web[0].url, true))

	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := h.cl.Get("http://" + h.eng.Addr().String() + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the slow pool")
	}
	writeFile(t, h.path, fullCfg(slow.URL, web[0].url, false))
	summary, err := h.eng.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Log(summary)
	// New requests to /slow now go to web, while the old one still waits.
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + h.eng.Addr().String() + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "web" {
		t.Fatalf("/slow after the reload: %q, want web", b)
	}
	close(release)
	select {
	case r := <-done:
		if r.err != nil || r.body != "slow" {
			t.Fatalf("the in-flight request to the removed pool: %q %v, want slow", r.body, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the in-flight request did not finish")
	}
	for _, st := range h.eng.Backends() {
		if st.URL == slow.URL {
			t.Fatalf("the removed pool's backend is still listed: %+v", st)
		}
	}
}
