package config

import (
	"fulcrum/internal/route"
)

// buildRoute reads one route object. What the route package checks (one
// action, valid paths, regexes, statuses, header names) is left to
// route.Compile; this reads the shape: keys, types, lists and maps.
func buildRoute(c *checker, path string, v *value) route.Spec {
	o := c.object(path, v)
	var s route.Spec
	s.Name, _ = o.str("name", "")
	if mv := o.take("match"); mv != nil {
		s.Match = buildMatch(c, o.at("match"), mv)
	}
	s.Pool, _ = o.str("pool", "")
	if o.present("pool") && s.Pool == "" {
		c.add(o.at("pool"), "must not be empty")
	}
	if sv := o.take("split"); sv != nil {
		sp := o.at("split")
		if sv.kind != kindList {
			c.typeProblem(sp, "a list of {pool, weight}", sv)
		} else {
			for i, item := range sv.items {
				to := c.object(indexPath(sp, i), item)
				var t route.SplitTarget
				t.Pool, _ = to.str("pool", "")
				if !to.present("pool") {
					c.add(to.at("pool"), "required")
				}
				t.Weight, _ = to.integer("weight", 1, 0, 1_000_000)
				to.done()
				s.Split = append(s.Split, t)
			}
			if len(sv.items) == 0 {
				c.add(sp, "must have at least one pool")
			}
		}
	}
	if rv := o.take("redirect"); rv != nil {
		ro := c.object(o.at("redirect"), rv)
		d := &route.Redirect{}
		d.Scheme, _ = ro.str("scheme", "")
		d.Host, _ = ro.str("host", "")
		d.Port, _ = ro.integer("port", 0, 1, 65535)
		d.Path, _ = ro.str("path", "")
		d.Status, _ = ro.integer("status", 301, 0, 999)
		ro.done()
		s.Redirect = d
	}
	if rv := o.take("respond"); rv != nil {
		ro := c.object(o.at("respond"), rv)
		d := &route.Respond{}
		d.Status, _ = ro.integer("status", 200, 100, 999)
		d.Body, _ = ro.str("body", "")
		d.ContentType, _ = ro.str("content_type", route.DefaultContentType)
		ro.done()
		s.Respond = d
	}
	s.StripPrefix, _ = o.str("strip_prefix", "")
	s.AddPrefix, _ = o.str("add_prefix", "")
	s.HostRewrite, _ = o.str("host_rewrite", "")
	s.RequestHeaders = buildHeaderOps(c, o.at("request_headers"), o.take("request_headers"))
	s.ResponseHeaders = buildHeaderOps(c, o.at("response_headers"), o.take("response_headers"))
	o.done()
	return s
}

func buildMatch(c *checker, path string, v *value) route.Match {
	o := c.object(path, v)
	var m route.Match
	m.Host = strList(c, o.at("host"), o.take("host"))
	m.PathPrefix, _ = o.str("path_prefix", "")
	m.Path, _ = o.str("path", "")
	m.PathRegex, _ = o.str("path_regex", "")
	m.Method = strList(c, o.at("method"), o.take("method"))
	m.Headers = strMap(c, o.at("headers"), o.take("headers"))
	m.Query = strMap(c, o.at("query"), o.take("query"))
	m.Cookies = strMap(c, o.at("cookies"), o.take("cookies"))
	for i, s := range strList(c, o.at("client_ip"), o.take("client_ip")) {
		p, err := parseProxy(s)
		if err != nil {
			c.add(indexPath(o.at("client_ip"), i), "%v", err)
			continue
		}
		m.ClientIP = append(m.ClientIP, p)
	}
	o.done()
	return m
}

// strList reads a list of strings; a single string is a list of one.
func strList(c *checker, path string, v *value) []string {
	if v == nil {
		return nil
	}
	if v.kind == kindString {
		return []string{v.s}
	}
	if v.kind != kindList {
		c.typeProblem(path, "a string or a list of strings", v)
		return nil
	}
	if len(v.items) == 0 {
		c.add(path, "must not be an empty list (leave the key out to match any)")
	}
	out := make([]string, 0, len(v.items))
	for i, item := range v.items {
		if s, ok := c.str(indexPath(path, i), item); ok {
			out = append(out, s)
		}
	}
	return out
}

// strMap reads an object of string values.
func strMap(c *checker, path string, v *value) map[string]string {
	if v == nil {
		return nil
	}
	if v.kind != kindObject {
		c.typeProblem(path, "an object of name: value", v)
		return nil
	}
	out := make(map[string]string, len(v.keys))
	for i, k := range v.keys {
		if v.vals[i].kind == kindNumber { // headers: {X-Canary: 1}
			out[k] = v.vals[i].s
		} else if s, ok := c.str(childPath(path, k), v.vals[i]); ok {
			out[k] = s
		}
	}
	return out
}

func buildHeaderOps(c *checker, path string, v *value) route.HeaderOps {
	var h route.HeaderOps
	if v == nil {
		return h
	}
	o := c.object(path, v)
	h.Set = strMap(c, o.at("set"), o.take("set"))
	h.Add = strMap(c, o.at("add"), o.take("add"))
	h.Remove = strList(c, o.at("remove"), o.take("remove"))
	o.done()
	return h
}
