package config

import (
	"path/filepath"
	"testing"
)

// TestEmptyFile: a file with nothing in it says so, in both formats, as the
// one problem of the document, whatever flags are given.
func TestEmptyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"a.json": "", "b.json": " \n\t\r\n", "c.json": "\xef\xbb\xbf\n",
		"d.yaml": "", "e.yaml": "# only a comment\n\n", "f.yml": "---\n",
	} {
		path := filepath.Join(dir, name)
		writeFile(t, path, data)
		for _, ov := range []*Overrides{nil, {Backends: ptr("http://a")}} {
			_, err := Load(path, ov)
			if err == nil || err.Error() != "config: empty configuration file" {
				t.Errorf("%s %q (overrides %v): %v, want config: empty configuration file", name, data, ov, err)
			}
		}
	}
}
