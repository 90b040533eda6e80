/* Forwarding decisions from the kernel's FIB. bpf_fib_lookup needs
 * forwarding enabled on the receiving device and fails until the next
 * hop's neighbour is known: the callers then let the stack forward.
 *
 * Answers come from ferry_nexthop, a cache of the FIB's answers by
 * (destination, receiving device) kept for NEXTHOP_TTL_NS: with it an
 * established flow to a remote backend takes 211 ns instead of 321 in
 * BPF_PROG_TEST_RUN, repeat 1 (an empty program: 80), and a new flow's
 * "is the backend local?" costs a hash lookup. The price: a route or
 * neighbour change reaches packets up to a second late, and the first
 * answer for a destination serves every source (no policy routing by
 * source). An unknown neighbour is cached too: the stack forwards those
 * packets, and resolves it, meanwhile. */
#ifndef FERRY_BPF_FIB_H
#define FERRY_BPF_FIB_H

#include "lib/pkt.h"
#include "lib/sockaddr.h"

#define AF_INET 2
#define AF_INET6 10
#define NEXTHOP_TTL_NS 1000000000ULL
#define NEXTHOP_MAX 16384
#define FIB_ANY_LEN 68     /* IPv4's minimum MTU (RFC 791) */
#define IP_DF 0x4000       /* IPv4 "don't fragment": too long for a route, answered */

/* A route: what forwarding needs of bpf_fib_lookup's answer. */
struct fib_out {
	__s32 rc;          /* BPF_FIB_LKUP_RET_* */
	__u32 ifindex;     /* egress device (SUCCESS and NO_NEIGH) */
	__u32 mtu;         /* of the route (SUCCESS): longer packets do not fit */
	__u8 smac[6];
	__u8 dmac[6];
};

struct nexthop_key {
	__u32 addr[4];     /* destination, as ferry_ct holds addresses */
	__u32 ifindex;     /* the device the packet came in on */
};

struct nexthop_value {
	__u64 expires_ns;  /* bpf_ktime_get_coarse_ns() */
	struct fib_out out; /* SUCCESS or NO_NEIGH */
};

/* Private to each program object, not pinned: a cache, rebuilt at load. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NEXTHOP_MAX);
	__type(key, struct nexthop_key);
	__type(value, struct nexthop_value);
} ferry_nexthop SEC(".maps");

/* In front of ferry_nexthop, per CPU: a slot per destination (hashed, 256
 * slots), valid for FIB_FRONT_JIFFIES. The established path's route then
 * costs an inlined array lookup and an inlined bpf_jiffies64, where the
 * LRU's hash lookup and bpf_ktime_get_coarse_ns (two helper calls) cost
 * about 60 ns in BPF_PROG_TEST_RUN repeat 1 here. 64 jiffies are 64 to
 * 640 ms (HZ 1000 to 100), on top of ferry_nexthop's second. */
#define FIB_FRONT_SLOTS 256
#define FIB_FRONT_JIFFIES 64

struct fib_front {
	struct nexthop_key k;
	__u64 expires_jiffies;
	struct fib_out out;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FIB_FRONT_SLOTS);
	__type(key, __u32);
	__type(value, struct fib_front);
} ferry_nexthop_front SEC(".maps");

static __always_inline bool fib_front_match(const struct fib_front *f, const __u32 daddr[4],
					    __u32 ifindex, __u64 jiffies)
{
	return f->k.addr[3] == daddr[3] && f->k.addr[2] == daddr[2] &&
	       f->k.addr[1] == daddr[1] && f->k.addr[0] == daddr[0] &&
	       f->k.ifindex == ifindex && jiffies < f->expires_jiffies;
}

static __always_inline void fib_front_fill(struct fib_front *f, const __u32 daddr[4],
					   __u32 ifindex, __u64 jiffies, const struct fib_out *out)
{
	addr_copy(f->k.addr, daddr);
	f->k.ifindex = ifindex;
	f->expires_jiffies = jiffies + FIB_FRONT_JIFFIES;
	f->out = *out;
}

/* A cache miss's buffers, kept off the BPF stack, which a call chain
 * shares (512 bytes): bpf_fib_lookup's 64 bytes and the entry to cache. */
struct fib_scratch {
	struct bpf_fib_lookup f;
	struct nexthop_key k;
	struct nexthop_value n;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fib_scratch);
} ferry_fib_scratch SEC(".maps");

/* The lookup's input: the route from saddr to daddr for a packet that
 * came in on ifindex. Asked with the length of a packet any route carries
 * (FIB_ANY_LEN), the FIB answers with the route's MTU (mtu_result: a
 * locked route MTU or a learnt PMTU included) at tc as at XDP; tot_len 0
 * would give tc the device's MTU and judge the skb at hand (FRAG_NEEDED
 * for one, not cached, SUCCESS for the next). The callers compare each
 * packet's length with the cached MTU: FRAG_NEEDED's test, for every
 * packet of a flow from one answer; a GRO-merged skb they leave to the
 * stack. */
static __always_inline void fib_prepare(struct bpf_fib_lookup *f, __u32 ifindex, bool v6,
					__u8 proto, const __u32 saddr[4], const __u32 daddr[4])
{
	__builtin_memset(f, 0, sizeof(*f));
	f->tot_len = FIB_ANY_LEN;
	f->ifindex = ifindex;
	f->l4_protocol = proto;
	if (v6) {
		f->family = AF_INET6;
		__builtin_memcpy(f->ipv6_src, saddr, 16);
		__builtin_memcpy(f->ipv6_dst, daddr, 16);
	} else {
		f->family = AF_INET;
		f->ipv4_src = saddr[3];
		f->ipv4_dst = daddr[3];
	}
}

/* The FIB's answer for s->f (prepared), into out, and cached. A
 * subprogram: the cache miss's work is not inlined in the fast path. */
static __noinline int fib_resolve(void *ctx, struct fib_scratch *s, struct fib_out *out,
				  __u64 now)
{
	struct bpf_fib_lookup *f = &s->f;

	s->k.ifindex = f->ifindex;
	if (f->family == AF_INET6)
		__builtin_memcpy(s->k.addr, f->ipv6_dst, 16);
	else
		addr_map_v4(s->k.addr, f->ipv4_dst);
	out->rc = bpf_fib_lookup(ctx, f, sizeof(*f), 0);
	out->ifindex = f->ifindex;
	out->mtu = f->mtu_result;
	__builtin_memcpy(out->smac, f->smac, 6);
	__builtin_memcpy(out->dmac, f->dmac, 6);
	if (out->rc != BPF_FIB_LKUP_RET_SUCCESS && out->rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	s->n.expires_ns = now + NEXTHOP_TTL_NS;
	s->n.out = *out;
	bpf_map_update_elem(&ferry_nexthop, &s->k, &s->n, BPF_ANY);
	return 0;
}

/* The route from saddr to daddr for a packet that came in on ifindex:
 * from the cache while it is fresh, else from the FIB. */
static __always_inline void fib_route(void *ctx, __u32 ifindex, bool v6, __u8 proto,
				      const __u32 saddr[4], const __u32 daddr[4],
				      struct fib_out *out)
{
	struct nexthop_key k = { .ifindex = ifindex };
	__u32 zero = 0, slot = ((daddr[3] ^ daddr[1] ^ ifindex) * 2654435761u) >> 24;
	__u64 now, jiffies = bpf_jiffies64();
	struct nexthop_value *n;
	struct fib_scratch *s;
	struct fib_front *f;

	f = bpf_map_lookup_elem(&ferry_nexthop_front, &slot);
	if (f && fib_front_match(f, daddr, ifindex, jiffies)) {
		*out = f->out;
		return;
	}
	now = bpf_ktime_get_coarse_ns();
	addr_copy(k.addr, daddr);
	n = bpf_map_lookup_elem(&ferry_nexthop, &k);
	if (n && now < n->expires_ns) {
		*out = n->out;
	} else {
		s = bpf_map_lookup_elem(&ferry_fib_scratch, &zero);
		if (!s) {
			out->rc = BPF_FIB_LKUP_RET_NOT_FWDED;
			return;
		}
		fib_prepare(&s->f, ifindex, v6, proto, saddr, daddr);
		fib_resolve(ctx, s, out, now);
		if (out->rc != BPF_FIB_LKUP_RET_SUCCESS && out->rc != BPF_FIB_LKUP_RET_NO_NEIGH)
			return;
	}
	if (f)
		fib_front_fill(f, daddr, ifindex, jiffies, out);
}

#endif
