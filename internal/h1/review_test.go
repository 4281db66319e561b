package h1

import "testing"

func TestConnectRefusedWhateverTheTarget(t *testing.T) {
	for _, raw := range []string{"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"} {
		var r Request
		r.Reset()
		if err := ParseRequest([]byte(raw), 4096, &r); err != ErrConnectNotAllowed {
			t.Errorf("%q: err = %v, want ErrConnectNotAllowed", raw, err)
		}
	}
}

func TestReasonPhraseControlCharsRefused(t *testing.T) {
	var r Response
	r.Reset()
	if err := ParseResponse([]byte("HTTP/1.1 200 OK\rSet-Cookie: x=1\r\n\r\n"), 4096, &r); err != ErrBadStatusLine {
		t.Fatalf("bare CR in reason: err = %v, want ErrBadStatusLine", err)
	}
	r.Reset()
	if err := ParseResponse([]byte("HTTP/1.1 200 Fine\tOK\r\n\r\n"), 4096, &r); err != nil {
		t.Fatalf("HTAB in reason: %v", err)
	}
}

func TestAbsoluteFormAuthorityChecked(t *testing.T) {
	for raw, want := range map[string]error{
		"GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n":   nil,
		"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n":                    ErrBadTarget,
		"GET http://user@a.example/x HTTP/1.1\r\nHost: a\r\n\r\n":      ErrBadTarget,
		"GET http://a.example?q=1 HTTP/1.1\r\nHost: a.example\r\n\r\n": nil,
	} {
		var r Request
		r.Reset()
		if err := ParseRequest([]byte(raw), 4096, &r); err != want {
			t.Errorf("%q: err = %v, want %v", raw, err, want)
		}
	}
}
