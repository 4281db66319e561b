package preview

import (
	"encoding/json"
	"testing"
)

// FuzzDecode: whatever an admin API answers, Decode returns a model or an
// error, and a model it accepts can be diffed against itself (no change)
// and against a real one without panicking. Re-encoding an accepted model
// and decoding it again gives an equal model.
func FuzzDecode(f *testing.F) {
	real := FromConfig(load(f, full), testSalt)
	js, _ := json.Marshal(real)
	f.Add(js)
	hash, _ := json.Marshal(FromConfig(load(f, `{"listen_addr": ":1", "strategy": "ip_hash", "sticky": {"type": "source_ip"}, "backends": ["http://a:1", {"url": "http://b:1", "weight": 7}]}`), testSalt))
	f.Add(hash)
	f.Add([]byte(`{"version":1,"salt":"x","pools":[{"name":"p","strategy":"ip_hash","backends":[{"key":"k","weight":1}]}]}`))
	f.Add([]byte(`{"version":1,"salt":"x","listeners":[{"name":"a","routes":[{"label":"r"},{"label":"r"}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		if cs, err := Diff(m, m); err != nil || len(cs) != 0 {
			t.Fatalf("Diff(m, m) = %v, %v", cs, err)
		}
		other := *real
		other.Salt = m.Salt
		for _, pair := range [][2]*Model{{m, &other}, {&other, m}} {
			cs, err := Diff(pair[0], pair[1])
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.Message == "" || c.Kind == "" {
					t.Fatalf("change without kind or message: %+v", c)
				}
			}
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded model does not decode: %v\n%s", err, again)
		}
	})
}
