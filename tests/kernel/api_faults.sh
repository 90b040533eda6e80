#!/usr/bin/env bash
# ferryd through broken watch streams and refused requests (the stand-in's
# control API breaks them): 410 Expired in the middle of a watch, a watch
# answered with a plain HTTP 410, a relist while the watch cache lags (B12),
# a stream cut in the middle of an event, a garbage line, events fragmented
# into 7-byte reads, 429 with Retry-After, a rotated token (401 until the
# token file holds the new one), 403, and a stream that goes silent (the
# idle deadline). In each case: ferryd stays alive, a client connecting in a
# loop to a ClusterIP never fails and ferryctl keeps listing the services
# (no datapath flush), and the maps equal the API state within 1 s after
# the first successful retry.
# shellcheck disable=SC2317,SC2119 # functions run through wait_until; no script arguments
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apilib.sh
source "$(dirname "$0")/../apilib.sh"
# shellcheck source=tests/helpers/observe_lib.sh
source "$(dirname "$0")/../helpers/observe_lib.sh"

NS=faults
topology_up
for i in 1 2 3; do pod "f-$i" "198.18.62.$i" "" --tcp 8080; done
api_setup
api_start || finish

# The 403 case's slow retry is --forbidden-retry, 3 s here (30 by default).
fault_cluster 62 --forbidden-retry 3

# --- 410 Expired in the middle of a watch ----------------------------------
# The streams stall, so the writes below reach ferryd only through the
# relist that the 410 forces: the deleted Service must go although no
# DELETED event ever arrives.
load_start expire 4 10.96.62.1 80
stream '{"action":"stall","seconds":30}' >/dev/null
api_delete Service $NS gone
api_delete EndpointSlice $NS gone-1
work 198.18.62.2 198.18.62.3
put "$(svc_json $NS fresh 10.96.62.4 "$HTTP")"
put "$(slice_json $NS fresh-1 fresh "$SL" "$(eps 198.18.62.1)")"
expect "410: while the streams stall, the deleted Service is still served (nothing arrived)" \
	"$(svc_backends 10.96.62.3 80 TCP)" "198.18.62.3:8080:active"
mark=$(api_mark)
expect_match "410: every watch stream gets ERROR 410 Expired (POST /streams expire)" \
	"$(stream '{"action":"expire"}')" '"streams":3'
recovered "410" "$mark"
expect "410: the relist removed the Service deleted meanwhile" "$(svc_backends 10.96.62.3 80 TCP)" absent
expect "410: the log says Services and EndpointSlices expired and were listed again" \
	"$(grep -c -E '(services|endpointslices): resourceVersion [0-9]+ expired \(Expired\): listing again' "$FERRYD_LOG")" 2
expect "410: ferryd listed Services and EndpointSlices again" \
	"$(req_py "$mark" "' '.join(sorted(set(x['kind'] for x in lists() if x['status'] == 200)))")" \
	"EndpointSlice Node Service"
load_check expire "410 Expired" 3
expect_alive "410"

# --- 410 on Services, whose relist is refused for 4 s ------------------------
# The EndpointSlices watch is healthy all along: its changes must keep
# reaching the maps within milliseconds, as with kube-proxy, whose informers
# are independent (issue 5: no single change delayed by more than a few ms).
load_start relist503 6 10.96.62.1 80
api_ctl POST /inject '{"code":503,"seconds":4,"retry_after":1,"match":"/api/v1/services"}' >/dev/null
mark=$(api_mark)
stream '{"action":"expire","kind":"Service"}' >/dev/null
relist_refused() { [ "$(req_py "$mark" "len([x for x in lists('Service') if x['status'] == 503])")" -ge 1 ]; }
wait_until 5 relist_refused
work 198.18.62.1 198.18.62.2
t_write=$API_PUT_T0
if wait_maps_equal_api 10; then
	d=$("$PYTHON" -c "print(int(($(applied_time) - $t_write) * 1000))")
	note "410 + refused relist: an EndpointSlice change reached the maps $d ms after it was written; the Services relist got its 200 $(req_py "$mark" "'%d' % ((first_ok('Service') - $t_write) * 1000) if first_ok('Service') else '(not yet)'") ms after the write"
	if [ "$d" -le 1000 ]; then
		ok "410 + refused relist: EndpointSlice changes still reach the maps at once ($d ms)"
	else
		not_ok "410 + refused relist: EndpointSlice changes still reach the maps at once" \
			"$d ms: held back until the Services relist went through"
	fi
else
	not_ok "410 + refused relist: the maps equal the API state" "$(maps_diff)"
fi
# The Services relist goes through once the injection ends.
services_relisted() { [ "$(req_py "$mark" "'y' if first_ok('Service') else 'n'")" = y ]; }
wait_until 10 services_relisted
recovered "410 + refused relist" "$mark" Service
load_check relist503 "a Services relist refused for 4 s" 3
expect_alive "410 + refused relist"

# --- ERROR 410 with reason Gone (older API servers) ---------------------------
load_start gone 3 10.96.62.1 80
mark=$(api_mark)
expect_match "410 Gone: an ERROR event with reason Gone is sent to the slices' stream" \
	"$(api_ctl POST /raw '{"kind":"EndpointSlice","line":"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version\",\"reason\":\"Gone\",\"code\":410}}"}')" \
	'"streams":1'
work 198.18.62.2 198.18.62.3
recovered "410 Gone" "$mark" EndpointSlice
expect "410 Gone: the log says it lists again" \
	"$(grep -c 'endpointslices: resourceVersion [0-9]* expired (Gone): listing again' "$FERRYD_LOG")" 1
expect "410 Gone: ferryd listed the EndpointSlices again" \
	"$(req_py "$mark" "' '.join(sorted(set(x['kind'] for x in lists() if x['status'] == 200)))")" EndpointSlice
load_check gone "410 Gone" 3
expect_alive "410 Gone"

# --- a stream cut in the middle of an event ---------------------------------
load_start cut 3 10.96.62.1 80
mark=$(api_mark)
stream '{"action":"cut_mid_event","kind":"EndpointSlice"}' >/dev/null
work 198.18.62.1 198.18.62.3
recovered "cut mid-event" "$mark" EndpointSlice
expect "cut mid-event: the stand-in cut the slices' stream in the middle of the event" \
	"$(req_py 0 "len([x for x in r if x.get('ended') == 'cut_mid_event'])")" 1
expect "cut mid-event: ferryd watched again from its resourceVersion (no relist)" \
	"$(req_py "$mark" "len(lists())")" 0
load_check cut "a stream cut mid-event" 3
expect_alive "cut mid-event"

# --- a garbage line -----------------------------------------------------------
errors0=$(status_get 'j["agent"]["parse_errors"]')
load_start garbage 3 10.96.62.1 80
mark=$(api_mark)
stream '{"action":"garbage","kind":"Service"}' >/dev/null
put "$(svc_json $NS fresh 10.96.62.4 '[{"name":"http","port":80},{"name":"alt","port":81}]')"
recovered "garbage line" "$mark" Service
expect "garbage line: the log names the bad line" \
	"$(grep -c 'services: an event that is not JSON (.*{"type":"ADDED","object":{garbage.*watching again from resourceVersion' "$FERRYD_LOG")" 1
expect "garbage line: ferryctl status counts it in parse_errors" \
	"$(status_get 'j["agent"]["parse_errors"]')" $((errors0 + 1))
expect "garbage line: ferryd watched again from its resourceVersion (no relist)" \
	"$(req_py "$mark" "len(lists())")" 0
load_check garbage "a garbage line" 3
expect_alive "garbage line"

# --- events fragmented into 7-byte reads ---------------------------------------
load_start fragment 3 10.96.62.1 80
mark=$(api_mark)
expect_match "fragment: every stream now sends 7 bytes per chunk" \
	"$(stream '{"action":"fragment","size":7}')" '"streams":3'
put "$(svc_json $NS frag 10.96.62.5 "$HTTP")"
put "$(slice_json $NS frag-1 frag "$SL" "$(eps 198.18.62.2 198.18.62.3)")"
work 198.18.62.2
if wait_maps_equal_api 5; then
	ok "fragment: events split over many reads reach the maps"
	note "fragment: the last write reached the maps $("$PYTHON" -c "print('%.1f' % (($(applied_time) - $API_PUT_T0) * 1000))") ms after it was sent to the stand-in"
else
	not_ok "fragment: events split over many reads reach the maps" "$(maps_diff)"
fi
expect "fragment: no stream was dropped (no request since)" "$(req_py "$mark" "len(r)")" 0
stream '{"action":"fragment","size":0}' >/dev/null
expect_match "fragment: the new Service answers" "$(field reply "$(probe tcp 10.96.62.5 80)")" '^f-[23]$'
load_check fragment "fragmented events" 4
expect_alive "fragment"

# --- 429 with Retry-After -------------------------------------------------------
load_start 429 4 10.96.62.1 80
api_ctl POST /inject '{"code":429,"count":2,"retry_after":1,"match":"endpointslices"}' >/dev/null
mark=$(api_mark)
stream '{"action":"end","kind":"EndpointSlice"}' >/dev/null
work 198.18.62.3
recovered "429" "$mark" EndpointSlice
expect "429: two 429s then 200" \
	"$(req_py "$mark" "' '.join(str(x['status']) for x in r if x['kind'] == 'EndpointSlice')")" "429 429 200"
gaps=$(req_py "$mark" "' '.join('%.2f' % g for g in gaps('EndpointSlice'))")
note "429: seconds between the slices' requests: $gaps"
expect "429: each retry waited Retry-After (1 s, +- 0.2)" \
	"$(awk '{for (i = 1; i <= NF; i++) if ($i < 0.9 || $i > 1.2) bad++} END {print bad + 0}' <<<"$gaps")" 0
expect "429: the log says it honours Retry-After" \
	"$(grep -c 'endpointslices: watch answered 429: .*retrying in 1.0 s (Retry-After: 1)' "$FERRYD_LOG")" 2
load_check 429 "429 Too Many Requests" 5
expect_alive "429"

# --- 401: the token rotated -------------------------------------------------------
load_start 401 4 10.96.62.1 80
new_token="tok-$P-rotated-$RANDOM"
api_ctl POST /token "{\"token\":\"$new_token\"}" >/dev/null
mark=$(api_mark)
stream '{"action":"end"}' >/dev/null
work 198.18.62.1 198.18.62.2
saw_401() { [ "$(req_py "$mark" "len([x for x in r if x['status'] == 401])")" -ge 1 ]; }
if wait_until 5 saw_401; then ok "401: the old token is refused"; else not_ok "401: the old token is refused" "no 401"; fi
api_write_token "$new_token"
recovered "401 token rotation" "$mark" EndpointSlice
all_200() { [ "$(req_py "$mark" "all(first_ok(k) for k in ('Service', 'EndpointSlice', 'Node'))")" = True ]; }
wait_until 10 all_200
expect_match "401: each collection got 401s, then 200 once the token file held the new token" \
	"$(req_py "$mark" "' '.join(k + ':' + ','.join(str(x['status']) for x in r if x['kind'] == k) for k in ('Service', 'EndpointSlice', 'Node'))")" \
	'^Service:(401,)+200 EndpointSlice:(401,)+200 Node:(401,)+200$'
expect "401: the 401s carried the old token, the 200s the new one" \
	"$(req_py "$mark" "' '.join(sorted(set('%s=%s' % (x['status'], x['auth']) for x in r)))")" \
	"200=token 401=bad-token"
expect_match "401: the log says it reads the token again" \
	"$(grep -c '401 Unauthorized: Unauthorized; reading the token again' "$FERRYD_LOG")" '^[1-9]'
load_check 401 "token rotation" 5
expect_alive "401"

# --- 403 Forbidden ------------------------------------------------------------------
# One 403 on the Services watch: ferryd names the permission, keeps the
# last state and retries slowly (--forbidden-retry), not in a loop.
load_start 403 4 10.96.62.1 80
api_ctl POST /inject '{"code":403,"count":1,"match":"/api/v1/services"}' >/dev/null
before=$(maps_actual)
mark=$(api_mark)
stream '{"action":"end","kind":"Service"}' >/dev/null
put "$(svc_json $NS frag 10.96.62.5 '[{"name":"http","port":80},{"name":"alt","port":81}]')"
logged_403() { grep -q "services: 403 Forbidden: ferryd's account may not watch services (it needs get, list and watch on them): services is forbidden: User \"system:serviceaccount:kube-system:ferry\" cannot watch resource \"services\"" "$FERRYD_LOG"; }
if wait_until 5 logged_403; then
	ok "403: the log names the missing permission (watch services)"
else
	not_ok "403: the log names the missing permission (watch services)" "$(grep 403 "$FERRYD_LOG" | tail -n 1)"
fi
expect "403: the last state stays (the maps did not change)" "$(maps_actual)" "$before"
load_check 403 "403 Forbidden" 5
expect_alive "403"
retried() { [ "$(req_py "$mark" "len([x for x in r if x['kind'] == 'Service' and x['status'] == 200])")" -ge 1 ]; }
if wait_until 15 retried; then
	gap=$(req_py "$mark" "'%.1f' % gaps('Service')[0]")
	expect_match "403: the Services watch is retried after --forbidden-retry (3 s), not before" \
		"$gap" '^([3-9]|1[0-4])\.'
	expect "403: one request in between (slow retry, no loop)" \
		"$(req_py "$mark" "' '.join(str(x['status']) for x in r if x['kind'] == 'Service')")" "403 200"
	recovered "403" "$mark" Service
else
	not_ok "403: ferryd retries the Services watch" "no request within 15 s"
fi

# --- a plain HTTP 410 answer to a watch ---------------------------------------
# (This case and the next drop the history: they come last, as every watch
# resumed after them would meet a 410.)
# A watch from a resourceVersion the server no longer has may be refused
# with the status itself, not with an ERROR event in a 200 stream: same
# meaning (spec), ferryd lists again rather than retrying the same watch.
# The slices' stream stalls, the write goes out of the history (compact),
# and the stream ends: the rewatch from the old resourceVersion gets 410.
load_start plain410 4 10.96.62.1 80
api_ctl POST /config '{"expired_watch":"status"}' >/dev/null
stream '{"action":"stall","kind":"EndpointSlice","seconds":30}' >/dev/null
work 198.18.62.1 198.18.62.3
api_ctl POST /compact >/dev/null
mark=$(api_mark)
stream '{"action":"end","kind":"EndpointSlice"}' >/dev/null
recovered "plain 410" "$mark" EndpointSlice
expect_match "plain 410: the slices' watch was answered 410, then listed again (200)" \
	"$(req_py "$mark" "' '.join('%s:%s' % ('watch' if is_watch(x) else 'list', x['status']) for x in r if x['kind'] == 'EndpointSlice')")" \
	'^watch:410 list:200'
expect "plain 410: the log says it lists again" \
	"$(grep -c 'endpointslices: watch from resourceVersion [0-9]* answered 410 (expired): listing again' "$FERRYD_LOG")" 1
api_ctl POST /config '{"expired_watch":"event"}' >/dev/null
load_check plain410 "a plain 410" 3
expect_alive "plain 410"

# --- B12: a relist reads the newest state --------------------------------------
# The watch cache lags (kubernetes#59848): from here on, resourceVersion=0
# lists answer the state frozen now, in which work still has 198.18.62.3.
# The endpoint is removed, then the slices' watch gets 410: the relist must
# not bring it back (a list without resourceVersion, a consistent read).
# The slices' watches are refused for 4 s after it, so that a stale list
# would stay in the maps long enough to be seen.
work 198.18.62.1 198.18.62.3
expect_maps_equal "B12: work has 198.18.62.1 and .3"
api_ctl POST /config '{"cache":"frozen"}' >/dev/null
work 198.18.62.1
expect_maps_equal "B12: 198.18.62.3 removed from work through the watch"
api_ctl POST /inject '{"code":503,"seconds":4,"retry_after":1,"on":"watch","match":"endpointslices"}' >/dev/null
mark=$(api_mark)
stream '{"action":"expire","kind":"EndpointSlice"}' >/dev/null
slices_listed() { [ "$(req_py "$mark" "len([x for x in lists('EndpointSlice') if x['status'] == 200])")" -ge 1 ]; }
slices_watching() { [ "$(req_py "$mark" "len([x for x in r if is_watch(x) and x['kind'] == 'EndpointSlice' and x['status'] == 200])")" -ge 1 ]; }
wait_until 5 slices_listed
samples=()
for _ in $(seq 1 80); do # 0.1 s apart, until the slices' watch goes through (4 s)
	samples+=("$(svc_backends 10.96.62.2 80 TCP)")
	slices_watching && break
	sleep 0.1
done
expect "B12: the relist asked for no resourceVersion (a consistent read, not the watch cache)" \
	"$(req_py "$mark" "[x['query'].get('resourceVersion') for x in lists('EndpointSlice')]")" "[None]"
expect "B12: the removed endpoint never came back: ${#samples[@]} samples of work while the watch was refused" \
	"$(printf '%s\n' "${samples[@]}" | sort -u | tr '\n' ' ')" "198.18.62.1:8080:active "
api_ctl POST /config '{"cache":"live"}' >/dev/null
expect_maps_equal "B12: the maps equal the API state" 10
expect_alive "B12"

# --- a stream that goes silent: the idle deadline -------------------------------
# A black hole (a load balancer failover, a NAT flush) keeps the connection
# up and delivers nothing. ferryd restarted with --watch-idle-timeout 2 and
# bookmarks every 0.5 s (a healthy stream is never silent for 2 s); the
# slices' stream stalls for 60 s: no byte, not even a bookmark, the
# connection open. The change written meanwhile must reach the maps once
# ferryd drops the silent stream and watches again from its resourceVersion.
ferryd_stop
obs_ports
api_ctl POST /bookmarks '{"interval":0.5}' >/dev/null
ferryd_k8s_start --watch-idle-timeout 2 --metrics-addr "127.0.0.1:$MPORT" || finish
expect_maps_equal "idle: ferryd restarted with --watch-idle-timeout 2"
load_start idle 5 10.96.62.1 80
mark=$(api_mark)
t_stall=$EPOCHREALTIME
expect_match "idle: the slices' stream stalls (POST /streams stall)" \
	"$(stream '{"action":"stall","kind":"EndpointSlice","seconds":60}')" '"streams":1'
work 198.18.62.2 198.18.62.3
if wait_maps_equal_api 15; then
	d=$("$PYTHON" -c "print(int(($(applied_time) - $t_stall) * 1000))")
	note "idle: the write reached the maps $d ms after the stall began (idle timeout 2 s, counted from the stream's last byte, a bookmark up to 0.5 s before the stall)"
	ok "idle: the change written while the slices' stream was silent reaches the maps"
else
	not_ok "idle: the change written while the slices' stream was silent reaches the maps" "$(maps_diff)"
fi
# The stream open when the stall began, and what followed it.
silent_ended() {
	req_py 0 "w = [x for x in r if x['kind'] == 'EndpointSlice' and is_watch(x) and x['id'] <= $mark]
print(w[-1].get('ended'))"
}
wait_until 5 eval '[ "$(silent_ended)" = client ]'
expect "idle: ferryd closed the silent stream and watched again from its resourceVersion (no list)" \
	"$(silent_ended) $(req_py "$mark" "' '.join('%s:%s' % ('watch' if is_watch(x) else 'list', x['status']) for x in r if x['kind'] == 'EndpointSlice')")" \
	"client watch:200"
expect "idle: counted in ferry_watch_errors_total{reason=\"idle\"}: endpointslices 1, services 0" \
	"$(metric 'ferry_watch_errors_total{collection="endpointslices",reason="idle"}') $(metric 'ferry_watch_errors_total{collection="services",reason="idle"}')" "1 0"
expect "idle: the log says the stream was taken for dead" \
	"$(grep -c 'endpointslices: no byte for 2.[0-9] s (--watch-idle-timeout): the stream is taken for dead; watching again from resourceVersion' "$FERRYD_LOG")" 1
load_check idle "a silent stream" 3
expect_alive "idle"
# TCP keepalive (30 s, not curl's 60 s): the time left on the keepalive
# timer of ferryd's API connections, for the record (it restarts with
# traffic, so its value proves nothing alone).
note "idle: keepalive timers of ferryd's API connections: $(ss -tnoH state established "( dport = :$API_PORT )" | grep -o 'timer:(keepalive,[^,]*' | sed 's/.*,//' | tr '\n' ' ')"

expect_alive "faults"
finish
