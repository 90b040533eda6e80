// SPDX-License-Identifier: GPL-2.0
/* Socket-level service load balancing on cgroup v2 sock_addr hooks.
 *
 * connect() and unconnected sendmsg() get their destination rewritten from
 * a service frontend to a backend before any packet exists; recvmsg() and
 * getpeername() rewrite the backend back to the frontend. No per-packet NAT
 * and no conntrack for traffic that starts on the node.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/sockaddr.h"
#include "lib/lookup.h"
#include "lib/fast.h"
#include "lib/select.h"
#include "lib/affinity.h"
#include "lib/revnat.h"

#define ECONNREFUSED 111

char LICENSE[] SEC("license") = "GPL";

/* Without set_retval a rejecting hook returns EPERM; clients of a service
 * with no endpoint must see what kube-proxy gives them. */
static __always_inline int refuse(__u32 stat)
{
	stat_inc(stat);
	bpf_set_retval(-ECONNREFUSED);
	return 0;
}

/* An unconnected UDP socket keeps its backend across datagrams while that
 * backend still serves the same service, so a request/response exchange
 * over several datagrams stays on one server. */
static __always_inline bool sticky_reuse(struct bpf_sock_addr *ctx, bool v6,
					 struct sock_revnat *st, const struct svc_key *key,
					 const struct svc_value *svc)
{
	struct sock_revnat_entry *e = revnat_find_svc(st, key->addr, key->port);

	if (!e || e->svc_id != svc->svc_id)
		return false;
	if (e->svc_rev != svc->rev &&
	    !backend_alive(e->backend_id, svc->svc_id, e->backend_addr, e->backend_port))
		return false;
	e->svc_rev = svc->rev;
	revnat_touch(st, e);
	sockaddr_store(ctx, v6, e->backend_addr, e->backend_port);
	stat_inc(STAT_STICKY_REUSE);
	return true;
}

/* An unconnected socket that already reaches b through another service
 * could not tell the two services' replies apart (revnat.h): b gives way to
 * the set's next backend when there is one. e, svc and slot: where b was
 * taken from. */
static __always_inline void pick_unshared(struct sock_revnat *st, const struct svc_entry *e,
					  bool v4, const struct svc_value *svc, __u32 slot,
					  struct slot_value *b)
{
	struct slot_value other;

	if (svc->count < 2 || !revnat_backend_shared(st, b->addr, b->port, svc->svc_id))
		return;
	if (!backend_at(e, v4, svc, (slot + 1) % svc->count, &other))
		return;
	*b = other;
	stat_inc(STAT_REVNAT_UNSHARED);
}

/* A short path's end: the IPv4 backend (addr, port) written over the
 * destination, counted, with no socket state (ferry_revnat names the
 * ClusterIP for it). */
static __always_inline void connect_store4(struct bpf_sock_addr *ctx, bool v6, __u32 addr,
					   __u16 port, struct stat_value *xlated)
{
	if (v6) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = addr;
	} else {
		ctx->user_ip4 = addr;
	}
	ctx->user_port = port;
	if (xlated)
		xlated->count++;
	revnat_forget_peer(ctx);
}

/* The commonest connect(): a ClusterIP port ferryd also wrote into
 * ferry_fast4, translated from that one line (lib/fast.h). */
static __always_inline bool connect_fast(struct bpf_sock_addr *ctx, bool v6,
					 const struct svc_key *key, __u32 r,
					 struct stat_value *xlated)
{
	__u32 word, addr;
	__u16 port;

	__builtin_memcpy(&word, &key->port, sizeof(word));
	if (!fast_pick(key->addr[3], word, r, &addr, &port))
		return false;
	connect_store4(ctx, v6, addr, port, xlated);
	return true;
}

/* A ClusterIP port ferry_fast4 has not (its set on several ports, or of
 * up to FERRY_SVC_INLINE_V4 IPv4 backends, or no room there) with
 * backends picked at random, without session affinity, to a backend whose
 * ferry_revnat entry names that ClusterIP (no socket state). The same
 * translation as xlate_fwd's, in a fraction of its instructions: the header
 * is read in place, not copied, and its revision checked after the backend
 * is read (as backend_inline_at does). False: xlate_fwd takes it. Its
 * branches are marked expected so that clang lays it out in one run: on a
 * fresh socket's path the code comes from a cold cache too. xlated: the
 * count r was drawn from (xlate_fwd). */
static __always_inline bool connect_inline(struct bpf_sock_addr *ctx, bool v6, __u8 proto,
					   const struct svc_entry *e, __u32 r,
					   struct stat_value *xlated)
{
	__u32 svc_id = e->v.svc_id, rev = e->v.rev, count = e->v.count, addr, slot;
	const struct svc_inline_v4 *b;
	__u16 port, flags;

	if (__builtin_expect(e->v.algorithm != LB_RANDOM || e->v.affinity_timeout ||
	    (e->v.flags & SVC_FLAG_EXTERNAL) || !count || count > FERRY_SVC_INLINE_V4 ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP), 0))
		return false;
	/* backend_slot's slot for r: a backend left to the general path
	 * (another port owns it) is then picked there as often as here. clang
	 * knows slot < count <= 16 and would drop the mask the verifier
	 * needs. */
	slot = ((__u64)r * count) >> 32;
	barrier_var(slot);
	b = &e->in.v4[slot & (FERRY_SVC_INLINE_V4 - 1)];
	addr = b->addr;
	port = b->port;
	flags = b->flags;
	asm volatile("" ::: "memory");
	if (__builtin_expect(*(volatile const __u32 *)&e->v.svc_id != svc_id ||
	    *(volatile const __u32 *)&e->v.rev != rev || !(flags & SLOT_FLAG_REVNAT_OWNER), 0))
		return false;
	connect_store4(ctx, v6, addr, port, xlated);
	return true;
}

/* The translation of a destination that matched found (xlate_fwd's key
 * and lkey), by whatever the service asks: its state lives here, apart
 * from connect_inline's short path. */
static __always_inline int xlate_pick(struct bpf_sock_addr *ctx, bool v6, bool v4, bool sticky,
				      const struct svc_key *key, struct svc_key *lkey,
				      struct svc_value *found, __u32 r)
{
	struct svc_value svc;
	struct affinity_key akey = {};
	struct slot_value kept, *b = NULL;
	struct sock_revnat *st = NULL;
	__u32 hash = 0, slot = 0;

	/* Copied first: nothing may run between the lookup and the copy. */
	svc = *found;
	if (!svc.count)
		return refuse(STAT_NO_BACKEND);

	/* Unconnected UDP needs its socket state for every datagram
	 * (stickiness, replies); a connect() only when ferry_revnat cannot
	 * answer for its peer. */
	if (sticky) {
		st = revnat_get(ctx->sk, true);
		if (!st)
			stat_inc(STAT_SK_STORAGE_FULL);
		if (st && sticky_reuse(ctx, v6, st, key, &svc))
			return 1;
	}

	if (svc.affinity_timeout) {
		akey.netns_cookie = bpf_get_netns_cookie(ctx);
		akey.svc_id = svc.svc_id;
		if (affinity_get(&akey, &svc, &kept))
			b = &kept;
	}
	if (!b) {
		/* Maglev's client here is its network namespace (a pod). */
		if (svc.algorithm == LB_MAGLEV)
			hash = ferry_hash_netns(bpf_get_netns_cookie(ctx));
		if (!backend_pick(lkey, v4, (const struct svc_entry *)found, &svc, r, hash, &kept,
				  &slot))
			return refuse(STAT_NO_BACKEND);
		if (sticky && st)
			pick_unshared(st, (const struct svc_entry *)found, v4, &svc, slot, &kept);
		b = &kept;
		if (svc.affinity_timeout) {
			/* svc may be a newer set's after a slot miss. */
			akey.netns_cookie = bpf_get_netns_cookie(ctx);
			akey.svc_id = svc.svc_id;
			affinity_set(&akey, b->backend_id);
		}
	}
	sockaddr_store(ctx, v6, b->addr, b->port);
	stat_inc(addr_is_v4_mapped(b->addr) ? STAT_XLATE_V4 : STAT_XLATE_V6);
	/* A connected socket is a live connection until it closes; datagrams
	 * of an unconnected one have no end to count to. */
	if (!sticky && svc.algorithm == LB_LEAST_CONN)
		conns_sock_set(ctx->sk, b->backend_id);
	if (!sticky) {
		if (revnat_shared_serves(key, &svc, b)) {
			revnat_forget_peer(ctx);
			return 1;
		}
		st = revnat_get(ctx->sk, true);
		if (!st)
			stat_inc(STAT_SK_STORAGE_FULL);
	}
	if (st)
		revnat_record(st, revnat_claim(st, key->addr, key->port), key, &svc, b, !sticky);
	return 1;
}

/* key is the destination as the application gave it: what replies and
 * getpeername() show (B20, B22). lkey is the entry it matched, the NodePort
 * wildcard for a node address or loopback. */
static __always_inline int xlate_fwd(struct bpf_sock_addr *ctx, bool v6, bool sticky)
{
	struct stat_value *xlated = NULL;
	struct svc_value *found = NULL;
	struct svc_key key, lkey;
	__u16 port;
	bool v4;
	__u32 r;

	sockaddr_load(ctx, v6, key.addr, &port);
	svc_key_set_port(&key, port, ctx->protocol, SVC_SCOPE_ALL);
	/* A constant in the IPv4 hooks (lib/lookup.h's svc_find says why). */
	v4 = !v6 || addr_is_v4_mapped(key.addr);
	/* Drawn before the lookup, whose wait it overlaps, and so that
	 * nothing runs between the lookup and the copy. A connect() to an
	 * IPv4 service counts STAT_XLATE_V4 on both paths when it succeeds,
	 * so that count draws for it (rand.h). */
	if (!sticky && v4) {
		xlated = stat_counter(STAT_XLATE_V4);
		r = rand_of_count(xlated ? xlated->count : 0);
	} else {
		r = rand_u32();
	}
	if (!sticky && v4 && connect_fast(ctx, v6, &key, r, xlated))
		return 1;
	lkey = key;
	switch (svc_lookup(&lkey, v4, &found)) {
	case LOOKUP_NOT_SERVICE:
		found = svc_lookup_node_port(&lkey, v4, ctx);
		if (found)
			break;
		stat_inc(STAT_SVC_MISS);
		if (!sticky)
			revnat_mark_direct(ctx->sk, &key);
		return 1;
	case LOOKUP_UNKNOWN_PORT:
		return refuse(STAT_UNKNOWN_PORT);
	case LOOKUP_FOUND:
		if (__builtin_expect(!sticky && v4 &&
		    connect_inline(ctx, v6, key.proto, (const struct svc_entry *)found, r,
				   xlated), 1))
			return 1;
		break;
	}
	return xlate_pick(ctx, v6, v4, sticky, &key, &lkey, found, r);
}

/* The socket's own state first (a connected socket's: the entry of its
 * connect()); a connected socket without one asks ferry_revnat.
 * getpeername() runs only on a connected socket (the kernel answers
 * ENOTCONN before the hook): its hooks leave out the scan an unconnected
 * socket needs, which is most of what the verifier walks in them. */
static __always_inline int xlate_rev(struct bpf_sock_addr *ctx, bool v6, bool connected)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_revnat *st = revnat_get(sk, false);
	__u8 proto = ctx->protocol;
	bool peer_only = connected || revnat_peer_only(sk, proto);
	struct sock_revnat_entry *e = NULL;
	struct revnat_value shared;
	__u32 addr[4];
	__u16 port;

	sockaddr_load(ctx, v6, addr, &port);
	if (st)
		e = peer_only ? revnat_find_peer(st, addr, port) : revnat_find_backend(st, addr, port);
	if (e) {
		sockaddr_store(ctx, v6, e->svc_addr, e->svc_port);
	} else {
		if (!peer_only)
			return 1;
		revnat_shared_get(addr, port, proto, &shared);
		if (!shared.svc_id)
			return 1;
		sockaddr_store(ctx, v6, shared.svc_addr, shared.svc_port);
		stat_inc(STAT_REVNAT_SHARED);
	}
	stat_inc(STAT_REVNAT);
	return 1;
}

SEC("cgroup/connect4")
int ferry_connect4(struct bpf_sock_addr *ctx)
{
	return xlate_fwd(ctx, false, false);
}

SEC("cgroup/connect6")
int ferry_connect6(struct bpf_sock_addr *ctx)
{
	return xlate_fwd(ctx, true, false);
}

SEC("cgroup/sendmsg4")
int ferry_sendmsg4(struct bpf_sock_addr *ctx)
{
	return xlate_fwd(ctx, false, true);
}

SEC("cgroup/sendmsg6")
int ferry_sendmsg6(struct bpf_sock_addr *ctx)
{
	return xlate_fwd(ctx, true, true);
}

SEC("cgroup/recvmsg4")
int ferry_recvmsg4(struct bpf_sock_addr *ctx)
{
	return xlate_rev(ctx, false, false);
}

SEC("cgroup/recvmsg6")
int ferry_recvmsg6(struct bpf_sock_addr *ctx)
{
	return xlate_rev(ctx, true, false);
}

SEC("cgroup/getpeername4")
int ferry_getpeername4(struct bpf_sock_addr *ctx)
{
	return xlate_rev(ctx, false, true);
}

SEC("cgroup/getpeername6")
int ferry_getpeername6(struct bpf_sock_addr *ctx)
{
	return xlate_rev(ctx, true, true);
}

/* A socket that counted as a least-conn connection stops counting. */
SEC("cgroup/sock_release")
int ferry_sock_release(struct bpf_sock *sk)
{
	conns_sock_set(sk, 0);
	return 1;
}
