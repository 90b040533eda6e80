#!/usr/bin/env bash
# ferryd lists 10,000 Services with one EndpointSlice each from the API
# server, in pages of 500 (F4): more than 20 pages per collection, each
# further page with a continue token of the same resourceVersion, and only
# then programs them all (B33); a write during the paging comes through the
# watch that starts at the list's resourceVersion; one endpoint change then
# touches only its own entries (B35). Then the same objects in one unpaged
# answer, and as a streaming list (WatchList).
# shellcheck disable=SC2317,SC2119 # functions run through wait_until; no script arguments
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apilib.sh
source "$(dirname "$0")/../apilib.sh"

NS=scale
N=10000
topology_up
pod s-1 198.18.64.1 "" --tcp 8080
pod s-2 198.18.64.2 "" --tcp 8080
api_setup
api_start --history 100000 || finish
API_EXPECT=api # 20,000 objects: the checker lists them through the API too

# scale-NNNNN: ClusterIP 10.101.X.Y, one slice with s-1 as its endpoint;
# plus "steady" and "mover", so that each collection has N + 2 objects and
# 21 pages.
"$PYTHON" - "$N" "$WORK/objects.json" <<'EOF'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
objs = []
def svc(name, ip):
    return {"kind": "Service", "apiVersion": "v1", "metadata": {"name": name, "namespace": "scale"},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]}}
def sl(name, ip):
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": name + "-1", "namespace": "scale",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}]}
for i in range(n):
    name, ip = "scale-%05d" % i, "10.101.%d.%d" % (i // 250, i % 250 + 1)
    objs += [svc(name, ip), sl(name, "198.18.64.1")]
objs += [svc("steady", "10.96.64.1"), sl("steady", "198.18.64.1"),
         svc("mover", "10.96.64.2"), sl("mover", "198.18.64.1"),
         {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "node-a"}}]
json.dump(objs, open(out, "w"))
EOF
t0=$SECONDS
out=$(api_post_items "$WORK/objects.json")
expect_match "$((2 * N + 5)) objects written through the control API" "$out" "\"written\":$((2 * N + 5))"
note "writing $((2 * N + 5)) objects took $((SECONDS - t0)) s"
rev0=$(api_state 'j["revision"]')

# A write while ferryd pages through both collections: not in the lists
# (their pages are one snapshot), but in the watches that follow them.
t_start=$EPOCHREALTIME
ferryd_k8s_spawn --log-level info || finish
# Polls GET /requests every 5 ms; once both collections asked for a page
# with a continue token, writes Service "late" and its slice at once.
write_mid_paging() {
	"$PYTHON" "$REPO/tests/apiserver/mid_paging.py" "http://127.0.0.1:$API_CPORT" 0 \
		"$(svc_json $NS late 10.96.64.3 '[{"name":"http","port":80}]')" \
		"$(slice_json $NS late-1 late '[{"name":"http","port":8080}]' "$(eps 198.18.64.2)")"
}
if t_late=$(write_mid_paging); then
	for o in "Service $NS late" "EndpointSlice $NS late-1"; do echo "$o" >>"$API_NAMES"; done
	ok "Service late is written while ferryd pages through both collections"
else
	not_ok "Service late is written while ferryd pages through both collections" "no list page with a continue token within 20 s"
	t_late=0
fi
if wait_generation 1 90; then
	ok "the first list of $N Services is programmed"
else
	not_ok "the first list of $N Services is programmed" "generation $(generation) after 90 s"
	finish
fi
note "$(grep -o 'generation 1: first list programmed.*' "$FERRYD_LOG"), $("$PYTHON" -c "print('%.1f' % ($(applied_time) - $t_start))") s after ferryd started"

for k in Service EndpointSlice; do
	line=$(req_py 0 "
import base64
p = [x for x in lists('$k') if x['status'] == 200 and x['query'].get('limit') == '500']
first = [x for x in p if not x['query'].get('continue')]
cont = [x['query']['continue'] for x in p if x['query'].get('continue')]
rvs = set(json.loads(base64.urlsafe_b64decode(c + '=' * (-len(c) % 4)))['rv'] for c in cont)
print(len(p), len(first), first[0]['query'].get('resourceVersion') if first else '-', len(cont), len(rvs), sum(x.get('items', 0) for x in p))")
	read -r pages firsts rv0 conts nrvs items <<<"$line"
	note "$k: $pages pages ($firsts without continue, resourceVersion=$rv0; $conts with a continue token of $nrvs resourceVersion(s)), $items items"
	expect "F4 $k: one list from scratch (resourceVersion=0, limit=500), then >= 20 pages with continue tokens of one resourceVersion" \
		"$firsts:$rv0:$([ "$conts" -ge 20 ] && echo ">=20"):$nrvs:$items" "1:0:>=20:1:$((N + 2))"
done
note "Service late was written $(req_py 0 "
late = [x for x in lists() if x['time'] > $t_late]
print('before %d of the %d list pages (Services %d, EndpointSlices %d)' % (len(late), len(lists()), len([x for x in late if x['kind'] == 'Service']), len([x for x in late if x['kind'] == 'EndpointSlice'])))")"
expect "the log says both lists were complete at one resourceVersion, without Service late" \
	"$(grep -c -E "(services|endpointslices): listed $((N + 2)) at resourceVersion $rev0" "$FERRYD_LOG")" 2
expect_maps_equal "the maps hold all $N Services (and the late one), as the API says" 30
expect "ferryctl status counts $((N + 3)) service ports" "$(status_get 'j["agent"]["services"]')" $((N + 3))
expect "a Service listed on the last page answers" "$(field reply "$(probe tcp 10.101.39.250 80)")" s-1
expect "the Service written while ferryd listed answers" "$(field reply "$(probe tcp 10.96.64.3 80)")" s-2

# --- one endpoint change touches only its own entries (B35) ---------------
g=$(generation)
put "$(slice_json $NS mover-1 mover '[{"name":"http","port":8080}]' "$(eps 198.18.64.2)")"
if wait_generation $((g + 1)) 10; then
	line=$(grep "generation $((g + 1)): " "$FERRYD_LOG" | tail -n 1)
	note "one endpoint change: ${line#*msg=}"
	writes=$(sed -n 's/.*, \([0-9]*\) map writes.*/\1/p' <<<"$line")
	first=$(sed -n 's/.*first list programmed: .*, \([0-9]*\) map writes.*/\1/p' "$FERRYD_LOG")
	expect "B35 one endpoint change: 1 service port changed, 0 removed" \
		"$(grep -o '[0-9]* service ports changed, [0-9]* removed' <<<"$line")" "1 service ports changed, 0 removed"
	if [ -n "$writes" ] && [ "$writes" -le 8 ]; then
		ok "B35 one endpoint change: $writes map writes (the first list: $first)"
	else
		not_ok "B35 one endpoint change touches only its own entries" "${writes:-?} map writes (the first list: $first)"
	fi
else
	not_ok "B35 one endpoint change is published" "generation $(generation)"
fi
expect "B35 the changed Service answers from its new endpoint" "$(field reply "$(probe tcp 10.96.64.2 80)")" s-2
expect "B35 another Service is untouched" "$(field reply "$(probe tcp 10.101.0.1 80)")" s-1
expect_maps_equal "after the endpoint change the maps equal the API state" 30

# --- ferryd restarted; its continue token expires mid-list (F4, B33) --------
# The new ferryd adopts the pinned maps and lists again; once it has asked
# for a continue page of both collections a write and a compaction make the
# token too old (410): it must list again from the start, while the adopted
# datapath keeps serving.
ferryd_stop
gen=$(generation)
mark=$(api_mark)
write_compact_mid_paging() {
	"$PYTHON" "$REPO/tests/apiserver/mid_paging.py" "http://127.0.0.1:$API_CPORT" "$mark" \
		--compact "$(slice_json $NS late-1 late '[{"name":"http","port":8080}]' "$(eps 198.18.64.1 198.18.64.2)")" >/dev/null
}
load_start adopt 6 10.96.64.1 80
ferryd_k8s_spawn --log-level info || finish
if write_compact_mid_paging; then
	ok "restart: the history is compacted while the new ferryd pages through both collections"
else
	not_ok "restart: the history is compacted while the new ferryd pages" "no list page with a continue token within 20 s"
fi
if wait_generation $((gen + 1)) 60; then
	ok "restart: the new ferryd publishes generation $((gen + 1)) after its list"
else
	not_ok "restart: the new ferryd publishes a generation after its list" "generation $(generation)"
fi
expect_match "restart: the expired continue token answered 410, for both collections" \
	"$(req_py "$mark" "' '.join(sorted(x['kind'] for x in lists() if x['status'] == 410))")" '^EndpointSlice Service$'
expect "restart: the log says the continuation expired and it lists again from the start" \
	"$(grep -c -E '(services|endpointslices): list continuation expired \(410\): listing again from the start' "$FERRYD_LOG")" 2
expect "restart: the lists from the start hold every object, at the revision of the write" \
	"$(grep -c -E "(services|endpointslices): listed $((N + 3)) at resourceVersion $(api_state 'j["revision"]')" "$FERRYD_LOG")" 2
expect_maps_equal "restart: the maps equal the API state" 30
expect "restart: the slice written mid-list is applied" "$(svc_backends 10.96.64.3 80 TCP)" \
	"198.18.64.1:8080:active 198.18.64.2:8080:active"
load_check adopt "a ferryd restart with an expired continue token" $((N + 3))

# --- one unpaged answer, then a streaming list, of 10,000 objects ------------
# A watch cache answers resourceVersion=0 lists in one piece, limit or not
# (rv0_unpaged: the 1.36 server library); a server with streaming lists
# sends the state as watch events. Either way ferryd takes the objects one
# by one as they arrive. ferryd restarts on the pinned maps for each.
for mode in unpaged streaming; do
	ferryd_stop
	if [ $mode = unpaged ]; then
		api_ctl POST /config '{"rv0_unpaged":true,"watch_list":"off"}' >/dev/null
	else
		api_ctl POST /config '{"rv0_unpaged":false,"watch_list":"on"}' >/dev/null
	fi
	mark=$(api_mark)
	gen=$(generation)
	ferryd_k8s_spawn --log-level info || finish
	if wait_generation $((gen + 1)) 60; then
		ok "$mode: the new ferryd publishes generation $((gen + 1)) after its first lists"
	else
		not_ok "$mode: the new ferryd publishes a generation after its first lists" "generation $(generation)"
	fi
	expect_maps_equal "$mode: the maps equal the API state ($((N + 3)) Services)" 30
	note "$mode: ferryd's peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/$FERRYD_PID/status"), now $(awk '/VmRSS/ {print $2, $3}' "/proc/$FERRYD_PID/status")"
	if [ $mode = unpaged ]; then
		expect "unpaged: each collection listed in one answer of $((N + 3)) items (limit=500 ignored, no continue)" \
			"$(req_py "$mark" "' '.join(sorted('%s:%s' % (x['kind'], x.get('items')) for x in lists() if x['status'] == 200 and x['kind'] != 'Node'))")" \
			"EndpointSlice:$((N + 3)) Service:$((N + 3))"
	else
		expect "streaming: each collection's first list was a streaming list of $((N + 3)) objects and its end (no paged list)" \
			"$(req_py "$mark" "' '.join(sorted('%s:%s:%s' % (x['kind'], x['status'], x['events']) for x in r if 'sendInitialEvents' in x['query'] and x['kind'] != 'Node')) + ' lists=%d' % len(lists())")" \
			"EndpointSlice:200:$((N + 4)) Service:200:$((N + 4)) lists=0"
	fi
	expect "$mode: the log of this ferryd says both collections were listed in full" \
		"$(tac "$FERRYD_LOG" | sed '/^=== ferryd/q' | grep -c -E "(services|endpointslices): listed $((N + 3)) at resourceVersion $(api_state 'j["revision"]')")" 2
done
api_ctl POST /config '{"watch_list":"off"}' >/dev/null

expect_alive "scale"
finish
