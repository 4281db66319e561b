package sticky

import (
	"bytes"
	"fmt"
	"testing"
)

func FuzzDecodeCookie(f *testing.F) {
	f.Add([]byte("0123456789abcdef"))
	f.Add([]byte("0123456789ABCDEF"))
	f.Add([]byte("ffffffffffffffff"))
	f.Add([]byte("00000000000000000"))
	f.Add([]byte("\"0123456789abcde\""))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, v []byte) {
		id, ok := DecodeCookie(v)
		if !ok {
			if id != 0 {
				t.Fatalf("rejected %q but returned %x", v, id)
			}
			return
		}
		// Only the canonical form is accepted: it round-trips exactly.
		if enc := AppendCookie(nil, id); !bytes.Equal(enc, v) {
			t.Fatalf("accepted %q, which encodes back as %q", v, enc)
		}
		if enc := fmt.Sprintf("%016x", id); enc != string(v) {
			t.Fatalf("accepted %q, which formats as %q", v, enc)
		}
	})
}

func FuzzSetCookieValue(f *testing.F) {
	f.Add([]byte("JSESSIONID=abc; Path=/"), "JSESSIONID")
	f.Add([]byte(`  S="x y" ;Secure`), "S")
	f.Add([]byte("S"), "S")
	f.Add([]byte("=v"), "")
	f.Add([]byte(`S=" "`), "S")
	f.Fuzz(func(t *testing.T, field []byte, name string) {
		v := SetCookieValue(field, name)
		if v == nil {
			return
		}
		// The value is a part of the field after "name=", with no ';' and no
		// surrounding blanks.
		i := bytes.Index(field, []byte(name+"="))
		if i < 0 || len(bytes.TrimLeft(field[:i], " \t")) != 0 {
			t.Fatalf("SetCookieValue(%q, %q) = %q, but the field does not start with the name", field, name, v)
		}
		if !bytes.Contains(field[i+len(name)+1:], v) {
			t.Fatalf("SetCookieValue(%q, %q) = %q, not from the field", field, name, v)
		}
		if bytes.IndexByte(v, ';') >= 0 {
			t.Fatalf("SetCookieValue(%q, %q) = %q holds a ';'", field, name, v)
		}
		// Unquoted, it has no surrounding blanks (quotes may hold some).
		if q := field[i+len(name)+1:]; len(v) > 0 && !bytes.HasPrefix(bytes.TrimLeft(q, " \t"), []byte{'"'}) &&
			(v[len(v)-1] == ' ' || v[len(v)-1] == '\t' || v[0] == ' ' || v[0] == '\t') {
			t.Fatalf("SetCookieValue(%q, %q) = %q has a surrounding blank", field, name, v)
		}
	})
}
