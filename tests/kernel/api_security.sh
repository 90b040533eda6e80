#!/usr/bin/env bash
# ferryd's connection to the API server, seen from outside (issue 11,
# Security; F11):
# - an http:// server is refused at start with an error saying that the
#   token would go in clear, before any request leaves; with
#   --allow-insecure-http ferryd starts, warns, and its requests (token in
#   clear) reach a plain HTTP listener;
# - insecure-skip-tls-verify works against the stand-in and is warned about
#   once, however many requests follow;
# - a rotated CA: the CA file and the server's certificate are replaced and
#   the stand-in restarted with them; ferryd's next connections trust the
#   new CA (curl would keep the old one for 24 h) and changes keep reaching
#   the maps;
# - only the kubeconfig's CA is trusted, not also the CAs of the system's
#   folder (/etc/ssl/certs), which curl adds by default.
# shellcheck disable=SC2317,SC2119 # functions run through wait_until; no script arguments
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apilib.sh
source "$(dirname "$0")/../apilib.sh"

NS=security
topology_up
api_setup
api_start --bookmark-interval 0.5 || finish
TOKEN=$(cat "$API_TOKEN_FILE")
HTTP='[{"name":"http","port":80}]'
SL='[{"name":"http","port":8080}]'
put "$(node_json node-a)"
put "$(svc_json $NS one 10.96.64.1 "$HTTP")"
put "$(slice_json $NS one-1 one "$SL" "$(eps 198.18.64.1)")"

# kubeconfig FILE SERVER CLUSTER-EXTRA: a kubeconfig in $API_DIR (the token
# file next to it) for SERVER, with CLUSTER-EXTRA as more cluster fields.
kubeconfig() {
	cat >"$1" <<YAML
apiVersion: v1
kind: Config
current-context: c
clusters:
- name: c
  cluster: {server: '$2'${3:-}}
users:
- name: u
  user: {tokenFile: token}
contexts:
- name: c
  context: {cluster: c, user: u}
YAML
}

# A plain HTTP listener: each request's head goes to $PLAIN_LOG, answered
# 503 (Retry-After: 1). At most 50 connections, 120 s.
PLAIN_LOG=$WORK/plain.log
plain_start() {
	local ready=$WORK/plain.port
	"$PYTHON" -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
s.settimeout(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
end, n = time.time() + 120, 0
while time.time() < end and n < 50:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    n += 1
    c.settimeout(5)
    head = b""
    try:
        while b"\r\n\r\n" not in head and len(head) < 65536:
            b = c.recv(4096)
            if not b:
                break
            head += b
        c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    c.close()
    with open(sys.argv[2], "ab") as f:
        f.write(head + b"----\n")
' "$ready" "$PLAIN_LOG" 2>>"$LOGDIR/plain.log" &
	PIDS+=($!)
	: >"$PLAIN_LOG"
	wait_file "$ready" || { not_ok "$GROUP plain listener starts" "no port"; finish; }
	PLAIN_PORT=$(cat "$ready")
}

# ferryd_kc_spawn KUBECONFIG [ARGS...]
ferryd_kc_spawn() { ferryd_spawn k8s --kubeconfig "$@"; }

# --- http:// ---------------------------------------------------------------
plain_start
HTTP_KC=$API_DIR/http.kubeconfig
kubeconfig "$HTTP_KC" "http://127.0.0.1:$PLAIN_PORT"
log_mark=$(wc -l <"$FERRYD_LOG")
ferryd_kc_spawn "$HTTP_KC"
expect_refused "http:// server: ferryd refuses to start" 15
expect "http:// server: the error says the token would be sent in clear and names --allow-insecure-http" \
	"$(tail -n +"$((log_mark + 1))" "$FERRYD_LOG" | grep -c "level=error component=ferryd msg=\"kubeconfig $HTTP_KC, context c: server http://127.0.0.1:$PLAIN_PORT is plain HTTP: the bearer token would be sent in clear and the server is not authenticated; use https, or --allow-insecure-http to accept that\"")" 1
expect "http:// server: not one request was sent" "$(grep -c -- '^----$' "$PLAIN_LOG")" 0

log_mark=$(wc -l <"$FERRYD_LOG")
ferryd_kc_spawn "$HTTP_KC" --allow-insecure-http
three_requests() { [ "$(grep -c -- '^----$' "$PLAIN_LOG")" -ge 3 ]; }
if wait_until 15 three_requests; then
	ok "--allow-insecure-http: ferryd starts and its requests reach the http:// server"
else
	not_ok "--allow-insecure-http: ferryd starts and its requests reach the http:// server" \
		"$(grep -c -- '^----$' "$PLAIN_LOG") requests; log: $(tail -n 2 "$FERRYD_LOG" | tr '\n' ' ')"
fi
expect_alive "--allow-insecure-http"
expect "--allow-insecure-http: the token went out in clear, as the flag accepts" \
	"$(grep -q "^Authorization: Bearer $TOKEN" "$PLAIN_LOG" && echo yes || echo no)" yes
expect "--allow-insecure-http: one warning that the token goes out in clear, over $(grep -c -- '^----$' "$PLAIN_LOG") requests" \
	"$(tail -n +"$((log_mark + 1))" "$FERRYD_LOG" | grep -c 'level=warn component=kube msg=".*is plain HTTP (--allow-insecure-http): the bearer token goes out in clear')" 1
ferryd_reset

# --- insecure-skip-tls-verify -------------------------------------------------
INSECURE_KC=$API_DIR/insecure.kubeconfig
kubeconfig "$INSECURE_KC" "https://127.0.0.1:$API_PORT" ", insecure-skip-tls-verify: true"
log_mark=$(wc -l <"$FERRYD_LOG")
mark=$(api_mark)
if ferryd_kc_spawn "$INSECURE_KC" && wait_generation 1 15; then
	ok "insecure-skip-tls-verify: ferryd programs the first list"
else
	not_ok "insecure-skip-tls-verify: ferryd programs the first list" "generation $(generation)"
fi
put "$(slice_json $NS one-1 one "$SL" "$(eps 198.18.64.1 198.18.64.2)")"
expect_maps_equal "insecure-skip-tls-verify: a change reaches the maps" 10
n_req=$(req_py "$mark" "len(r)")
expect "insecure-skip-tls-verify: warned once, over $n_req requests" \
	"$(tail -n +"$((log_mark + 1))" "$FERRYD_LOG" | grep -c "level=warn component=kube msg=\"kubeconfig $INSECURE_KC, context c: insecure-skip-tls-verify: the API server's certificate is not verified")" 1
[ "$n_req" -ge 6 ] || not_ok "insecure-skip-tls-verify: at least 6 requests (lists and watches)" "$n_req"
ferryd_reset

# --- a rotated CA -------------------------------------------------------------
if ferryd_k8s_start; then
	ok "CA rotation: ferryd programs the first list with the first CA"
else
	finish
fi
expect_maps_equal "CA rotation: the maps equal the API before the rotation" 10
if ! bash "$MKCERTS" "$API_DIR/pki-new"; then
	not_ok "$GROUP setup" "mkcerts.sh for the new CA failed"
	finish
fi
expect "CA rotation: the old CA does not verify the new server certificate" \
	"$(openssl verify -CAfile "$API_CA" "$API_DIR/pki-new/server.crt" >/dev/null 2>&1 && echo yes || echo no)" no
api_stop
for f in ca.crt server.crt server.key; do
	cp "$API_DIR/pki-new/$f" "$API_DIR/pki/$f.tmp" && mv -f "$API_DIR/pki/$f.tmp" "$API_DIR/pki/$f"
done
api_start --bookmark-interval 0.5 || finish
mark=0 # the restarted server's request log starts over
put "$(svc_json $NS two 10.96.64.2 "$HTTP")"
put "$(slice_json $NS two-1 two "$SL" "$(eps 198.18.64.3)")"
put "$(slice_json $NS one-1 one "$SL" "$(eps 198.18.64.2)")"
expect_maps_equal "CA rotation: after the API server restarts with a certificate of the new CA, changes reach the maps" 20
got_200() { [ "$(req_py "$mark" "bool(first_ok())")" = True ]; }
if wait_until 5 got_200; then
	ok "CA rotation: ferryd's requests to the restarted server succeed (the new CA is trusted)"
else
	not_ok "CA rotation: ferryd's requests to the restarted server succeed" \
		"$(req_py "$mark" "[(x['kind'], x['status']) for x in r][-6:]"); log: $(grep -i 'ssl\|certificate' "$FERRYD_LOG" | tail -n 1)"
fi
expect_alive "CA rotation"

# --- only the kubeconfig's CA is trusted ---------------------------------------
# ferryd runs in a mount namespace of its own whose /etc/ssl/certs (curl's
# default CA folder on Debian) holds one more CA, "rogue", and the stand-in
# presents a certificate of that CA. curl trusts its default folder on top
# of --cacert (checked with curl itself); ferryd, whose kubeconfig names
# another CA, must refuse the server, as kubectl does.
# The rogue CA needs a name of its own (mkcerts.sh's CAs share theirs):
# OpenSSL looks issuers up by name, and would find only the kubeconfig's.
rogue_pki() {
	local d=$API_DIR/pki-rogue ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	mkdir -p "$d" &&
		openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -subj /CN=ferry-rogue-ca -days 1 \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
			-out "$d/ca.crt" 2>/dev/null &&
		openssl req -new "${ec[@]}" -keyout "$d/server.key" -subj /CN=kube-apiserver \
			-addext subjectAltName=IP:127.0.0.1 2>/dev/null |
		openssl x509 -req -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 1 \
			-copy_extensions copy -out "$d/server.crt" 2>/dev/null
}
ferryd_reset
if ! rogue_pki; then
	not_ok "$GROUP setup" "openssl: the rogue CA"
	finish
fi
SYSCERTS=$WORK/syscerts
mkdir -p "$SYSCERTS"
cp "$API_DIR/pki-rogue/ca.crt" "$SYSCERTS/rogue.pem"
ln -s rogue.pem "$SYSCERTS/$(openssl x509 -hash -noout -in "$SYSCERTS/rogue.pem").0"
# in_syscerts CMD...: CMD with $SYSCERTS on /etc/ssl/certs, in a private
# mount namespace (the host's stays as it is).
# shellcheck disable=SC2016 # expanded by the inner sh
in_syscerts() { unshare -m --propagation private sh -c 'mount --bind "$0" /etc/ssl/certs && exec "$@"' "$SYSCERTS" "$@"; }
api_stop
for f in server.crt server.key; do
	cp "$API_DIR/pki-rogue/$f" "$API_DIR/pki/$f.tmp" && mv -f "$API_DIR/pki/$f.tmp" "$API_DIR/pki/$f"
done
api_start --bookmark-interval 0.5 || finish
expect_match "rogue CA: curl --cacert with the kubeconfig's CA still gets an HTTP answer from the rogue server (its default folder is trusted too)" \
	"$(in_syscerts curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$API_CA" "https://127.0.0.1:$API_PORT/version")" '^[1-5][0-9][0-9]$'
# ferryd through in_syscerts (unshare and sh exec: the pid is ferryd's).
printf '#!/bin/sh\nexec unshare -m --propagation private sh -c %s %s %s "$@"\n' \
	"'mount --bind \"\$0\" /etc/ssl/certs && exec \"\$@\"'" "'$SYSCERTS'" "'$FERRYD'" >"$WORK/ferryd-syscerts"
chmod +x "$WORK/ferryd-syscerts"
REAL_FERRYD=$FERRYD
FERRYD=$WORK/ferryd-syscerts
log_mark=$(wc -l <"$FERRYD_LOG")
mark=$(api_mark)
ferryd_k8s_spawn
FERRYD=$REAL_FERRYD
refused() { tail -n +"$((log_mark + 1))" "$FERRYD_LOG" | grep -q 'cannot reach the API server: .*certificate'; }
if wait_until 10 refused; then
	ok "rogue CA: ferryd refuses the server ($(tail -n +"$((log_mark + 1))" "$FERRYD_LOG" | grep -m 1 -o 'cannot reach the API server: [^;]*'))"
else
	not_ok "rogue CA: ferryd refuses the server" "log: $(tail -n 2 "$FERRYD_LOG" | tr '\n' ' ')"
fi
expect "rogue CA: no request of ferryd's reached the server" "$(req_py "$mark" "len(r)")" 0
expect "rogue CA: nothing is programmed" "$(generation)" ""
expect_alive "rogue CA"
ferryd_stop

finish
