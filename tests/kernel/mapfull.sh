#!/usr/bin/env bash
# Full maps. ferryd runs with tiny capacities (--max-services 4: 8 entries in
# ferry_services4, a frontend plus a VIP marker per ClusterIP;
# --max-backends 8; --max-backends-per-service 4: 12 slots). Whatever does
# not fit is reported (an error log line naming the service port, the first
# 10 of an apply, then one line for the rest; the map_full_errors counter in
# ferryctl status); the services that fit work;
# nothing already programmed is touched; removing the extra objects leaves
# exactly the expected state. A Service with more endpoints than
# --max-backends-per-service is programmed up to the limit, with a warning.
# At --max-backends, a change that keeps the total is applied (make-before-
# break needs room for one service's new backends, as ferry_slots has); a
# change beyond it is refused whole; the write that makes room applies what
# was refused.
# shellcheck disable=SC2317 # functions called through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
for i in 1 2 3 4 5 6; do
	pod "m-$i" "198.18.70.$i" "" --tcp 8080
done

SRC=$WORK/src
mkdir "$SRC"

# svc NAME VIP POD-NUMBER...: Service NAME (namespace mf, port 80 -> 8080)
# and its slice with the pods 198.18.70.N.
svc() {
	local name=$1 vip=$2 n
	shift 2
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: mf}
spec:
  clusterIP: $vip
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: mf, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
EOF
	for n in "$@"; do echo "- {addresses: [198.18.70.$n], conditions: {ready: true}}"; done
}
A=10.96.70.1 B=10.96.70.2 C=10.96.70.3 D=10.96.70.4 E=10.96.70.5 F=10.96.70.6 G=10.96.70.7
state_fits() { svc a $A 1 2; svc b $B 3 4; svc c $C 5; }

# snapshot VIP...: what ferryctl lists for these frontends (IDs, revisions,
# backend IDs and addresses), canonical JSON.
snapshot() {
	service_list_json | "$PYTHON" -c '
import json, sys
want = sys.argv[1:]
rows = [s for s in json.load(sys.stdin) if s["address"] in want]
print(json.dumps(sorted(rows, key=lambda s: s["address"]), sort_keys=True))' "$@"
}

# serves NAME VIP WANT: conn_tally 40 to VIP:80 answers from WANT's pods only
# (space separated, sorted), every one of them, no error.
serves() {
	expect "$1" "$(names_of "$(conn_tally 40 "$2" 80)")" "$3"
}

full_errors() { status_get 'j["agent"]["map_full_errors"]'; }
svcs_backends() { status_get '"%d %d" % (j["agent"]["services"], j["agent"]["backends"])'; }
log_has() { grep -v 'component=libbpf' "$FERRYD_LOG" | grep -F -- "$1" | grep -qF -- "$2"; }

state_fits | write_source "$SRC/mf.yaml"
ferryd_start "$SRC/mf.yaml" --max-services 4 --max-backends 8 --max-backends-per-service 4 ||
	finish

expect "mapfull: capacities (services map 2 x 4: frontends and VIP markers; slots 8 + 4)" \
	"$(status_get '" ".join("%s=%d" % (m["name"], m["max_entries"]) for m in j["maps"] if m["name"] in ("ferry_services4", "ferry_slots"))')" \
	"ferry_services4=8 ferry_slots=12"
note "ferry_backends holds $(status_get '[m["capacity"] for m in j["maps"] if m["name"] == "ferry_backends"][0]') entries"
serves "mapfull: a fitting state works: a -> m-1 m-2" $A "m-1 m-2"
serves "mapfull: a fitting state works: b -> m-3 m-4" $B "m-3 m-4"
serves "mapfull: a fitting state works: c -> m-5" $C "m-5"
expect "mapfull: no map-full error while everything fits" "$(full_errors)" 0
BEFORE=$(snapshot $A $B $C)

# --- Backends map full: d needs 4 backends where 3 are left; e fits after.
{ state_fits; svc d $D 1 2 3 4; svc e $E 6; } | update_source "$SRC/mf.yaml" ||
	not_ok "mapfull: the state with d and e publishes a generation" "generation $(generation)"
n=$(full_errors)
if [ "${n:-0}" -gt 0 ]; then
	ok "mapfull: ferry_backends full: map_full_errors=$n in ferryctl status"
else
	not_ok "mapfull: ferry_backends full: map_full_errors > 0 in ferryctl status" "got '$n'"
fi
if log_has 'level=error' 'mf/d:http/TCP/v4: not programmed: no room'; then
	ok "mapfull: an error log line names the service that did not fit (mf/d)"
else
	not_ok "mapfull: an error log line names the service that did not fit (mf/d)" \
		"$(grep -F 'mf/d' "$FERRYD_LOG" | tail -n 2 | tr '\n' ' ')"
fi
expect "mapfull: the service that did not fit is not listed" "$(svc_backends $D 80 TCP)" absent
serves "mapfull: e, which fits after d, works: e -> m-6" $E "m-6"
expect "mapfull: the services programmed before are unchanged (IDs, revisions, backends)" \
	"$(snapshot $A $B $C)" "$BEFORE"
serves "mapfull: a still works while the map is full" $A "m-1 m-2"
serves "mapfull: b still works while the map is full" $B "m-3 m-4"
serves "mapfull: c still works while the map is full" $C "m-5"
expect "mapfull: ferryctl status counts what is programmed (4 services, 6 backends)" \
	"$(svcs_backends)" "4 6"
out=$(probe tcp $D 80)
note "d (not programmed) from the client: $out"

# --- Services map full: f needs a frontend and a VIP marker, none left.
n_before=$(full_errors)
{ state_fits; svc d $D 1 2 3 4; svc e $E 6; svc f $F 5; } | write_source "$SRC/mf.yaml"
if wait_status 10 "j['agent']['map_full_errors'] > ${n_before:-0} and \
	any('mf/f' in l for l in open('$FERRYD_LOG'))"; then
	ok "mapfull: ferry_services4 full: map_full_errors rises ($n_before -> $(full_errors))"
else
	not_ok "mapfull: ferry_services4 full: map_full_errors rises" "still $(full_errors)"
fi
if log_has 'level=error' 'mf/f:http/TCP/v4: not programmed: no room'; then
	ok "mapfull: an error log line names the service with no room (mf/f)"
else
	not_ok "mapfull: an error log line names the service with no room (mf/f)" \
		"$(grep -F 'mf/f' "$FERRYD_LOG" | tail -n 2 | tr '\n' ' ')"
fi
expect "mapfull: f is not listed" "$(svc_backends $F 80 TCP)" absent
expect "mapfull: the services programmed before are still unchanged" \
	"$(snapshot $A $B $C)" "$BEFORE"
serves "mapfull: a works with ferry_services4 full" $A "m-1 m-2"
serves "mapfull: e works with ferry_services4 full" $E "m-6"
expect "mapfull: still 4 services, 6 backends" "$(svcs_backends)" "4 6"

# --- Far over the capacity: 30 more Services, none with room. The log
# names the first 10 service ports of the apply and counts the rest in one
# line (20 more; d and f, unchanged, are not applied again), not a line per
# port.
xs() { for i in $(seq 30); do svc "x$i" "10.96.71.$i" 6; done; }
mark=$(wc -l <"$FERRYD_LOG")
{ state_fits; svc d $D 1 2 3 4; svc e $E 6; svc f $F 5; xs; } | write_source "$SRC/mf.yaml"
summary() { tail -n +"$((mark + 1))" "$FERRYD_LOG" | grep -F 'more service ports found no room'; }
if wait_until 10 summary; then
	expect_match "mapfull: 30 service ports without room: one line counts those past the first 10" \
		"$(summary)" 'msg="20 more service ports found no room .*ferry_service_ports_pending counts them all"$'
	expect "mapfull: ... and 10 are named one by one" \
		"$(tail -n +"$((mark + 1))" "$FERRYD_LOG" | grep -c 'not programmed: no room')" 10
else
	not_ok "mapfull: 30 service ports without room: one line counts those past the first 10" \
		"$(tail -n +"$((mark + 1))" "$FERRYD_LOG" | grep -c 'no room') lines with 'no room', no summary"
fi
expect "mapfull: still 4 services, 6 backends, with 30 more that do not fit" "$(svcs_backends)" "4 6"

# --- The extra objects removed: exactly the fitting state, no leftovers.
state_fits | update_source "$SRC/mf.yaml" ||
	not_ok "mapfull: removing d, e, f publishes a generation" "generation $(generation)"
expect "mapfull: after removing the extras, ferryctl service list is exactly a, b, c" \
	"$(service_list_json | "$PYTHON" -c '
import json, sys
print(" ".join("%s:%d=%s" % (s["address"], s["port"], ",".join(sorted(b["address"] for b in s["backends"])))
               for s in sorted(json.load(sys.stdin), key=lambda s: s["address"])))')" \
	"$A:80=198.18.70.1,198.18.70.2 $B:80=198.18.70.3,198.18.70.4 $C:80=198.18.70.5"
expect "mapfull: a, b, c kept their IDs and revisions through it all" \
	"$(snapshot $A $B $C)" "$BEFORE"
expect "mapfull: no entry left behind (3 frontends + 3 VIP markers, 5 backends; small sets have no slots)" \
	"$(map_entries)" "ferry_services4=6 ferry_services6=0 ferry_slots=0 ferry_backends=5 ferry_affinity=0"
expect "mapfull: ferryctl status: 3 services, 5 backends" "$(svcs_backends)" "3 5"
serves "mapfull: e is gone: a still serves" $A "m-1 m-2"
expect "B17 mapfull: the removed e's ClusterIP is no longer translated" \
	"$(field error "$(probe tcp $E 80)")" ENETUNREACH

# --- More endpoints than --max-backends-per-service: cut to the limit.
# c goes first, in a write of its own: ferryd creates new service ports
# before it removes departed ones (a frontend that changes hands is
# overwritten without a gap), so g would not fit in the same write.
{ svc a $A 1 2; svc b $B 3 4; } | update_source "$SRC/mf.yaml" ||
	not_ok "mapfull: removing c publishes a generation" "generation $(generation)"
{ svc a $A 1 2; svc b $B 3 4; svc g $G 1 2 3 4 5 6; } | update_source "$SRC/mf.yaml" ||
	not_ok "mapfull: g with 6 endpoints publishes a generation" "generation $(generation)"
gset=$(svc_backends $G 80 TCP)
expect_match "mapfull: g (6 endpoints) is programmed with exactly 4 backends, the limit" \
	"$gset" '^(198\.18\.70\.[1-6]:8080:active ?){4}$'
if grep -F 'level=warn' "$FERRYD_LOG" | grep -F -- '--max-backends-per-service' | grep -qF 'mf/g:http/TCP/v4'; then
	ok "mapfull: a warning log line names g, cut to --max-backends-per-service"
else
	not_ok "mapfull: a warning log line names g, cut to --max-backends-per-service" \
		"$(grep -F -- '--max-backends-per-service' "$FERRYD_LOG" | tail -n 1)"
fi
want=$(for b in $gset; do b=${b%%:*}; echo "m-${b##*.}"; done | sort | tr '\n' ' ' | sed 's/ $//')
t=$(conn_tally 120 $G 80)
expect "mapfull: g answers from its 4 programmed backends only (x120)" "$(names_of "$t")" "$want"
expect "mapfull: a, b and g: 8 backends, the map's capacity" "$(svcs_backends)" "3 8"

# --- At capacity, a change that keeps the total: a's m-2 replaced by m-3.
# The result holds 8 backends, --max-backends; only make-before-break needs
# one more entry for a moment (ferry_slots has such room: max-backends +
# max-backends-per-service).
snap_a=$(snapshot $A)
snap_bg=$(snapshot $B $G)
n_before=$(full_errors)
g_before=$(generation)
{ svc a $A 1 3; svc b $B 3 4; svc g $G 1 2 3 4 5 6; } | write_source "$SRC/mf.yaml"
processed() { [ "$(generation)" -gt "$g_before" ] || [ "$(full_errors)" -gt "$n_before" ]; }
wait_until 10 processed
if [ "$(svc_backends $A 80 TCP)" = "198.18.70.1:8080:active 198.18.70.3:8080:active" ]; then
	ok "mapfull: at --max-backends, replacing one backend of a (same total) is applied"
	serves "mapfull: a serves its new set" $A "m-1 m-3"
else
	not_ok "mapfull: at --max-backends, replacing one backend of a (same total) is applied" \
		"not applied (map_full_errors $n_before -> $(full_errors)): ferry_backends holds exactly --max-backends, no room for the new backend before the old one goes; log: $(grep -F 'mf/a:' "$FERRYD_LOG" | tail -n 1)"
	expect "mapfull: the refused change leaves a's previous set untouched" "$(snapshot $A)" "$snap_a"
	serves "mapfull: a keeps serving its previous set" $A "m-1 m-2"
fi
expect "mapfull: b and g untouched by a's change" "$(snapshot $B $G)" "$snap_bg"

# --- A change beyond --max-backends: a to 4 backends (10 in all) is refused
# whole; a keeps the set it had, nothing else moves.
snap_a=$(snapshot $A)
a_had=$(names_of "$(conn_tally 40 $A 80)")
n_before=$(full_errors)
{ svc a $A 1 3 5 6; svc b $B 3 4; svc g $G 1 2 3 4 5 6; } | write_source "$SRC/mf.yaml"
if wait_status 10 "j['agent']['map_full_errors'] > ${n_before:-0}"; then
	ok "mapfull: a change beyond --max-backends (a: 4 backends, 10 in all): map_full_errors rises"
else
	not_ok "mapfull: a change beyond --max-backends: map_full_errors rises" "still $(full_errors)"
fi
if wait_until 5 log_has 'level=error' 'mf/a:http/TCP/v4: backends not updated, the previous set stays: no room'; then
	ok "mapfull: an error log line names the service whose change did not fit (mf/a)"
else
	not_ok "mapfull: an error log line names the service whose change did not fit (mf/a)" \
		"$(grep -F 'mf/a' "$FERRYD_LOG" | tail -n 2 | tr '\n' ' ')"
fi
expect "mapfull: a keeps its set, untouched (no half-written set)" "$(snapshot $A)" "$snap_a"
expect "mapfull: b and g untouched" "$(snapshot $B $G)" "$snap_bg"
serves "mapfull: a keeps serving the set it had" $A "$a_had"
serves "mapfull: b keeps serving" $B "m-3 m-4"
expect "mapfull: still 3 services, 8 backends" "$(svcs_backends)" "3 8"

# --- Room again: g goes, in the same write that still wants a on 4 pods.
a_new="198.18.70.1:8080:active 198.18.70.3:8080:active 198.18.70.5:8080:active 198.18.70.6:8080:active"
a_is_new() { [ "$(svc_backends "$A" 80 TCP)" = "$a_new" ]; }
{ svc a $A 1 3 5 6; svc b $B 3 4; } | update_source "$SRC/mf.yaml" ||
	not_ok "mapfull: removing g publishes a generation" "generation $(generation)"
if wait_until 3 a_is_new; then
	ok "mapfull: the write that removes g makes room: a's pending change is applied with it"
else
	not_ok "mapfull: the write that removes g makes room: a's pending change is applied with it" \
		"a still lists '$(svc_backends $A 80 TCP)' 3 s later: ferryd applies a (no room yet) before it removes g, and does not retry"
	# The next change of the source retries a: go on from there.
	{ svc a $A 1 3 5 6; svc b $B 3 4; } | update_source "$SRC/mf.yaml"
	wait_until 3 a_is_new
fi
expect "mapfull: a lists its new set" "$(svc_backends $A 80 TCP)" "$a_new"
serves "mapfull: a serves its new set" $A "m-1 m-3 m-5 m-6"
expect "mapfull: no entry left behind (2 frontends + 2 VIP markers, 6 backends; small sets have no slots)" \
	"$(map_entries)" "ferry_services4=4 ferry_services6=0 ferry_slots=0 ferry_backends=6 ferry_affinity=0"
expect "mapfull: ferryctl status: 2 services, 6 backends" "$(svcs_backends)" "2 6"


# --- Health while a map is full (issue 11): /healthz turns 503 once the
# service port that finds no room has waited --health-timeout (B29); /livez
# stays 200, since the loop runs and a restart would not make room (the
# kubelet would restart ferryd over and over, each time relisting).
# shellcheck source=tests/helpers/observe_lib.sh
source "$REPO/tests/helpers/observe_lib.sh"
ferryd_reset
obs_ports
state_fits | write_source "$SRC/mf.yaml"
ferryd_start "$SRC/mf.yaml" --max-services 4 --max-backends 8 --max-backends-per-service 4 \
	--health-timeout 1 --health-addr "127.0.0.1:$HPORT" || finish
expect "mapfull health: everything fits: /healthz and /livez 200" \
	"$(http GET "$HURL/healthz" /dev/null | cut -d' ' -f1) $(http GET "$HURL/livez" /dev/null | cut -d' ' -f1)" \
	"200 200"
{ state_fits; svc d $D 1 2 3 4; } | write_source "$SRC/mf.yaml"
health_becomes "B29 mapfull health: d finds no room: /healthz 503 after --health-timeout" 503 10
within=$("$PYTHON" "$PROBE_LOAD" probe 10 0.2 "$HURL/livez")
expect "mapfull health: /livez stays 200 while the map is full, over 2 s; /healthz still 503" \
	"$(field codes "$within") $(http GET "$HURL/healthz" /dev/null | cut -d' ' -f1)" "200:10 503"
serves "mapfull health: a still works" $A "m-1 m-2"
state_fits | write_source "$SRC/mf.yaml"
health_becomes "mapfull health: d removed: /healthz 200 again" 200

finish
