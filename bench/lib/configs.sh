# bench/lib/configs.sh — sourced by bench/run.sh after the ports are picked:
# writes the configs of the backends and of the balancers into $TMP and checks them.


# ----- backends: one nginx instance, three ports, on the load-generator core
mkdir -p "$TMP/backend/www" "$TMP/backend/tmp"
head -c 16384 /dev/zero | tr '\0' 'x' >"$TMP/backend/www/16k"
chmod -R a+rX "$TMP/backend"
nginx_common_tmp() { # temp paths inside the instance's own dir
  local d=$1
  printf '    client_body_temp_path %s/tmp/client;\n    proxy_temp_path %s/tmp/proxy;\n    fastcgi_temp_path %s/tmp/fastcgi;\n    uwsgi_temp_path %s/tmp/uwsgi;\n    scgi_temp_path %s/tmp/scgi;\n' "$d" "$d" "$d" "$d" "$d"
}
cat >"$TMP/backend/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/backend/nginx.pid;
error_log $TMP/backend/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    default_type text/plain;
    sendfile on;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
$(nginx_common_tmp "$TMP/backend")
    server {
        listen 127.0.0.1:$B1 backlog=4096;
        listen 127.0.0.1:$B2 backlog=4096;
        listen 127.0.0.1:$B3 backlog=4096;
        root $TMP/backend/www;
        location = / { return 200 "ok"; }
        location = /16k { }
    }
}
EOF

# ----- reference balancers
mkdir -p "$TMP/nginx-lb/tmp" "$TMP/haproxy" "$TMP/fulcrum-run"
cat >"$TMP/nginx-lb/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx-lb/nginx.pid;
error_log $TMP/nginx-lb/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 30000; }
http {
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
$(nginx_common_tmp "$TMP/nginx-lb")
    upstream backends {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        server 127.0.0.1:$B3;
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:${LB_PORT[nginx]} backlog=4096;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF

cat >"$TMP/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $HAPROXY_MAXCONN

defaults
    mode http
    maxconn $HAPROXY_MAXCONN
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 300s
    timeout http-keep-alive 300s

frontend fe
    bind 127.0.0.1:${LB_PORT[haproxy]}
    default_backend be

backend be
    balance roundrobin
    http-reuse always
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
    server b3 127.0.0.1:$B3
EOF

cat >"$TMP/fulcrum-run/config.json" <<EOF
{"listen_addr": "127.0.0.1:${LB_PORT[fulcrum]}", "admin_addr": "", "strategy": "round_robin", "health_check_interval": "30s", "max_fail_count": 3, "access_log": false, "log_level": "warn", "backends": [{"url":"http://127.0.0.1:$B1"},{"url":"http://127.0.0.1:$B2"},{"url":"http://127.0.0.1:$B3"}]}
EOF

# Config checks, so that a typo shows up before any run.
nginx -t -q -p "$TMP/nginx-lb/" -c "$TMP/nginx-lb/nginx.conf" -e "$TMP/nginx-lb/error.log" >&2 || die "nginx balancer config invalid"
nginx -t -q -p "$TMP/backend/" -c "$TMP/backend/nginx.conf" -e "$TMP/backend/error.log" >&2 || die "nginx backend config invalid"
haproxy -c -q -f "$TMP/haproxy/haproxy.cfg" >&2 || die "haproxy config invalid"


# ----- HTTPS (W5, W6): one self-signed ECDSA P-256 certificate for bench.test,
# and for each balancer a second config that differs from the plain one only in
# its listener: TLS 1.3 only (so every handshake is a TLS 1.3 one whatever the
# client offers), ALPN http/1.1, otherwise each balancer's TLS defaults (its
# session tickets too; the W6 client never uses them).
mkdir -p "$TMP/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
  -keyout "$TMP/tls/bench.key" -out "$TMP/tls/bench.pem" >"$TMP/tls/openssl.log" 2>&1 ||
  { cat "$TMP/tls/openssl.log" >&2; die "openssl could not make the test certificate"; }
cat "$TMP/tls/bench.pem" "$TMP/tls/bench.key" >"$TMP/tls/bench-haproxy.pem" # HAProxy wants both in one file
chmod -R a+rX "$TMP/tls"

sed -e "s|^\( *\)listen 127.0.0.1:${LB_PORT[nginx]} backlog=4096;|\1listen 127.0.0.1:${LB_PORT[nginx]} ssl backlog=4096;\\
\1ssl_certificate $TMP/tls/bench.pem;\\
\1ssl_certificate_key $TMP/tls/bench.key;\\
\1ssl_protocols TLSv1.3;|" "$TMP/nginx-lb/nginx.conf" >"$TMP/nginx-lb/nginx-tls.conf"
grep -q 'ssl_protocols TLSv1.3' "$TMP/nginx-lb/nginx-tls.conf" || die "could not derive the nginx TLS config"

sed -e "s|^\( *bind 127.0.0.1:${LB_PORT[haproxy]}\)\$|\1 ssl crt $TMP/tls/bench-haproxy.pem ssl-min-ver TLSv1.3 alpn http/1.1|" \
  "$TMP/haproxy/haproxy.cfg" >"$TMP/haproxy/haproxy-tls.cfg"
grep -q 'ssl-min-ver TLSv1.3' "$TMP/haproxy/haproxy-tls.cfg" || die "could not derive the HAProxy TLS config"

cat >"$TMP/fulcrum-run/config-tls.json" <<EOF
{"admin_addr": "", "access_log": false, "log_level": "warn", "health_check_interval": "30s", "max_fail_count": 3,
 "pools": {"default": {"strategy": "round_robin", "backends": [{"url":"http://127.0.0.1:$B1"},{"url":"http://127.0.0.1:$B2"},{"url":"http://127.0.0.1:$B3"}]}},
 "listeners": [{"name": "default", "listen_addr": "127.0.0.1:${LB_PORT[fulcrum]}",
   "tls": {"certificates": [{"cert_file": "$TMP/tls/bench.pem", "key_file": "$TMP/tls/bench.key"}], "min_version": "1.3"},
   "routes": [{"pool": "default"}]}]}
EOF

nginx -t -q -p "$TMP/nginx-lb/" -c "$TMP/nginx-lb/nginx-tls.conf" -e "$TMP/nginx-lb/error.log" >&2 || die "nginx TLS balancer config invalid"
haproxy -c -q -f "$TMP/haproxy/haproxy-tls.cfg" >&2 || die "haproxy TLS config invalid"
