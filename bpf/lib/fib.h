/* Forwarding decisions from the kernel's FIB. bpf_fib_lookup needs
 * forwarding enabled on the receiving device and fails until the next
 * hop's neighbour is known: the callers then let the stack forward.
 *
 * Forwarded packets of known flows take their route from ferry_nexthop, a
 * cache of the FIB's answers by (destination, receiving device) kept for
 * NEXTHOP_TTL_NS: with it an established flow to a remote backend takes
 * 211 ns instead of 321 in BPF_PROG_TEST_RUN, repeat 1 (an empty program:
 * 80). The price: a route or neighbour change reaches such flows up to a
 * second late, and the first answer for a destination serves every source
 * (no policy routing by source). */
#ifndef FERRY_BPF_FIB_H
#define FERRY_BPF_FIB_H

#include "lib/pkt.h"
#include "lib/sockaddr.h"

#define AF_INET 2
#define AF_INET6 10
#define NEXTHOP_TTL_NS 1000000000ULL
#define NEXTHOP_MAX 16384

struct nexthop_key {
	__u32 addr[4];     /* destination, as ferry_ct holds addresses */
	__u32 ifindex;     /* the device the packet came in on */
};

struct nexthop_value {
	__u64 expires_ns;  /* bpf_ktime_get_coarse_ns() */
	__u32 ifindex;     /* egress device */
	__u32 mtu;
	__u8 smac[6];
	__u8 dmac[6];
	__u32 pad;
};

/* Private to each program object, not pinned: a cache, rebuilt at load. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NEXTHOP_MAX);
	__type(key, struct nexthop_key);
	__type(value, struct nexthop_value);
} ferry_nexthop SEC(".maps");

/* The lookup's input: the route from saddr to daddr for a packet that
 * came in on ifindex. No MTU check inside (tot_len 0): the caller compares
 * with mtu_result, so that a GRO-merged skb is not refused. */
static __always_inline void fib_prepare(struct bpf_fib_lookup *f, __u32 ifindex,
					const struct pkt *p, const __u32 saddr[4],
					const __u32 daddr[4])
{
	__builtin_memset(f, 0, sizeof(*f));
	f->ifindex = ifindex;
	f->l4_protocol = p->proto;
	if (p->v6) {
		f->family = AF_INET6;
		__builtin_memcpy(f->ipv6_src, saddr, 16);
		__builtin_memcpy(f->ipv6_dst, daddr, 16);
	} else {
		f->family = AF_INET;
		f->ipv4_src = saddr[3];
		f->ipv4_dst = daddr[3];
	}
}

/* Looked up into f (its output: ifindex, smac, dmac, mtu_result); returns
 * BPF_FIB_LKUP_RET_*. */
static __always_inline int fib_route(void *ctx, __u32 ifindex, const struct pkt *p,
				     const __u32 saddr[4], const __u32 daddr[4],
				     struct bpf_fib_lookup *f)
{
	fib_prepare(f, ifindex, p, saddr, daddr);
	return bpf_fib_lookup(ctx, f, sizeof(*f), 0);
}

/* The lookup of a prepared f, its successful answer cached. A subprogram:
 * its stack is not the fast path's. */
static __noinline int fib_route_refresh(void *ctx, struct bpf_fib_lookup *f, __u64 now)
{
	struct nexthop_key k = { .ifindex = f->ifindex };
	struct nexthop_value n = {};
	int rc;

	if (f->family == AF_INET6)
		__builtin_memcpy(k.addr, f->ipv6_dst, 16);
	else
		addr_map_v4(k.addr, f->ipv4_dst);
	rc = bpf_fib_lookup(ctx, f, sizeof(*f), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	n.expires_ns = now + NEXTHOP_TTL_NS;
	n.ifindex = f->ifindex;
	n.mtu = f->mtu_result;
	__builtin_memcpy(n.smac, f->smac, 6);
	__builtin_memcpy(n.dmac, f->dmac, 6);
	bpf_map_update_elem(&ferry_nexthop, &k, &n, BPF_ANY);
	return rc;
}

/* The route of a known flow's packet: from the cache while it is fresh,
 * else from the FIB. Fills f's output fields as fib_route does. */
static __always_inline int fib_route_cached(void *ctx, __u32 ifindex, const struct pkt *p,
					    const __u32 saddr[4], const __u32 daddr[4],
					    struct bpf_fib_lookup *f)
{
	struct nexthop_key k = { .ifindex = ifindex };
	__u64 now = bpf_ktime_get_coarse_ns();
	struct nexthop_value *n;

	addr_copy(k.addr, daddr);
	n = bpf_map_lookup_elem(&ferry_nexthop, &k);
	if (!n || now >= n->expires_ns) {
		fib_prepare(f, ifindex, p, saddr, daddr);
		return fib_route_refresh(ctx, f, now);
	}
	f->ifindex = n->ifindex;
	f->mtu_result = n->mtu;
	__builtin_memcpy(f->smac, n->smac, 6);
	__builtin_memcpy(f->dmac, n->dmac, 6);
	return BPF_FIB_LKUP_RET_SUCCESS;
}

#endif
