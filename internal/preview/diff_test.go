package preview

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"fulcrum/internal/config"
)

const testSalt = "00112233445566778899aabbccddeeff"

func load(t testing.TB, doc string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(doc), "yaml", nil)
	if err != nil {
		t.Fatalf("config:\n%s\n%v", doc, err)
	}
	return cfg
}

func diff(t testing.TB, old, next string) []Change {
	t.Helper()
	cs, err := Diff(FromConfig(load(t, old), testSalt), FromConfig(load(t, next), testSalt))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// full is a full-form document: two listeners, three pools.
const full = `
pools:
  web: {strategy: weighted_round_robin, backends: ["http://10.0.0.1:80", {url: "http://10.0.0.2:80", weight: 2}]}
  api: {strategy: least_connections, backends: ["http://10.0.1.1:80"], sticky: {type: cookie}}
  old: {backends: ["http://10.0.2.1:80"]}
listeners:
  - name: public
    listen_addr: "127.0.0.1:8080"
    routes:
      - {name: api, match: {path_prefix: /api/}, pool: api}
      - {name: legacy, match: {path_prefix: /old/}, pool: old}
      - {pool: web}
  - name: internal
    listen_addr: "127.0.0.1:8081"
    routes: [{pool: web}]
`

// edit applies replacements to doc, failing if one does not apply.
func edit(t testing.TB, doc string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(doc, pairs[i]) {
			t.Fatalf("edit: %q not in the document", pairs[i])
		}
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return doc
}

// TestDiffKinds: one case per kind of change; each lists exactly the
// changes expected, as kind and a regexp of the message.
func TestDiffKinds(t *testing.T) {
	t.Parallel()
	flat := func(extra string) string {
		return `{"listen_addr": "127.0.0.1:8080", "backends": ["http://10.0.0.1:80", "http://10.0.0.2:80"]` + extra + `}`
	}
	type want struct {
		kind Kind
		msg  string // regexp
	}
	for _, tc := range []struct {
		name      string
		old, next string
		want      []want
	}{
		{"nothing", full, full, nil},
		{"reordered backends and pools are no change", full,
			edit(t, full, `["http://10.0.0.1:80", {url: "http://10.0.0.2:80", weight: 2}]`, `[{url: "http://10.0.0.2:80", weight: 2}, "http://10.0.0.1:80"]`), nil},
		{"setting_changed", flat(""), flat(`, "log_level": "debug", "access_log": true`), []want{
			{SettingChanged, `^access_log false -> true$`}, {SettingChanged, `^log_level info -> debug$`}}},
		{"admin_token set", flat(""), flat(`, "admin_token": "sekrit-token-1"`), []want{
			{SettingChanged, `^admin_token set: the admin API will require it$`}}},
		{"admin_token changed", flat(`, "admin_token": "sekrit-token-1"`), flat(`, "admin_token": "sekrit-token-2"`), []want{
			{SettingChanged, `^admin_token changed: the admin API will require the new one$`}}},
		{"listener_added", full, full + "  - {name: extra, listen_addr: \"127.0.0.1:8082\", routes: [{pool: web}, {pool: api}]}\n", []want{
			{ListenerAdded, `^listener extra added on 127.0.0.1:8082 \(2 routes\)$`}}},
		{"listener_removed", full, edit(t, full, "  - name: internal\n    listen_addr: \"127.0.0.1:8081\"\n    routes: [{pool: web}]\n", ""), []want{
			{ListenerRemoved, `^listener internal removed: stops accepting on 127.0.0.1:8081, its connections drain$`}}},
		{"listener renamed keeps its socket", full, edit(t, full, "name: internal", "name: private"), []want{
			{ListenerRemoved, `^listener internal removed: listener private takes over its socket on 127.0.0.1:8081$`},
			{ListenerAdded, `^listener private added on 127.0.0.1:8081 \(1 route\), keeping the socket and connections of listener internal$`}}},
		{"listener_changed", full, edit(t, full, `listen_addr: "127.0.0.1:8081"`, `listen_addr: "127.0.0.1:9081"`+"\n    max_conns: 10"), []want{
			{ListenerChanged, `^listener internal changed: listen_addr 127.0.0.1:8081 -> 127.0.0.1:9081, max_conns 50000 -> 10$`}}},
		{"route_added", full, edit(t, full, "      - {pool: web}\n  - name: internal", "      - {name: ping, match: {path: /ping}, respond: {body: pong}}\n      - {pool: web}\n  - name: internal"), []want{
			// The unnamed catch-all moved from index 2 to 3: its label changes.
			{RouteAdded, `^listener public: route ping added at position 2 \(respond 200\)$`},
			{RouteAdded, `^listener public: route public/3 added at position 3 \(pool web\)$`},
			{RouteRemoved, `^listener public: route public/2 removed \(was pool web\)$`}}},
		{"route_removed", full, edit(t, full, "      - {name: legacy, match: {path_prefix: /old/}, pool: old}\n", ""), []want{
			{RouteAdded, `^listener public: route public/1 added at position 1 \(pool web\)$`},
			{RouteRemoved, `^listener public: route legacy removed \(was pool old\)$`},
			// Nothing about pool old: a pool no route uses is a warning, not a change.
			{RouteRemoved, `^listener public: route public/2 removed \(was pool web\)$`}}},
		{"route_changed", full, edit(t, full, "{name: api, match: {path_prefix: /api/}, pool: api}", "{name: api, match: {path_prefix: /v2/}, strip_prefix: /v2, pool: web}"), []want{
			{RouteChanged, `^listener public: route api changed: action pool api -> pool web, match path_prefix=/api/ -> path_prefix=/v2/, rewrite none -> strip_prefix=/v2$`}}},
		{"route details", full, edit(t, full, "{name: api, match: {path_prefix: /api/}, pool: api}",
			"{name: api, match: {path_prefix: /api/, method: [GET, HEAD], headers: {X-B: '2', X-A: '1'}, query: {v: '*'}, client_ip: [10.0.0.0/8]}, request_headers: {set: {Authorization: 'Bearer backend-cred'}}, pool: api}"), []want{
			{RouteChanged, `^listener public: route api changed: headers changed, match path_prefix=/api/ -> path_prefix=/api/ method=GET,HEAD headers=X-A:1,X-B:2 query=v:\* client_ip=10.0.0.0/8$`}}},
		{"redirect target", full + "  - {name: extra, listen_addr: \"127.0.0.1:8082\", routes: [{name: moved, match: {path: /x}, redirect: {host: a.example}}]}\n",
			full + "  - {name: extra, listen_addr: \"127.0.0.1:8082\", routes: [{name: moved, match: {path: /x}, redirect: {host: b.example}}]}\n", []want{
				{RouteChanged, `^listener extra: route moved changed: action changed$`}}},
		{"route moved", full, edit(t, full, "      - {name: api, match: {path_prefix: /api/}, pool: api}\n      - {name: legacy, match: {path_prefix: /old/}, pool: old}\n",
			"      - {name: legacy, match: {path_prefix: /old/}, pool: old}\n      - {name: api, match: {path_prefix: /api/}, pool: api}\n"), []want{
			{RouteChanged, `^listener public: route api changed: position 0 -> 1$`},
			{RouteChanged, `^listener public: route legacy changed: position 1 -> 0$`}}},
		{"pool_added", full, edit(t, full, "  old: {", "  new: {strategy: ip_hash, backends: [\"http://10.0.3.1:80\", \"http://10.0.3.2:80\"]}\n  old: {"), []want{
			{PoolAdded, `^pool new added \(2 backends, strategy ip_hash\)$`}}},
		{"pool_removed", full, edit(t, full, "  old: {backends: [\"http://10.0.2.1:80\"]}\n", "", "{name: legacy, match: {path_prefix: /old/}, pool: old}", "{name: legacy, match: {path_prefix: /old/}, pool: web}"), []want{
			{RouteChanged, `^listener public: route legacy changed: action pool old -> pool web$`},
			{PoolRemoved, `^pool old removed \(1 backend\): it gets no new requests, requests in flight finish$`}}},
		{"pool_changed", full, edit(t, full, `old: {backends`, `old: {retries: 5, health_check: {type: http, headers: {Authorization: "Bearer hc-secret"}}, backends`), []want{
			{PoolChanged, `^pool old changed: health_check.headers changed, health_check.healthy_threshold 1 -> 2, health_check.interval 30s -> 10s, ` +
				`health_check.path / -> /health, health_check.type tcp -> http, retries 2 -> 5$`}}},
		{"sticky on", full, edit(t, full, `old: {backends`, `old: {sticky: {type: source_ip}, backends`), []want{
			{PoolChanged, `^pool old changed: sticky off -> source_ip$`}}},
		{"backend_added and backend_removed", full, edit(t, full, `"http://10.0.0.1:80", {url`, `"http://10.0.0.3:80", {url`), []want{
			{BackendRemoved, `^pool web: backend http://10.0.0.1:80 removed: it gets no new requests, requests in flight finish$`},
			{BackendAdded, `^pool web: backend http://10.0.0.3:80 added \(weight 1\)$`}}},
		{"weight_changed", full, edit(t, full, `weight: 2}`, `weight: 5}`), []want{
			{WeightChanged, `^pool web: backend http://10.0.0.2:80 weight 2 -> 5$`}}},
		{"strategy_changed", full, edit(t, full, "strategy: weighted_round_robin", "strategy: least_connections"), []want{
			{StrategyChanged, `^pool web: strategy weighted_round_robin -> least_connections$`}}},
		{"hash_key changed", flat(`, "strategy": "consistent_hash", "hash_key": "header:X-User"`), flat(`, "strategy": "consistent_hash", "hash_key": "path"`), []want{
			{StrategyChanged, `^pool default: strategy consistent_hash on header:X-User -> consistent_hash on path: every key maps anew$`}}},
		{"hash strategy dropped", flat(`, "strategy": "ip_hash"`), flat(`, "strategy": "random"`), []want{
			{StrategyChanged, `^pool default: strategy ip_hash -> random: keys are no longer kept on one backend$`}}},
		{"sticky cookie name", full, edit(t, full, "sticky: {type: cookie}", "sticky: {type: cookie, cookie_name: LB}"), []want{
			{StickyReset, `^pool api: sticky cookie name FULCRUM_BACKEND -> LB: every pinned client moves$`}}},
		{"sticky secret set", full, edit(t, full, "sticky: {type: cookie}", "sticky: {type: cookie, secret: s3cr3t-one}"), []want{
			{StickyReset, `^pool api: sticky secret set: every pinned client moves`}}},
		{"sticky secret changed", edit(t, full, "sticky: {type: cookie}", "sticky: {type: cookie, secret: s3cr3t-one}"),
			edit(t, full, "sticky: {type: cookie}", "sticky: {type: cookie, secret: s3cr3t-two}"), []want{
				{StickyReset, `^pool api: sticky secret changed: every pinned client moves \(and every FULCRUM_SPLIT pin to this pool\)$`}}},
		{"sticky type", full, edit(t, full, "sticky: {type: cookie}", "sticky: {type: app_cookie, cookie_name: JSESSIONID}"), []want{
			{StickyReset, `^pool api: sticky type cookie -> app_cookie: every pinned client moves$`}}},
		{"app_cookie name", edit(t, full, "sticky: {type: cookie}", "sticky: {type: app_cookie, cookie_name: A}"),
			edit(t, full, "sticky: {type: cookie}", "sticky: {type: app_cookie, cookie_name: B}"), []want{
				{StickyReset, `^pool api: sticky cookie name A -> B: the session table starts empty, every pinned client moves$`}}},
		{"sticky off", full, edit(t, full, ", sticky: {type: cookie}", ""), []want{
			{StickyReset, `^pool api: sticky off \(was cookie\): pins are no longer followed$`}}},
		{"sticky ttl", full, edit(t, full, "sticky: {type: cookie}", "sticky: {type: cookie, ttl: 1h}"), []want{
			{PoolChanged, `^pool api changed: sticky.ttl 0s -> 1h0m0s$`}}},
		{"hash_keys_moved", flat(`, "strategy": "ip_hash"`), edit(t, flat(`, "strategy": "ip_hash"`), `"http://10.0.0.2:80"]`, `"http://10.0.0.2:80", "http://10.0.0.3:80"]`), []want{
			{BackendAdded, `^pool default: backend http://10.0.0.3:80 added \(weight 1\)$`},
			{HashKeysMoved, `^pool default: hash backends changed: 3[2-4]\.\d% of keys move \(table of 65537 slots\)$`}}},
		{"hash weight", flat(`, "strategy": "consistent_hash", "hash_key": "path"`), edit(t, flat(`, "strategy": "consistent_hash", "hash_key": "path"`), `"http://10.0.0.2:80"]`, `{"url": "http://10.0.0.2:80", "weight": 3}]`), []want{
			{WeightChanged, `^pool default: backend http://10.0.0.2:80 weight 1 -> 3$`},
			{HashKeysMoved, `^pool default: hash backends changed: 2[4-6]\.\d% of keys move \(table of 65537 slots\)$`}}},
		{"source_ip moved", flat(`, "sticky": {"type": "source_ip"}`), edit(t, flat(`, "sticky": {"type": "source_ip"}`), `"http://10.0.0.1:80", `, ``), []want{
			{BackendRemoved, `^pool default: backend http://10.0.0.1:80 removed`},
			{HashKeysMoved, `^pool default: sticky source_ip backends changed: (49|50|51)\.\d% of client addresses move to another backend \(one backend left, no table\)$`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := diff(t, tc.old, tc.next)
			var lines []string
			for _, c := range got {
				lines = append(lines, fmt.Sprintf("%s: %s", c.Kind, c.Message))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d changes, want %d:\n%s", len(got), len(tc.want), strings.Join(lines, "\n"))
			}
			for i, w := range tc.want {
				if got[i].Kind != w.kind || !regexp.MustCompile(w.msg).MatchString(got[i].Message) {
					t.Errorf("change %d = %s\nwant %s matching %s\nall:\n%s", i, lines[i], w.kind, w.msg, strings.Join(lines, "\n"))
				}
			}
		})
	}
}
