package preview

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"fulcrum/internal/route"
)

func routeOf(listener string, i int, s *route.Spec, salt string) Route {
	part := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			// Unreachable: a Spec is plain data (strings, ints, maps of
			// strings, netip.Prefix).
			panic(fmt.Sprintf("preview: route %d: %v", i, err))
		}
		return fingerprint(salt, string(b))
	}
	return Route{
		Label: route.Label(listener, i, s), Index: i,
		Action: actionOf(s), Match: matchOf(&s.Match), Rewrite: rewriteOf(s),
		Parts: map[string]string{
			"match":   part(s.Match),
			"action":  part([]any{s.Pool, s.Split, s.Redirect, s.Respond}),
			"rewrite": part([]string{s.StripPrefix, s.AddPrefix, s.HostRewrite}),
			"headers": part([]route.HeaderOps{s.RequestHeaders, s.ResponseHeaders}),
		},
	}
}

func actionOf(s *route.Spec) string {
	switch {
	case s.Pool != "":
		return "pool " + s.Pool
	case len(s.Split) > 0:
		ts := make([]string, len(s.Split))
		for i, t := range s.Split {
			ts[i] = fmt.Sprintf("%s:%d", t.Pool, t.Weight)
		}
		return "split " + strings.Join(ts, ",")
	case s.Redirect != nil:
		return fmt.Sprintf("redirect %d", cmp.Or(s.Redirect.Status, 301))
	case s.Respond != nil:
		return fmt.Sprintf("respond %d", cmp.Or(s.Respond.Status, 200))
	}
	return "none"
}

// summary joins the non-empty key=value pairs, or says none.
func summary(none string, kv ...string) string {
	var parts []string
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] != "" {
			parts = append(parts, kv[i]+"="+kv[i+1])
		}
	}
	if len(parts) == 0 {
		return none
	}
	return strings.Join(parts, " ")
}

func matchOf(m *route.Match) string {
	ips := make([]string, len(m.ClientIP))
	for i, p := range m.ClientIP {
		ips[i] = p.String()
	}
	return summary("any",
		"host", strings.Join(m.Host, ","), "path_prefix", m.PathPrefix, "path", m.Path, "path_regex", m.PathRegex,
		"method", strings.Join(m.Method, ","), "headers", mapOf(m.Headers), "query", mapOf(m.Query),
		"cookies", mapOf(m.Cookies), "client_ip", strings.Join(ips, ","))
}

func rewriteOf(s *route.Spec) string {
	return summary("none", "strip_prefix", s.StripPrefix, "add_prefix", s.AddPrefix, "host_rewrite", s.HostRewrite)
}

// mapOf is a map of match values as NAME:VALUE,... sorted by name.
func mapOf(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+":"+m[k])
	}
	return strings.Join(parts, ",")
}
