#!/usr/bin/env bash
# ferryd on the API server (the stand-in, HTTPS with a bearer token, through
# a kubeconfig): nothing is programmed before the first full list of
# Services and EndpointSlices (B33); Services and EndpointSlices created,
# changed and deleted through the API reach the datapath and real
# connections follow them (B4, B5, B10, B14); the service-proxy-name label
# takes a Service down and back (B2); an invalid Service arriving in a watch
# keeps its last good version; an event of several megabytes goes through.
# After each step the maps equal what the API objects say
# (tests/apiserver/expected.py). Flushing: a single change is applied at
# once, in a generation of its own; a burst of 2,000 slice changes written
# at once, and one of 1,000 whose events come in 64-byte pieces, end with
# the maps equal to the API state in far fewer applies than events (counted
# by the published generation; ferryd's log lines say how many events each
# carried and why it went out). Then the streaming list (WatchList): the
# same state programmed when the server sends it, refuses it (422: the
# stand-in's default, so all of the above) and ignores it; a relist after
# 410 while it is on.
# shellcheck disable=SC2317,SC2119 # functions run through wait_until; no script arguments
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apilib.sh
source "$(dirname "$0")/../apilib.sh"

NS=events
topology_up
for i in 1 2 3; do pod "w-$i" "198.18.61.$i" "" --tcp 8080 --tcp 9090; done
api_setup
api_start --bookmark-interval 2 || finish

HTTP='[{"name":"http","port":80,"targetPort":8080}]'
HTTP_ALT='[{"name":"http","port":80,"targetPort":8080},{"name":"alt","port":81,"targetPort":9090}]'
SL_HTTP='[{"name":"http","port":8080}]'
SL_BOTH='[{"name":"http","port":8080},{"name":"alt","port":9090}]'


put "$(node_json node-a)"
put "$(svc_json $NS steady 10.96.61.1 "$HTTP")"
put "$(slice_json $NS steady-1 steady "$SL_HTTP" "$(eps 198.18.61.1)")"

# --- B33: nothing is programmed before the first full list ----------------
# EndpointSlices answer 503 for the first 4 s: the Services list arrives,
# but programming it alone would refuse connections to every Service.
api_ctl POST /inject '{"code":503,"seconds":4,"retry_after":1,"match":"endpointslices"}' >/dev/null
t_start=$EPOCHREALTIME
ferryd_k8s_spawn || finish
seen_partial() {
	[ "$(req_py 0 "bool([x for x in lists('Service') if x['status'] == 200]) and bool([x for x in r if x['kind'] == 'EndpointSlice' and x['status'] == 503])")" = True ]
}
if wait_until 10 seen_partial; then
	ok "B33 Services listed (200) while EndpointSlices answer 503"
	expect "B33 before the first full list: nothing is pinned under the bpffs folder" \
		"$(find "$BPFFS" -mindepth 1 2>/dev/null | tr '\n' ' ')" ""
	expect "B33 before the first full list: no program is attached to the cgroup" \
		"$(bpftool cgroup show "$CG" 2>/dev/null | grep -c ferry_)" 0
	expect "B33 before the first full list: the ClusterIP is not translated" \
		"$(field error "$(probe tcp 10.96.61.1 80)")" ENETUNREACH
else
	not_ok "B33 Services listed (200) while EndpointSlices answer 503" "$(req_py 0 "[(x['kind'], x['status']) for x in r]")"
fi
if wait_generation 1 15; then
	ok "B33 the first full list is programmed once EndpointSlices answer"
else
	not_ok "B33 the first full list is programmed once EndpointSlices answer" "generation $(generation)"
	finish
fi
expect "B33 the log says it waits for the first list" \
	"$(grep -c 'waiting for the first list of Services, EndpointSlices and the Node' "$FERRYD_LOG")" 1
first_slices=$(req_py 0 "first_ok('EndpointSlice')")
note "B33: EndpointSlices first answered 200 $("$PYTHON" -c "print(int((${first_slices} - ${t_start}) * 1000))") ms after ferryd started"
recovered "B33 first list" 0 EndpointSlice
expect "B33 the programs are attached after the first list (all but sock_release: no least-conn Service)" \
	"$(status_get 'sum(p["attached"] for p in j["programs"])')" 8
expect "B33 the first generation is 1" "$(generation)" 1
expect "B33 connections reach the Service after the first list" "$(names_of "$(conn_tally 20 10.96.61.1 80)")" w-1

# --- create, change, delete ---------------------------------------------------
# event_ms: "event to maps" of ferryd's last generation line.
event_ms() { sed -n 's/.*event to maps \([0-9.]*\) ms.*/\1/p' "$FERRYD_LOG" | tail -n 1; }
# step NAME JSON...: write the objects, then the maps must equal the API.
step() {
	local name=$1 o
	shift
	for o in "$@"; do put "$o"; done
	expect_maps_equal "$name: the maps equal the API state" 5
}

step "B5 create Service web with a slice of w-1 w-2" \
	"$(svc_json $NS web 10.96.61.2 "$HTTP")" \
	"$(slice_json $NS web-1 web "$SL_HTTP" "$(eps 198.18.61.1 198.18.61.2)")"
note "create: event to maps $(event_ms) ms"
expect "B5 created: connections reach w-1 and w-2 (x40)" "$(names_of "$(conn_tally 40 10.96.61.2 80)")" "w-1 w-2"

step "B7 change the slice to w-2 w-3" "$(slice_json $NS web-1 web "$SL_HTTP" "$(eps 198.18.61.2 198.18.61.3)")"
note "slice change: event to maps $(event_ms) ms"
expect "B7 changed: connections reach w-2 and w-3 only (x40)" "$(names_of "$(conn_tally 40 10.96.61.2 80)")" "w-2 w-3"

step "B10 w-3 ready: false" "$(slice_json $NS web-1 web "$SL_HTTP" "$(eps 198.18.61.2 -198.18.61.3)")"
expect "B10 an endpoint that is not ready is removed (x30)" "$(names_of "$(conn_tally 30 10.96.61.2 80)")" w-2
expect "B10 ferryctl lists w-2 only" "$(svc_backends 10.96.61.2 80 TCP)" "198.18.61.2:8080:active"

step "B4 add port alt 81 to the Service and 9090 to the slice" \
	"$(svc_json $NS web 10.96.61.2 "$HTTP_ALT")" \
	"$(slice_json $NS web-1 web "$SL_BOTH" "$(eps 198.18.61.2 -198.18.61.3)")"
expect "B4 the new port answers from the slice's port" \
	"$(in_client curl -sS --max-time 2 http://10.96.61.2:81/port)" "w-2:9090"

# --- B2: the service-proxy-name label --------------------------------------
step "B2 label web service.kubernetes.io/service-proxy-name" \
	"$(svc_json $NS web 10.96.61.2 "$HTTP_ALT" '{"service.kubernetes.io/service-proxy-name":"other"}')"
expect "B2 labelled: ferryctl no longer lists it" "$(svc_backends 10.96.61.2 80 TCP)" absent
expect "B2 labelled: its ClusterIP is no longer translated" "$(field error "$(probe tcp 10.96.61.2 80)")" ENETUNREACH
expect "B2 labelled: the other Service still answers" "$(field reply "$(probe tcp 10.96.61.1 80)")" w-1
step "B2 remove the label again" "$(svc_json $NS web 10.96.61.2 "$HTTP_ALT")"
expect "B2 label removed: the Service answers again" "$(field reply "$(probe tcp 10.96.61.2 80)")" w-2

# --- an invalid Service arriving in a watch --------------------------------
skipped0=$(status_get 'j["agent"]["objects_skipped"]')
gen0=$(generation)
bad=$(api_ctl GET "/objects/Service/$NS/web" | "$PYTHON" -c '
import json, sys
o = json.load(sys.stdin)
o["spec"]["ports"][0]["port"] = 70000
print(json.dumps({"kind": "Service", "line": json.dumps({"type": "MODIFIED", "object": o}, separators=(",", ":"))}))')
streams=$(api_ctl POST /raw "$bad")
expect_match "an invalid Service is sent in the watch (POST /raw)" "$streams" '"streams":[1-9]'
if wait_status 5 "j['agent']['objects_skipped'] > $skipped0"; then
	ok "the invalid Service is counted in objects_skipped ($skipped0 -> $(status_get 'j["agent"]["objects_skipped"]'))"
else
	not_ok "the invalid Service is counted in objects_skipped" "still $(status_get 'j["agent"]["objects_skipped"]')"
fi
expect "the log says the last good version stays" \
	"$(grep -c "spec.ports\[0\].port: not a port number.*its last good version stays" "$FERRYD_LOG")" 1
expect "the last good version stays: port 80 still answers" "$(field reply "$(probe tcp 10.96.61.2 80)")" w-2
expect_maps_equal "the last good version stays: the maps equal the API state" 2
expect_alive "the invalid object"
note "generation $gen0 before the invalid object, $(generation) after"
step "the watch goes on after the invalid object: drop port alt" \
	"$(svc_json $NS web 10.96.61.2 "$HTTP")"
expect "the port dropped after the invalid object is refused" \
	"$(field error "$(probe tcp 10.96.61.2 81)")" ECONNREFUSED

# --- an event of several megabytes ------------------------------------------
big=$("$PYTHON" -c '
import json, sys
o = json.loads(sys.argv[1])
o["metadata"]["annotations"] = {"example.test/blob": "x" * (3 << 20)}
print(json.dumps(o))' "$(svc_json $NS big 10.96.61.3 "$HTTP")")
put "$(slice_json $NS big-1 big "$SL_HTTP" "$(eps 198.18.61.3)")"
put "$big"
expect_maps_equal "a Service of 3 MB (one watch event) reaches the maps" 10
note "3 MB event: sent to the stand-in -> in the maps $("$PYTHON" -c "print(int(($(applied_time) - $API_PUT_T0) * 1000))") ms (ferryd: event to maps $(event_ms) ms)"
expect "the 3 MB Service answers" "$(field reply "$(probe tcp 10.96.61.3 80)")" w-3

# --- deletes ------------------------------------------------------------------
api_delete EndpointSlice $NS web-1
expect_maps_equal "B14 slice deleted: the maps equal the API state" 5
expect "B14 slice deleted: the Service refuses at once" "$(field error "$(probe tcp 10.96.61.2 80)")" ECONNREFUSED
api_delete Service $NS web
expect_maps_equal "B5 Service deleted: the maps equal the API state" 5
expect "B5 Service deleted: ferryctl no longer lists it" "$(svc_backends 10.96.61.2 80 TCP)" absent
expect "B5 Service deleted: its ClusterIP is no longer translated" "$(field error "$(probe tcp 10.96.61.2 80)")" ENETUNREACH
step "B5 recreate Service web with a new ClusterIP" \
	"$(svc_json $NS web 10.96.61.4 "$HTTP")" \
	"$(slice_json $NS web-1 web "$SL_HTTP" "$(eps 198.18.61.1)")"
expect "B5 recreated: its new ClusterIP answers" "$(field reply "$(probe tcp 10.96.61.4 80)")" w-1

# --- flushing: an isolated change at once, a burst in few applies -------------
# ferryd flushes a change as soon as nothing more is there to read, and
# coalesces the changes of a burst; each generation's log line says how many
# watch events it carries and why it went out then.
# gen_events G: the watch events ferryd read into generation G (its line).
gen_events() { grep "msg=\"generation $1: " "$FERRYD_LOG" | sed -n 's/.*watch events read: \([0-9]*\),.*/\1/p'; }
# gen_why G: why generation G was flushed then.
gen_why() { grep "msg=\"generation $1: " "$FERRYD_LOG" | sed -n 's/.*watch events read: [0-9]*, flushed \([^"]*\)".*/\1/p'; }
# events_since G0 G1: the watch events read into generations G0+1 to G1.
events_since() {
	local g e n=0
	for ((g = $1 + 1; g <= $2; g++)); do
		e=$(gen_events "$g")
		n=$((n + ${e:-0}))
	done
	echo "$n"
}

g0=$(generation)
put "$(slice_json $NS web-1 web "$SL_HTTP" "$(eps 198.18.61.2)")"
if wait_generation $((g0 + 1)) 5; then
	ok "B35 flush: a single slice change is published (generation $((g0 + 1))) with nothing written after it"
else
	not_ok "B35 flush: a single slice change is published with nothing written after it" "generation $(generation)"
fi
expect "B35 flush: that generation carries the one event and went out at once (nothing more to read, no burst)" \
	"$(generation) $(gen_events $((g0 + 1))) $(gen_why $((g0 + 1)))" "$((g0 + 1)) 1 at once"
expect_maps_equal "flush: the single change: the maps equal the API state"
expect "flush: the single change: connections reach w-2 (x20)" "$(names_of "$(conn_tally 20 10.96.61.4 80)")" w-2

# burst_items FILE ROUNDS SHIFT: ROUNDS x 20 slice changes, round after
# round over Services burst-0 .. burst-19 (10.96.62.K+1), into FILE as a
# JSON array: every change moves the slice to another address
# (198.18.62.R+1), the last round to w-1, w-2 or w-3 ((K + SHIFT) mod 3): a
# new SHIFT ends in a state no slice had before.
burst_items() {
	"$PYTHON" -c '
import json, sys
ns, rounds, ports, shift = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[5])
def sl(k, addr):
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": "burst-%d-1" % k, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": "burst-%d" % k}},
            "addressType": "IPv4", "ports": ports,
            "endpoints": [{"addresses": [addr], "conditions": {"ready": True}}]}
items = [sl(k, "198.18.62.%d" % (r % 250 + 1)) for r in range(rounds - 1) for k in range(20)]
items += [sl(k, "198.18.61.%d" % ((k + shift) % 3 + 1)) for k in range(20)]
json.dump(items, open(sys.argv[4], "w"))' "$NS" "$2" "$SL_HTTP" "$1" "$3"
}
"$PYTHON" -c '
import json, sys
ns, ports = sys.argv[1], json.loads(sys.argv[2])
json.dump([{"kind": "Service", "apiVersion": "v1", "metadata": {"name": "burst-%d" % k, "namespace": ns},
            "spec": {"clusterIP": "10.96.62.%d" % (k + 1), "ports": ports}} for k in range(20)],
          open(sys.argv[3], "w"))' "$NS" "$HTTP" "$API_DIR/burst-svcs.json"
burst_items "$API_DIR/burst-0.json" 1 0
if ! api_post_items "$API_DIR/burst-svcs.json" >/dev/null || ! api_post_items "$API_DIR/burst-0.json" >/dev/null; then
	not_ok "flush: 20 Services burst-K and their slices written" "POST /objects failed"
fi
expect_maps_equal "flush: 20 Services burst-K: the maps equal the API state" 10

# burst NAME ROUNDS MAX SHIFT: ROUNDS x 20 slice changes written at once
# (one POST /objects): the maps end equal to the API state, every event was
# read into the generations that followed, and there were at most MAX.
burst() {
	local name=$1 rounds=$2 max=$3 n=$(($2 * 20)) g g0 g1 ev
	burst_items "$API_DIR/burst.json" "$rounds" "$4"
	g0=$(generation)
	api_post_items "$API_DIR/burst.json" >/dev/null || not_ok "$name: $n slice changes written at once" "POST /objects failed"
	expect_maps_equal "$name: $n slice changes written at once: the maps equal the API state" 60
	g1=$(generation)
	ev=$(events_since "$g0" "$g1")
	note "$name: $n events in $((g1 - g0)) applies ($(for ((g = g0 + 1; g <= g1; g++)); do printf '%s/%s; ' "$(gen_events $g)" "$(gen_why $g)"; done))"
	expect "$name: every event was read into the generations that applied them" "$ev" "$n"
	if [ $((g1 - g0)) -ge 1 ] && [ $((g1 - g0)) -le "$max" ]; then
		ok "$name: $n events applied in $((g1 - g0)) generations (at most $max)"
	else
		not_ok "$name: $n events applied in at most $max generations" "$((g1 - g0)) generations"
	fi
}
burst "B35 flush: a burst" 100 100 1
expect "flush: after the burst, connections to burst-0 reach w-2 (x20)" "$(names_of "$(conn_tally 20 10.96.62.1 80)")" w-2

# A burst whose events come cut into 64-byte pieces, each written on its
# own, as a slow link or a proxy may deliver them: ferryd often reads a
# piece before the next has come, and may flush between the pieces of an
# event; yet the state is whole and the burst still coalesces (the bound is
# loose: how the pieces fall depends on the machine's load).
expect_match "flush: the slice watch sends events in 64-byte pieces" \
	"$(stream '{"action":"fragment","kind":"EndpointSlice","size":64}')" '"streams":1'
burst "F5 B35 flush: a burst in 64-byte pieces" 50 250 2
stream '{"action":"fragment","kind":"EndpointSlice","size":0}' >/dev/null

expect "no watch failed so far (no error line in the log)" "$(grep -c 'level=error' "$FERRYD_LOG")" 0

# --- the requests, as the protocol says ---------------------------------------
expect "every request: Accept application/json, the bearer token, User-Agent ferryd" \
	"$(req_py 0 "sorted(set((x['accept'], x['auth'] or 'not checked (injected failure)') for x in r))")" \
	"[('application/json', 'not checked (injected failure)'), ('application/json', 'token')]"
expect "lists of Services and EndpointSlices: the selector of B2, limit=500, resourceVersion=0" \
	"$(req_py 0 "sorted(set((x['path'], x['query'].get('labelSelector'), x['query'].get('limit'), x['query'].get('resourceVersion')) for x in lists() if x['kind'] != 'Node'))")" \
	"[('/api/v1/services', '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless', '500', '0'), ('/apis/discovery.k8s.io/v1/endpointslices', '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless', '500', '0')]"
expect "the Node: its name as a field selector" \
	"$(req_py 0 "sorted(set((x['path'], x['query'].get('fieldSelector')) for x in r if x['kind'] == 'Node'))")" \
	"[('/api/v1/nodes', 'metadata.name=node-a')]"
expect "watches: bookmarks asked for, timeoutSeconds 300-600, from a resourceVersion seen" \
	"$(req_py 0 "sorted(set((x['query'].get('allowWatchBookmarks'), 300 <= int(x['query'].get('timeoutSeconds', 0)) <= 600, x['query'].get('resourceVersion', '0') not in ('', '0')) for x in r if is_watch(x) and 'sendInitialEvents' not in x['query']))")" \
	"[('true', True, True)]"
expect "each collection first asked for a streaming list (sendInitialEvents, NotOlderThan, bookmarks, no resourceVersion), refused with 422, then listed by pages" \
	"$(req_py 0 "
for k in ('Service', 'EndpointSlice', 'Node'):
    x = [x for x in r if x['kind'] == k and x['status'] != 503]
    q = x[0]['query']
    print(k, q.get('sendInitialEvents'), q.get('resourceVersionMatch'), q.get('allowWatchBookmarks'), q.get('resourceVersion'), x[0]['status'], 'watch' if is_watch(x[1]) else 'list', len([y for y in x if 'sendInitialEvents' in y['query']]))" | tr '\n' ' ')" \
	"Service true NotOlderThan true None 422 list 1 EndpointSlice true NotOlderThan true None 422 list 1 Node true NotOlderThan true None 422 list 1 "
expect "the log says each collection gets paged lists (422)" \
	"$(grep -c -E '(services|endpointslices|nodes): the API server does not send streaming lists \(422: .*WatchList feature gate.*\): paged lists from now on' "$FERRYD_LOG")" 3

# --- 500 without Retry-After: exponential backoff -----------------------------
# Three 500s on the Services watch: retries after 0.8, 1.6 and 3.2 s, each
# jittered down by at most 20 %.
mark=$(api_mark)
api_ctl POST /inject '{"code":500,"count":3,"match":"/api/v1/services"}' >/dev/null
api_ctl POST /streams '{"action":"end","kind":"Service"}' >/dev/null
put "$(svc_json $NS web 10.96.61.4 '[{"name":"http","port":80},{"name":"alt","port":81}]')"
recovered "500 x3" "$mark" Service
# Only the first four: the watch resumed after them may meet a compacted
# revision (the slice bursts above moved the store's revision on while the
# Services watch saw no event) and relist, which is another case's matter.
expect "500: three 500s then 200" "$(req_py "$mark" "' '.join(str(x['status']) for x in [x for x in r if x['kind'] == 'Service'][:4])")" "500 500 500 200"
gaps=$(req_py "$mark" "' '.join('%.2f' % g for g in gaps('Service'))")
note "500: seconds between the Services requests: $gaps"
expect "500: backoff 0.8, 1.6, 3.2 s with jitter (each in [0.8 x, 1.0 x] + 0.1 s)" \
	"$(awk '{split("0.8 1.6 3.2", w); for (i = 1; i <= 3; i++) if ($i < 0.8 * w[i] - 0.02 || $i > w[i] + 0.1) bad++} END {print bad + 0}' <<<"$gaps")" 0
expect_match "500: the log says when it retries, without Retry-After" \
	"$(grep 'services: watch answered 500' "$FERRYD_LOG" | sed 's/.*retrying in/retrying in/' | tr '\n' ' ')" \
	'^retrying in 0\.[6-8] s" retrying in 1\.[3-6] s" retrying in (2\.[6-9]|3\.[0-2]) s" $'

# --- streaming lists (WatchList) ------------------------------------------------
# ferryd restarts on the pinned maps (a new process: a new first list) with
# the stand-in sending streaming lists, then ignoring them (the 422 case is
# the start of this group): each time the same state reaches the maps,
# through the way the server offers. With streaming lists on, a relist
# after 410 is one too.
# first_requests MARK: how each collection's first two requests after MARK
# were answered: "Service:streaming-list:200,list:200 ...".
first_requests() {
	req_py "$1" "
print(' '.join(k + ':' + ','.join([('streaming-list' if 'sendInitialEvents' in x['query'] else 'watch' if is_watch(x) else 'list') + ':' + str(x['status']) for x in r if x['kind'] == k][:2]) for k in ('Service', 'EndpointSlice', 'Node')))"
}
# restart_with MODE: the stand-in's streaming lists set to MODE, ferryd
# restarted; a case: it publishes a new generation.
restart_with() {
	local g
	ferryd_stop
	api_ctl POST /config "{\"watch_list\":\"$1\"}" >/dev/null
	mark=$(api_mark)
	g=$(generation)
	ferryd_k8s_spawn || finish
	if wait_generation $((g + 1)) 20; then
		ok "streaming list $1: the new ferryd publishes generation $((g + 1)) after its first lists"
	else
		not_ok "streaming list $1: the new ferryd publishes a generation" "generation $(generation)"
	fi
}
state_before=$(maps_actual)

restart_with on
expect_maps_equal "streaming list on: the maps equal the API state"
expect "streaming list on: the same state as before" "$(maps_actual)" "$state_before"
expect "streaming list on: one request per collection, a streaming list that goes on as the watch (no paged list)" \
	"$(first_requests "$mark")" "Service:streaming-list:200 EndpointSlice:streaming-list:200 Node:streaming-list:200"
expect "streaming list on: the log says so for each collection" \
	"$(grep -c -E '(services|endpointslices|nodes): the API server sends streaming lists \(WatchList\)' "$FERRYD_LOG")" 3

# A relist after 410: the streams stall, a Service and its slice are
# deleted, then every stream gets ERROR 410 (the history dropped).
stream '{"action":"stall","seconds":30}' >/dev/null
api_delete Service $NS big
api_delete EndpointSlice $NS big-1
mark=$(api_mark)
stream '{"action":"expire"}' >/dev/null
if wait_maps_equal_api 10; then
	ok "streaming list on: after 410 the relist removed the Service deleted meanwhile"
else
	not_ok "streaming list on: after 410 the relist removed the Service deleted meanwhile" "$(maps_diff)"
fi
expect "streaming list on: the relist after 410 was a streaming list for each collection (no paged list)" \
	"$(first_requests "$mark") lists=$(req_py "$mark" "len(lists())")" \
	"Service:streaming-list:200 EndpointSlice:streaming-list:200 Node:streaming-list:200 lists=0"
expect "the 3 MB Service is gone" "$(svc_backends 10.96.61.3 80 TCP)" absent

state_before=$(maps_actual)
restart_with ignore
expect_maps_equal "streaming list ignored: the maps equal the API state"
expect "streaming list ignored: the same state as before" "$(maps_actual)" "$state_before"
expect "streaming list ignored: each collection's streaming list was a plain watch, then a paged list" \
	"$(first_requests "$mark")" \
	"Service:streaming-list:200,list:200 EndpointSlice:streaming-list:200,list:200 Node:streaming-list:200,list:200"
expect "streaming list ignored: the log says it was noticed (a bookmark without the end annotation)" \
	"$(grep -c -E '(services|endpointslices|nodes): the API server ignored sendInitialEvents \(a bookmark without k8s.io/initial-events-end' "$FERRYD_LOG")" 3
api_ctl POST /config '{"watch_list":"off"}' >/dev/null
expect_alive "streaming lists"

expect_alive "events"
finish
