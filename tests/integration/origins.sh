# Real web servers as hardened origins, for scripts that source lib.sh first.
# Everything lives under $WORK; nothing touches the system's Caddy or nginx
# (no systemd, no /etc, no /var/lib).

CADDY_PORT=$((PORT_BASE + 8))
NGINX_PIN_PORT=$((PORT_BASE + 9))

# tunnel_id_of TOKEN: the tunnel id inside a token (base64url JSON).
tunnel_id_of() {
    python3 -c 'import base64, json, sys
t = sys.argv[1]
print(json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))["tunnel_id"])' "$1"
}

# start_caddy CERT KEY PULL_CA: Caddy from Debian on 127.0.0.1:$CADDY_PORT,
# configured the way the README tells people to: the origin certificate with
# `tls CERT KEY`, and authenticated origin pulls with client_auth
# require_and_verify against PULL_CA. It answers
#   caddy ok <client subject> serial=<client serial> uris=<client URI SANs>
# so a test sees which certificate was presented. /fresh also sends
# "Connection: close", so every request there is a new TLS handshake (and a
# fresh look at the client certificate).
# Caddy enforces Host == SNI when client_auth is on (strict SNI-Host, 421
# otherwise): through a tunnel that means httpHostHeader = originServerName.
start_caddy() {
    local cert=$1 key=$2 pull_ca=$3 dir=$WORK/caddy
    mkdir -p "$dir/data" "$dir/config" "$dir/storage"
    cat > "$dir/Caddyfile" <<CADDY
{
	admin off
	auto_https off
	storage file_system $dir/storage
	servers {
		protocols h1 h2
	}
}
https://:$CADDY_PORT {
	bind 127.0.0.1
	tls $cert $key {
		client_auth {
			mode require_and_verify
			trusted_ca_cert_file $pull_ca
		}
	}
	header /fresh Connection close
	respond "caddy ok {http.request.tls.client.subject} serial={http.request.tls.client.serial} uris={http.request.tls.client.san.uris}"
}
CADDY
    HOME=$dir XDG_DATA_HOME=$dir/data XDG_CONFIG_HOME=$dir/config \
        caddy run --adapter caddyfile --config "$dir/Caddyfile" >> "$WORK/caddy.log" 2>&1 &
    CADDY_PID=$!; PIDS+=($CADDY_PID)
    wait_port 127.0.0.1 $CADDY_PORT 15 || { tail -n 5 "$WORK/caddy.log" >&2; return 1; }
}

# start_nginx_pinned CERT KEY PULL_CA TUNNEL_ID: nginx on
# 127.0.0.1:$NGINX_PIN_PORT that requires a client certificate from PULL_CA
# (400 without one) and serves only the tunnel whose certificate has
# CN=TUNNEL_ID (403 "not the pinned tunnel" for any other tunnel).
start_nginx_pinned() {
    local cert=$1 key=$2 pull_ca=$3 id=$4 dir=$WORK/nginx-pin
    mkdir -p "$dir/tmp"
    cat > "$dir/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    map \$ssl_client_s_dn \$pinned_tunnel {
        default 0;
        "~(^|,)CN=$id(,|\$)" 1;
    }
    server {
        listen 127.0.0.1:$NGINX_PIN_PORT ssl;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_verify_client on;
        ssl_client_certificate $pull_ca;
        default_type text/plain;
        location / {
            if (\$pinned_tunnel = 0) { return 403 "not the pinned tunnel: \$ssl_client_s_dn\n"; }
            return 200 "nginx ok \$ssl_client_s_dn\n";
        }
    }
}
NGX
    nginx -c "$dir/nginx.conf" -e "$dir/error.log" >> "$WORK/nginx-pin.log" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 $NGINX_PIN_PORT || { tail -n 5 "$dir/error.log" >&2; return 1; }
}

# cert_field PEM FIELD: enddate|startdate as epoch seconds, or the
# public key's SHA-256 (pubkey).
cert_field() {
    case $2 in
    enddate | startdate)
        date -d "$(openssl x509 -in "$1" -noout -"$2" | cut -d= -f2)" +%s ;;
    pubkey)
        openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64 ;;
    esac
}
