package preview

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"fulcrum/internal/config"
)

// The settings maps hold every key a reload applies that has no change kind
// of its own, under its configuration key, as text. Secrets and header
// values (which may carry credentials) are fingerprints. TestSettingsCover
// fails when a field of config.Pool, config.Listener or config.Config is
// missing here.

func globalSettings(cfg *config.Config, salt string) map[string]string {
	s := map[string]string{
		"log_level":         strings.ToLower(cfg.LogLevel.String()),
		"access_log":        strconv.FormatBool(cfg.AccessLog),
		"access_log_format": cfg.AccessLogFormat,
		"shutdown_timeout":  cfg.ShutdownTimeout.String(),
		"admin_token":       fingerprint(salt, cfg.AdminToken),
		"tracing":           "off",
	}
	if t := cfg.Tracing; t != nil {
		s["tracing"] = "on"
		s["tracing.otlp_endpoint"] = t.OTLPEndpoint
		s["tracing.sample_ratio"] = strconv.FormatFloat(t.SampleRatio, 'g', -1, 64)
		s["tracing.service_name"] = t.ServiceName
	}
	return s
}

func listenerSettings(l *config.Listener) map[string]string {
	proxies := make([]string, len(l.TrustedProxies))
	for i, p := range l.TrustedProxies {
		proxies[i] = p.String()
	}
	lim := &l.Limits
	s := map[string]string{
		"trusted_proxies":     strings.Join(proxies, ","),
		"request_id":          strconv.FormatBool(l.RequestID),
		"read_header_timeout": lim.ReadHeaderTimeout.String(),
		"read_timeout":        lim.ReadTimeout.String(),
		"write_timeout":       lim.WriteTimeout.String(),
		"idle_timeout":        lim.IdleTimeout.String(),
		"max_header_bytes":    strconv.Itoa(lim.MaxHeaderBytes),
		"max_body_bytes":      strconv.FormatInt(lim.MaxBodyBytes, 10),
		"max_conns":           strconv.Itoa(lim.MaxConns),
		"max_conns_per_ip":    strconv.Itoa(lim.MaxConnsPerIP),
		"rate_limit":          "off",
	}
	if r := l.RateLimit; r != nil {
		s["rate_limit"] = "on"
		s["rate_limit.requests_per_second"] = strconv.FormatFloat(r.RequestsPerSecond, 'g', -1, 64)
		s["rate_limit.burst"] = strconv.Itoa(r.Burst)
		s["rate_limit.key"] = hashKeyString(r.Key)
	}
	s["tls"] = "off"
	if t := l.TLS; t != nil {
		s["tls"] = "on"
		files := make([]string, len(t.Certificates))
		for i, c := range t.Certificates {
			files[i] = c.CertFile + "+" + c.KeyFile
		}
		s["tls.certificates"] = strings.Join(files, ",")
		s["tls.min_version"] = t.MinVersion
		s["tls.strict_sni"] = strconv.FormatBool(t.StrictSNI)
		s["tls.client_auth"] = "off"
		if ca := t.ClientAuth; ca != nil {
			s["tls.client_auth"] = ca.Mode + " " + ca.CAFile
		}
		s["tls.acme"] = "off"
		if a := t.ACME; a != nil {
			s["tls.acme"] = "on"
			s["tls.acme.domains"] = strings.Join(a.Domains, ",")
			s["tls.acme.email"] = a.Email
			s["tls.acme.directory"] = a.Directory
			s["tls.acme.ca_file"] = a.CAFile
			s["tls.acme.storage_dir"] = a.StorageDir
			s["tls.acme.challenges"] = strings.Join(a.Challenges, ",")
		}
	}
	return s
}

func poolSettings(p *config.Pool, salt string) map[string]string {
	hc, pa := &p.HealthCheck, &p.Passive
	dur := time.Duration.String
	s := map[string]string{
		"health_check.type":                hc.Type,
		"health_check.path":                hc.Path,
		"health_check.interval":            dur(hc.Interval),
		"health_check.timeout":             dur(hc.Timeout),
		"health_check.expected_status":     statusString(hc.ExpectedStatus),
		"health_check.healthy_threshold":   strconv.Itoa(hc.HealthyThreshold),
		"health_check.unhealthy_threshold": strconv.Itoa(hc.UnhealthyThreshold),
		"health_check.host":                hc.Host,
		"health_check.headers":             fingerprint(salt, headerString(hc.Headers)),
		"health_check.service":             hc.Service,
		"passive.max_fails":                strconv.Itoa(pa.MaxFails),
		"passive.fail_window":              dur(pa.FailWindow),
		"passive.eject_for":                dur(pa.EjectFor),
		"passive.max_eject_for":            dur(pa.MaxEjectFor),
		"passive.fail_on_5xx":              strconv.FormatBool(pa.Consider5xx),
		"panic_threshold":                  strconv.Itoa(p.PanicThreshold),
		"retries":                          strconv.Itoa(p.Retries),
		"retry_buffer":                     strconv.FormatInt(p.RetryBuffer, 10),
		"connect_timeout":                  dur(p.ConnectTimeout),
		"response_header_timeout":          dur(p.ResponseHeaderTimeout),
		"idle_timeout":                     dur(p.IdleTimeout),
		"max_connections":                  strconv.Itoa(p.MaxConnections),
		"queue_timeout":                    dur(p.QueueTimeout),
		"slow_start":                       dur(p.SlowStart),
	}
	// TLS to backends: file names, no contents (a reload reads the files
	// again; a changed file with the same name is not shown).
	s["tls"] = "default"
	if t := p.TLS; t != nil {
		s["tls"] = "set"
		s["tls.ca_file"] = t.CAFile
		s["tls.server_name"] = t.ServerName
		s["tls.insecure_skip_verify"] = strconv.FormatBool(t.InsecureSkipVerify)
		s["tls.cert_file"] = t.CertFile
		s["tls.key_file"] = t.KeyFile
	}
	if st := p.Sticky; st != nil {
		s["sticky.ttl"] = dur(st.TTL)
		s["sticky.secure"] = st.Secure
		s["sticky.http_only"] = strconv.FormatBool(st.HTTPOnly)
		s["sticky.same_site"] = st.SameSite
		s["sticky.max_entries"] = strconv.Itoa(st.MaxEntries)
	}
	return s
}

// hashKeyString is a HashKey as written in the configuration.
func hashKeyString(k config.HashKey) string {
	switch k.Kind {
	case config.KindHeader:
		return "header:" + k.Name
	case config.KindCookie:
		return "cookie:" + k.Name
	case config.KindQuery:
		return "query:" + k.Name
	case config.KindPath:
		return "path"
	case config.KindClientIP:
		return "client_ip"
	}
	return ""
}

func statusString(rs []config.StatusRange) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = strconv.Itoa(r.Lo)
		if r.Hi != r.Lo {
			out[i] += "-" + strconv.Itoa(r.Hi)
		}
	}
	return strings.Join(out, ",")
}

// headerString is a canonical text of a header map (sorted by name).
func headerString(h map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fmt.Fprintf(&b, "%q:%q\n", k, h[k])
	}
	return b.String()
}
