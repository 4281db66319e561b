package admin

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
)

// dashboardHTML is the live dashboard: one self-contained page (inline CSS
// and JS, no external resource) that reads GET /admin/stream.
//
//go:embed dashboard.html
var dashboardHTML string

// dashboard is the page and the Content-Security-Policy that allows exactly
// its own inline script and style (by hash) and nothing else but calls to
// the admin API.
type dashboard struct {
	page string
	csp  string
}

func newDashboard() dashboard {
	return dashboard{page: dashboardHTML, csp: "default-src 'none'; " +
		"script-src " + inlineHashes(dashboardHTML, "script") + "; " +
		"style-src " + inlineHashes(dashboardHTML, "style") + "; " +
		"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}
}

// inlineHashes returns the CSP source list of the sha256 hashes of every
// <tag>...</tag> element's content in page.
func inlineHashes(page, tag string) string {
	open, end := "<"+tag+">", "</"+tag+">"
	var srcs []string
	for {
		i := strings.Index(page, open)
		if i < 0 {
			break
		}
		page = page[i+len(open):]
		j := strings.Index(page, end)
		if j < 0 {
			break
		}
		sum := sha256.Sum256([]byte(page[:j]))
		srcs = append(srcs, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		page = page[j+len(end):]
	}
	if len(srcs) == 0 {
		return "'none'"
	}
	return strings.Join(srcs, " ")
}

// dashboard serves GET / (exactly): the page needs no token, every call it
// makes does.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", s.dash.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	io.WriteString(w, s.dash.page)
}
