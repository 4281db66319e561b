package preview

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"fulcrum/internal/config"
)

// secretDoc holds three secrets that must never leave a Model.
const secretDoc = `
admin_token: admin-TOKEN-0123456789
pools:
  api:
    backends: ["http://10.0.1.1:80"]
    sticky: {type: cookie, secret: sticky-SECRET-abcdef}
    health_check: {type: http, headers: {Authorization: "Bearer HC-CREDENTIAL-42"}}
listeners:
  - {name: public, listen_addr: "127.0.0.1:8080", routes: [{pool: api, request_headers: {set: {Authorization: "Bearer ROUTE-CRED-9"}}}]}
`

var secrets = []string{"admin-TOKEN-0123456789", "sticky-SECRET-abcdef", "HC-CREDENTIAL-42", "ROUTE-CRED-9"}

func TestModelHidesSecrets(t *testing.T) {
	t.Parallel()
	m := FromConfig(load(t, secretDoc), testSalt)
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// Every secret changes at once; neither the model nor the changes may
	// show one.
	next := strings.NewReplacer("TOKEN", "token", "SECRET", "secret", "CREDENTIAL", "credential", "ROUTE-CRED", "route-cred").Replace(secretDoc)
	cs := diff(t, secretDoc, next)
	csj, _ := json.Marshal(cs)
	for _, s := range secrets {
		for what, text := range map[string]string{"model": string(js), "changes": string(csj)} {
			if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
				t.Errorf("the %s contains the secret %q:\n%s", what, s, text)
			}
		}
	}
	var kinds []string
	for _, c := range cs {
		kinds = append(kinds, string(c.Kind)+": "+c.Message)
	}
	want := []string{
		"setting_changed: admin_token changed: the admin API will require the new one",
		"route_changed: listener public: route public/0 changed: headers changed",
		"pool_changed: pool api changed: health_check.headers changed",
		"sticky_reset: pool api: sticky secret changed: every pinned client moves (and every FULCRUM_SPLIT pin to this pool)",
	}
	if !slices.Equal(kinds, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}
	// The same secrets under another salt give other fingerprints.
	other := FromConfig(load(t, secretDoc), NewSalt())
	if other.Settings["admin_token"] == m.Settings["admin_token"] || other.Pools[0].Sticky.Secret == m.Pools[0].Sticky.Secret {
		t.Error("fingerprints do not depend on the salt")
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{full, secretDoc, `{"listen_addr": ":8080", "strategy": "ip_hash", "backends": ["http://a:1", "http://b:2"]}`} {
		m := FromConfig(load(t, doc), testSalt)
		js, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(js)
		if err != nil {
			t.Fatalf("Decode: %v\n%s", err, js)
		}
		if !reflect.DeepEqual(back, m) {
			t.Errorf("round trip changed the model:\n%+v\n%+v", back, m)
		}
		if cs, err := Diff(back, m); err != nil || len(cs) != 0 {
			t.Errorf("Diff(decoded, original) = %v, %v; want no changes", cs, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	good := func() *Model { return FromConfig(load(t, full), testSalt) }
	for _, tc := range []struct {
		name   string
		mutate func(m *Model)
		raw    string
		want   string
	}{
		{name: "not JSON", raw: "<html>", want: "not a configuration model"},
		{name: "version", mutate: func(m *Model) { m.Version = 2 }, want: "configuration model version 2, this fulcrum reads version 1"},
		{name: "salt", mutate: func(m *Model) { m.Salt = "" }, want: "without a salt"},
		{name: "listener name", mutate: func(m *Model) { m.Listeners[1].Name = "public" }, want: `listener "public" appears twice`},
		{name: "route label", mutate: func(m *Model) { m.Listeners[0].Routes[1].Label = "" }, want: "route of listener public 1 has no name"},
		{name: "pool name", mutate: func(m *Model) { m.Pools[2].Name = "web" }, want: `pool "web" appears twice`},
		{name: "backend key", mutate: func(m *Model) { m.Pools[0].Backends[1].Key = m.Pools[0].Backends[0].Key }, want: `backend of pool web "http://10.0.0.1:80" appears twice`},
		{name: "weight", mutate: func(m *Model) { m.Pools[1].Backends[0].Weight = 0 }, want: "pool api: backend http://10.0.1.1:80: weight 0, want >= 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := []byte(tc.raw)
			if tc.mutate != nil {
				m := good()
				tc.mutate(m)
				raw, _ = json.Marshal(m)
			}
			_, err := Decode(raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDiffNeedsOneSalt(t *testing.T) {
	t.Parallel()
	cfg := load(t, full)
	if _, err := Diff(FromConfig(cfg, testSalt), FromConfig(cfg, NewSalt())); err == nil {
		t.Error("Diff of models with different salts succeeded")
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	base := `{"listen_addr": "127.0.0.1:8080", "backends": ["http://a:1"]`
	running := FromConfig(load(t, base+`}`), testSalt)
	for _, tc := range []struct{ doc, want string }{
		{base + `}`, ""},
		{base + `, "log_level": "debug"}`, ""},
		{base + `, "admin_addr": "127.0.0.1:9191"}`, `admin_addr: cannot change on reload (running "127.0.0.1:9090", file says "127.0.0.1:9191"); restart fulcrum`},
		{base + `, "log_format": "json"}`, `log_format: cannot change on reload (running "text", file says "json"); restart fulcrum`},
	} {
		err := Refused(running, FromConfig(load(t, tc.doc), testSalt))
		if got := errString(err); got != tc.want {
			t.Errorf("Refused(%s) = %q, want %q", tc.doc, got, tc.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestDiffOrder: a change touching everything lists top-level keys, then
// listeners with their routes, then pools with their backends, each by
// name, and the same list whatever the order of the documents.
func TestDiffOrder(t *testing.T) {
	t.Parallel()
	next := edit(t, full,
		"pools:\n", "log_level: warn\npools:\n",
		`"http://10.0.0.1:80", {url`, `"http://10.0.0.9:80", {url`,
		"strategy: least_connections", "strategy: random",
		"name: internal\n    listen_addr: \"127.0.0.1:8081\"", "name: internal\n    listen_addr: \"127.0.0.1:8091\"",
		"{name: legacy, match: {path_prefix: /old/}, pool: old}", "{name: legacy, match: {path_prefix: /older/}, pool: old}",
		"  old: {", "  aaa: {backends: [\"http://10.0.9.1:80\"]}\n  old: {",
	)
	cs := diff(t, full, next)
	var got []string
	for _, c := range cs {
		got = append(got, string(c.Kind)+" "+c.Listener+c.Pool)
	}
	want := []string{
		"setting_changed ", "listener_changed internal", "route_changed public",
		"pool_added aaa", "strategy_changed api", "backend_removed web", "backend_added web",
	}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Reversing the lists of both models changes nothing.
	o, n := FromConfig(load(t, full), testSalt), FromConfig(load(t, next), testSalt)
	for _, m := range []*Model{o, n} {
		slices.Reverse(m.Pools)
		slices.Reverse(m.Listeners)
		for i := range m.Pools {
			slices.Reverse(m.Pools[i].Backends)
		}
	}
	again, err := Diff(o, n)
	if err != nil || !reflect.DeepEqual(again, cs) {
		t.Errorf("Diff of reversed models differs:\n%v\n%v", again, cs)
	}
}

// TestSettingsCover: changing any field of a pool, a listener or the
// top-level configuration (except those with a change kind of their own)
// changes the model, so no key a reload applies is missed.
func TestSettingsCover(t *testing.T) {
	t.Parallel()
	base := load(t, `
pools:
  p: {backends: ["https://10.0.0.1:443"], sticky: {type: cookie}, health_check: {type: http},
      tls: {ca_file: /ca.pem, server_name: api.test, cert_file: /c.pem, key_file: /c.key}}
listeners:
  - {name: l, listen_addr: "127.0.0.1:8080", rate_limit: {requests_per_second: 10}, routes: [{pool: p}],
     tls: {certificates: [{cert_file: /a.pem, key_file: /a.key}], client_auth: {ca_file: /ca.pem},
           acme: {domains: [a.example.com], email: ops@example.com, ca_file: /acme.pem, challenges: [tls-alpn-01]}}}
tracing: {otlp_endpoint: "http://127.0.0.1:4318"}
`)
	baseModel := FromConfig(base, testSalt)
	skip := map[string]bool{
		// Their own kinds, or compared by Diff itself, or no part of a reload.
		"Config.Listeners": true, "Config.Pools": true, "Config.Flat": true, "Config.Warnings": true,
		"Listener.Routes": true, "Pool.Backends": true,
	}
	checked := 0
	check := func(path string, mutate func(*config.Config)) {
		if skip[path] {
			return
		}
		checked++
		cfg := *base
		cfg.Listeners = slices.Clone(base.Listeners)
		cfg.Pools = slices.Clone(base.Pools)
		st, rl, pt := *base.Pools[0].Sticky, *base.Listeners[0].RateLimit, *base.Pools[0].TLS
		cfg.Pools[0].Sticky, cfg.Listeners[0].RateLimit, cfg.Pools[0].TLS = &st, &rl, &pt
		tr := *base.Tracing
		cfg.Tracing = &tr
		tl, ca := *base.Listeners[0].TLS, *base.Listeners[0].TLS.ClientAuth
		am := *base.Listeners[0].TLS.ACME
		am.Domains, am.Challenges = slices.Clone(am.Domains), slices.Clone(am.Challenges)
		tl.ClientAuth, tl.Certificates, tl.ACME = &ca, slices.Clone(tl.Certificates), &am
		cfg.Listeners[0].TLS = &tl
		mutate(&cfg)
		if reflect.DeepEqual(FromConfig(&cfg, testSalt), baseModel) {
			t.Errorf("changing %s does not change the model", path)
		}
	}
	root := func(c *config.Config) reflect.Value { return reflect.ValueOf(c).Elem() }
	walk("Config", root(base), root, func(path string, get getter) {
		check(path, func(c *config.Config) { bump(get(c)) })
	})
	// 6 top-level fields, 14 of a listener, 39 of a pool when this was written.
	if checked < 59 {
		t.Errorf("checked %d fields, want at least 59: the walk misses some", checked)
	}
}

// getter finds one field in a Config.
type getter func(*config.Config) reflect.Value

// walk calls leaf for every leaf field below v (a struct), with a getter
// that finds the same field in another Config. The first listener and pool
// stand for all.
func walk(path string, v reflect.Value, get getter, leaf func(string, getter)) {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		p := path + "." + f.Name
		fget := func(c *config.Config) reflect.Value { return get(c).Field(i) }
		fv := v.Field(i)
		switch {
		case f.Name == "Listeners" || f.Name == "Pools":
			leaf(p, fget) // skipped
			walk(strings.TrimSuffix(f.Name, "s"), fv.Index(0), func(c *config.Config) reflect.Value { return fget(c).Index(0) }, leaf)
		case fv.Kind() == reflect.Struct && f.Type != reflect.TypeFor[config.HashKey]():
			walk(p, fv, fget, leaf)
		case fv.Kind() == reflect.Pointer:
			walk(p, fv.Elem(), func(c *config.Config) reflect.Value { return fget(c).Elem() }, leaf)
		default:
			leaf(p, fget)
		}
	}
}

// bump changes a leaf value to another valid-looking value of its type.
func bump(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Slice:
		v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, v.Len()+1), reflect.Zero(v.Type().Elem())))
		if v.Type().Elem() == reflect.TypeFor[config.StatusRange]() {
			v.Index(0).Set(reflect.ValueOf(config.StatusRange{Lo: 200, Hi: 200}))
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("X-Added"), reflect.ValueOf("1"))
		v.Set(m)
	case reflect.Struct:
		// HashKey: another kind.
		v.Field(0).SetInt(v.Field(0).Int() + 1)
	default:
		panic("bump: unhandled kind " + v.Kind().String())
	}
}
