#!/usr/bin/env bash
# The Kubernetes network-programming SLI on the stand-in API server:
# ferry_network_programming_duration_seconds, kube-proxy's
# network_programming_duration_seconds, observes once per EndpointSlice
# change the wall time from its endpoints.kubernetes.io/last-change-trigger-
# time annotation to the publish of the generation that applies it.
#  - a slice written with a trigger time 2 s in the past adds one
#    observation, at least the time from the trigger to ferryd's publish
#    (ferry_state) and at most the time to the scrape;
#  - a slice without the annotation, with one that does not parse (logged at
#    debug, the slice served all the same) or with one older than ferryd's
#    start adds none (kube-proxy skips changes before its own start);
#  - a relist after 410 counts the slice changed meanwhile once and the
#    unchanged ones not again (kube-proxy counts a change its cache did not
#    hold).
# A change that adds nothing is followed by a marker change (trigger time
# now) that adds one: the count must then have moved by exactly one, so a
# scrape taken before the first change's generation cannot pass.
# shellcheck disable=SC2317,SC2119 # functions run through wait_until; no script arguments
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apilib.sh
source "$(dirname "$0")/../apilib.sh"
# shellcheck source=tests/helpers/observe_lib.sh
source "$(dirname "$0")/../helpers/observe_lib.sh"

NS=sli
H=ferry_network_programming_duration_seconds
topology_up
api_setup
api_start || finish
obs_ports

HTTP='[{"name":"http","port":80,"targetPort":8080}]'
SL_HTTP='[{"name":"http","port":8080}]'

# rfc3339 SECONDS-AGO: the wall time that long ago, as the endpoints
# controller writes the annotation (UTC, nanoseconds).
rfc3339() {
	"$PYTHON" -c 'import sys, time
t = time.time_ns() - int(float(sys.argv[1]) * 1e9)
print(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + ".%09dZ" % (t % 10**9))' "$1"
}
# unix_of RFC3339: its Unix time, in seconds.
unix_of() {
	"$PYTHON" -c 'import sys, calendar, time
s, frac = sys.argv[1].rstrip("Z").split(".")
print("%.9f" % (calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1e9))' "$1"
}
# tslice NAME ADDR [TRIGGER]: an EndpointSlice of Service web with one
# endpoint, annotated with TRIGGER when given.
tslice() {
	slice_json $NS "$1" web "$SL_HTTP" "$(eps "$2")" |
		"$PYTHON" -c 'import json, sys
o = json.load(sys.stdin)
if len(sys.argv) > 1:
    o["metadata"]["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": sys.argv[1]}
print(json.dumps(o))' "${@:3}"
}
count() { metric "${H}_count"; }
sum() { metric "${H}_sum"; }
count_is() { [ "$(count)" = "$1" ]; }
# py EXPR: a Python expression's value.
py() { "$PYTHON" -c "print($1)"; }

put "$(node_json node-a)"
put "$(svc_json $NS web 10.96.90.1 "$HTTP")"
put "$(tslice web-1 198.18.90.1)"
# In the first list: a trigger time before ferryd started.
put "$(tslice web-2 198.18.90.2 "$(rfc3339 60)")"

t_spawn=$EPOCHREALTIME
ferryd_k8s_spawn --metrics-addr "127.0.0.1:$MPORT" || finish
wait_generation 1 15 || { not_ok "ferryd programs the first list" "generation $(generation)"; finish; }
t_first=$(applied_time)
expect_maps_equal "the first list is programmed"
expect "the histogram is exposed with kube-proxy's 81 buckets (0, 0.25, 0.5, 1..59, 60..115 by 5, 120..300 by 30) and +Inf" \
	"$(curl -sS --max-time 5 "$MURL/metrics" | grep -c "^${H}_bucket")" 82
expect "$H: no observation for the first list (no annotation, or one older than ferryd's start)" \
	"$(count) $(sum)" "0 0"

# A trigger time 2 s ago must be after ferryd's start (its floor, taken
# before its first publish, which may come seconds after the spawn on a
# loaded machine): wait until that publish is more than 2 s old.
up_long_enough() { [ "$(py "$EPOCHREALTIME - $t_first > 2.2")" = True ]; }
wait_until 10 up_long_enough

# marker COUNT NAME: a change with trigger time now adds exactly one
# observation to COUNT, the count before the changes under test.
marker() {
	local before=$1
	put "$(tslice web-3 "198.18.90.$((RANDOM % 200 + 10))" "$(rfc3339 0)")"
	if wait_until 10 count_is $((before + 1)); then
		ok "$2: no observation (a change after it adds exactly one: $before -> $((before + 1)))"
	else
		not_ok "$2: no observation (a change after it adds exactly one)" "count $before -> $(count)"
	fi
}

# --- one change, 2 s old ------------------------------------------------------
c0=$(count) s0=$(sum)
trig=$(rfc3339 2)
put "$(tslice web-1 198.18.90.11 "$trig")"
if wait_until 10 count_is $((c0 + 1)); then
	ok "$H: a slice changed with a trigger time 2 s ago adds one observation"
else
	not_ok "$H: a slice changed with a trigger time 2 s ago adds one observation" "count $c0 -> $(count)"
fi
t_read=$EPOCHREALTIME
d=$(py "$(sum) - $s0")
t_trig=$(unix_of "$trig")
t_pub=$(applied_time)
expect_maps_equal "the change with a trigger time is programmed"
lo=$(py "'%.3f' % (max(2.0, $t_pub - $t_trig) - 0.001)")
hi=$(py "'%.3f' % ($t_read - $t_trig + 0.001)")
if [ "$(py "$lo <= $d <= $hi")" = True ]; then
	ok "$H: the observation ($(py "'%.3f' % $d") s) lies between the trigger time to ferryd's publish and to the scrape [$lo, $hi]"
else
	not_ok "$H: the observation lies between the trigger time to ferryd's publish and to the scrape" \
		"$d not in [$lo, $hi]"
fi
le2=$(metric "${H}_bucket{le=\"2\"}") le3=$(metric "${H}_bucket{le=\"3\"}")
if [ "$(py "$d <= 3")" = True ]; then
	expect "$H: the observation lands in the bucket le=3, not le=2" "$((le3 - le2))" 1
fi

# --- changes that are not measured --------------------------------------------
c=$(count)
put "$(tslice web-1 198.18.90.12)"
expect_maps_equal "a slice changed without the annotation is programmed"
marker "$c" "$H: a slice changed without the annotation"

c=$(count)
put "$(tslice web-1 198.18.90.13 yesterday)"
expect_maps_equal "a slice whose annotation does not parse is served all the same"
marker "$c" "$H: an annotation that does not parse"
expect "an annotation that does not parse is logged at debug, naming the slice" \
	"$(grep -c "debug.*EndpointSlice $NS/web-1: annotation endpoints.kubernetes.io/last-change-trigger-time is not an RFC 3339 time" "$FERRYD_LOG")" 1
expect "an annotation that does not parse is no error: nothing skipped, no field ignored, no warning" \
	"$(metric ferry_objects_skipped_total) $(metric ferry_fields_ignored_total) $(grep -c 'level=\(warn\|error\).*web-1' "$FERRYD_LOG")" \
	"0 0 0"

c=$(count)
put "$(tslice web-2 198.18.90.14 "$(rfc3339 "$(py "$EPOCHREALTIME - $t_spawn + 1")")")"
expect_maps_equal "a slice changed with a trigger time before ferryd's start is programmed"
marker "$c" "$H: a trigger time before ferryd's start"

# --- a relist after 410 ----------------------------------------------------------
# The streams stall; web-2 changes with a trigger time; every stream gets
# 410 and ferryd lists again: web-2 counts once, web-1 and web-3 (unchanged,
# with trigger times) not again.
c=$(count)
mark=$(api_mark)
stream '{"action":"stall","seconds":30}' >/dev/null
put "$(tslice web-2 198.18.90.15 "$(rfc3339 1)")"
stream '{"action":"expire"}' >/dev/null
relisted() { [ "$(req_py "$mark" "len([x for x in lists('EndpointSlice') if x['status'] == 200])")" -ge 1 ]; }
if wait_until 10 relisted && wait_maps_equal_api 10; then
	ok "after 410 ferryd listed EndpointSlices again and the maps equal the API"
else
	not_ok "after 410 ferryd listed EndpointSlices again and the maps equal the API" "$(maps_diff)"
fi
if wait_until 10 count_is $((c + 1)); then
	ok "$H: the relist counts the slice changed meanwhile once"
else
	not_ok "$H: the relist counts the slice changed meanwhile once" "count $c -> $(count)"
fi
marker $((c + 1)) "$H: the relist, for the slices it brings unchanged"

expect_alive "sli"
finish
