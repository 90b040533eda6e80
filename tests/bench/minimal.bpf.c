// SPDX-License-Identifier: GPL-2.0
/* The floor for any socket load balancer: one hash lookup per connect().
 *
 * min_svc maps a service frontend (ClusterIP, port) to one backend (address,
 * port); both in network byte order, the same struct. On a hit the connect
 * goes to the backend; on a miss it goes where it was going. Always allows.
 * Loaded, attached and filled by tests/bench/minimal.sh.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct min_addr {
	__u32 addr;	/* IPv4, network order */
	__u16 port;	/* network order */
	__u16 pad;	/* zero */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct min_addr);
	__type(value, struct min_addr);
} min_svc SEC(".maps");

SEC("cgroup/connect4")
int min_connect4(struct bpf_sock_addr *ctx)
{
	struct min_addr key = {
		.addr = ctx->user_ip4,
		.port = (__u16)ctx->user_port,	/* the 16-bit port, as stored */
	};
	struct min_addr *b = bpf_map_lookup_elem(&min_svc, &key);

	if (b) {
		ctx->user_ip4 = b->addr;
		ctx->user_port = b->port;
	}
	return 1;
}
