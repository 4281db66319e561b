package route

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Spec is one configured route, as the config package hands it over after
// parsing. Compile never modifies a Spec and never keeps a reference to its
// maps or slices: it copies what it needs.
type Spec struct {
	// Name labels the route in metrics and /admin/routes. Optional; unique
	// within a table when given; may not contain '/' (unnamed routes are
	// labelled LISTENER/INDEX by the caller).
	Name string

	// Match holds the conditions. The zero Match matches every request.
	Match Match

	// Exactly one action: Pool, Split, Redirect or Respond.
	Pool     string
	Split    []SplitTarget
	Redirect *Redirect
	Respond  *Respond

	// StripPrefix removes this path prefix (at a segment boundary) from the
	// path forwarded to the backend; AddPrefix then prepends one.
	StripPrefix string
	AddPrefix   string
	// HostRewrite replaces the Host sent to the backend (host or host:port).
	HostRewrite string

	// RequestHeaders change the request forwarded to the backend;
	// ResponseHeaders change the response sent to the client. Both are
	// applied after fulcrum's own header handling.
	RequestHeaders  HeaderOps
	ResponseHeaders HeaderOps
}

// Match is the set of conditions of a route. Every condition that is set must
// hold (AND); within a list any element may hold (OR).
type Match struct {
	// Host: names compared case-insensitively with the request's host, port
	// ignored. "*.example.com" matches any name ending in ".example.com"
	// (not "example.com" itself).
	Host []string
	// PathPrefix: ending in "/", matches paths that start with it; otherwise
	// matches the path equal to it or followed by "/".
	PathPrefix string
	// Path: the normalised path equals it.
	Path string
	// PathRegex: RE2 syntax, anchored at both ends, against the normalised path.
	PathRegex string
	// Method: the request method equals one of these (case-sensitive).
	Method []string
	// Headers, Query, Cookies: name -> exact value; "*" means present with
	// any value. Header names are case-insensitive; query and cookie names
	// are not.
	Headers map[string]string
	Query   map[string]string
	Cookies map[string]string
	// ClientIP: the client address lies in one of these prefixes.
	ClientIP []netip.Prefix
}

// SplitTarget is one weighted pool of a split action.
type SplitTarget struct {
	Pool   string
	Weight int
}

// Redirect answers with a redirect. Parts left zero keep the request's.
type Redirect struct {
	Scheme string // "http" or "https"
	Host   string
	Port   int
	Path   string // replaces the whole path; the query is kept
	Status int    // 301 (default), 302, 303, 307 or 308
}

// Respond answers with a fixed response.
type Respond struct {
	Status      int // 200 when zero
	Body        string
	ContentType string // "text/plain; charset=utf-8" when empty
}

// HeaderOps changes header fields: Remove first, then Set (replace every
// field of that name), then Add (append one more field).
type HeaderOps struct {
	Set    map[string]string
	Add    map[string]string
	Remove []string
}

// Label is the name route i of listener goes by in metrics and the admin
// API: its configured name, or "LISTENER/INDEX" when it has none.
func Label(listener string, i int, s *Spec) string {
	if s.Name != "" {
		return s.Name
	}
	return listener + "/" + strconv.Itoa(i)
}

// Error is one problem Compile found, located by route index and field path
// (relative to the route), so that the config package can prefix its own
// location: "routes[3].match.path_regex: ...".
type Error struct {
	Route int    // index of the route in the []Spec given to Compile
	Field string // e.g. "match.path_regex", "split[1].weight"; "" for the route itself
	Err   error
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("routes[%d]: %v", e.Route, e.Err)
	}
	return fmt.Sprintf("routes[%d].%s: %v", e.Route, e.Field, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
