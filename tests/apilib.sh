# shellcheck shell=bash
# Helpers for the API groups (tests/kernel/api_*.sh): ferryd against the
# stand-in API server (tests/apiserver/standin.py) over HTTPS with a bearer
# token. Sourced after tests/lib.sh, whose cleanup ends what is started here
# (every stand-in pid goes into PIDS while it runs).
#
#   api_setup                 certificates (mkcerts.sh), a token file
#   api_start [ARGS...]       the stand-in, on the ports of the last start if
#                             any (a restart keeps its address), with
#                             --state-file (a restart keeps the objects);
#                             writes the kubeconfig
#   api_stop / api_restart    SIGTERM (the stand-in saves its state), by pid
#   api_ctl METHOD PATH [BODY]  the control API (BODY @- reads stdin)
#   api_put JSON / api_post_items JSON-ARRAY / api_delete KIND NS NAME
#   ferryd_k8s_start [ARGS]   ferryd --source k8s on the kubeconfig
#   maps_equal_api / wait_maps_equal_api SECONDS
#                             ferryctl's service list against what the
#                             stand-in's objects say (tests/apiserver/expected.py)
#   load_start / load_check   a client connecting in a loop to a ClusterIP
#                             during a fault, and a sampler of ferryctl's list
#   api_mark / req_py MARK EXPR
#                             the stand-in's request log (GET /requests):
#                             ferryd's requests after id MARK, in Python
#   applied_time              when ferryd last published (ferry_state)
#   recovered NAME MARK       the maps equal the API within 1 s of the first
#                             200 that ferryd got after request MARK
#
# Objects are written through the control API only (never through the API
# that ferryd uses), so GET /requests holds ferryd's requests and those of
# expected.py --api (User-Agent ferry-test-expected), which req_py skips.

STANDIN=$REPO/tests/apiserver/standin.py
MKCERTS=$REPO/tests/apiserver/mkcerts.sh
EXPECTED_PY=$REPO/tests/apiserver/expected.py
API_DIR=$WORK/api
API_CA=$API_DIR/pki/ca.crt
API_TOKEN_FILE=$API_DIR/token
API_KUBECONFIG=$API_DIR/kubeconfig
API_STATE=$API_DIR/state.json
API_NAMES=$API_DIR/names      # "KIND NS NAME" of every object written
API_LOG=$LOGDIR/standin.log
API_PORT=
API_CPORT=
API_PID=
# Where expected.py reads the objects: "control" (by name, through the
# control API; immune to injections) or "api" (paged lists, for thousands).
API_EXPECT=control
: >"$API_LOG"

# forget_pid PID: PID is gone; cleanup must not signal a reused number.
forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

api_write_token() {
	printf '%s\n' "$1" >"$API_TOKEN_FILE.tmp" && mv -f "$API_TOKEN_FILE.tmp" "$API_TOKEN_FILE"
}

api_setup() {
	mkdir -p "$API_DIR"
	: >"$API_NAMES"
	if ! bash "$MKCERTS" "$API_DIR/pki"; then
		not_ok "$GROUP setup" "mkcerts.sh failed"
		finish
	fi
	api_write_token "tok-$P-$RANDOM$RANDOM"
}

# The kubeconfig names the CA and the token file relative to its folder.
api_kubeconfig() { "$REPO/tests/apiserver/mkkubeconfig.sh" "$API_KUBECONFIG" "$API_PORT"; }

# api_start [STANDIN-ARGS...]: start the stand-in and wait until it listens.
api_start() {
	local ready=$API_DIR/ready.json pid
	rm -f "$ready"
	echo "=== standin.py ${API_PORT:+--port $API_PORT} $*" >>"$API_LOG"
	# shellcheck disable=SC2094 # both append: its log lines and a traceback
	"$PYTHON" "$STANDIN" --cert "$API_DIR/pki/server.crt" --key "$API_DIR/pki/server.key" \
		--token-file "$API_TOKEN_FILE" --port "${API_PORT:-0}" --control-port "${API_CPORT:-0}" \
		--state-file "$API_STATE" --ready-file "$ready" --log "$API_LOG" "$@" 2>>"$API_LOG" &
	pid=$!
	PIDS+=("$pid")
	wait_until 15 eval "[ -s '$ready' ] || ! kill -0 $pid"
	if [ ! -s "$ready" ]; then
		not_ok "$GROUP stand-in starts" "not ready: $(tail -n 3 "$API_LOG" | tr '\n' ' ')"
		return 1
	fi
	API_PID=$pid
	read -r API_PORT API_CPORT < <("$PYTHON" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["port"], j["control_port"])' "$ready")
	api_kubeconfig
}

# api_stop: SIGTERM (the state file is written), wait until it is gone.
api_stop() {
	[ -n "$API_PID" ] || return 0
	stop_pid "$API_PID"
	forget_pid "$API_PID"
	API_PID=
}

api_restart() { api_stop && api_start "$@"; }

# api_ctl METHOD PATH [BODY]: a control API call (BODY "@-": stdin); prints
# the answer; 1 unless it answered 200.
api_ctl() {
	local code out data=()
	out=$(mktemp "$API_DIR/ctl.XXXXXX")
	# The body goes through stdin: an argument is limited to 128 KiB.
	[ $# -ge 3 ] && data=(-H 'Content-Type: application/json' --data-binary @-)
	code=$(if [ "${3:-}" = @- ]; then cat; else printf '%s' "${3:-}"; fi |
		curl -sS --max-time 120 -X "$1" -o "$out" -w '%{http_code}' "${data[@]}" \
			"http://127.0.0.1:$API_CPORT$2" 2>&1) || code=000
	cat "$out"
	rm -f "$out"
	[ "$code" = 200 ]
}

# Records "KIND NS NAME" for each object of the JSON (an object or a list).
api_record() {
	"$PYTHON" -c '
import json, sys
j = json.load(sys.stdin)
for o in j if isinstance(j, list) else [j]:
    md = o["metadata"]
    print(o["kind"], md.get("namespace") or ("default" if o["kind"] != "Node" else "_"), md["name"])
' >>"$API_NAMES"
}

# api_put JSON: create or replace one object; prints its resourceVersion.
# API_PUT_T0: the Unix time just before the write was sent.
# shellcheck disable=SC2034
api_put() {
	local out
	API_PUT_T0=$EPOCHREALTIME
	if ! out=$(api_ctl PUT /objects "$1"); then
		echo "put failed: $out"
		return 1
	fi
	api_record <<<"$1"
	sed -n 's/.*"resourceVersion":"\([0-9]*\)".*/\1/p' <<<"$out"
}

# api_post_items JSON-ARRAY-FILE: every object of the file, one write each.
api_post_items() {
	local out
	if ! out=$("$PYTHON" -c 'import json,sys; json.dump({"items": json.load(open(sys.argv[1]))}, sys.stdout)' "$1" |
		api_ctl POST /objects @-); then
		echo "post failed: $out"
		return 1
	fi
	api_record <"$1"
	echo "$out"
}

api_delete() {
	API_PUT_T0=$EPOCHREALTIME
	api_ctl DELETE "/objects/$1/$2/$3" >/dev/null
}

api_state() { api_ctl GET /state | "$PYTHON" -c 'import json,sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# --- objects ---------------------------------------------------------------

# svc_json NS NAME CLUSTERIP PORTS-JSON [LABELS-JSON]
svc_json() {
	printf '{"kind":"Service","apiVersion":"v1","metadata":{"name":"%s","namespace":"%s","labels":%s},"spec":{"clusterIP":"%s","ports":%s}}' \
		"$2" "$1" "${5:-{\}}" "$3" "$4"
}

# eps ADDR...: an endpoints list; "-ADDR" is an endpoint with ready false.
eps() {
	local a sep='' out='['
	for a in "$@"; do
		if [ "${a#-}" != "$a" ]; then
			out+="$sep{\"addresses\":[\"${a#-}\"],\"conditions\":{\"ready\":false}}"
		else
			out+="$sep{\"addresses\":[\"$a\"],\"conditions\":{\"ready\":true}}"
		fi
		sep=,
	done
	echo "$out]"
}

# slice_json NS NAME SERVICE PORTS-JSON ENDPOINTS-JSON [LABELS-JSON]
slice_json() {
	local labels=${6:-{\}}
	printf '{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"%s","namespace":"%s","labels":%s},"addressType":"IPv4","ports":%s,"endpoints":%s}' \
		"$2" "$1" "$("$PYTHON" -c 'import json,sys; l=json.loads(sys.argv[1]); l["kubernetes.io/service-name"]=sys.argv[2]; print(json.dumps(l))' "$labels" "$3")" \
		"$4" "$5"
}

node_json() {
	printf '{"kind":"Node","apiVersion":"v1","metadata":{"name":"%s","labels":{"topology.kubernetes.io/zone":"zone-a"}},"status":{"addresses":[{"type":"InternalIP","address":"198.18.0.1"}]}}' "$1"
}

# --- ferryd ----------------------------------------------------------------

# ferryd_k8s_start [ARGS...]: ferryd on the stand-in, waiting for generation 1.
ferryd_k8s_start() { ferryd_start k8s --kubeconfig "$API_KUBECONFIG" "$@"; }
ferryd_k8s_spawn() { ferryd_spawn k8s --kubeconfig "$API_KUBECONFIG" "$@"; }

ferryd_alive() { [ -n "$FERRYD_PID" ] && kill -0 "$FERRYD_PID" 2>/dev/null; }

# --- the maps against the API ----------------------------------------------

api_expected() {
	if [ "$API_EXPECT" = api ]; then
		"$PYTHON" "$EXPECTED_PY" expected --api "https://127.0.0.1:$API_PORT" --ca "$API_CA" \
			--token-file "$API_TOKEN_FILE"
	else
		"$PYTHON" "$EXPECTED_PY" expected --control "http://127.0.0.1:$API_CPORT" --names "$API_NAMES"
	fi
}

maps_actual() { service_list_json | "$PYTHON" "$EXPECTED_PY" actual; }

# maps_equal_api: ferryctl's list is what the API objects say; the two
# sides go to $API_DIR/expected.txt and actual.txt.
maps_equal_api() {
	api_expected >"$API_DIR/expected.txt" || return 1
	maps_actual >"$API_DIR/actual.txt" || return 1
	cmp -s "$API_DIR/expected.txt" "$API_DIR/actual.txt"
}

wait_maps_equal_api() { wait_until "$1" maps_equal_api; }

# maps_diff: what differs, on one line (after maps_equal_api failed).
maps_diff() {
	diff "$API_DIR/expected.txt" "$API_DIR/actual.txt" | grep '^[<>]' | head -n 6 |
		sed 's/^</want/; s/^>/have/' | tr '\n' ';'
}

# expect_maps_equal NAME [SECONDS]
expect_maps_equal() {
	if wait_maps_equal_api "${2:-5}"; then
		ok "$1"
	else
		not_ok "$1" "$(maps_diff)"
	fi
}

# --- requests and times ----------------------------------------------------

# req_py MARK EXPR: EXPR (Python; printed) over ferryd's API requests with
# an id above MARK, as the list r (several lines: statements that print) (GET /requests; time is the Unix time of the
# request, status its answer, ended how a watch ended).
# shellcheck disable=SC2016
REQ_PY='
import json, sys
r = [x for x in json.load(sys.stdin) if x.get("user_agent") == "ferryd" and x["id"] > int(sys.argv[1])]
def ok200(x):
    return x["status"] == 200 and x.get("ended") not in ("expire", "expired")
def first_ok(kind=None):
    t = [x["time"] for x in r if ok200(x) and (kind is None or x["kind"] == kind)]
    return min(t) if t else None
def is_watch(x):
    # "watch" is only set on a served watch, not on one refused (401, 503 ...)
    return x["query"].get("watch") in ("1", "true", "True", "t")
def lists(kind=None):
    return [x for x in r if not is_watch(x) and (kind is None or x["kind"] == kind)]
def gaps(kind, code=None):
    t = [x["time"] for x in r if x["kind"] == kind and (code is None or x["status"] == code)]
    return [b - a for a, b in zip(t, t[1:])]
if "\n" in sys.argv[2]:
    exec(sys.argv[2])
else:
    print(eval(sys.argv[2]))'
req_py() { api_ctl GET "/requests?since=$(($1 + 1))" | "$PYTHON" -c "$REQ_PY" "$1" "$2"; }

# api_mark: the id of the last API request so far.
api_mark() { api_ctl GET /requests | "$PYTHON" -c 'import json,sys; r=json.load(sys.stdin); print(max([x["id"] for x in r] or [0]))'; }

# applied_time: Unix time (s) of ferryd's last publish (ferry_state).
applied_time() {
	"$PYTHON" -c "$FERRY_STATE_PY"'
print("%.6f" % (StateMap(sys.argv[1]).applied_ns() / 1e9))' "$BPFFS/ferry_state"
}

# recovered NAME MARK [KINDS...]: the maps equal the API state (10 s at
# most), and ferryd's publish that made them so came at most 1 s after the
# first 200 it got after request MARK. Each collection retries on its own
# clock: KINDS (default Service EndpointSlice) are the collections whose
# changes were pending, and the delay is taken from the first 200 of the
# last of them to get one (a 200 that carries a 410 does not count), or from
# the last write (api_put, api_delete) when that came later still; the delay
# from the first 200 of any request is reported too. The publish time is
# ferryd's (ferry_state), the others the stand-in's and this shell's: one
# clock, CLOCK_REALTIME.
RECOVERY_LIMIT_MS=${RECOVERY_LIMIT_MS:-1000}
recovered() {
	local name=$1 mark=$2 kinds t_eq line d_any d_kinds what
	shift 2
	kinds=${*:-Service EndpointSlice}
	if ! wait_maps_equal_api 10; then
		not_ok "$name: the maps equal the API state" "$(maps_diff)"
		return 1
	fi
	t_eq=$(applied_time)
	line=$(req_py "$mark" "
a, k = first_ok(), [first_ok(k) for k in '$kinds'.split()]
if a is None or None in k:
    print('none none none')
else:
    ref, what = max(k), 'the first 200 of ($kinds)'
    if ${API_PUT_T0:-0} > ref:
        ref, what = ${API_PUT_T0:-0}, 'the last write (after the first 200 of ($kinds))'
    print('%.1f %.1f %s' % (($t_eq - ref) * 1000, ($t_eq - a) * 1000, what))")
	read -r d_kinds d_any what <<<"$line"
	if [ "$d_kinds" = none ]; then
		not_ok "$name: ferryd got a 200 for each of ($kinds) after the fault" \
			"$(req_py "$mark" "[(x['kind'], x['status']) for x in r]")"
		return 1
	fi
	note "$name: recovery: maps equal the API $d_kinds ms after $what, $d_any ms after the first 200 of any request"
	# Negative: the last publish came before that 200, and the maps
	# already equalled the API (the retry brought nothing new).
	if awk -v d="$d_kinds" -v lim="$RECOVERY_LIMIT_MS" 'BEGIN {exit !(d <= lim)}'; then
		ok "$name: the maps equal the API state within 1 s after the first successful retry ($d_kinds ms)"
	else
		not_ok "$name: the maps equal the API state within 1 s after the first successful retry" \
			"$d_kinds ms (publish $t_eq)"
	fi
}

# --- a client during a fault ------------------------------------------------

# load_start TAG SECONDS ADDR PORT: conncount to ADDR:PORT in a loop for
# SECONDS, and a sampler writing, every 100 ms, how many frontends ferryctl
# lists and the backends of ADDR:PORT/TCP.
load_start() {
	local tag=$1 secs=$2 addr=$3 port=$4
	bg_client "$CONNCOUNT" -n 1000000 -t "$secs" "$addr" "$port" >"$WORK/$tag-loop.txt"
	LOAD_PID=$!
	(
		end=$((SECONDS + ${secs%.*} + 1))
		while [ $SECONDS -lt $end ] && kill -0 "$LOAD_PID" 2>/dev/null; do
			service_list_json 2>/dev/null | "$PYTHON" -c '
import json, sys
rows = json.load(sys.stdin)
mine = [r for r in rows if (r["address"], r["port"], r["protocol"]) == (sys.argv[1], int(sys.argv[2]), "TCP")]
print(len(rows), len(mine[0]["backends"]) if mine else 0)' "$addr" "$port" || echo "0 0"
			sleep 0.1
		done
	) >"$WORK/$tag-samples.txt" 2>/dev/null &
	SAMPLER_PID=$!
	PIDS+=("$SAMPLER_PID")
}

# load_check TAG WHAT MIN-FRONTENDS: the loop saw no failed connect, kept
# connecting, and every sample listed at least MIN-FRONTENDS with backends
# for the loop's frontend.
load_check() {
	local tag=$1 what=$2 min=$3 answered errors worst
	wait "$LOAD_PID"
	wait "$SAMPLER_PID"
	forget_pid "$LOAD_PID"
	forget_pid "$SAMPLER_PID"
	answered=$(awk '$2 !~ /^error:/ {s += $1} END {print s + 0}' "$WORK/$tag-loop.txt")
	errors=$(grep 'error:' "$WORK/$tag-loop.txt" | grep -v 'error:deadline' | tr '\n' ' ')
	expect "$tag: no failed connect to the ClusterIP during $what ($answered answered)" "${errors:-none}" none
	if [ "$answered" -ge 50 ]; then
		ok "$tag: the client kept connecting during $what"
	else
		not_ok "$tag: the client kept connecting during $what" "only $answered answers"
	fi
	worst=$(awk 'NR == 1 || $1 < f {f = $1} NR == 1 || $2 < b {b = $2} END {print NR, f + 0, b + 0}' "$WORK/$tag-samples.txt")
	read -r n f b <<<"$worst"
	if [ "$n" -gt 0 ] && [ "$f" -ge "$min" ] && [ "$b" -gt 0 ]; then
		ok "$tag: no datapath flush: every one of $n samples lists >= $min frontends, the client's with backends"
	else
		not_ok "$tag: no datapath flush during $what" "$n samples, fewest frontends $f (want >= $min), fewest backends $b"
	fi
}

expect_alive() {
	if ferryd_alive; then ok "$1: ferryd is alive"; else not_ok "$1: ferryd is alive" "pid $FERRYD_PID gone"; fi
}

# --- the fault groups' cluster ------------------------------------------------

# put OBJECT_JSON: one write through the control API; a refusal is a case.
put() { api_put "$1" >/dev/null || not_ok "write through the API" "${1:0:300}"; }
stream() { api_ctl POST /streams "$1"; }
# work EP...: Service "work"'s slice in $NS with these endpoints.
work() { put "$(slice_json "$NS" work-1 work "$SL" "$(eps "$@")")"; }

# fault_cluster NET [FERRYD_ARG...]: in namespace $NS, Services steady
# (endpoints 198.18.NET.1 and .2), work (.1) and gone (.3) on 10.96.NET.1-3,
# port 80 to 8080, and this node's Node; then ferryd, checked against the API.
fault_cluster() {
	local n=$1
	shift
	HTTP='[{"name":"http","port":80}]'
	SL='[{"name":"http","port":8080}]'
	put "$(node_json node-a)"
	put "$(svc_json "$NS" steady "10.96.$n.1" "$HTTP")"
	put "$(slice_json "$NS" steady-1 steady "$SL" "$(eps "198.18.$n.1" "198.18.$n.2")")"
	put "$(svc_json "$NS" work "10.96.$n.2" "$HTTP")"
	work "198.18.$n.1"
	put "$(svc_json "$NS" gone "10.96.$n.3" "$HTTP")"
	put "$(slice_json "$NS" gone-1 gone "$SL" "$(eps "198.18.$n.3")")"
	ferryd_k8s_start "$@" || finish
	expect_maps_equal "start: the maps equal the API state"
}
