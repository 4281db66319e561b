package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/preview"
)

// tokenEnv names the environment variable validate -against takes the admin
// token from when -token-file is not given.
const tokenEnv = "FULCRUM_ADMIN_TOKEN"

// maxModelBytes bounds the answer of GET /admin/config (10,000 backends
// make about 1 MB).
const maxModelBytes = 64 << 20

// againstFlags are the flags of fulcrum validate that preview a reload of a
// running fulcrum.
type againstFlags struct {
	url       string
	tokenFile string
}

func (a *againstFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "against", "", "admin URL of a running fulcrum: print what a reload to the file would change")
	fs.StringVar(&a.tokenFile, "token-file", "", "file holding the admin token (default: $"+tokenEnv+")")
}

// check reports a usage problem of the flags (exit status 2) before the
// file is read.
func (a *againstFlags) check(stderr io.Writer) bool {
	switch {
	case a.url == "" && a.tokenFile != "":
		fmt.Fprintln(stderr, "fulcrum validate: -token-file goes with -against URL")
		return false
	case a.url != "":
		if _, err := adminURL(a.url); err != nil {
			fmt.Fprintf(stderr, "fulcrum validate: -against: %v\n", err)
			return false
		}
	}
	return true
}

// preview prints what a reload of the fulcrum whose admin API is at a.url
// would change if its file were cfg (loaded from path and valid): one line
// per change on stdout, or "no changes". The running configuration comes
// from GET /admin/config without its secrets; the diff is computed here,
// with the salt the server sent, so neither the file nor its secrets leave
// this process. It returns the exit status: 0, or 1 when the server cannot
// be asked or would refuse the reload.
func (a *againstFlags) preview(cfg *config.Config, path string, stdout, stderr io.Writer) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "fulcrum validate: "+format+"\n", args...)
		return 1
	}
	base, _ := adminURL(a.url) // checked by check
	token, from, err := a.token()
	if err != nil {
		return fail("%v", err)
	}
	running, err := fetchModel(base, token, from)
	if err != nil {
		return fail("%v", err)
	}
	next := preview.FromConfig(cfg, running.Salt)
	changes, err := preview.Diff(running, next)
	if err != nil {
		return fail("%v", err) // unreachable: the salt is the server's
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, c.Message)
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no changes")
	}
	if err := preview.Refused(running, next); err != nil {
		return fail("the fulcrum at %s would refuse a reload to %s: %v", base, path, err)
	}
	return 0
}

// adminURL checks the -against value: an http or https URL with a host, no
// query or fragment. A path is kept as a prefix (an admin API behind a
// proxy).
func adminURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("want the admin API's URL, like http://127.0.0.1:9090, got %q", raw)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// token returns the admin token (from -token-file, else the environment)
// and where it came from, for messages.
func (a *againstFlags) token() (token, from string, err error) {
	if a.tokenFile == "" {
		return os.Getenv(tokenEnv), "$" + tokenEnv, nil
	}
	b, err := os.ReadFile(a.tokenFile)
	if err != nil {
		return "", "", fmt.Errorf("-token-file: %w", err)
	}
	token = strings.TrimSpace(string(b))
	if token == "" {
		return "", "", fmt.Errorf("-token-file: %s is empty", a.tokenFile)
	}
	return token, "-token-file " + a.tokenFile, nil
}

// fetchModel asks the admin API at base for its running configuration.
func fetchModel(base, token, from string) (*preview.Model, error) {
	req, err := http.NewRequest("GET", base+"/admin/config", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the admin API at %s: %v", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxModelBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s/admin/config: %v", base, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && token == "":
		return nil, fmt.Errorf("the admin API at %s needs a token: pass -token-file or set %s", base, tokenEnv)
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("the admin API at %s needs a token and refused the one from %s", base, from)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("the admin API at %s has no /admin/config (a fulcrum too old to preview a reload?)", base)
	case resp.StatusCode != http.StatusOK:
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return nil, fmt.Errorf("the admin API at %s answered %s: %.200s", base, resp.Status, line)
	case len(body) > maxModelBytes:
		return nil, fmt.Errorf("the answer of %s/admin/config is over %d MiB", base, maxModelBytes>>20)
	}
	m, err := preview.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("the answer of %s/admin/config: %v", base, err)
	}
	return m, nil
}
