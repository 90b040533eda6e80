#!/usr/bin/env bash
# Conformance of the stand-in API server (tests/apiserver/standin.py) with
# shared/spec/apiserver-protocol.md: each case names the F line it checks.
# The stand-in runs on 127.0.0.1 with certificates from mkcerts.sh in a
# temporary folder; every request goes through curl (python3 reads the JSON).
#
# Output: one line per case, "ok - NAME" or "not ok - NAME: REASON";
# comment lines start with "#"; a summary comment at the end; exit 1 when a
# case failed. Every wait has a deadline; the server, every curl started in
# the background and the temporary folder go away on any exit.

# Functions run through wait_until and eval look unreachable to shellcheck.
# shellcheck disable=SC2317
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-python3}
# The interpreter itself, not a version manager's shim; -S (no site) for the
# many short JSON checks: both cut python's start-up to a fraction.
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)') || { echo "not ok - setup: no python3"; exit 1; }
PYJ=("$PYTHON" -S)
FIXTURES=${FIXTURES:-$REPO/../shared/fixtures}
STANDIN=$HERE/standin.py
# shellcheck source=tests/stop_pid.sh
source "$REPO/tests/stop_pid.sh"

WORK=$(mktemp -d "/tmp/fyapi$$.XXXXXX")
PKI=$WORK/pki
CA=$PKI/ca.crt
LOG=$WORK/standin.log
TOKEN=tok-$$-$RANDOM-a
PASS=0
FAIL=0
PIDS=()          # curls started in the background
SERVER_PID=
PORT=
CPORT=
CODE=
WRC=
SERVER_RC=
declare -A WPID=()

# --- reporting -------------------------------------------------------------

ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $1: $2"; }
note() { echo "# $*"; }
expect() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got '$2', want '$3'"; fi; }
expect_match() { if [[ $2 =~ $3 ]]; then ok "$1"; else not_ok "$1" "got '$2', want /$3/"; fi; }

finish() {
	if [ "$FAIL" -gt 0 ] && [ -s "$LOG" ]; then
		note "stand-in log, last 20 lines:"
		tail -n 20 "$LOG" | sed 's/^/#   /'
	fi
	note "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
	exit $?
}

cleanup() {
	local pid
	set +e
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	[ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- waiting ---------------------------------------------------------------

# shellcheck source=tests/wait.sh
source "$REPO/tests/wait.sh"

# gone PID: the process ended (a child not yet reaped is a zombie).
gone() {
	local s
	s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$s" ] || [ "$s" = Z ]
}

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# --- requests --------------------------------------------------------------

# PYLIB: j is the file's JSON (None if it is not JSON), evs its lines as
# JSON (None for a line that is not), raw its text.
# shellcheck disable=SC2016
PYLIB='
import json, sys
raw = open(sys.argv[2], errors="replace").read()
try:
    j = json.loads(raw)
except ValueError:
    j = None
evs = []
for l in raw.splitlines():
    try:
        evs.append(json.loads(l))
    except ValueError:
        evs.append(None)
def names(x=None):
    return " ".join(i["metadata"]["name"] for i in (j if x is None else x)["items"])
def evsum(es=None):
    return " ".join("%s:%s" % (e["type"], e["object"].get("metadata", {}).get("name", "-")) if e else "BAD"
                    for e in (evs if es is None else es))
def rv(o):
    return int(o["metadata"]["resourceVersion"])
def status(x=None):
    x = j if x is None else x
    return "%s %s %s" % (x.get("kind"), x.get("reason"), x.get("code"))
'

# py EXPR [FILE]: EXPR over FILE (default: the last api answer), printed;
# "STATEMENT; ...; EXPR" runs the statements first; a bare function name
# (names, evsum, status) is called.
# shellcheck disable=SC2016
PYEVAL='
*stmts, last = sys.argv[1].split("; ")
exec("\n".join(stmts))
v = eval(last)
print(v() if callable(v) else v)'
py() { "${PYJ[@]}" -c "$PYLIB$PYEVAL" "$1" "${2:-$WORK/body}" 2>&1; }

# req PATH [CURL-ARGS...]: GET https://127.0.0.1:PORT/PATH with no
# credentials but the given ones; answer in $WORK/body, headers in
# $WORK/headers, status in CODE ("curl-N" when curl failed).
req() {
	local path=$1
	shift
	: >"$WORK/body"
	CODE=$(curl -sS --max-time 10 --cacert "$CA" -D "$WORK/headers" -o "$WORK/body" \
		-w '%{http_code}' "$@" "https://127.0.0.1:$PORT$path" 2>"$WORK/curl.err") || CODE=curl-$?
}

# api PATH [CURL-ARGS...]: req with the bearer token.
api() { req "$1" -H "Authorization: Bearer $TOKEN" "${@:2}"; }

header() { tr -d '\r' <"$WORK/headers" | sed -n "s/^$1: //Ip" | tail -n 1; }

# ctl METHOD PATH [BODY]: a control API call (BODY "-" reads stdin); prints
# the answer; 1 unless it answered 200.
ctl() {
	local code data=()
	[ $# -ge 3 ] && if [ "$3" = - ]; then data=(--data-binary @-); else data=(--data-binary "$3"); fi
	code=$(curl -sS --max-time 60 -X "$1" -o "$WORK/ctl.out" -w '%{http_code}' "${data[@]}" \
		"http://127.0.0.1:$CPORT$2") || code=000
	cat "$WORK/ctl.out"
	[ "$code" = 200 ]
}

# put JSON: write one object through the control API; its answer in FILE
# $WORK/put.json; prints the stored object's resourceVersion.
put() {
	ctl PUT /objects "$1" >"$WORK/put.json" || { echo "put failed: $(cat "$WORK/put.json")"; return 1; }
	py 'j["metadata"]["resourceVersion"]' "$WORK/put.json"
}

revision() { ctl GET /state | "${PYJ[@]}" -c 'import json,sys; print(json.load(sys.stdin)["revision"])'; }
state_get() { ctl GET /state | "${PYJ[@]}" -c 'import json,sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# svc NS NAME [LABELS-JSON [SPEC-JSON]]: a Service object.
svc() {
	local labels='{}' spec='{"ports":[{"port":80}]}'
	[ $# -ge 3 ] && labels=$3
	[ $# -ge 4 ] && spec=$4
	printf '{"kind":"Service","apiVersion":"v1","metadata":{"name":"%s","namespace":"%s","labels":%s},"spec":%s}' \
		"$2" "$1" "$labels" "$spec"
}

eps() {
	printf '{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"%s","namespace":"%s","labels":{"kubernetes.io/service-name":"%s"}},"addressType":"IPv4","endpoints":[{"addresses":["198.18.0.%s"]}],"ports":[{"port":8080}]}' \
		"$2" "$1" "${3:-x}" "${4:-10}"
}

node() {
	printf '{"kind":"Node","apiVersion":"v1","metadata":{"name":"%s","labels":{"topology.kubernetes.io/zone":"z1"}},"status":{"addresses":[{"type":"InternalIP","address":"198.18.0.%s"}]}}' "$1" "${2:-1}"
}

# --- watch streams ---------------------------------------------------------

# answered NAME: the stand-in has answered the watch request tagged t=NAME.
answered() {
	ctl GET /requests | "${PYJ[@]}" -c '
import json, sys
sys.exit(0 if any(r["query"].get("t") == sys.argv[1] and r["status"] for r in json.load(sys.stdin)) else 1)' "$1"
}

# watch_start NAME PATH [CURL-ARGS...]: a stream in the background (curl -N,
# at most 30 s), its body in $WORK/NAME.out; returns once the stand-in has
# answered it (the watch is registered then). NAME must be unique.
watch_start() {
	local name=$1 path=$2 sep='?'
	shift 2
	[[ $path == *\?* ]] && sep='&'
	: >"$WORK/$name.out"
	curl -sS -N --max-time 30 --cacert "$CA" -H "Authorization: Bearer $TOKEN" -D "$WORK/$name.hdr" \
		"$@" -o "$WORK/$name.out" "https://127.0.0.1:$PORT$path${sep}t=$name" 2>"$WORK/$name.err" &
	WPID[$name]=$!
	PIDS+=($!)
	wait_until 10 answered "$name"
}

# watch_exit NAME [SECONDS]: wait for the stream's curl to end; WRC is its
# exit status ("running" when it did not end in time).
watch_exit() {
	local pid=${WPID[$1]}
	if wait_until "${2:-5}" gone "$pid"; then
		wait "$pid"
		WRC=$?
		forget_pid "$pid"
	else
		WRC=running
	fi
}

# sent NAME N: the stand-in has sent at least N events on stream NAME.
sent() {
	ctl GET /requests | "${PYJ[@]}" -c '
import json, sys
sys.exit(0 if any(r["query"].get("t") == sys.argv[1] and r["events"] >= int(sys.argv[2]) for r in json.load(sys.stdin)) else 1)' "$1" "$2"
}

has_lines() { [ "$(wc -l <"$WORK/$1.out")" -ge "$2" ]; }
wait_lines() { wait_until "${3:-5}" has_lines "$1" "$2"; }
end_streams() { ctl POST /streams '{"action":"end"}' >/dev/null; }
out() { echo "$WORK/$1.out"; }

# --- server ----------------------------------------------------------------

# start_server ARGS...: the stand-in with the test PKI, the token file and
# ARGS; sets SERVER_PID, PORT and CPORT.
start_server() {
	local ready=$WORK/ready.json
	rm -f "$ready"
	# shellcheck disable=SC2094 # both append to the log
	"$PYTHON" "$STANDIN" --cert "$PKI/server.crt" --key "$PKI/server.key" --client-ca "$CA" \
		--token-file "$WORK/token" --ready-file "$ready" --log "$LOG" "$@" 2>>"$LOG" &
	SERVER_PID=$!
	wait_until 10 eval "[ -s '$ready' ] || gone $SERVER_PID"
	[ -s "$ready" ] || return 1
	PORT=$("${PYJ[@]}" -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$ready")
	CPORT=$("${PYJ[@]}" -c 'import json,sys; print(json.load(open(sys.argv[1]))["control_port"])' "$ready")
}

# stop_server: SIGTERM; SERVER_RC is the exit status ("running" if it stayed).
stop_server() {
	SERVER_RC=running
	kill -TERM "$SERVER_PID" 2>/dev/null
	if wait_until 10 gone "$SERVER_PID"; then
		wait "$SERVER_PID"
		SERVER_RC=$?
		SERVER_PID=
	fi
}

# ===========================================================================
note "stand-in API server conformance (shared/spec/apiserver-protocol.md F1-F12)"
started=$SECONDS

if ! bash "$HERE/mkcerts.sh" "$PKI"; then
	not_ok "setup mkcerts.sh" "failed"
	finish
fi
for f in ca.crt ca.key server.crt server.key client.crt client.key; do
	[ -s "$PKI/$f" ] || not_ok "setup mkcerts.sh makes $f" "missing"
done
echo "$TOKEN" >"$WORK/token"
if ! start_server --history 1000 --state-file "$WORK/state.json"; then
	not_ok "setup stand-in starts" "no ready file within 10 s: $(tail -n 3 "$LOG" | tr '\n' ' ')"
	finish
fi
ok "setup stand-in starts and writes its ready file (port $PORT, control $CPORT)"

# --- F11: HTTPS and authentication ----------------------------------------

api /api/v1/services
expect "F11 HTTPS on 127.0.0.1 verifies with the test CA (curl --cacert)" "$CODE" 200
CODE=$(curl -sS --max-time 10 --cacert "$CA" -H "Authorization: Bearer $TOKEN" -o /dev/null \
	-w '%{http_code}' "https://localhost:$PORT/api/v1/services" 2>&1) || CODE=curl-$?
expect "F11 HTTPS via the name localhost verifies too" "$CODE" 200
CODE=$(curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" -o /dev/null \
	"https://127.0.0.1:$PORT/api/v1/services" 2>/dev/null) && CODE=ok || CODE=curl-$?
expect "F11 server certificate is refused without the test CA" "$CODE" curl-60
sans=$(openssl x509 -in "$PKI/server.crt" -noout -ext subjectAltName 2>/dev/null | tail -n 1 | tr -d ' ')
expect "F11 server certificate SANs" "$sans" "IPAddress:127.0.0.1,IPAddress:0:0:0:0:0:0:0:1,DNS:localhost,DNS:kubernetes.default.svc"
cn=$(openssl x509 -in "$PKI/client.crt" -noout -subject 2>/dev/null | sed 's/.*CN *= *//')
expect "F11 client certificate CN is ferry-test" "$cn" ferry-test

req /api/v1/services
expect "F11 401 Unauthorized Status without a token" "$CODE $(py status)" "401 Status Unauthorized 401"
req /api/v1/services -H "Authorization: Bearer wrong-$TOKEN"
expect "F11 401 Unauthorized Status with a wrong token" "$CODE $(py status)" "401 Status Unauthorized 401"
req /api/v1/nodes --cert "$PKI/client.crt" --key "$PKI/client.key"
expect "F11 client certificate signed by the CA authenticates without a token" "$CODE" 200
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=intruder \
	-keyout "$WORK/rogue.key" -out "$WORK/rogue.crt" 2>/dev/null
req /api/v1/nodes --cert "$WORK/rogue.crt" --key "$WORK/rogue.key"
expect_match "F11 client certificate from another CA is not let in" "$CODE" '^(401|curl-(35|55|56))$'

OLD_TOKEN=$TOKEN
TOKEN=tok-$$-$RANDOM-b
ctl POST /token "{\"token\":\"$TOKEN\"}" >/dev/null
req /api/v1/services -H "Authorization: Bearer $OLD_TOKEN"
old_code=$CODE
api /api/v1/services
expect "F11 token rotation: old token 401, new token 200" "$old_code $CODE" "401 200"
echo "$TOKEN" >"$WORK/token"   # for the restart below (--token-file)

conns=$(curl -sS --max-time 10 --cacert "$CA" -H "Authorization: Bearer $TOKEN" -o /dev/null -o /dev/null \
	-w '%{num_connects} ' "https://127.0.0.1:$PORT/api/v1/services" "https://127.0.0.1:$PORT/api/v1/nodes" 2>&1)
expect "F11 keep-alive: curl reuses the connection for a second request" "$conns" "1 0 "

# --- F1: collections -------------------------------------------------------

{
	put "$(svc f1a s2)" && put "$(svc f1a s1)" && put "$(svc f1b s3)" &&
		put "$(eps f1a e1 s1)" && put "$(eps f1b e2 s3)" && put "$(node n2 2)" && put "$(node n1 1)"
} >/dev/null || not_ok "F1 setup" "control PUT failed: $(cat "$WORK/put.json")"

api /api/v1/services
expect "F1 /api/v1/services lists every namespace" \
	"$CODE $(py 'j["kind"], j["apiVersion"], names()')" "200 ('ServiceList', 'v1', 's1 s2 s3')"
expect "F1 list answers application/json with Content-Length" \
	"$(header Content-Type) $(header Content-Length)" "application/json $(wc -c <"$WORK/body")"
expect "F1 list items omit kind and apiVersion" \
	"$(py 'sorted(set(k for i in j["items"] for k in i) & {"kind", "apiVersion"})')" "[]"
api /api/v1/namespaces/f1a/services
expect "F1 /api/v1/namespaces/NS/services lists that namespace only" "$CODE $(py names)" "200 s1 s2"
api /apis/discovery.k8s.io/v1/endpointslices
expect "F1 /apis/discovery.k8s.io/v1/endpointslices" \
	"$CODE $(py 'j["kind"], j["apiVersion"], names()')" "200 ('EndpointSliceList', 'discovery.k8s.io/v1', 'e1 e2')"
api /apis/discovery.k8s.io/v1/namespaces/f1b/endpointslices
expect "F1 /apis/discovery.k8s.io/v1/namespaces/NS/endpointslices" "$CODE $(py names)" "200 e2"
api /api/v1/nodes
expect "F1 /api/v1/nodes" "$CODE $(py 'j["kind"], j["apiVersion"], names()')" "200 ('NodeList', 'v1', 'n1 n2')"
ctl PUT /objects "$(svc f1b a0)" >/dev/null
api /api/v1/services
expect "F1 items sorted by namespace/name" "$(py '" ".join(i["metadata"]["namespace"] + "/" + i["metadata"]["name"] for i in j["items"])')" \
	"f1a/s1 f1a/s2 f1b/a0 f1b/s3"
api /api/v1/namespaces/nothing-here/services
expect "F1 empty list has \"items\":[] (never null)" "$CODE $(py '"\"items\":[]" in raw')" "200 True"
api /api/v1/namespaces/f1a/services/s1
expect "F1 GET of one Service carries kind and apiVersion" "$CODE $(py 'j["kind"], j["apiVersion"], j["metadata"]["name"]')" "200 ('Service', 'v1', 's1')"
api /apis/discovery.k8s.io/v1/namespaces/f1b/endpointslices/e2
expect "F1 GET of one EndpointSlice" "$CODE $(py 'j["kind"], j["apiVersion"]')" "200 ('EndpointSlice', 'discovery.k8s.io/v1')"
api /api/v1/nodes/n2
expect "F1 GET of one Node" "$CODE $(py 'j["kind"], j["metadata"]["name"]')" "200 ('Node', 'n2')"
api /api/v1/namespaces/f1a/services/missing
expect "F1 missing object: 404 NotFound Status" "$CODE $(py status)" "404 Status NotFound 404"
bad=""
for p in /api/v1/pods /api/v1/namespaces/f1a/nodes /apis/discovery.k8s.io/v1/services /api/v1/services/s1 /apis/foo/v1/bars /; do
	api "$p"
	[ "$CODE $(py status)" = "404 Status NotFound 404" ] || bad+=" $p=$CODE"
done
expect "F1 unknown paths: 404 NotFound Status" "${bad:-none}" none
api /api/v1/services -H "Accept: application/vnd.kubernetes.protobuf"
expect "F1 an Accept without JSON: 406 NotAcceptable" "$CODE $(py status)" "406 Status NotAcceptable 406"
api /api/v1/services -H "Accept: application/json, */*"
expect "F1 Accept: application/json is served" "$CODE" 200
api /api/v1/services -X POST -d '{}'
expect "F1 writes through the API are refused (405 Status)" "$CODE $(py 'j["kind"]')" "405 Status"

# --- F2: revisions ---------------------------------------------------------

r0=$(revision)
rv1=$(put "$(svc f2 a '{"v":"1"}')")
expect "F2 a create bumps the revision by one; the object's resourceVersion is it" "$rv1 $(revision)" "$((r0 + 1)) $((r0 + 1))"
expect "F2 create sets uid, creationTimestamp and generation 1" \
	"$(py 'bool(j["metadata"]["uid"]), bool(j["metadata"]["creationTimestamp"]), j["metadata"]["generation"]' "$WORK/put.json")" \
	"(True, True, 1)"
uid=$(py 'j["metadata"]["uid"]' "$WORK/put.json")
rv2=$(put "$(svc f2 a '{"v":"2"}' '{"ports":[{"port":81}]}')")
expect "F2 a replace bumps the revision, keeps the uid, bumps generation on a spec change" \
	"$rv2 $(py 'j["metadata"]["uid"], j["metadata"]["generation"]' "$WORK/put.json")" "$((r0 + 2)) ('$uid', 2)"
rv3=$(put "$(eps f2 a-1 a)")
expect "F2 one global revision across kinds" "$rv3" "$((r0 + 3))"
api /api/v1/namespaces/f2/services
expect "F2 a list's resourceVersion is the current revision; items keep their own" \
	"$(py 'j["metadata"]["resourceVersion"], j["items"][0]["metadata"]["resourceVersion"]')" "('$((r0 + 3))', '$((r0 + 2))')"
ctl DELETE /objects/Service/f2/a >"$WORK/del.json"
expect "F2 a delete bumps the revision; answers the last state at the new revision" \
	"$(revision) $(py 'j["metadata"]["resourceVersion"], j["metadata"]["labels"]["v"]' "$WORK/del.json")" "$((r0 + 4)) ('$((r0 + 4))', '2')"
ctl DELETE /objects/Service/f2/a >/dev/null && code=200 || code=other
expect "F2 deleting a missing object: 404 from the control API, no write" "$code $(revision)" "other $((r0 + 4))"
printf '{"items":[%s,%s,%s]}' "$(svc f2 b)" "$(svc f2 c)" "$(node n3 3)" | ctl POST /objects - >"$WORK/batch.json"
api /api/v1/namespaces/f2/services
expect "F2 POST /objects: one write per item, answers the last revision" \
	"$(py 'j["resourceVersion"]' "$WORK/batch.json") $(py '[i["metadata"]["resourceVersion"] for i in j["items"]]')" \
	"$((r0 + 7)) ['$((r0 + 5))', '$((r0 + 6))']"

# --- F3: selectors (list) --------------------------------------------------

{
	put "$(svc f3 a '{"app":"web","tier":"fe"}')" && put "$(svc f3 b '{"app":"db","tier":"be"}')" &&
		put "$(svc f3 c '{"app":"web"}')" && put "$(svc f3 d)" &&
		put "$(svc f3 e '{"app":"cache","service.kubernetes.io/headless":""}')" &&
		put "$(svc f3 f '{"service.kubernetes.io/service-proxy-name":"other"}')"
} >/dev/null || not_ok "F3 setup" "control PUT failed: $(cat "$WORK/put.json")"

# sel NAME SELECTOR WANT: labelSelector on namespace f3.
sel() {
	api /api/v1/namespaces/f3/services -G --data-urlencode "labelSelector=$2"
	expect "F3 labelSelector $1: $2" "$CODE $(py names)" "200 $3"
}
sel "=" "app=web" "a c"
sel "==" "app==web" "a c"
sel "!= (also objects without the key)" "app!=web" "b d e f"
sel "exists" "app" "a b c e"
sel "does not exist" "!app" "d f"
sel "in" "app in (web,db)" "a b c"
sel "notin (also objects without the key)" "app notin (web, db)" "d e f"
sel "terms ANDed, commas inside parentheses" "app in (web,db),tier" "a b"
sel "two equalities" "app=web,tier=fe" "a"
sel "ferry's own" "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless" "a b c d"
api "/api/v1/namespaces/f3/services?labelSelector=%21service.kubernetes.io%2Fservice-proxy-name%2C%21service.kubernetes.io%2Fheadless"
expect "F3 labelSelector URL-encoded as ferry sends it" "$CODE $(py names)" "200 a b c d"
api /api/v1/namespaces/f3/services -G --data-urlencode "fieldSelector=metadata.name=b"
expect "F3 fieldSelector metadata.name=" "$CODE $(py names)" "200 b"
api /api/v1/namespaces/f3/services -G --data-urlencode "fieldSelector=metadata.name!=b"
expect "F3 fieldSelector metadata.name!=" "$CODE $(py names)" "200 a c d e f"
api /api/v1/services -G --data-urlencode "fieldSelector=metadata.namespace=f3" --data-urlencode "labelSelector=app=web"
expect "F3 fieldSelector metadata.namespace= with a labelSelector" "$CODE $(py names)" "200 a c"
api /api/v1/services -G --data-urlencode "fieldSelector=metadata.namespace!=f3"
expect "F3 fieldSelector metadata.namespace!=" "$CODE $(py '"f3" in [i["metadata"]["namespace"] for i in j["items"]], len(j["items"]) > 0')" "200 (False, True)"
api /api/v1/nodes -G --data-urlencode "fieldSelector=metadata.name=n1"
expect "F3 nodes by fieldSelector metadata.name (ferry's node watch)" "$CODE $(py names)" "200 n1"
bad=""
for s in "labelSelector=app in (web" "labelSelector=app in ()" "labelSelector=a b" "labelSelector==x" \
	"labelSelector=app=web," "labelSelector=bad/key/x" "fieldSelector=spec.clusterIP=1.2.3.4" "fieldSelector=metadata.name"; do
	api /api/v1/namespaces/f3/services -G --data-urlencode "$s"
	[ "$CODE $(py status)" = "400 Status BadRequest 400" ] || bad+=" [$s]=$CODE"
done
expect "F3 bad selectors: 400 BadRequest Status" "${bad:-none}" none

# --- F3: selector membership in a watch -----------------------------------

r=$(revision)
watch_start f3w "/api/v1/namespaces/f3/services?watch=1&resourceVersion=$r&labelSelector=app%3Dweb"
put "$(svc f3 d '{"app":"web"}')" >/dev/null              # starts matching
rva=$(put "$(svc f3 a '{"app":"other","tier":"fe"}')")     # stops matching
put "$(svc f3 c '{"app":"web","x":"y"}')" >/dev/null        # still matches
put "$(svc f3 b '{"app":"db","tier":"x"}')" >/dev/null      # never matched
ctl DELETE /objects/Service/f3/c >/dev/null
wait_lines f3w 4
end_streams
watch_exit f3w
expect "F3 watch: start matching is ADDED, stop matching is DELETED, deletes of matching objects" \
	"$(py evsum "$(out f3w)")" "ADDED:d DELETED:a MODIFIED:c DELETED:c"
expect "F3 watch: the DELETED for stop-matching carries the last matching state at the new revision" \
	"$(py 'evs[1]["object"]["metadata"]["labels"]["app"], rv(evs[1]["object"])' "$(out f3w)")" "('web', $rva)"

# --- F4: pagination --------------------------------------------------------

for i in 1 2 3 4 5; do put "$(svc f4 "p$i")" >/dev/null; done
api "/api/v1/namespaces/f4/services?limit=2"
p1="$(py names) $(py 'j["metadata"]["resourceVersion"]')"
page_rv=$(py 'j["metadata"]["resourceVersion"]')
tok=$(py 'j["metadata"].get("continue", "")')
rem=$(py 'j["metadata"].get("remainingItemCount")')
p4rv=$(ctl GET /objects/Service/f4/p4 | "${PYJ[@]}" -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
# Writes between pages must not show: later pages are served as of page_rv.
{ put "$(svc f4 p0)" && put "$(svc f4 p9)" && put "$(svc f4 p4 '{"changed":"yes"}')"; } >/dev/null
ctl DELETE /objects/Service/f4/p3 >/dev/null
api /api/v1/namespaces/f4/services -G --data-urlencode "limit=2" --data-urlencode "continue=$tok"
p2="$(py names) $(py 'j["metadata"]["resourceVersion"]')"
p2rv4=$(py 'j["items"][1]["metadata"]["resourceVersion"]')
tok2=$(py 'j["metadata"].get("continue", "")')
api /api/v1/namespaces/f4/services -G --data-urlencode "limit=2" --data-urlencode "continue=$tok2" --data-urlencode "resourceVersion=0"
p3="$(py names) $(py 'j["metadata"]["resourceVersion"]') [$(py 'j["metadata"].get("continue", "")')]"
expect "F4 limit=2 over 5 objects: 3 pages, the same resourceVersion on each, no continue on the last" \
	"$p1 | $p2 | $p3" "p1 p2 $page_rv | p3 p4 $page_rv | p5 $page_rv []"
expect "F4 first page: continue token and remainingItemCount" "$([ -n "$tok" ] && echo token) $rem" "token 3"
expect "F4 later pages show the objects as of the first page (old p4, deleted p3, no p9)" "$p2rv4" "$p4rv"
api "/api/v1/namespaces/f4/services?limit=10"
expect "F4 a new list sees the writes; limit above the count has no continue" \
	"$(py 'names(), "continue" in j["metadata"]')" "('p0 p1 p2 p4 p5 p9', False)"
api /api/v1/namespaces/f4/services -G --data-urlencode "limit=2" --data-urlencode "continue=$tok" --data-urlencode "resourceVersion=5"
expect "F4 continue with a resourceVersion other than 0: 400" "$CODE $(py status)" "400 Status BadRequest 400"
api /api/v1/namespaces/f4/services -G --data-urlencode "limit=2" --data-urlencode "continue=bm90LWEtdG9rZW4"
expect "F4 a continue token that is not one: 400" "$CODE $(py status)" "400 Status BadRequest 400"
api "/api/v1/namespaces/f4/services?limit=2"
tok=$(py 'j["metadata"]["continue"]')
put "$(svc f4 p8)" >/dev/null
ctl POST /compact >/dev/null
api /api/v1/namespaces/f4/services -G --data-urlencode "limit=2" --data-urlencode "continue=$tok"
expect "F4 a continue token older than the history after /compact: 410 Expired Status" \
	"$CODE $(py status)" "410 Status Expired 410"
expect_match "F4 the 410 message says to start a new list" "$(py 'j["message"]')" "new list"

# A lagging watch cache (kubernetes#59848): resourceVersion=0 lists answer
# the state frozen, unpaged; a list without resourceVersion reads the live
# state, consistent and paged.
ctl POST /config '{"cache":"frozen"}' >/dev/null
frozen_rv=$(revision)
put "$(svc f4 p7)" >/dev/null
ctl DELETE /objects/Service/f4/p1 >/dev/null
api "/api/v1/namespaces/f4/services?limit=2&resourceVersion=0"
c0="$(py 'names(), j["metadata"]["resourceVersion"], "continue" in j["metadata"]')"
live_rv=$(revision)
api "/api/v1/namespaces/f4/services?limit=2"
expect "F4 cache frozen: resourceVersion=0 gets the old state in one page, no resourceVersion the live state" \
	"$c0 | $(py 'names(), j["metadata"]["resourceVersion"], "continue" in j["metadata"]')" \
	"('p0 p1 p2 p4 p5 p8 p9', '$frozen_rv', False) | ('p0 p2', '$live_rv', True)"
ctl POST /config '{"cache":"live"}' >/dev/null
api "/api/v1/namespaces/f4/services?resourceVersion=0"
expect "F4 cache live again: resourceVersion=0 sees the writes" "$(py names)" "p0 p2 p4 p5 p7 p8 p9"

# --- F5: watch from a resourceVersion --------------------------------------

n=$(put "$(svc f5 x1 '{"keep":"1"}')")
put "$(svc f5 x2 '{"last":"state"}')" >/dev/null
put "$(svc f5 x1 '{"keep":"2"}')" >/dev/null
ctl DELETE /objects/Service/f5/x2 >/dev/null
rdel=$(revision)
put "$(eps f5 other)" >/dev/null   # another kind: not in this watch
watch_start f5w "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$n"
wait_lines f5w 3
live=$(put "$(svc f5 x3)")
wait_lines f5w 4
end_streams
watch_exit f5w
expect "F5 watch from rv N sends only later events, in order, then live ones" \
	"$(py evsum "$(out f5w)")" "ADDED:x2 MODIFIED:x1 DELETED:x2 ADDED:x3"
expect "F5 events' resourceVersions increase, all above N" \
	"$(py '[rv(e["object"]) for e in evs]' "$(out f5w)")" "[$((n + 1)), $((n + 2)), $rdel, $live]"
expect "F5 DELETED carries the last state at the delete's revision" \
	"$(py 'evs[2]["object"]["metadata"]["labels"], rv(evs[2]["object"])' "$(out f5w)")" "({'last': 'state'}, $rdel)"
expect "F5 watch objects carry kind and apiVersion" \
	"$(py 'set((e["object"]["kind"], e["object"]["apiVersion"]) for e in evs)' "$(out f5w)")" "{('Service', 'v1')}"
hdr=$(tr -d '\r' <"$WORK/f5w.hdr" | grep -iE '^(HTTP/|content-type|transfer-encoding)' | sort | tr '\n' '|')
expect "F5 watch answer: 200, application/json, chunked" "$hdr" "Content-Type: application/json|HTTP/1.1 200 OK|Transfer-Encoding: chunked|"
expect "F5 end of a stream is clean (curl exit 0)" "$WRC" 0
api "/api/v1/services?watch=1&resourceVersion=abc"
expect "F5 a resourceVersion that is not a number: 400" "$CODE $(py status)" "400 Status BadRequest 400"
api "/api/v1/services?watch=maybe"
expect "F5 watch=maybe: 400" "$CODE" 400

# --- F6: watch from resourceVersion 0 or unset ----------------------------

watch_start f6a "/api/v1/namespaces/f5/services?watch=1&resourceVersion=0"
wait_lines f6a 1
put "$(svc f5 x4)" >/dev/null
wait_lines f6a 2
watch_start f6b "/api/v1/namespaces/f5/services?watch=true"
wait_lines f6b 3
watch_start f6c "/api/v1/nodes?watch=1&resourceVersion=0"
wait_lines f6c 3
end_streams
for w in f6a f6b f6c; do watch_exit $w; done
expect "F6 resourceVersion=0: synthetic ADDED for every object, then live events" "$(py evsum "$(out f6a)")" "ADDED:x1 ADDED:x3 ADDED:x4"
expect "F6 resourceVersion unset: the same" "$(py evsum "$(out f6b)")" "ADDED:x1 ADDED:x3 ADDED:x4"
expect "F6 nodes from resourceVersion 0" "$(py evsum "$(out f6c)")" "ADDED:n1 ADDED:n2 ADDED:n3"

# --- F7: bounded history, 410 Expired --------------------------------------

ctl POST /compact >/dev/null
oldest=$(state_get 'j["oldest"]')
expect "F7 /compact moved the oldest watchable revision up" "$([ "$oldest" -gt "$n" ] && echo yes)" yes
t0=$(now_ms)
watch_start f7a "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$n"
watch_exit f7a
ms=$(($(now_ms) - t0))
expect "F7 too old resourceVersion: 200, one ERROR 410 Expired event, clean end" \
	"$(head -n 1 "$WORK/f7a.hdr" | tr -d '\r') $(py '[(e["type"], e["object"]["kind"], e["object"]["reason"], e["object"]["code"]) for e in evs]' "$(out f7a)") rc=$WRC" \
	"HTTP/1.1 200 OK [('ERROR', 'Status', 'Expired', 410)] rc=0"
expect_match "F7 ERROR message: too old resource version" "$(py 'evs[0]["object"]["message"]' "$(out f7a)")" "^too old resource version: $n \\([0-9]+\\)$"
expect "F7 the stream ends at once (< 3 s)" "$([ "$ms" -lt 3000 ] && echo yes || echo "${ms}ms")" yes
watch_start f7b "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$oldest"
put "$(svc f5 x5)" >/dev/null
wait_lines f7b 1
ctl POST /streams '{"action":"expire"}' >"$WORK/expire.json"
watch_exit f7b
expect "F7 expire: the stream gets ERROR 410 Expired and ends" \
	"$(py evsum "$(out f7b)") $(py 'evs[-1]["object"]["code"]' "$(out f7b)") rc=$WRC" "ADDED:x5 ERROR:- 410 rc=0"
watch_start f7c "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$oldest"
watch_exit f7c
expect "F7 expire dropped the history: a rewatch from before gets 410 too" \
	"$(py '[(e["type"], e["object"]["code"]) for e in evs]' "$(out f7c)")" "[('ERROR', 410)]"

ctl POST /config '{"expired_watch":"status"}' >/dev/null
api "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$n"
expect "F7 expired_watch status: a watch from a too old resourceVersion is answered a plain HTTP 410" \
	"$CODE $(py status) $(py 'j["message"]')" "410 Status Expired 410 too old resource version: $n ($(state_get 'j["oldest"]'))"
expect "F7 POST /config answers the switches" "$(ctl POST /config '{"expired_watch":"event"}')" \
	'{"expired_watch":"event","cache":"live","watch_list":"off","rv0_unpaged":false}'
expect "F7 an unknown switch is refused (400)" "$(ctl POST /config '{"expired_watch":"maybe"}' >/dev/null; echo $?)" 1

# --- F8: timeoutSeconds, end, cut, garbage, stall, fragment, raw ----------

t0=$(now_ms)
watch_start f8t "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$(revision)&timeoutSeconds=1"
watch_exit f8t 5
ms=$(($(now_ms) - t0))
expect "F8 timeoutSeconds=1 ends the stream cleanly after about 1 s" \
	"rc=$WRC $([ "$ms" -ge 900 ] && [ "$ms" -lt 3000 ] && echo in-time || echo "${ms}ms")" "rc=0 in-time"
expect "F8 /requests records the timeoutSeconds asked and how the stream ended" \
	"$(ctl GET /requests | "${PYJ[@]}" -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["query"].get("t")=="f8t"][0]; print(r["query"]["timeoutSeconds"], r["watch"], r["ended"])')" \
	"1 True timeout"

watch_start f8c "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$(revision)"
ctl POST /streams '{"action":"cut"}' >/dev/null
watch_exit f8c
expect_match "F8 cut drops the connection without the final chunk (curl fails)" "$WRC" '^(18|56)$'
# shellcheck disable=SC2016
expect "F8 no stream stays open after a cut" "$(wait_until 3 eval '[ "$(state_get "j[\"watches\"]")" = 0 ]' && echo 0)" 0

watch_start f8m "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$(revision)"
put "$(svc f5 x6)" >/dev/null
wait_lines f8m 1
ctl POST /streams '{"action":"cut_mid_event"}' >/dev/null
put "$(svc f5 x7 '{"long":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}')" >/dev/null
watch_exit f8m
expect_match "F8 cut_mid_event: one whole event, then half an event, then the connection drops" \
	"$(py 'evsum(evs[:1]), evs[1] is None, raw.endswith("\n"), len(raw.splitlines()[1]) > 100' "$(out f8m)") rc=$WRC" \
	"^\('ADDED:x6', True, False, True\) rc=(18|56)$"

watch_start f8g "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$(revision)"
ctl POST /streams '{"action":"garbage"}' >/dev/null
ctl POST /raw '{"kind":"Service","line":"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"rawone\"}}}"}' >/dev/null
put "$(svc f5 x8)" >/dev/null
wait_lines f8g 3
end_streams
watch_exit f8g
expect "F8 garbage line, then a raw line, then the stream goes on" \
	"$(sed -n 1p "$(out f8g)") | $(py 'evsum(evs[1:])' "$(out f8g)")" '{"type":"ADDED","object":{garbage | ADDED:rawone ADDED:x8'

watch_start f8s "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$(revision)"
ctl POST /streams '{"action":"stall","seconds":1.5}' >/dev/null
t0=$(now_ms)
put "$(svc f5 x9)" >/dev/null
wait_lines f8s 1 6
ms=$(($(now_ms) - t0))
put "$(svc f5 x10)" >/dev/null
wait_lines f8s 2
end_streams
watch_exit f8s
expect "F8 stall holds events for the seconds asked, then sends them" \
	"$(py evsum "$(out f8s)") $([ "$ms" -ge 1300 ] && [ "$ms" -lt 5000 ] && echo held || echo "${ms}ms")" "ADDED:x9 ADDED:x10 held"

# A stalled stream stays open and sends nothing at all, not even the
# bookmarks it asked for: what a black hole looks like to the client.
ctl POST /bookmarks '{"interval":0.2}' >/dev/null
watch_start f8b "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$(revision)&allowWatchBookmarks=true" --raw
wait_until 5 sent f8b 1
ctl POST /streams '{"action":"stall","seconds":2}' >/dev/null
size0=$(stat -c %s "$(out f8b)")
t0=$(now_ms)
put "$(svc f5 x10b)" >/dev/null
# Bookmarks are due every 0.2 s: none may arrive while stalled.
bytes_came() { [ "$(stat -c %s "$(out f8b)")" -gt "$size0" ]; }
wait_until 6 bytes_came
ms=$(($(now_ms) - t0))
open_then=$(state_get 'j["watches"]')
end_streams
watch_exit f8b
ctl POST /bookmarks '{"interval":0}' >/dev/null
expect "F8 stall: not a byte (event or bookmark) for the seconds asked, the connection open" \
	"$([ "$ms" -ge 1700 ] && echo silent || echo "${ms}ms") watches=$open_then rc=$WRC" "silent watches=1 rc=0"

watch_start f8f "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$(revision)" --raw
ctl POST /streams '{"action":"fragment","size":16,"delay":0.002}' >/dev/null
put "$(svc f5 x11)" >/dev/null
wait_until 5 sent f8f 1   # popped with the fragment size: now turn it off
ctl POST /streams '{"action":"fragment","size":0}' >/dev/null
put "$(svc f5 x12)" >/dev/null
ctl POST /streams '{"action":"end"}' >/dev/null
watch_exit f8f
# The raw chunked body: chunk sizes, then the events they make up.
chunks=$("${PYJ[@]}" - "$(out f8f)" <<'PY'
import json, sys
data, sizes, body = open(sys.argv[1], "rb").read(), [], b""
while data:
    size_line, data = data.split(b"\r\n", 1)
    n = int(size_line, 16)
    sizes.append(n)
    body, data = body + data[:n], data[n + 2:]
lines = body.decode().splitlines()
first = len(lines[0]) + 1
print(sizes[-1] == 0, max(sizes[:first // 16]) <= 16, len(sizes) - 2 >= first // 16,
      [json.loads(l)["object"]["metadata"]["name"] for l in lines])
PY
)
expect "F8 fragment: each event in HTTP chunks of at most N bytes; size 0 turns it off" \
	"$chunks" "True True True ['x11', 'x12']"

watch_start f8d "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$(revision)"
stop_pid "${WPID[f8d]}"
forget_pid "${WPID[f8d]}"
# shellcheck disable=SC2016
if wait_until 5 eval '[ "$(state_get "j[\"watches\"]")" = 0 ]'; then
	ok "F8 a client that goes away ends its stream on the server"
else
	not_ok "F8 a client that goes away ends its stream on the server" "watches: $(state_get 'j["watches"]')"
fi

# --- F9: bookmarks ---------------------------------------------------------

ctl POST /bookmarks '{"interval":0.3}' >/dev/null
r=$(revision)
watch_start f9a "/api/v1/services?watch=1&resourceVersion=$r&allowWatchBookmarks=true"
watch_start f9b "/api/v1/services?watch=1&resourceVersion=$r"
wait_lines f9a 2 5
end_streams
watch_exit f9a
watch_exit f9b
expect "F9 bookmarks with allowWatchBookmarks=true, every interval" \
	"$(py 'sorted(set(evsum().split()))' "$(out f9a)")" "['BOOKMARK:-']"
expect "F9 a bookmark: kind, apiVersion, metadata with the current resourceVersion only" \
	"$(py 'evs[0]["object"]' "$(out f9a)")" "{'kind': 'Service', 'apiVersion': 'v1', 'metadata': {'resourceVersion': '$r'}}"
expect "F9 no bookmarks without allowWatchBookmarks" "$(py evsum "$(out f9b)")" ""
ctl POST /bookmarks '{"interval":0}' >/dev/null
watch_start f9c "/api/v1/services?watch=1&resourceVersion=$r&allowWatchBookmarks=1&timeoutSeconds=1"
watch_exit f9c
expect "F9 interval 0: no bookmarks even when allowed" "$(py evsum "$(out f9c)") rc=$WRC" " rc=0"

# --- streaming lists (WatchList) and the watch cache's unpaged lists ---------
# "Streaming list: ?watch=1&sendInitialEvents=true&resourceVersionMatch=
# NotOlderThan&allowWatchBookmarks=true: ADDED for every object, then a
# BOOKMARK whose metadata carries the annotation k8s.io/initial-events-end:
# "true", then ordinary watch events. A server that does not support it
# answers 422 or ignores the parameter."
for i in 1 2 3; do put "$(svc wl "s$i")" >/dev/null; done
WL="/api/v1/namespaces/wl/services?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
api "$WL&timeoutSeconds=1"
expect_match "streaming list, --watch-list off (the default): 422 Invalid, the feature gate named" \
	"$CODE $(py status) $(py 'j["message"]')" "^422 Status Invalid 422 .*WatchList feature gate"
ctl POST /config '{"watch_list":"on"}' >/dev/null
r=$(revision)
watch_start wla "$WL"
wait_lines wla 4
put "$(svc wl s4)" >/dev/null
wait_lines wla 5
end_streams
watch_exit wla
expect "streaming list on: ADDED for each object, the end marker, then the watch goes on" \
	"$(py evsum "$(out wla)")" "ADDED:s1 ADDED:s2 ADDED:s3 BOOKMARK:- ADDED:s4"
expect "streaming list: the marker is a bookmark at the list's resourceVersion, annotated k8s.io/initial-events-end" \
	"$(py 'evs[3]["object"]' "$(out wla)")" \
	"{'kind': 'Service', 'apiVersion': 'v1', 'metadata': {'resourceVersion': '$r', 'annotations': {'k8s.io/initial-events-end': 'true'}}}"
ctl POST /compact >/dev/null
watch_start wlb "$WL&resourceVersion=$r"
wait_lines wlb 5
end_streams
watch_exit wlb
expect "streaming list from a resourceVersion older than the history (NotOlderThan): the newest state, no 410" \
	"$(py evsum "$(out wlb)")" "ADDED:s1 ADDED:s2 ADDED:s3 ADDED:s4 BOOKMARK:-"
bad=""
for q in "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan" \
	"watch=1&sendInitialEvents=true&allowWatchBookmarks=true" \
	"watch=1&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"; do
	api "/api/v1/namespaces/wl/services?$q&timeoutSeconds=1"
	bad+="$CODE "
done
expect "streaming list without bookmarks, without NotOlderThan, NotOlderThan without it: 422 each" "$bad" "422 422 422 "
ctl POST /config '{"watch_list":"ignore"}' >/dev/null
ctl POST /bookmarks '{"interval":0.3}' >/dev/null
watch_start wlc "$WL"
wait_lines wlc 5
end_streams
watch_exit wlc
ctl POST /bookmarks '{"interval":0}' >/dev/null
expect "streaming list ignored: a watch from no resourceVersion, ADDED for each object, no marker (bookmarks unannotated)" \
	"$(py 'evsum().split()[:5], [e["object"]["metadata"].get("annotations") for e in evs if e["type"] == "BOOKMARK"][:1]' "$(out wlc)")" \
	"(['ADDED:s1', 'ADDED:s2', 'ADDED:s3', 'ADDED:s4', 'BOOKMARK:-'], [None])"
ctl POST /config '{"watch_list":"off"}' >/dev/null
ctl POST /config '{"rv0_unpaged":true}' >/dev/null
api "/api/v1/namespaces/wl/services?limit=2&resourceVersion=0"
c0="$(py 'names(), "continue" in j["metadata"]')"
api "/api/v1/namespaces/wl/services?limit=2"
expect "rv0_unpaged: resourceVersion=0 ignores limit (one answer, no continue); without it, pages of 2" \
	"$c0 $(py 'names(), "continue" in j["metadata"]')" "('s1 s2 s3 s4', False) ('s1 s2', True)"
ctl POST /config '{"rv0_unpaged":false}' >/dev/null

# --- F10: injected errors --------------------------------------------------

declare -A REASON=([401]=Unauthorized [403]=Forbidden [429]=TooManyRequests [500]=InternalError [503]=ServiceUnavailable)
for code in 401 403 429 500 503; do
	ra=""
	[ "$code" = 429 ] || [ "$code" = 503 ] && ra=',"retry_after":2'
	ctl POST /inject "{\"code\":$code,\"count\":1$ra}" >/dev/null
	api /api/v1/services
	got="$CODE $(py status)"
	want="$code Status ${REASON[$code]} $code"
	if [ -n "$ra" ]; then
		got+=" retry-after=$(header Retry-After) details=$(py 'j["details"]["retryAfterSeconds"]')"
		want+=" retry-after=2 details=2"
	fi
	api /api/v1/services
	expect "F10 injected $code: Status body${ra:+, Retry-After and details.retryAfterSeconds}; count 1 then normal" \
		"$got then $CODE" "$want then 200"
done
ctl POST /inject '{"code":503,"match":"endpointslices"}' >/dev/null
api /api/v1/services
c1=$CODE
api /apis/discovery.k8s.io/v1/endpointslices
expect "F10 match limits an injection to matching paths" "$c1 $CODE" "200 503"
ctl POST /inject '{"code":429,"retry_after":1}' >/dev/null
ctl POST /inject '{"code":500}' >/dev/null
api /api/v1/nodes
c1=$CODE
api /api/v1/nodes
c2=$CODE
api /api/v1/nodes
expect "F10 injections queue in order" "$c1 $c2 $CODE" "429 500 200"
ctl POST /inject '{"code":429,"match":"services"}' >/dev/null
api "/api/v1/services?watch=1&timeoutSeconds=5"
expect "F10 a watch request can be refused too" "$CODE $(py status)" "429 Status TooManyRequests 429"
ctl POST /inject '{"code":410,"on":"watch","match":"services"}' >/dev/null
api "/api/v1/services"
c1=$CODE
api "/api/v1/services?watch=1&timeoutSeconds=1"
expect "F10 on watch: a list goes through, the watch gets the injected answer" "$c1 $CODE $(py status)" \
	"200 410 Status Expired 410"
ctl POST /inject '{"code":503,"on":"list","retry_after":"Wed, 21 Oct 2037 07:28:00 GMT"}' >/dev/null
api "/api/v1/nodes?watch=1&timeoutSeconds=1"
c1=$CODE
api /api/v1/nodes
expect "F10 on list, and a Retry-After given as an HTTP-date" \
	"$c1 $CODE $(header Retry-After) $(py '"retryAfterSeconds" in j.get("details", {})')" \
	"200 503 Wed, 21 Oct 2037 07:28:00 GMT False"
t0=$(now_ms)
ctl POST /inject '{"code":503,"seconds":1}' >/dev/null
api /api/v1/nodes
c1=$CODE
api_ok() { api /api/v1/nodes && [ "$CODE" = 200 ]; }
wait_until 5 api_ok
ms=$(($(now_ms) - t0))
expect "F10 seconds: every request fails for that long, then none" \
	"$c1 $CODE $([ "$ms" -ge 800 ] && echo lasted || echo "${ms}ms")" "503 200 lasted"
expect "F10 /requests records the answers given" \
	"$(ctl GET /requests | "${PYJ[@]}" -c 'import json,sys; print(sorted(set(r["status"] for r in json.load(sys.stdin) if r["status"] in (401, 403, 429, 500, 503))))')" \
	"[401, 403, 429, 500, 503]"

# --- F12: defaulting -------------------------------------------------------

# The shared snapshot is what a real API server printed: its objects, written
# back, must come out unchanged (the defaults are already there).
if [ -s "$FIXTURES/cluster-snapshot.json" ]; then
	ctl POST /objects - <"$FIXTURES/cluster-snapshot.json" >"$WORK/snap.out"
	api /api/v1/namespaces/shop/services
	cp "$WORK/body" "$WORK/snap-svc.json"
	api /apis/discovery.k8s.io/v1/endpointslices
	cp "$WORK/body" "$WORK/snap-eps.json"
	# shellcheck disable=SC2016
	diffs=$("${PYJ[@]}" -c '
import json, sys
snap, svc, eps = (json.load(open(f)) for f in sys.argv[1:4])
got = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in svc["items"] + eps["items"]}
out = []
for want in snap["items"]:
    m = want["metadata"]
    have = got.get((m["namespace"], m["name"]))
    if m["namespace"] == "kube-system" and want["kind"] == "Service":
        continue  # not in the shop namespace list above
    if have is None:
        out.append("missing " + m["name"])
        continue
    strip = lambda o: {k: v for k, v in o.items() if k not in ("kind", "apiVersion", "metadata")}
    if strip(want) != strip(have):
        out.append("changed " + m["name"])
print(" ".join(out) or "none")' "$FIXTURES/cluster-snapshot.json" "$WORK/snap-svc.json" "$WORK/snap-eps.json")
	expect "F12 the shared cluster snapshot (real server output) is stored unchanged" "$(py 'j.get("written")' "$WORK/snap.out") $diffs" "13 none"
else
	note "no $FIXTURES/cluster-snapshot.json: snapshot round trip not checked"
fi

# dflt NAME OBJECT EXPR WANT: EXPR over the stored object.
dflt() {
	if ctl PUT /objects "$2" >"$WORK/d.json"; then
		expect "F12 $1" "$(py "$3" "$WORK/d.json")" "$4"
	else
		not_ok "F12 $1" "refused: $(cat "$WORK/d.json")"
	fi
}
dflt "Service: type ClusterIP, sessionAffinity None, port protocol TCP, targetPort = port, internalTrafficPolicy Cluster" \
	"$(svc f12 s1)" \
	's = j["spec"]; (s["type"], s["sessionAffinity"], s["ports"][0]["protocol"], s["ports"][0]["targetPort"], s["internalTrafficPolicy"], "externalTrafficPolicy" in s)' \
	"('ClusterIP', 'None', 'TCP', 80, 'Cluster', False)"
dflt "Service: a ClusterIP from 10.96.0.0/12 (not .0 or .1), clusterIPs, ipFamilies IPv4, ipFamilyPolicy SingleStack" \
	"$(svc f12 s2)" \
	'import_ip = __import__("ipaddress"); s = j["spec"]; ip = import_ip.ip_address(s["clusterIP"]); (ip in import_ip.ip_network("10.96.0.0/12"), str(ip) not in ("10.96.0.0", "10.96.0.1"), s["clusterIPs"] == [s["clusterIP"]], s["ipFamilies"], s["ipFamilyPolicy"])' \
	"(True, True, True, ['IPv4'], 'SingleStack')"
ip1=$(ctl GET /objects/Service/f12/s1 | "${PYJ[@]}" -c 'import json,sys; print(json.load(sys.stdin)["spec"]["clusterIP"])')
ip2=$(py 'j["spec"]["clusterIP"]' "$WORK/d.json")
expect "F12 Service: allocated ClusterIPs are distinct" "$([ "$ip1" != "$ip2" ] && echo distinct)" distinct
dflt "Service: a named targetPort is kept" "$(svc f12 s3 '{}' '{"ports":[{"name":"http","port":80,"targetPort":"web"},{"name":"dns","port":53,"protocol":"UDP"}]}')" \
	'[(p["targetPort"], p["protocol"]) for p in j["spec"]["ports"]]' "[('web', 'TCP'), (53, 'UDP')]"
dflt "Service: NodePort gets externalTrafficPolicy Cluster and a nodePort" "$(svc f12 s4 '{}' '{"type":"NodePort","ports":[{"port":80}]}')" \
	'j["spec"]["externalTrafficPolicy"], 30000 <= j["spec"]["ports"][0]["nodePort"] <= 32767' "('Cluster', True)"
dflt "Service: LoadBalancer ingress ipMode VIP where an ip is set" \
	"$(svc f12 s5 '{}' '{"type":"LoadBalancer","ports":[{"port":80}]},"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.1"},{"hostname":"lb.example"},{"ip":"192.0.2.2","ipMode":"Proxy"}]}}')" \
	'j["spec"]["externalTrafficPolicy"], j["spec"]["allocateLoadBalancerNodePorts"], [i.get("ipMode") for i in j["status"]["loadBalancer"]["ingress"]]' \
	"('Cluster', True, ['VIP', None, 'Proxy'])"
dflt "Service: ClientIP affinity gets timeoutSeconds 10800" "$(svc f12 s6 '{}' '{"sessionAffinity":"ClientIP","ports":[{"port":80}]}')" \
	'j["spec"]["sessionAffinityConfig"]' "{'clientIP': {'timeoutSeconds': 10800}}"
dflt "Service: a given affinity timeout is kept" "$(svc f12 s7 '{}' '{"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":60}},"ports":[{"port":80}]}')" \
	'j["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"]' 60
dflt "Service: an IPv6 ClusterIP gets ipFamilies IPv6" "$(svc f12 s8 '{}' '{"clusterIP":"fd00:10:96::a","ports":[{"port":80}]}')" \
	'j["spec"]["clusterIPs"], j["spec"]["ipFamilies"], j["spec"]["ipFamilyPolicy"]' "(['fd00:10:96::a'], ['IPv6'], 'SingleStack')"
dflt "Service: PreferDualStack gets an IPv4 and an IPv6 ClusterIP" "$(svc f12 s13 '{}' '{"ipFamilyPolicy":"PreferDualStack","ports":[{"port":80}]}')" \
	'ipa = __import__("ipaddress"); s = j["spec"]; [ipa.ip_address(a).version for a in s["clusterIPs"]], s["clusterIP"] == s["clusterIPs"][0], s["ipFamilies"], ipa.ip_address(s["clusterIPs"][1]) in ipa.ip_network("fd00:10:96::/112")' \
	"([4, 6], True, ['IPv4', 'IPv6'], True)"
dflt "Service: ipFamilies [IPv6, IPv4] orders the ClusterIPs so, RequireDualStack" "$(svc f12 s14 '{}' '{"ipFamilies":["IPv6","IPv4"],"ports":[{"port":80}]}')" \
	'ipa = __import__("ipaddress"); [ipa.ip_address(a).version for a in j["spec"]["clusterIPs"]], j["spec"]["ipFamilyPolicy"]' \
	"([6, 4], 'RequireDualStack')"
dflt "Service: headless without a selector gets both families, RequireDualStack" "$(svc f12 s15 '{}' '{"clusterIP":"None","ports":[{"port":80}]}')" \
	'j["spec"]["clusterIPs"], j["spec"]["ipFamilies"], j["spec"]["ipFamilyPolicy"]' "(['None'], ['IPv4', 'IPv6'], 'RequireDualStack')"
dflt "Service: clusterIP None stays headless (with a selector: one family)" "$(svc f12 s9 '{}' '{"clusterIP":"None","selector":{"app":"x"},"ports":[{"port":80}]}')" \
	'j["spec"]["clusterIP"], j["spec"]["clusterIPs"], j["spec"]["ipFamilies"], j["spec"]["ipFamilyPolicy"]' "('None', ['None'], ['IPv4'], 'SingleStack')"
dflt "Service: ExternalName gets no ClusterIP" "$(svc f12 s10 '{}' '{"type":"ExternalName","externalName":"db.example"}')" \
	'"clusterIP" in j["spec"], "internalTrafficPolicy" in j["spec"], j["spec"]["sessionAffinity"]' "(False, False, 'None')"
dflt "Service: a given ClusterIP is kept" "$(svc f12 s11 '{}' '{"clusterIP":"10.96.0.20","ports":[{"port":53,"protocol":"UDP"}]}')" \
	'j["spec"]["clusterIP"], j["spec"]["ipFamilies"]' "('10.96.0.20', ['IPv4'])"
dflt "Service: a replace without clusterIP keeps the allocated one" "$(svc f12 s1 '{"v":"2"}')" 'j["spec"]["clusterIP"]' "$ip1"
ctl PUT /objects "$(svc f12 s12 '{}' '{"clusterIP":"10.96.0.20","ports":[{"port":80}]}')" >/dev/null && c1=200 || c1=refused
ctl PUT /objects "$(svc f12 s1 '{}' '{"clusterIP":"10.96.0.11","ports":[{"port":80}]}')" >/dev/null && c2=200 || c2=refused
expect "F12 Service: a ClusterIP already held, or a changed clusterIP, is refused" "$c1 $c2" "refused refused"
dflt "EndpointSlice: port name \"\" and protocol TCP" "$(eps f12 e1)" \
	'j["ports"], j["endpoints"][0]["addresses"]' "([{'port': 8080, 'name': '', 'protocol': 'TCP'}], ['198.18.0.10'])"
dflt "EndpointSlice: empty endpoints and ports come back null, as from a real server" \
	'{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"e2","namespace":"f12"},"addressType":"IPv4","endpoints":[],"ports":[]}' \
	'"\"endpoints\":null" in raw and "\"ports\":null" in raw' True
api /api/v1/namespaces/f12/services/s4
expect "F12 the API serves the defaulted object" "$(py 'j["spec"]["externalTrafficPolicy"], j["spec"]["ports"][0]["targetPort"]')" "('Cluster', 80)"
bad=""
for o in '{"kind":"Service","apiVersion":"v1","metadata":{"namespace":"f12"},"spec":{"ports":[{"port":80}]}}' \
	'{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"f12"}}' \
	'{"kind":"Service","apiVersion":"v2","metadata":{"name":"x","namespace":"f12"}}' \
	'{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"e","namespace":"f12"}}'; do
	code=$(curl -sS --max-time 10 -X PUT -o /dev/null -w '%{http_code}' --data-binary "$o" "http://127.0.0.1:$CPORT/objects")
	[[ $code =~ ^(400|422)$ ]] || bad+=" $code:$o"
done
expect "F12 no name, unknown kind, wrong apiVersion, no addressType: 400/422 from the control API" "${bad:-none}" none

# --- scale: 20,000 objects in one call ------------------------------------

watch_start big "/api/v1/services?watch=1&resourceVersion=$(revision)"
ctl POST /streams '{"action":"stall","seconds":30}' >/dev/null   # a slow stream
"${PYJ[@]}" -c '
import json
items = [{"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s%05d" % i, "namespace": "bulk",
         "labels": {"app": "bulk"}}, "spec": {"ports": [{"port": 80}]}} for i in range(20000)]
print(json.dumps({"items": items}))' >"$WORK/bulk.json"
t0=$(now_ms)
ctl POST /objects - <"$WORK/bulk.json" >"$WORK/bulk.out"
ms=$(($(now_ms) - t0))
expect "scale: POST /objects with 20000 Services in a few seconds, beside a stalled stream" \
	"$(py 'j.get("written")' "$WORK/bulk.out") $([ "$ms" -lt 10000 ] && echo fast || echo "${ms}ms")" "20000 fast"
ctl POST /streams '{"action":"cut"}' >/dev/null
watch_exit big
note "20000 writes took ${ms} ms"
tok="" pages=0 total=0 rvs=""
t0=$(now_ms)
while :; do
	api /api/v1/namespaces/bulk/services -G --data-urlencode "limit=500" --data-urlencode "resourceVersion=0" ${tok:+--data-urlencode "continue=$tok"}
	[ "$CODE" = 200 ] || break
	pages=$((pages + 1))
	read -r count rv tok < <(py '"%d %s %s" % (len(j["items"]), j["metadata"]["resourceVersion"], j["metadata"].get("continue", ""))')
	total=$((total + count))
	rvs+=" $rv"
	if [ -z "$tok" ] || [ $pages -ge 50 ]; then break; fi
done
expect "scale: 20000 objects list in 40 pages of 500 at one resourceVersion" \
	"$CODE $pages $total $(tr ' ' '\n' <<<"$rvs" | sort -u | grep -c .)" "200 40 20000 1"
note "40 pages took $(($(now_ms) - t0)) ms"

# --- restart with --state-file ---------------------------------------------

saved_rev=$(revision)
x1=$(ctl GET /objects/Service/f5/x1)
stop_server
expect "restart: SIGTERM saves the state and exits 0" "$SERVER_RC $([ -s "$WORK/state.json" ] && echo saved)" "0 saved"
if ! start_server --history 3 --state-file "$WORK/state.json" --bookmark-interval 0.3; then
	not_ok "restart: stand-in starts again" "no ready file: $(tail -n 3 "$LOG" | tr '\n' ' ')"
	finish
fi
expect "restart: the revision and the objects come back, the history is empty" \
	"$(state_get '(j["revision"], j["oldest"], j["history"], j["counts"]["Service"] >= 20000)') $(ctl GET /objects/Service/f5/x1)" \
	"($saved_rev, $saved_rev, 0, True) $x1"
api /api/v1/namespaces/f5/services/x1
expect "restart: the token file is read at start" "$CODE" 200
watch_start rs1 "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$saved_rev"
rv=$(put "$(svc f5 x1 '{"after":"restart"}')")
wait_lines rs1 1
end_streams
watch_exit rs1
expect "restart: a watch from the current revision resumes" "$(py 'evsum(), [rv(e["object"]) for e in evs]' "$(out rs1)")" "('MODIFIED:x1', [$((saved_rev + 1))])"
watch_start rs2 "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$((saved_rev - 1))"
watch_exit rs2
expect "restart: a watch from an older revision gets ERROR 410 Expired" \
	"$(py '[(e["type"], e["object"]["reason"]) for e in evs]' "$(out rs2)") rc=$WRC" "[('ERROR', 'Expired')] rc=0"
for i in 1 2 3 4; do put "$(svc f5 "h$i")" >/dev/null; done
oldest=$(state_get 'j["oldest"]')
expect "F7 --history 3 keeps the last 3 writes" "$oldest" "$(($(revision) - 3))"
watch_start h1 "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$oldest"
wait_lines h1 3
end_streams
watch_exit h1
watch_start h2 "/api/v1/namespaces/f5/services?watch=1&resourceVersion=$((oldest - 1))"
watch_exit h2
expect "F7 a watch from the oldest kept revision replays; one before it gets 410" \
	"$(py evsum "$(out h1)") | $(py evsum "$(out h2)")" "ADDED:h2 ADDED:h3 ADDED:h4 | ERROR:-"
watch_start b1 "/api/v1/nodes?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=$(revision)"
watch_exit b1
expect_match "F9 --bookmark-interval 0.3 sends bookmarks from the start" "$(py evsum "$(out b1)") rc=$WRC" "^BOOKMARK:- BOOKMARK:-.* rc=0$"

stop_server
expect "SIGTERM: the stand-in exits 0" "$SERVER_RC" 0
note "took $((SECONDS - started)) s"
finish
