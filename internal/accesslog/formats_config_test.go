package accesslog_test

import (
	"testing"

	"fulcrum/internal/accesslog"
	"fulcrum/internal/config"
)

// Every access_log_format the config accepts is one this package writes
// (proxy.SettingsOf relies on it), each a different format.
func TestConfigFormatsParse(t *testing.T) {
	seen := map[accesslog.Format]string{}
	for _, name := range config.AccessLogFormats {
		f, err := accesslog.ParseFormat(name)
		if err != nil {
			t.Errorf("config accepts %q, accesslog does not: %v", name, err)
			continue
		}
		if other, dup := seen[f]; dup {
			t.Errorf("%q and %q are the same format", name, other)
		}
		seen[f] = name
	}
}
