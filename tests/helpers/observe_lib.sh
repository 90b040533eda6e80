# shellcheck shell=bash disable=SC2034 # the variables are for the groups that source this
# Helpers for the metrics and health groups (observe.sh, probes.sh, mapfull.sh),
# sourced after tests/lib.sh: free ports on 127.0.0.1, HTTP requests with
# curl, samples of /metrics (tests/helpers/prom.py) and kube-proxy's health
# JSON. Everything listens on and talks to 127.0.0.1 only.

PROM=$REPO/tests/helpers/prom.py
# probe_load.py probe COUNT SPACING URL...: "n=N codes=200:N p50=S max=S".
PROBE_LOAD=$REPO/tests/helpers/probe_load.py
MPORT='' HPORT='' MURL='' HURL='' HELD='' HOLDER_PID=''

# obs_ports: MPORT and HPORT, two distinct free ports of 127.0.0.1 (bound
# to port 0 together, then let go), and MURL, HURL their base URLs.
obs_ports() {
	read -r MPORT HPORT < <("$PYTHON" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
	MURL=http://127.0.0.1:$MPORT
	HURL=http://127.0.0.1:$HPORT
}

# http METHOD URL OUT: prints "CODE CONTENT-TYPE" ("000 " when nothing
# answered); the body goes to OUT.
http() {
	local data=()
	[ "$1" = POST ] && data=(--data '')
	curl -sS --max-time 5 -X "$1" "${data[@]}" -o "$3" -w '%{http_code} %{content_type}' "$2" 2>/dev/null
	return 0
}

code_is() { [ "$(http GET "$1" /dev/null | cut -d' ' -f1)" = "$2" ]; }

# health_becomes CASE CODE [SECONDS]: a case, /healthz answers CODE within
# SECONDS (5).
health_becomes() {
	if wait_until "${3:-5}" code_is "$HURL/healthz" "$2"; then
		ok "$1"
	else
		not_ok "$1 (within ${3:-5} s)" "$(http GET "$HURL/healthz" /dev/null)"
	fi
}

# health_seen: "HEALTHZ-CODE HEALTHZ-JSON LIVEZ-CODE", the JSON as health_json
# sums it up.
health_seen() {
	echo "$(http GET "$HURL/healthz" "$WORK/h.json" | cut -d' ' -f1) $(health_json "$WORK/h.json")" \
		"$(http GET "$HURL/livez" /dev/null | cut -d' ' -f1)"
}

# metric SELECTOR: the value of one sample of a fresh /metrics (name or
# name{k="v",...}); nothing when it cannot be had.
metric() {
	local f=$WORK/scrape.$BASHPID.txt v
	if curl -sS --max-time 5 -o "$f" "$MURL/metrics" 2>/dev/null &&
		v=$("$PYTHON" "$PROM" value "$f" "$1"); then
		echo "$v"
	fi
	rm -f "$f"
}

metric_is() { [ "$(metric "$1")" = "$2" ]; }

# metric_above SELECTOR N: the sample is above N.
metric_above() {
	local v
	v=$(metric "$1")
	[ -n "$v" ] && awk -v v="$v" -v n="$2" 'BEGIN {exit !(v > n)}'
}

# health_json FILE: kube-proxy's health JSON summed up as "KEY=VALUE ..."
# sorted, a time that is RFC 3339 (as Go marshals time.Time) shown as
# RFC3339.
health_json() {
	"$PYTHON" -c '
import json, re, sys
try:
    j = json.load(open(sys.argv[1]))
except ValueError as e:
    print("not JSON: %s" % e)
    sys.exit()
rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
out = []
for k in sorted(j):
    v = j[k]
    if isinstance(v, str) and rfc3339.match(v):
        v = "RFC3339"
    out.append("%s=%s" % (k, v))
print(" ".join(out))' "$1"
}

# health_times FILE TS: "lastUpdated=same" when lastUpdated is the Unix time
# TS (to the millisecond), "currentTime=now" when currentTime is within 5 s
# of now; the times themselves otherwise.
health_times() {
	"$PYTHON" -c '
import calendar, json, re, sys, time
def unix(text):
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z$", text)
    if not m:
        return None
    t = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
    return t + float(m.group(7) or 0)
j = json.load(open(sys.argv[1]))
lu, ct = unix(j.get("lastUpdated", "")), unix(j.get("currentTime", ""))
out = ["lastUpdated=" + ("same" if lu is not None and abs(lu - float(sys.argv[2])) < 0.001 else "%s (want %s)" % (j.get("lastUpdated"), sys.argv[2])),
       "currentTime=" + ("now" if ct is not None and abs(ct - time.time()) < 5 else "%s (now %.3f)" % (j.get("currentTime"), time.time()))]
print(" ".join(out))' "$1" "$2"
}

# listeners: the TCP addresses ferryd ($FERRYD_PID) listens on, sorted.
listeners() {
	ss -Hltnp | grep -F "pid=$FERRYD_PID," | awk '{print $4}' | sort | tr '\n' ' ' | sed 's/ $//'
}

# hold_port: a listener of the test's own on a free port HELD of 127.0.0.1
# (its pid HOLDER_PID, in PIDS), for an address ferryd cannot bind.
hold_port() {
	"$PYTHON" -c '
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)' "$WORK/held" &
	HOLDER_PID=$!
	PIDS+=("$HOLDER_PID")
	if ! wait_file "$WORK/held" 10; then
		not_ok "$GROUP setup" "the port holder did not start"
		finish
	fi
	HELD=$(cat "$WORK/held")
}
