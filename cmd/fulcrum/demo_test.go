package main

import "testing"

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "fulcrum demo"},
		{[]string{"-admin", "127.0.0.1:9191"}, "fulcrum demo -admin 127.0.0.1:9191"},
		{[]string{"-admin", ""}, "fulcrum demo -admin ''"},
		{[]string{"-listen=[::1]:8000", "-backends", "http://a:1,http://b:2"}, "fulcrum demo '-listen=[::1]:8000' -backends http://a:1,http://b:2"},
		{[]string{"it's"}, `fulcrum demo 'it'\''s'`},
	} {
		if got := commandLine("fulcrum demo", tc.args); got != tc.want {
			t.Errorf("commandLine(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
