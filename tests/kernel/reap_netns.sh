#!/usr/bin/env bash
# B21 for pods: a connected UDP socket in a pod's network namespace fails
# when its backend leaves the service, with ferryd run as deploy/ferry.yaml
# runs it: in the node's network namespace (hostNetwork), in a PID namespace
# of its own (hostPID: false, so /proc shows ferryd alone), finding the pods'
# namespaces through the files that pin them in the folders --netns-dirs
# names (the runtime's /var/run/netns, mounted read-only with HostToContainer
# propagation). The folder here is the test's own, holding bind mounts of its
# pod namespaces; ferryd's mount namespace is a slave of the test's, as
# HostToContainer makes a container's.
#  - pods pinned in the folder before and after ferryd started: their
#    sockets fail (EDESTADDRREQ on the next send), as does one in ferryd's
#    own namespace;
#  - a pod pinned only elsewhere (not named) is left alone: its socket is
#    still answered by the removed backend, which serves on;
#  - a missing folder is logged once (two passes), not fatal; a file in the
#    folder that pins nothing is skipped, not an error.
# The test runs in a mount namespace of its own: its pins (and `ip netns
# add`'s) vanish with it, whatever happens.
[ -n "${FERRY_REAP_NETNS_MNT:-}" ] || [ "$(id -u)" != 0 ] ||
	FERRY_REAP_NETNS_MNT=1 exec unshare --mount --propagation private bash "$0" "$@"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

SVC=10.96.44.10
NETNS=$WORK/netns
MISSING=$WORK/missing
MOUNTS=()

# shellcheck disable=SC2317 # run by the trap
reap_cleanup() {
	local i
	ferryd_stop
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[i]}" 2>/dev/null; done
	cleanup
}
trap reap_cleanup EXIT

topology_up
pod e-1 198.18.44.1 "" --udp 8080
pod e-2 198.18.44.2 "" --udp 8080
for c in c-early:11 c-late:12 c-other:13; do
	add_pod "${c%:*}" "198.18.44.${c#*:}" || { not_ok "$GROUP setup" "pod ${c%:*}"; finish; }
done

# The folder is a shared mount point of its own, so that what is pinned in
# it after ferryd started reaches ferryd's mount namespace.
if ! { mkdir "$NETNS" && mount --bind "$NETNS" "$NETNS" && MOUNTS+=("$NETNS") &&
	mount --make-shared "$NETNS"; }; then
	not_ok "$GROUP setup" "shared mount $NETNS"
	finish
fi
# pin POD: the pod's namespace pinned as $NETNS/POD.
pin() {
	: >"$NETNS/$1" && mount --bind "/run/netns/${POD_NS[$1]}" "$NETNS/$1" && MOUNTS+=("$NETNS/$1")
}
pin c-early || { not_ok "$GROUP setup" "pin c-early"; finish; }
: >"$NETNS/stale" # what a pod being removed leaves: a file, no namespace

SRC=$WORK/src
mkdir "$SRC"
# dns_yaml POD: Service "dns" (UDP 53) with that one pod.
dns_yaml() {
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: reap}
spec:
  clusterIP: $SVC
  ports: [{name: dns, port: 53, protocol: UDP, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-1, namespace: reap, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, port: 8080, protocol: UDP}]
endpoints: [{addresses: [198.18.44.${1#e-}], conditions: {ready: true}, nodeName: node-a}]
EOF
}
dns_yaml e-1 | write_source "$SRC/dns.yaml"

# ferryd_as_pod CAPS: ferryd as the DaemonSet runs it, with these
# capabilities only (as "+bpf,+net_admin"): the node's network namespace, a
# PID namespace of its own (its /proc), a mount namespace that is a slave of
# ours. ferryd is unshare's child, PID 1 in its namespace.
ferryd_as_pod() {
	local up
	FERRYD_USED=1
	echo "=== ferryd as a pod ($1) --netns-dirs $MISSING,$NETNS" >>"$FERRYD_LOG"
	nsenter --net="/run/netns/$NODE" unshare --pid --fork --mount-proc --propagation slave \
		--kill-child setpriv --bounding-set "-all,$1" --inh-caps -all --no-new-privs \
		"$FERRYD" --source "file:$SRC" --cgroup "$CG" --bpffs "$BPFFS" --node-name node-a \
		--node-ips 198.18.0.1 --log-level debug --metrics-addr "" --health-addr "" \
		--netns-dirs "$MISSING,$NETNS" 2>>"$FERRYD_LOG" &
	up=$!
	PIDS+=("$up")
	wait_until 5 pgrep -P "$up" >/dev/null
	FERRYD_PID=$(pgrep -P "$up")
	if [ -z "$FERRYD_PID" ] || ! wait_generation 1 15; then
		not_ok "$GROUP ferryd starts ($1)" "no generation >= 1 within 15 s; log: $(tail -n 3 "$FERRYD_LOG" | tr '\n' ' ')"
		finish
	fi
}
# The capabilities deploy/ferry.yaml gives the agent.
POD_CAPS=+bpf,+net_admin,+perfmon,+sys_admin
ferryd_as_pod "$POD_CAPS"
pin c-late || { not_ok "$GROUP setup" "pin c-late"; finish; }

reaped() { status_get 'j["counters"]["udp_sockets_reaped"]'; }
# hold NAME NETNS-FILE: a connected UDP socket to the service, held in that
# namespace (and the test cgroup) by probe.py, its exchanges in $WORK/NAME.
hold() {
	mkdir "$WORK/$1"
	# shellcheck disable=SC2016 # expanded by the client's bash
	bash -c 'echo $$ >"$0/cgroup.procs" && exec nsenter --net="$1" "${@:2}"' "$CG" "$2" \
		"$PYTHON" "$PROBE" hold --udp --connect "$SVC" 53 --dir "$WORK/$1" --wait 60 &
	PIDS+=($!)
	wait_file "$WORK/$1/first" 10
	expect "B21 $3: connected UDP socket answered by e-1" \
		"$(cat "$WORK/$1/first" 2>/dev/null)" "e-1 peer=$SVC:53"
}
# again NAME: the held socket's second exchange.
again() {
	touch "$WORK/$1/go"
	wait_file "$WORK/$1/second" 10
	cat "$WORK/$1/second" 2>/dev/null
}

hold early "$NETNS/c-early" "pod pinned in --netns-dirs before ferryd started"
hold late "$NETNS/c-late" "pod pinned in --netns-dirs after ferryd started"
hold node "/run/netns/$NODE" "ferryd's own namespace (the node's)"
hold other "/run/netns/${POD_NS[c-other]}" "pod pinned outside --netns-dirs"
r0=$(reaped)
dns_yaml e-2 | change "B21 e-1 removed" "$SRC/dns.yaml"
expect "B21 e-1 removed: the socket of the pod pinned before ferryd started fails" \
	"$(again early)" "error=EDESTADDRREQ"
expect "B21 e-1 removed: the socket of the pod pinned after ferryd started fails" \
	"$(again late)" "error=EDESTADDRREQ"
expect "B21 e-1 removed: the socket in ferryd's own namespace fails" \
	"$(again node)" "error=EDESTADDRREQ"
expect "B21 a pod outside --netns-dirs is not reached (ferryd sees no pod through /proc): e-1 answers" \
	"$(again other)" "e-1 peer=$SVC:53"
expect "B21 ferryctl status counts three UDP sockets reaped" "$(($(reaped) - r0))" 3

# A second pass, for the missing folder's log line.
dns_yaml e-1 | change "B21 e-1 back" "$SRC/dns.yaml"
hold early2 "$NETNS/c-early" "second pass, pod pinned in --netns-dirs"
dns_yaml e-2 | change "B21 e-1 removed again" "$SRC/dns.yaml"
expect "B21 second pass: the pod's socket fails again" "$(again early2)" "error=EDESTADDRREQ"
expect "ferryd runs on with a missing --netns-dirs folder" \
	"$(kill -0 "$FERRYD_PID" 2>/dev/null && echo running)" running
expect "a missing --netns-dirs folder is logged once in two passes, by name" \
	"$(grep -c "cannot read the --netns-dirs folder $MISSING" "$FERRYD_LOG")" 1
expect "a file in --netns-dirs that pins no namespace is skipped, not a failure" \
	"$(grep -c 'could not be searched' "$FERRYD_LOG")" 0

# Without CAP_SYS_ADMIN (setns): ferryd's own namespace only, and a warning.
ferryd_reset
ferryd_as_pod "${POD_CAPS%,+sys_admin}"
dns_yaml e-1 | change "no CAP_SYS_ADMIN: e-1 back" "$SRC/dns.yaml"
hold early3 "$NETNS/c-early" "no CAP_SYS_ADMIN, pod pinned in --netns-dirs"
hold node3 "/run/netns/$NODE" "no CAP_SYS_ADMIN, ferryd's own namespace"
dns_yaml e-2 | change "no CAP_SYS_ADMIN: e-1 removed" "$SRC/dns.yaml"
expect "B21 without CAP_SYS_ADMIN the pod's socket is out of reach: e-1 answers" \
	"$(again early3)" "e-1 peer=$SVC:53"
expect "B21 without CAP_SYS_ADMIN the socket in ferryd's own namespace still fails" \
	"$(again node3)" "error=EDESTADDRREQ"
expect_match "without CAP_SYS_ADMIN: the namespaces out of reach are logged (EPERM)" \
	"$(grep 'could not be searched' "$FERRYD_LOG")" "Operation not permitted"

finish
