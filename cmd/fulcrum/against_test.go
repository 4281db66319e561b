package main

import "testing"

func TestAdminURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:9090", "http://127.0.0.1:9090"},
		{"http://127.0.0.1:9090/", "http://127.0.0.1:9090"},
		{"https://lb.example.com/fulcrum/", "https://lb.example.com/fulcrum"},
		{"127.0.0.1:9090", ""},
		{"ftp://127.0.0.1:9090", ""},
		{"http://", ""},
		{"http://127.0.0.1:9090/?x=1", ""},
		{"http://127.0.0.1:9090/#top", ""},
		{"http://user:pw@127.0.0.1:9090", ""},
	} {
		got, err := adminURL(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("adminURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
