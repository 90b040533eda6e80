#!/usr/bin/env bash
# ferryd while the API server is away: 503 for 8 s with Retry-After: 1
# (retries 1 s apart, never a flush), and the API server restarted (SIGTERM,
# started again on the same port from its --state-file): without writes in
# between the watches resume where they were (no list); with writes while
# it was down (and a short --history) the watches get 410 and ferryd lists
# again. In each case: ferryd stays alive, a client connecting in a loop to
# a ClusterIP never fails and ferryctl keeps listing the services, and the
# maps equal the API state within 1 s after the first successful retry.
# shellcheck disable=SC2317,SC2119 # functions run through wait_until; no script arguments
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apilib.sh
source "$(dirname "$0")/../apilib.sh"

NS=outage
topology_up
for i in 1 2 3; do pod "o-$i" "198.18.63.$i" "" --tcp 8080; done
api_setup
# Bookmarks every 0.5 s, so that each watch's resourceVersion catches up
# with the global revision and a restarted stand-in can resume them all.
api_start --bookmark-interval 0.5 || finish

fault_cluster 63

# --- 503 for 8 s with Retry-After: 1 ----------------------------------------
load_start 503 11 10.96.63.1 80
api_ctl POST /inject '{"code":503,"seconds":8,"retry_after":1}' >/dev/null
t_fault=$EPOCHREALTIME
mark=$(api_mark)
stream '{"action":"end"}' >/dev/null
before=$(maps_actual)
# Writes during the outage: ferryd cannot see them until it gets through.
work 198.18.63.2 198.18.63.3
put "$(svc_json $NS new 10.96.63.4 "$HTTP")"
put "$(slice_json $NS new-1 new "$SL" "$(eps 198.18.63.3)")"
mid() { "$PYTHON" -c "import sys, time; sys.exit(time.time() < $t_fault + 4)"; }
wait_until 8 mid
expect "503: after 4 s of 503s the maps still hold the last state" "$(maps_actual)" "$before"
expect_alive "503 (4 s)"
got_through() { [ "$(req_py "$mark" "all(first_ok(k) for k in ('Service', 'EndpointSlice'))")" = True ]; }
if wait_until 20 got_through; then
	ok "503: ferryd gets through once the 503s stop"
else
	not_ok "503: ferryd gets through once the 503s stop" "$(req_py "$mark" "[(x['kind'], x['status']) for x in r][-6:]")"
fi
recovered "503 for 8 s" "$mark"
for k in Service EndpointSlice Node; do
	line=$(req_py "$mark" "
g = gaps('$k', 503) or [0]
print(len([x for x in r if x['kind'] == '$k' and x['status'] == 503]), '%.2f' % min(g), '%.2f' % max(g))")
	read -r n gmin gmax <<<"$line"
	note "503: $k: $n requests answered 503, $gmin to $gmax s apart"
	if [ "$n" -ge 6 ] && [ "$n" -le 10 ] &&
		awk -v a="$gmin" -v b="$gmax" 'BEGIN {exit !(a >= 0.9 && b <= 1.3)}'; then
		ok "503: $k retried every 1 s (Retry-After) through the 8 s: $n tries, $gmin-$gmax s apart"
	else
		not_ok "503: $k retried every 1 s (Retry-After), not hammering" "$n tries, $gmin-$gmax s apart"
	fi
done
expect_match "503: the log says it honours Retry-After" \
	"$(grep -c 'services: watch answered 503: .*; retrying in 1.0 s (Retry-After: 1)' "$FERRYD_LOG")" '^([6-9]|10)$'
expect "503: no relist after the outage (the watches resumed)" "$(req_py "$mark" "len(lists())")" 0
load_check 503 "8 s of 503" 3
expect_alive "503"

# --- the API server restarted, nothing written meanwhile ----------------------
# Every watch must have seen a bookmark at the current revision: then a
# watch from it is valid on the restarted server (its history starts there).
bookmarked() {
	api_ctl GET /requests | "$PYTHON" -c '
import json, sys
r = [x for x in json.load(sys.stdin) if x.get("user_agent") == "ferryd" and x["watch"] and x["status"] == 200 and not x.get("ended")]
base = json.loads(sys.argv[1])
sys.exit(not (len(r) == 3 and all(x["events"] > base.get(str(x["id"]), 1 << 30) for x in r)))' "$1"
}
events_now() {
	api_ctl GET /requests | "$PYTHON" -c '
import json, sys
print(json.dumps({str(x["id"]): x["events"] for x in json.load(sys.stdin) if x.get("user_agent") == "ferryd" and x["watch"] and not x.get("ended")}))'
}
base=$(events_now)
if wait_until 5 bookmarked "$base"; then
	ok "restart: every watch got a bookmark at the current revision"
else
	not_ok "restart: every watch got a bookmark at the current revision" "$base -> $(events_now)"
fi
load_start restart 6 10.96.63.1 80
api_restart --bookmark-interval 0.5 || finish
mark=0 # the restarted stand-in's request log starts empty
expect "restart: the stand-in is back on the same port" "$(grep -c "server: https://127.0.0.1:$API_PORT" "$API_KUBECONFIG")" 1
# A write after the restart reaches ferryd through the resumed watch.
work 198.18.63.1 198.18.63.3
recovered "restart" "$mark" EndpointSlice
resumed() { [ "$(req_py "$mark" "all(first_ok(k) for k in ('Service', 'EndpointSlice', 'Node'))")" = True ]; }
wait_until 10 resumed
expect "restart: no list after the restart: each watch resumed from its resourceVersion" \
	"$(req_py "$mark" "len(lists())")" 0
expect "restart: every request after the restart was a watch answered 200 or refused at connect" \
	"$(req_py "$mark" "sorted(set((x['watch'], x['status'], x.get('ended')) for x in r if x.get('ended') not in ('client',)))")" \
	"[(True, 200, None)]"
expect "restart: the log shows no 410" "$(grep -c 'expired' "$FERRYD_LOG")" 0
load_check restart "an API server restart" 4
expect_alive "restart"

# --- restarted with writes while it was down -----------------------------------
# While the stand-in is down, a second one on other ports writes to the same
# state file (what other clients did meanwhile): the restarted server's
# history starts after ferryd's resourceVersions, which are too old (410).
load_start relist 8 10.96.63.1 80
api_stop
saved_port=$API_PORT saved_cport=$API_CPORT
API_PORT='' API_CPORT=''
api_start || finish
api_delete Service $NS gone
api_delete EndpointSlice $NS gone-1
work 198.18.63.2
put "$(svc_json $NS new 10.96.63.4 '[{"name":"http","port":80},{"name":"alt","port":81}]')"
api_stop
API_PORT=$saved_port API_CPORT=$saved_cport
api_start --bookmark-interval 0.5 --history 5 || finish
mark=0
recovered "restart with writes while down" "$mark"
expect "relist: the Service deleted while the API server was down is gone" "$(svc_backends 10.96.63.3 80 TCP)" absent
expect "relist: the log says the resourceVersions expired" \
	"$(grep -c -E '(services|endpointslices): resourceVersion [0-9]+ expired \(Expired\): listing again' "$FERRYD_LOG")" 2
expect "relist: ferryd listed Services and EndpointSlices again" \
	"$(req_py "$mark" "' '.join(sorted(set(x['kind'] for x in lists() if x['status'] == 200)))")" \
	"EndpointSlice Node Service"
load_check relist "a restart with writes while down" 3
expect_alive "relist"

finish
