#!/usr/bin/env bash
# Metrics and health (issue 6, "Observability"; B29). ferryd serves
# Prometheus metrics on --metrics-addr and kube-proxy's /healthz and /livez
# on --health-addr, here on free ports of 127.0.0.1 (never the defaults).
# On the file source:
#  - /metrics answers in the text exposition format (version 0.0.4, every
#    family with HELP and TYPE), and its values agree with ferryctl (service
#    ports, backends, generation), with the maps (fill ratio) and with what
#    the test did (connections translated, a sync after a source change);
#  - /healthz and /livez answer 200 with kube-proxy's JSON; 404 elsewhere,
#    405 for a POST;
#  - an update that cannot be programmed (no room in the maps) turns
#    /healthz 503 once --health-timeout has passed, and 200 again once it
#    is gone; /livez stays 200 (the loop runs: a restart would not make
#    room);
#  - an address that cannot be bound stops ferryd at start, naming it.
# On the API server (the stand-in, tests/apilib.sh):
#  - before the first list, /healthz answers 503 (after --health-timeout)
#    while /livez answers 200 (a restart would not bring the API back), and
#    /healthz 200 once the first list is programmed;
#  - the watch metrics count lists, relists after a 410, events by type,
#    errors by reason, and the event-to-datapath latency;
#  - a Node being deleted (the autoscaler's ToBeDeletedByClusterAutoscaler
#    taint, deletionTimestamp, then deleted, also while the watch was down)
#    turns /healthz 503 with nodeEligible false while /livez stays 200.
# shellcheck disable=SC2317 # functions run through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apilib.sh
source "$(dirname "$0")/../apilib.sh"
# shellcheck source=tests/helpers/observe_lib.sh
source "$(dirname "$0")/../helpers/observe_lib.sh"

topology_up
pod o-1 198.18.80.1 "" --tcp 8080
pod o-2 198.18.80.2 "" --tcp 8080

SRC=$WORK/observe.yaml

# svc NAME VIP PORTS-FLOW SLICE-PORTS-FLOW POD-ADDR...: a Service and its
# slice (namespace observe), demo.yaml style.
svc() {
	local name=$1 vip=$2 ports=$3 sports=$4 a
	shift 4
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: observe}
spec:
  type: ClusterIP
  clusterIP: $vip
  clusterIPs: [$vip]
  ports: $ports
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: observe, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: $sports
endpoints:
EOF
	for a in "$@"; do echo "- {addresses: [$a], conditions: {ready: true}}"; done
}
HTTP='[{name: http, port: 80, protocol: TCP, targetPort: 8080}]'
HTTP_ALT='[{name: http, port: 80, protocol: TCP, targetPort: 8080}, {name: alt, port: 81, protocol: TCP, targetPort: 8080}]'
SL_HTTP='[{name: http, port: 8080, protocol: TCP}]'
SL_BOTH='[{name: http, port: 8080, protocol: TCP}, {name: alt, port: 8080, protocol: TCP}]'
A=10.96.80.1 B=10.96.80.2 C=10.96.80.3 D=10.96.80.4

# --- metrics ------------------------------------------------------------------
{
	svc a $A "$HTTP_ALT" "$SL_BOTH" 198.18.80.1 198.18.80.2
	svc b $B "$HTTP" "$SL_HTTP" 198.18.80.1
} | write_source "$SRC"
obs_ports
ferryd_start "$SRC" --metrics-addr "127.0.0.1:$MPORT" --health-addr "127.0.0.1:$HPORT" || finish

expect "metrics: ferryd listens on 127.0.0.1:$MPORT and 127.0.0.1:$HPORT only (ss)" \
	"$(listeners)" "$(printf '127.0.0.1:%s\n' "$MPORT" "$HPORT" | sort | tr '\n' ' ' | sed 's/ $//')"
expect "metrics: starting the two servers logs no warning" \
	"$(grep -v 'component=libbpf' "$FERRYD_LOG" | grep 'component=httpd' | grep -v 'level=info' | head -n 2 | sed 's/.*msg=//' | tr '\n' ' ')" ""
expect "B29 metrics: GET /metrics answers 200, Content-Type text/plain; version=0.0.4" \
	"$(http GET "$MURL/metrics" "$WORK/m.txt" | sed 's/; charset=utf-8$//')" "200 text/plain; version=0.0.4"
expect "metrics: the exposition parses; every family has HELP and TYPE" \
	"$("$PYTHON" "$PROM" check "$WORK/m.txt")" ok
note "metrics: families: $("$PYTHON" "$PROM" families "$WORK/m.txt" | tr '\n' ' ')"
expect "metrics: ferry_build_info is 1" "$(metric 'ferry_build_info')" 1

listed=$(service_list_json | "$PYTHON" -c '
import json, sys
rows = json.load(sys.stdin)
print(len(rows), sum(len(r["backends"]) for r in rows))')
expect "metrics: ferryctl lists 3 service ports and 5 backends (the source)" "$listed" "3 5"
expect "metrics: ferry_service_ports and ferry_backends equal ferryctl service list" \
	"$(metric ferry_service_ports) $(metric ferry_backends)" "$listed"
expect "metrics: ferry_service_ports_pending is 0" "$(metric ferry_service_ports_pending)" 0
# Small sets ride inline and have no slots: ferry_slots may be empty.
for map in ferry_services4 ferry_slots ferry_backends; do
	r=$(metric "ferry_map_fill_ratio{map=\"$map\"}")
	want=$(status_get --maps "'%d/%d' % [(m['entries'], m['capacity']) for m in j['maps'] if m['name'] == '$map'][0]")
	range="(0, 1]" low=0
	[ "$map" = ferry_slots ] && range="[0, 1]" low=-1
	if awk -v r="$r" -v low="$low" 'BEGIN {exit !(r != "" && r > low && r <= 1)}'; then
		ok "metrics: ferry_map_fill_ratio{map=\"$map\"} is in $range ($r)"
	else
		not_ok "metrics: ferry_map_fill_ratio{map=\"$map\"} is in $range" "'$r'"
	fi
	if awk -v r="$r" -v w="$want" 'BEGIN {split(w, f, "/"); q = f[1] / f[2]; exit !(f[2] > 0 && r >= q * 0.999 && r <= q * 1.001)}'; then
		ok "metrics: ferry_map_fill_ratio{map=\"$map\"} is ferryctl status's entries / capacity ($want)"
	else
		not_ok "metrics: ferry_map_fill_ratio{map=\"$map\"} is ferryctl status's entries / capacity" "$r, ferryctl $want"
	fi
done
expect "metrics: ferry_generation equals ferryctl status's generation" \
	"$(metric ferry_generation)" "$(generation)"

x0=$(metric 'ferry_datapath_events_total{event="translated_v4"}')
expect "metrics: 30 connections from the client cgroup to $A:80 reach o-1 and o-2" \
	"$(names_of "$(conn_tally 30 $A 80)")" "o-1 o-2"
x1=$(metric 'ferry_datapath_events_total{event="translated_v4"}')
if [ -n "$x0" ] && [ -n "$x1" ] && [ "$x1" -ge $((x0 + 30)) ]; then
	ok "metrics: ferry_datapath_events_total{event=\"translated_v4\"} rose by >= 30 ($x0 -> $x1)"
else
	not_ok "metrics: ferry_datapath_events_total{event=\"translated_v4\"} rose by >= 30" "$x0 -> $x1"
fi

s0=$(metric ferry_sync_duration_seconds_count)
{
	svc a $A "$HTTP_ALT" "$SL_BOTH" 198.18.80.1 198.18.80.2
	svc b $B "$HTTP" "$SL_HTTP" 198.18.80.1 198.18.80.2
} | update_source "$SRC" || not_ok "metrics: a source change is published" "generation $(generation)"
t_now=$EPOCHREALTIME
s1=$(metric ferry_sync_duration_seconds_count)
if [ -n "$s0" ] && [ -n "$s1" ] && [ "$s1" -gt "$s0" ]; then
	ok "metrics: ferry_sync_duration_seconds_count rose after a source change ($s0 -> $s1)"
else
	not_ok "metrics: ferry_sync_duration_seconds_count rose after a source change" "$s0 -> $s1"
fi
expect "metrics: after the change, ferry_backends is 6 and equals ferryctl" \
	"$(metric ferry_backends) $(service_list_json | "$PYTHON" -c 'import json,sys; print(sum(len(r["backends"]) for r in json.load(sys.stdin)))')" "6 6"
expect "metrics: after the change, ferry_generation equals ferryctl status's generation" \
	"$(metric ferry_generation)" "$(generation)"
ts=$(metric ferry_last_sync_timestamp_seconds)
if awk -v t="$ts" -v now="$t_now" 'BEGIN {d = now - t; exit !(d >= -0.5 && d <= 5)}'; then
	ok "metrics: ferry_last_sync_timestamp_seconds is within 5 s of now ($ts, now $t_now)"
else
	not_ok "metrics: ferry_last_sync_timestamp_seconds is within 5 s of now" "$ts, now $t_now"
fi
expect "metrics: GET /other answers 404" "$(http GET "$MURL/other" "$WORK/x.txt" | cut -d' ' -f1)" 404
expect "metrics: POST /metrics answers 405" "$(http POST "$MURL/metrics" "$WORK/x.txt" | cut -d' ' -f1)" 405

# --- health -------------------------------------------------------------------
expect "B29 health: GET /healthz answers 200, Content-Type application/json" \
	"$(http GET "$HURL/healthz" "$WORK/h.json")" "200 application/json"
expect "B29 health: /healthz JSON: lastUpdated and currentTime (RFC 3339), nodeEligible true" \
	"$(health_json "$WORK/h.json")" "currentTime=RFC3339 lastUpdated=RFC3339 nodeEligible=True"
expect "health: /healthz lastUpdated is ferry_last_sync_timestamp_seconds, currentTime is now" \
	"$(health_times "$WORK/h.json" "$(metric ferry_last_sync_timestamp_seconds)")" "lastUpdated=same currentTime=now"
expect "B29 health: GET /livez answers 200, Content-Type application/json" \
	"$(http GET "$HURL/livez" "$WORK/l.json")" "200 application/json"
expect "B29 health: /livez JSON: lastUpdated and currentTime, no nodeEligible" \
	"$(health_json "$WORK/l.json")" "currentTime=RFC3339 lastUpdated=RFC3339"
expect "health: GET /other answers 404" "$(http GET "$HURL/other" "$WORK/x.txt" | cut -d' ' -f1)" 404
expect "health: GET /metrics on the health address answers 404" \
	"$(http GET "$HURL/metrics" "$WORK/x.txt" | cut -d' ' -f1)" 404
expect "health: POST /healthz answers 405" "$(http POST "$HURL/healthz" "$WORK/x.txt" | cut -d' ' -f1)" 405
expect "health: POST /livez answers 405" "$(http POST "$HURL/livez" "$WORK/x.txt" | cut -d' ' -f1)" 405

# --- a stuck update -------------------------------------------------------------
# --max-services 1: room for one service port. A second one waits in the
# pending set, never programmed: after --health-timeout 1 it is stuck.
ferryd_reset
svc c $C "$HTTP" "$SL_HTTP" 198.18.80.1 | write_source "$SRC"
obs_ports
ferryd_start "$SRC" --max-services 1 --health-timeout 1 \
	--metrics-addr "127.0.0.1:$MPORT" --health-addr "127.0.0.1:$HPORT" || finish
expect "stuck: one service port that fits: /healthz 200, nothing pending" \
	"$(http GET "$HURL/healthz" /dev/null) $(metric ferry_service_ports_pending)" "200 application/json 0"
{
	svc c $C "$HTTP" "$SL_HTTP" 198.18.80.1
	svc d $D "$HTTP" "$SL_HTTP" 198.18.80.2
} | write_source "$SRC"
t_write=$EPOCHREALTIME
if wait_until 10 metric_is ferry_service_ports_pending 1; then
	ok "stuck: a second Service that finds no room: ferry_service_ports_pending is 1"
else
	not_ok "stuck: a second Service that finds no room: ferry_service_ports_pending is 1" \
		"$(metric ferry_service_ports_pending)"
fi
if wait_until 10 code_is "$HURL/healthz" 503; then
	took=$("$PYTHON" -c "print('%.2f' % ($EPOCHREALTIME - $t_write))")
	note "stuck: /healthz answered 503 $took s after the write (--health-timeout 1)"
	if awk -v t="$took" 'BEGIN {exit !(t >= 0.9 && t <= 5)}'; then
		ok "B29 stuck: /healthz turns 503 after --health-timeout (1 s), within 5 s ($took s)"
	else
		not_ok "B29 stuck: /healthz turns 503 after --health-timeout (1 s), within 5 s" "$took s"
	fi
else
	not_ok "B29 stuck: /healthz turns 503 within 10 s" "$(http GET "$HURL/healthz" /dev/null)"
fi
expect "stuck: /healthz 503 still carries the JSON, nodeEligible true" \
	"$(http GET "$HURL/healthz" "$WORK/h.json") $(health_json "$WORK/h.json")" \
	"503 application/json currentTime=RFC3339 lastUpdated=RFC3339 nodeEligible=True"
within=$("$PYTHON" "$PROBE_LOAD" probe 10 0.2 "$HURL/livez")
expect "stuck: /livez stays 200 while /healthz is 503, over 2 s (the loop runs)" \
	"$(field codes "$within") $(http GET "$HURL/healthz" /dev/null | cut -d' ' -f1)" "200:10 503"
expect "stuck: the Service that fits still answers" "$(field reply "$(probe tcp $C 80)")" o-1
expect "stuck: ferry_service_ports is 1, ferry_map_full_errors_total >= 1" \
	"$(metric ferry_service_ports) $(metric ferry_map_full_errors_total | awk '{print ($1 >= 1)}')" "1 1"
svc c $C "$HTTP" "$SL_HTTP" 198.18.80.1 | write_source "$SRC"
health_becomes "stuck: the second Service removed: /healthz 200 again" 200
expect "stuck: /livez 200 again, ferry_service_ports_pending 0" \
	"$(http GET "$HURL/livez" /dev/null | cut -d' ' -f1) $(metric ferry_service_ports_pending)" "200 0"

# --- an address that cannot be bound -------------------------------------------
# A listener of the test's own holds a port; ferryd is asked to serve there.
hold_port
for which in metrics health; do
	ferryd_reset
	obs_ports
	if [ $which = metrics ]; then
		args=(--metrics-addr "127.0.0.1:$HELD" --health-addr "127.0.0.1:$HPORT")
	else
		args=(--metrics-addr "127.0.0.1:$MPORT" --health-addr "127.0.0.1:$HELD")
	fi
	from=$(($(wc -l <"$FERRYD_LOG") + 1))
	ferryd_spawn "$SRC" "${args[@]}" || finish
	expect_refused "bind: --$which-addr on a port in use: ferryd exits at start" 10
	line=$(tail -n "+$from" "$FERRYD_LOG" | grep -v -e 'component=libbpf' -e '^===' |
		grep 'level=error' | grep -F "127.0.0.1:$HELD" | head -n 1)
	note "bind: $line"
	expect_match "bind: --$which-addr: an error line names the address 127.0.0.1:$HELD" \
		"$line" "component=httpd msg=\"$which: .*127\\.0\\.0\\.1:$HELD"
	expect "bind: --$which-addr: nothing is attached to the cgroup" \
		"$(bpftool cgroup show "$CG" 2>/dev/null | grep -c ferry_)" 0
done

stop_pid "$HOLDER_PID"
forget_pid "$HOLDER_PID"

# === On the API server ============================================================
ferryd_reset
api_setup
api_start --bookmark-interval 1 || finish
NS=observe
AHTTP='[{"name":"http","port":80,"targetPort":8080}]'
ASL='[{"name":"http","port":8080}]'
E=10.96.80.5 F=10.96.80.6
put() { api_put "$1" >/dev/null || not_ok "write through the API" "${1:0:300}"; }
put "$(node_json node-a)"
put "$(svc_json $NS e $E "$AHTTP")"
put "$(slice_json $NS e-1 e "$ASL" "$(eps 198.18.80.1)")"

# --- before the first list ------------------------------------------------------
# Every API request answers 503 (Retry-After: 1) for the first 6 s.
obs_ports
api_ctl POST /inject '{"code":503,"seconds":6,"retry_after":1}' >/dev/null
t_inject=$EPOCHREALTIME
ferryd_k8s_spawn --health-timeout 1 --metrics-addr "127.0.0.1:$MPORT" --health-addr "127.0.0.1:$HPORT" ||
	finish
injecting() { "$PYTHON" -c "import sys, time; sys.exit(time.time() >= $t_inject + 6)"; }
if wait_until 5 code_is "$HURL/healthz" 503; then
	now_injecting=$(injecting && echo yes || echo no)
	expect "B29 B33 API answering 503, no first list yet: /healthz 503, /livez 200, nothing published, within the 6 s of 503s" \
		"$(http GET "$HURL/healthz" "$WORK/h.json" | cut -d' ' -f1) $(http GET "$HURL/livez" /dev/null | cut -d' ' -f1) ${now_injecting:-no} gen=$(generation)" \
		"503 200 yes gen="
	expect "before the first list: /healthz JSON has lastUpdated Go's zero time, nodeEligible true" \
		"$("$PYTHON" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j.get("lastUpdated"), j.get("nodeEligible"))' "$WORK/h.json")" \
		"0001-01-01T00:00:00Z True"
else
	not_ok "B29 B33 API answering 503, no first list yet: /healthz 503 within 5 s" "$(http GET "$HURL/healthz" /dev/null)"
fi
if wait_until 5 metric_above 'ferry_watch_errors_total{collection="services",reason="server_error"}' 0; then
	ok "metrics: the injected 503s count in ferry_watch_errors_total{collection=\"services\",reason=\"server_error\"} ($(metric 'ferry_watch_errors_total{collection="services",reason="server_error"}'))"
else
	not_ok "metrics: the injected 503s count in ferry_watch_errors_total{collection=\"services\",reason=\"server_error\"}" \
		"$(metric 'ferry_watch_errors_total{collection="services",reason="server_error"}')"
fi
if wait_generation 1 15; then
	ok "B33 once the 503s end, the first list is programmed"
else
	not_ok "B33 once the 503s end, the first list is programmed" "generation '$(generation)'"
	finish
fi
health_becomes "B29 first list programmed: /healthz 200" 200
expect "first list programmed: /livez 200, /healthz nodeEligible true" \
	"$(http GET "$HURL/livez" /dev/null | cut -d' ' -f1) $(http GET "$HURL/healthz" "$WORK/h.json" >/dev/null; health_json "$WORK/h.json")" \
	"200 currentTime=RFC3339 lastUpdated=RFC3339 nodeEligible=True"
expect_maps_equal "first list programmed: the maps equal the API state"
expect "API: the exposition parses; every family has HELP and TYPE" \
	"$(curl -sS --max-time 5 -o "$WORK/m.txt" "$MURL/metrics" && "$PYTHON" "$PROM" check "$WORK/m.txt")" ok

# --- watch metrics ----------------------------------------------------------------
SVC_LISTS='ferry_watch_lists_total{collection="services"}'
SVC_RELISTS='ferry_watch_relists_total{collection="services"}'
SL_MOD='ferry_watch_events_total{collection="endpointslices",type="modified"}'
SVC_ADD='ferry_watch_events_total{collection="services",type="added"}'
E2D='ferry_event_to_datapath_seconds_count'
SVC_5XX='ferry_watch_errors_total{collection="services",reason="server_error"}'

# rose NAME SELECTOR BEFORE [SECONDS]: the sample rises above BEFORE.
rose() {
	if wait_until "${4:-5}" metric_above "$2" "$3"; then
		ok "$1 ($3 -> $(metric "$2"))"
	else
		not_ok "$1" "still $(metric "$2") (before: $3)"
	fi
}

v=$(metric "$SVC_LISTS")
if [ -n "$v" ] && [ "$v" -ge 1 ]; then
	ok "metrics: $SVC_LISTS >= 1 ($v)"
else
	not_ok "metrics: $SVC_LISTS >= 1" "'$v'"
fi
r0=$(metric "$SVC_RELISTS")
streams=$(api_ctl POST /streams '{"action":"expire"}')
expect_match "the watches get a 410 (POST /streams expire)" "$streams" '"streams":[1-9]'
rose "metrics: after a 410, $SVC_RELISTS rises" "$SVC_RELISTS" "${r0:-0}" 10
expect_maps_equal "after the relist: the maps equal the API state"
health_becomes "after the relist: /healthz 200" 200

m0=$(metric "$SL_MOD") a0=$(metric "$SVC_ADD") l0=$(metric "$E2D")
put "$(slice_json $NS e-1 e "$ASL" "$(eps 198.18.80.1 198.18.80.2)")"
put "$(svc_json $NS f $F "$AHTTP")"
put "$(slice_json $NS f-1 f "$ASL" "$(eps 198.18.80.2)")"
expect_maps_equal "a slice changed, a Service created: the maps equal the API state"
rose "metrics: a slice changed: $SL_MOD rises" "$SL_MOD" "${m0:-0}"
rose "metrics: a Service created: $SVC_ADD rises" "$SVC_ADD" "${a0:-0}"
rose "metrics: $E2D rises" "$E2D" "${l0:-0}"
expect "the changed Service answers from o-1 and o-2 (x20)" "$(names_of "$(conn_tally 20 $E 80)")" "o-1 o-2"

e0=$(metric "$SVC_5XX")
api_ctl POST /inject '{"code":503,"count":1,"retry_after":1,"match":"/api/v1/services"}' >/dev/null
api_ctl POST /streams '{"action":"end","kind":"Service"}' >/dev/null
rose "metrics: an injected 503 on the Services watch: $SVC_5XX rises" "$SVC_5XX" "${e0:-0}" 10
put "$(svc_json $NS f $F '[{"name":"http","port":80,"targetPort":8080},{"name":"alt","port":81,"targetPort":8080}]')"
expect_maps_equal "after the 503, a change through the API reaches the maps" 10

# --- node eligibility ------------------------------------------------------------------
# kube-proxy: /healthz 503 with nodeEligible false while the Node is being
# deleted; /livez does not look at the Node. The cluster autoscaler's
# ToBeDeletedByClusterAutoscaler taint counts as being deleted, and its
# removal makes the node eligible again.
tainted=$("$PYTHON" -c '
import json, sys
o = json.loads(sys.argv[1])
o.setdefault("spec", {})["taints"] = [{"key": "ToBeDeletedByClusterAutoscaler", "value": "1700000000", "effect": "NoSchedule"}]
print(json.dumps(o))' "$(node_json node-a)")
put "$tainted"
health_becomes "B29 Node tainted ToBeDeletedByClusterAutoscaler: /healthz 503" 503
expect "Node tainted: /healthz JSON nodeEligible false; /livez 200" \
	"$(health_seen)" \
	"503 currentTime=RFC3339 lastUpdated=RFC3339 nodeEligible=False 200"
expect "Node tainted: the log names the taint" \
	"$(grep -c 'node node-a: .*; being deleted (ToBeDeletedByClusterAutoscaler taint)' "$FERRYD_LOG")" 1
put "$(node_json node-a)"
health_becomes "B29 taint removed: /healthz 200 again" 200
deleting=$("$PYTHON" -c '
import json, sys
o = json.loads(sys.argv[1])
o["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
print(json.dumps(o))' "$(node_json node-a)")
if out=$(api_ctl PUT /objects "$deleting"); then
	ok "the stand-in takes a Node with metadata.deletionTimestamp"
	health_becomes "B29 Node being deleted (deletionTimestamp): /healthz 503" 503
	expect "Node being deleted: /healthz JSON nodeEligible false; /livez 200" \
		"$(health_seen)" \
		"503 currentTime=RFC3339 lastUpdated=RFC3339 nodeEligible=False 200"
	expect "Node being deleted: the log says so" "$(grep -c 'node node-a: .*; being deleted"' "$FERRYD_LOG")" 1
else
	not_ok "the stand-in takes a Node with metadata.deletionTimestamp" "$out"
fi
api_delete Node _ node-a
if wait_until 5 eval "grep -q 'node node-a: deleted from the API' '$FERRYD_LOG'"; then
	ok "Node deleted: ferryd logs it"
else
	not_ok "Node deleted: ferryd logs it" "no line within 5 s"
fi
expect "B29 Node deleted: /healthz 503 nodeEligible false; /livez 200" \
	"$(health_seen)" \
	"503 currentTime=RFC3339 lastUpdated=RFC3339 nodeEligible=False 200"
expect "Node deleted: the Services still answer (x10)" "$(names_of "$(conn_tally 10 $F 80)")" "o-2"

# A Node deleted while its watch is down: the DELETED event is compacted
# away, the resumed watch gets 410, and the relist no longer holds the Node.
put "$(node_json node-a)"
health_becomes "Node created again: /healthz 200" 200
api_ctl POST /inject '{"code":503,"seconds":3,"retry_after":1,"match":"/api/v1/nodes"}' >/dev/null
api_ctl POST /streams '{"action":"end","kind":"Node"}' >/dev/null
api_delete Node _ node-a
api_ctl POST /compact >/dev/null
health_becomes "B29 Node deleted while the watch was down: after the relist /healthz 503" 503 15
expect "Node deleted while the watch was down: the log says so" \
	"$(grep -c 'node node-a: gone from the API (deleted while the watch was down)' "$FERRYD_LOG")" 1
expect_alive "observability"

finish
