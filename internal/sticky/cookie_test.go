package sticky

import (
	"fmt"
	"testing"
)

func TestDecodeCookie(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want uint64
		ok   bool
	}{
		{"zero", "0000000000000000", 0, true},
		{"max", "ffffffffffffffff", ^uint64(0), true},
		{"mixed digits", "0123456789abcdef", 0x0123456789abcdef, true},
		{"empty", "", 0, false},
		{"15 digits", "0123456789abcde", 0, false},
		{"17 digits", "0123456789abcdef0", 0, false},
		{"uppercase", "0123456789ABCDEF", 0, false},
		{"non-hex letter", "0123456789abcdeg", 0, false},
		{"space inside", "01234567 9abcdef", 0, false},
		{"quoted", `"0123456789abcd"`, 0, false},
		{"0x prefix", "0x0123456789abcd", 0, false},
		{"utf-8", "0123456789abcdé", 0, false},
		{"garbage", "!!!!!!!!!!!!!!!!", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := DecodeCookie([]byte(tc.in))
			if ok != tc.ok || got != tc.want {
				t.Fatalf("DecodeCookie(%q) = %#x, %v; want %#x, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := DecodeCookie(nil); ok {
		t.Fatal("nil decoded")
	}
	// AppendCookie and DecodeCookie are inverses.
	for _, v := range []uint64{0, 1, 0xf, 0x10, 1 << 63, ^uint64(0), 0x9e3779b97f4a7c15} {
		enc := AppendCookie([]byte("x="), v)[2:]
		if want := fmt.Sprintf("%016x", v); string(enc) != want {
			t.Fatalf("AppendCookie(%#x) = %q, want %q", v, enc, want)
		}
		if got, ok := DecodeCookie(enc); !ok || got != v {
			t.Fatalf("round trip of %#x via %q = %#x, %v", v, enc, got, ok)
		}
	}
}

func TestSetCookieValue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		field string
		want  string // "<nil>" for no match
	}{
		{"JSESSIONID=abc", "abc"},
		{"JSESSIONID=abc; Path=/; HttpOnly", "abc"},
		{"JSESSIONID=abc;Path=/", "abc"},
		{"  JSESSIONID=abc  ; Secure", "abc"},
		{"JSESSIONID= abc ; Path=/", "abc"}, // as a browser stores it
		{"JSESSIONID=\t\"abc\"", "abc"},
		{"\tJSESSIONID=abc", "abc"},
		{`JSESSIONID="abc"; Path=/`, "abc"},
		{"JSESSIONID=a=b==; Path=/", "a=b=="},
		{"JSESSIONID=; Max-Age=0", ""},
		{"JSESSIONID", "<nil>"},
		{"JSESSIONID ", "<nil>"},
		{"JSESSIONIDX=abc", "<nil>"},
		{"XJSESSIONID=abc", "<nil>"},
		{"jsessionid=abc", "<nil>"}, // cookie names are case-sensitive
		{"OTHER=1; JSESSIONID=abc", "<nil>"},
		{"", "<nil>"},
	}
	for _, tc := range cases {
		got := SetCookieValue([]byte(tc.field), "JSESSIONID")
		s := string(got)
		if got == nil {
			s = "<nil>"
		}
		if s != tc.want {
			t.Errorf("SetCookieValue(%q) = %q, want %q", tc.field, s, tc.want)
		}
	}
}
