package admin

import (
	"cmp"
	"net/http"

	"fulcrum/internal/config"
	"fulcrum/internal/route"
)

// RouteSource is implemented by a Controller that has routes: GET
// /admin/routes lists them.
type RouteSource interface {
	// Listeners returns the running listeners with their routes in order.
	Listeners() []config.Listener
}

// listenerView is one listener of GET /admin/routes.
type listenerView struct {
	Name       string      `json:"name"`
	ListenAddr string      `json:"listen_addr"`
	Routes     []routeView `json:"routes"`
}

// routeView is one route: its label (the metrics route label), its
// conditions as configured and its action.
type routeView struct {
	Index int    `json:"index"`
	Name  string `json:"name,omitempty"`
	// Label is the route label of the request metrics: the name, or
	// LISTENER/INDEX when the route has none.
	Label string    `json:"label"`
	Match matchView `json:"match"`
	// Action is "pool", "split", "redirect" or "respond".
	Action          string         `json:"action"`
	Pool            string         `json:"pool,omitempty"`
	Split           []splitView    `json:"split,omitempty"`
	Redirect        *redirectView  `json:"redirect,omitempty"`
	Respond         *respondView   `json:"respond,omitempty"`
	StripPrefix     string         `json:"strip_prefix,omitempty"`
	AddPrefix       string         `json:"add_prefix,omitempty"`
	HostRewrite     string         `json:"host_rewrite,omitempty"`
	RequestHeaders  *headerOpsView `json:"request_headers,omitempty"`
	ResponseHeaders *headerOpsView `json:"response_headers,omitempty"`
}

type redirectView struct {
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	Port   int    `json:"port,omitempty"`
	Path   string `json:"path,omitempty"`
	Status int    `json:"status"`
}

type respondView struct {
	Status      int    `json:"status"`
	Body        string `json:"body"`
	ContentType string `json:"content_type"`
}

type matchView struct {
	Host       []string          `json:"host,omitempty"`
	PathPrefix string            `json:"path_prefix,omitempty"`
	Path       string            `json:"path,omitempty"`
	PathRegex  string            `json:"path_regex,omitempty"`
	Method     []string          `json:"method,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Query      map[string]string `json:"query,omitempty"`
	Cookies    map[string]string `json:"cookies,omitempty"`
	ClientIP   []string          `json:"client_ip,omitempty"`
}

type splitView struct {
	Pool   string `json:"pool"`
	Weight int    `json:"weight"`
}

type headerOpsView struct {
	Set    map[string]string `json:"set,omitempty"`
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

func opsView(h route.HeaderOps) *headerOpsView {
	if len(h.Set)+len(h.Add)+len(h.Remove) == 0 {
		return nil
	}
	return &headerOpsView{Set: h.Set, Add: h.Add, Remove: h.Remove}
}

func viewRoutes(ls []config.Listener) []listenerView {
	out := make([]listenerView, 0, len(ls))
	for _, l := range ls {
		lv := listenerView{Name: l.Name, ListenAddr: l.Listen, Routes: make([]routeView, 0, len(l.Routes))}
		for i, s := range l.Routes {
			rv := routeView{
				Index: i, Name: s.Name, Label: route.Label(l.Name, i, &s), Pool: s.Pool,
				StripPrefix: s.StripPrefix, AddPrefix: s.AddPrefix, HostRewrite: s.HostRewrite,
				RequestHeaders: opsView(s.RequestHeaders), ResponseHeaders: opsView(s.ResponseHeaders),
				Match: matchView{
					Host: s.Match.Host, PathPrefix: s.Match.PathPrefix, Path: s.Match.Path, PathRegex: s.Match.PathRegex,
					Method: s.Match.Method, Headers: s.Match.Headers, Query: s.Match.Query, Cookies: s.Match.Cookies,
				},
			}
			for _, p := range s.Match.ClientIP {
				rv.Match.ClientIP = append(rv.Match.ClientIP, p.String())
			}
			switch {
			case s.Pool != "":
				rv.Action = "pool"
			case len(s.Split) > 0:
				rv.Action = "split"
				for _, t := range s.Split {
					rv.Split = append(rv.Split, splitView{Pool: t.Pool, Weight: t.Weight})
				}
			case s.Redirect != nil:
				d := s.Redirect
				rv.Action = "redirect"
				rv.Redirect = &redirectView{Scheme: d.Scheme, Host: d.Host, Port: d.Port, Path: d.Path, Status: cmp.Or(d.Status, 301)}
			case s.Respond != nil:
				d := s.Respond
				rv.Action = "respond"
				rv.Respond = &respondView{Status: cmp.Or(d.Status, 200), Body: d.Body, ContentType: cmp.Or(d.ContentType, route.DefaultContentType)}
			}
			lv.Routes = append(lv.Routes, rv)
		}
		out = append(out, lv)
	}
	return out
}

func (s *Server) routes(w http.ResponseWriter, r *http.Request) {
	rs, ok := s.ctl.(RouteSource)
	if !ok {
		writeError(w, http.StatusNotFound, "this server has no routes to show")
		return
	}
	writeJSON(w, http.StatusOK, viewRoutes(rs.Listeners()))
}
