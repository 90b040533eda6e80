#!/usr/bin/env bash
# ferryd's cold start, the part of its programming time that does not grow
# with the state (issue 13). The kernel's BTF (/sys/kernel/btf/vmlinux,
# about 5 MB, 8-30 ms of CPU a parse) is read twice before the programs
# serve: once for ferryd's feature checks (the bpf_sock_destroy kfunc, the
# tcx attach types) and once by libbpf for the socket-LB object, on the
# loader thread while the source is read (libbpf reads it for any object
# with CO-RE relocations). The maps come from an object of their own
# (bpf/maps.bpf.c) without programs, so without a read: when they were the
# socket-LB object's too, a second instance of it, libbpf read the BTF for
# it as well, loaded programs or not. Where the kernel has bpf_sock_destroy,
# once more after they serve: the UDP reaper's object (issue 15), which the
# loader thread starts only once the programs are published, so that
# neither the first generation nor the first fill's peak of memory waits
# for it (it read it before the programs served, 20-40 ms on the way). An
# earlier start read it four times without the reaper (each check parsed
# it again). Seen with strace (the reads, and ferryd's write of its
# "programs serving" line), from ferryd's start until the reaper's link is
# pinned.
# shellcheck disable=SC2317 # functions run through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
SRC=$WORK/services.json
write_source "$SRC" <<'EOF'
{"apiVersion": "v1", "kind": "List", "items": [
 {"apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "cold", "namespace": "cold"},
  "spec": {"clusterIP": "10.96.72.1", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
 {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "cold-1", "namespace": "cold",
               "labels": {"kubernetes.io/service-name": "cold"}},
  "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
  "endpoints": [{"addresses": ["198.18.72.1"]}]}]}
EOF

# ferryd under strace: strace's child is ferryd, stopped by its own pid
# (stopping strace would leave it running, detached). One trace of all its
# threads, in the order the calls ran: the reaper's read follows the write
# of the log line, which comes before the loader thread is told to start it.
FERRYD_USED=1
strace -f -qq -s 256 -e trace=openat,write -o "$WORK/trace" "$FERRYD" --source "file:$SRC" \
	--cgroup "$CG" --bpffs "$BPFFS" --node-name node-a --metrics-addr "" --health-addr "" \
	2>>"$FERRYD_LOG" &
STRACE_PID=$!
PIDS+=("$STRACE_PID")
ferryd_child() { FERRYD_PID=$(pgrep -P "$STRACE_PID" | head -n 1) && [ -n "$FERRYD_PID" ]; }
if ! wait_until 10 ferryd_child; then
	not_ok "cold: ferryd starts under strace" "no child of strace $STRACE_PID"
	finish
fi
wait_generation 1 30 || not_ok "cold: the first generation is published" "generation $(generation)"
wait_until 60 grep -q "programs serving" "$FERRYD_LOG" ||
	not_ok "cold: the programs serve" "$(tail -n 1 "$FERRYD_LOG")"

# btf_reads: "BEFORE AFTER", the reads of the kernel's BTF before and after
# ferryd's write of "programs serving".
btf_reads() {
	awk '/write\(2, .*programs serving/ {served = 1}
	     /openat\(.*"\/sys\/kernel\/btf\/vmlinux"/ {n[served + 0]++}
	     END {print n[0] + 0, n[1] + 0}' "$WORK/trace"
}
if kernel_btf_has udp_reaper; then
	wait_until 60 test -e "$BPFFS/links/udp-reap" ||
		not_ok "cold: the UDP reaper's link is pinned" "not under $BPFFS/links"
	expect "cold: the kernel's BTF is read twice before the programs serve (ferryd's checks, libbpf's for the socket-LB object; none for the maps' object), once after (the reaper's object)" \
		"$(btf_reads)" "2 1"
else
	expect "cold: the kernel's BTF is read twice (ferryd's checks, libbpf's for the socket-LB object; none for the maps' object; no reaper on this kernel)" \
		"$(btf_reads)" "2 0"
fi
expect "cold: the state is programmed" \
	"$(status_get '"%d %d" % (j["agent"]["services"], j["agent"]["backends"])')" "1 1"

ferryd_stop
wait "$STRACE_PID" 2>/dev/null
finish
