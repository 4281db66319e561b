package config

import "testing"

func TestAccessLogFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc, want string
	}{
		{`{"backends": ["http://a"]}`, "text"},
		{`{"backends": ["http://a"], "log_format": "json"}`, "json"},
		{`{"backends": ["http://a"], "log_format": "json", "access_log_format": "text"}`, "text"},
		{`{"backends": ["http://a"], "access_log_format": "json"}`, "json"},
		{`{"backends": ["http://a"], "access_log_format": "combined"}`, "combined"},
	} {
		cfg := mustParse(t, tc.doc, "json", nil)
		if cfg.AccessLogFormat != tc.want {
			t.Errorf("%s: access_log_format %q, want %q", tc.doc, cfg.AccessLogFormat, tc.want)
		}
	}
	for _, tc := range []struct{ doc, msg string }{
		{`{"backends": ["http://a"], "access_log_format": "apache"}`, `must be one of "json", "text", "combined"; got "apache"`},
		{`{"backends": ["http://a"], "access_log_format": "JSON"}`, `got "JSON"`},
		{`{"backends": ["http://a"], "access_log_format": 1}`, "must be a string"},
	} {
		_, err := Parse([]byte(tc.doc), "json", nil)
		assertProblem(t, err, "access_log_format", tc.msg)
	}
	// In the full form it is a process-wide key, like access_log.
	_, err := Parse([]byte(`{"pools": {"p": {"backends": ["http://a"]}},
	  "listeners": [{"name": "l", "listen_addr": ":1", "routes": [{"pool": "p"}], "access_log_format": "json"}]}`), "json", nil)
	assertProblem(t, err, "listeners[0].access_log_format", "unknown key")
}

func TestRequestIDKey(t *testing.T) {
	t.Parallel()
	if cfg := mustParse(t, `{"backends": ["http://a"]}`, "json", nil); !cfg.Listeners[0].RequestID {
		t.Error("request_id defaults to false, want true")
	}
	if cfg := mustParse(t, `{"backends": ["http://a"], "request_id": false}`, "json", nil); cfg.Listeners[0].RequestID {
		t.Error("request_id: false ignored")
	}
	// Full form: per listener, with the top level as the default.
	cfg := mustParse(t, `{"request_id": false, "pools": {"p": {"backends": ["http://a"]}},
	  "listeners": [{"name": "a", "listen_addr": ":1", "routes": [{"pool": "p"}]},
	                {"name": "b", "listen_addr": ":2", "routes": [{"pool": "p"}], "request_id": true}]}`, "json", nil)
	if cfg.Listeners[0].RequestID || !cfg.Listeners[1].RequestID {
		t.Errorf("request_id per listener: a=%v b=%v, want false, true", cfg.Listeners[0].RequestID, cfg.Listeners[1].RequestID)
	}
	_, err := Parse([]byte(`{"backends": ["http://a"], "request_id": "yes"}`), "json", nil)
	assertProblem(t, err, "request_id", "must be true or false")
	_, err = Parse([]byte(`{"pools": {"p": {"backends": ["http://a"]}},
	  "listeners": [{"name": "a", "listen_addr": ":1", "routes": [{"pool": "p"}], "request_id": 1}]}`), "json", nil)
	assertProblem(t, err, "listeners[0].request_id", "must be true or false")
}
