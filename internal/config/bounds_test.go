package config

import "testing"

// TestRetryBufferBound: retry_buffer is buffered per request in flight, so it
// has an upper bound of 16 MiB; the problem names the key and the bound.
func TestRetryBufferBound(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{`"16MiB"`, `16777216`, `"0"`, `"1MiB"`} {
		c := mustParse(t, `{"backends": ["http://a"], "retry_buffer": `+ok+`}`, "json", nil)
		if c.Pools[0].RetryBuffer > 16<<20 {
			t.Errorf("retry_buffer %s: got %d", ok, c.Pools[0].RetryBuffer)
		}
	}
	for _, bad := range []string{`16777217`, `"17MiB"`, `"1GiB"`} {
		_, err := Parse([]byte(`{"backends": ["http://a"], "retry_buffer": `+bad+`}`), "json", nil)
		assertProblem(t, err, "retry_buffer", "must be at most 16MiB (16777216 bytes), got ")
	}
}
