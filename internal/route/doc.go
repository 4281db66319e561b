// Package route owns a listener's route table: the routes of issue 11,
// validated and compiled once per (re)load into an immutable, indexed Table
// that the data path consults with Lookup on every request.
//
// # Contract
//
// Compile([]Spec) is a pure function of the configured routes of one
// listener. It checks every route and reports every problem at once, each an
// *Error naming the route index and field ("routes[3].match.path_regex:
// ..."), so the config package can prefix the listener's location. It
// applies the defaults (redirect status 301, respond status 200 and content
// type "text/plain; charset=utf-8") and refuses what would be silently
// ignored or dangerous: zero or two actions, an unnormalised path that could
// never match, request modifiers on redirect/respond routes, header
// modifiers naming hop-by-hop or framing fields (Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Content-Length,
// Host). Compile knows nothing of pools: whether a named pool exists is the
// caller's check.
//
// A Table never changes after Compile returns. Publish it through an
// atomic.Pointer[Table]; a reload compiles a new one beside it and swaps, so
// a request sees the old table or the new one, never a mix. Lookup is safe
// for any number of concurrent callers, never blocks, makes no allocation
// and does not retain the *Request it is given.
//
// # Matching
//
// Routes are tried in order and the first whose every condition holds wins
// (conditions AND, list elements OR); a route without conditions matches
// everything; when none matches Lookup returns nil and the caller answers
// 404. host is case-insensitive, ignores the port and one trailing dot;
// "*.example.com" matches names ending in ".example.com" at any depth, not
// "example.com". Path conditions (path_prefix, path, path_regex) see the
// normalised path (NormalPath: unreserved percent-encodings decoded, hex
// upper-cased, "." and ".." segments removed per RFC 3986 section 5.2.4),
// never the query, so "/public/../admin" is "/admin". path_prefix "/api"
// matches "/api" and "/api/x", not "/apix"; "/api/" matches what starts
// with it. path_regex is RE2, anchored; a regex made of literals and
// repeated classes ("/svc/[0-9]+", "/u/[^/]+/orders") is matched by a
// single byte scan that gives RE2's answer (regexfast.go), any other by
// regexp. method is case-sensitive. headers, query and cookies map a name
// to an exact value, "*" meaning present with any value; the condition
// holds when any field line (any parameter, any cookie) of that name has
// the value. Header names are case-insensitive;
// query names and values are compared after form decoding ("%41" and "+"),
// cookie names case-sensitively with DQUOTEs around the value dropped.
// client_ip is compared with Request.ClientIP, IPv4-mapped addresses
// unmapped.
//
// Lookup does not scan the routes. Hosts are indexed (an exact map, then
// wildcard suffixes longest first, each group holding the routes of the
// wildcards that cover it, plus the group of routes without host); within a
// group paths are indexed (an exact map and a prefix tree by segment); the
// candidates of the host group and the no-host group are merged by route
// index so that the lowest-index route whose remaining conditions hold wins,
// exactly as a first-match scan would. The work per request is bounded by
// the request's size and the depth of the indexes.
//
// # Actions and modifiers
//
// Route.Action says what to do. A split route picks its pool with PickPool,
// a smooth weighted round robin (nginx's) per route precomputed over its
// period: lock-free and exact (95/5 gives exactly 95 and 5 in 100). The
// counter starts over when a reload compiles a new table. AppendTarget
// gives the target to forward after strip_prefix and add_prefix (the query
// kept); AppendLocation the Location of a redirect (parts not given keep
// the request's, the query kept). Header modifiers are handed out as
// compiled Ops for the front to apply after its own header handling.
//
// The request is given as a protocol-neutral Request (method, scheme, host,
// target, client address and a Fields interface over the header lines), so
// the HTTP/1.1 front and a later HTTP/2 front share the table.
package route
