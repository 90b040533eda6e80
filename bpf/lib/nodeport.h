/* The per-packet decision, shared by XDP and tc so they cannot diverge:
 * from a parsed packet, what it becomes (a rewrite plan) and where it goes.
 * The callers only apply the plan, each with its own means.
 *
 * Order: conntrack first (one lookup finds either direction of a known
 * flow: the established path's only lookup besides the backend's liveness
 * and, toward another node, the route's), then the frontends. */
#ifndef FERRY_BPF_NODEPORT_H
#define FERRY_BPF_NODEPORT_H

#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/sockaddr.h"
#include "lib/select.h"
#include "lib/affinity.h"
#include "lib/pkt.h"
#include "lib/ct.h"
#include "lib/snat.h"
#include "lib/fib.h"

enum np_verdict {
	NP_PASS,        /* not translated: untouched, to the stack */
	NP_DROP,
	NP_REJECT,      /* service without backend: ICMP port unreachable (B14) */
	NP_XLATE_PASS,  /* rewrite, then the stack delivers (local backend) */
	NP_XLATE_FWD,   /* rewrite, then forward as plan->fib says */
};

/* XDP cannot resolve a neighbour, and a translated packet it passed to
 * the stack would come from this node's own address: a martian, dropped,
 * and the neighbour never asked for. So a packet whose route has no
 * neighbour yet leaves XDP untranslated, marked in its metadata, and tc
 * ingress (attached beside XDP for this alone) translates it from the
 * flow's conntrack entries and sends it with bpf_redirect_neigh. */
#define NP_META_NEIGH 0x6e656967 /* "neig" */

/* What the packet's addresses and ports become (ct.new_*: a new flow's
 * original entry is built here, the stack being small), and its route
 * when it is forwarded. */
struct np_plan {
	struct ct_value ct;
	struct fib_out fib;  /* the route (NP_XLATE_FWD) */
};

static __always_inline void np_plan_of(struct np_plan *plan, const struct ct_value *v)
{
	addr_copy(plan->ct.new_saddr, v->new_saddr);
	addr_copy(plan->ct.new_daddr, v->new_daddr);
	plan->ct.new_sport = v->new_sport;
	plan->ct.new_dport = v->new_dport;
}

static __always_inline enum np_verdict np_forward(void *ctx, __u32 ifindex, const struct pkt *p,
						  struct np_plan *plan)
{
	fib_route(ctx, ifindex, p->v6, p->proto, plan->ct.new_saddr, plan->ct.new_daddr,
		  &plan->fib);
	return NP_XLATE_FWD;
}

/* A reply: back to the frontend's address and port, toward the client. On
 * egress (a local backend's reply leaving the node) the stack forwards. */
static __always_inline enum np_verdict np_reply(void *ctx, __u32 ifindex, const struct pkt *p,
						struct ct_value *ct, struct np_plan *plan,
						struct ct_key *key, bool egress)
{
	struct ct_value *orig;

	np_plan_of(plan, ct);
	ct_touch(ct, p);
	/* A least-conn flow's backend closing: its original entry counts. */
	if ((ct->flags & CT_FLAG_COUNTED) && (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))) {
		ct_other_key(key, ct, p->proto);
		orig = bpf_map_lookup_elem(&ferry_ct, key);
		if (orig)
			conns_flow_end(orig);
	}
	if ((ct->flags & CT_FLAG_SNAT) && (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST | TCP_FLAG_SYN)))
		ct_track_close(ct, p);
	stat_inc(STAT_NP_REVNAT);
	if (egress)
		return NP_XLATE_PASS;
	return np_forward(ctx, ifindex, p, plan);
}

/* The frontend a new flow is addressed to: the NodePort on a node address,
 * else the destination itself (an LB IP or externalIP). */
static __always_inline struct svc_value *np_frontend(const struct pkt *p, struct svc_key *k)
{
	struct svc_value *svc;

	k->port = p->dport;
	k->proto = p->proto;
	k->scope = SVC_SCOPE_ALL;
	if (bpf_map_lookup_elem(&ferry_node_addrs, p->daddr)) {
		k->addr[0] = 0;
		k->addr[1] = 0;
		k->addr[2] = p->v6 ? 0 : bpf_htonl(0xffff);
		k->addr[3] = 0;
		svc = (struct svc_value *)svc_find(k, !p->v6);
		if (svc)
			return svc;
	}
	addr_copy(k->addr, p->daddr);
	return (struct svc_value *)svc_find(k, !p->v6);
}

/* loadBalancerSourceRanges (B26): the longest prefix under the svc_id. */
static __always_inline bool np_source_allowed(__u32 svc_id, const __u32 saddr[4])
{
	struct source_range_key k = {
		.prefixlen = 32 + 128,
		.svc_id = bpf_htonl(svc_id),
	};

	addr_copy(k.addr, saddr);
	return bpf_map_lookup_elem(&ferry_source_ranges, &k) != NULL;
}

/* A new flow's larger temporaries: a call chain's BPF stack (512 bytes)
 * does not hold them next to the rest. Private, not pinned. */
struct np_scratch {
	struct ct_value reply;     /* the reply entry being written */
	struct affinity_key akey;  /* the client's affinity (B30) */
	struct slot_value backend; /* the backend chosen (np_new_flow's frame with
				    * the program's would pass Linux 6.1's 512-byte
				    * limit for a call chain) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct np_scratch);
} ferry_np_scratch SEC(".maps");

/* The backend for a new flow: the client's remembered one (B30: keyed by
 * its address, shared with the ClusterIP through the svc_id), or one the
 * set's algorithm picks. Maglev hashes the flow as every node sees it (the
 * client's address alone under affinity), so each node picks alike. e is
 * the entry svc was copied from. */
static __always_inline bool np_backend(const struct pkt *p, const struct svc_key *k,
				       const struct svc_entry *e, struct svc_value *svc, __u32 r,
				       struct slot_value *b, struct affinity_key *akey)
{
	__u32 hash = 0;

	if (svc->algorithm == LB_MAGLEV)
		hash = svc->affinity_timeout ? ferry_hash_client(p->saddr) :
			ferry_hash_flow(p->saddr, p->sport, p->daddr, p->dport, p->proto);
	if (!svc->affinity_timeout)
		return backend_pick(k, !p->v6, e, svc, r, hash, b, NULL);
	__builtin_memset(akey, 0, sizeof(*akey));
	akey->svc_id = svc->svc_id;
	addr_copy(akey->client_addr, p->saddr);
	if (affinity_get(akey, svc, b))
		return true;
	if (!backend_pick(k, !p->v6, e, svc, r, hash, b, NULL))
		return false;
	akey->svc_id = svc->svc_id;  /* svc may be a newer set's after a slot miss */
	affinity_set(akey, b->backend_id);
	return true;
}

/* Is the backend behind another node? Its route leaves through the device
 * the packet came in on: then the reply would not come back through this
 * node unless the source is this node (SNAT). A route through any other
 * device (a pod's), a local address or no route: a local backend, and the
 * stack delivers it. */
static __always_inline bool np_remote(const struct fib_out *f, __u32 ifindex)
{
	return (f->rc == BPF_FIB_LKUP_RET_SUCCESS || f->rc == BPF_FIB_LKUP_RET_NO_NEIGH) &&
	       f->ifindex == ifindex;
}

/* Both entries of a new flow (orig: the original one, done but for SNAT).
 * A remote backend gets the node's SNAT address and a claimed port (the
 * claim writes the reply entry). reply and key are scratch. */
static __always_inline enum np_verdict np_commit(const struct pkt *p, struct ct_value *orig,
						 bool remote, struct ct_value *reply,
						 struct ct_key *key)
{
	struct dp_config *cfg;
	__u32 zero = 0;

	if (remote) {
		cfg = bpf_map_lookup_elem(&ferry_config, &zero);
		if (!cfg)
			return NP_DROP;
		addr_copy(orig->new_saddr, p->v6 ? cfg->snat_v6 : cfg->snat_v4);
		orig->flags |= CT_FLAG_SNAT;
		/* No SNAT address of this family (zero) counts as exhausted. */
		if (!(orig->new_saddr[0] | orig->new_saddr[1] | orig->new_saddr[3] |
		      (p->v6 ? orig->new_saddr[2] : 0)) ||
		    !snat_claim(cfg, orig, p, reply, key)) {
			stat_inc(STAT_NP_SNAT_EXHAUSTED);
			return NP_DROP;
		}
	} else {
		ct_other_key(key, orig, p->proto);
		ct_reply_value(reply, p, orig->flags & CT_FLAG_COUNTED, orig->last_seen_ns);
		bpf_map_update_elem(&ferry_ct, key, reply, BPF_ANY);
	}
	ct_key_of(key, p);
	bpf_map_update_elem(&ferry_ct, key, orig, BPF_ANY);
	stat_inc(STAT_NP_XLATE);
	return remote ? NP_XLATE_FWD : NP_XLATE_PASS;
}

/* key is the caller's scratch: the stack is shared along the call. */
static __noinline enum np_verdict np_new_flow(void *ctx, __u32 ifindex, const struct pkt *p,
					      struct np_plan *plan, struct ct_key *key)
{
	/* Drawn first: the service is copied straight after its lookup. */
	__u32 r = rand_u32();
	struct ct_value *orig = &plan->ct;
	struct np_scratch *sc;
	struct svc_key k = {};
	struct svc_value svc, *found;
	struct slot_value *b;
	enum np_verdict v;
	bool remote = false;
	__u32 zero = 0;

	sc = bpf_map_lookup_elem(&ferry_np_scratch, &zero);
	if (!sc)
		return NP_DROP;
	b = &sc->backend;
	found = np_frontend(p, &k);
	if (!found || !(found->flags & SVC_FLAG_EXTERNAL))
		return NP_PASS;
	svc = *found;
	if ((svc.flags & SVC_FLAG_SOURCE_RANGES) && !np_source_allowed(svc.svc_id, p->saddr)) {
		stat_inc(STAT_NP_SOURCE_DENIED);
		return NP_DROP;
	}
	if (svc.flags & SVC_FLAG_EXT_LOCAL) {
		k.scope = SVC_SCOPE_EXTERNAL;
		found = (struct svc_value *)svc_find(&k, !p->v6);
		if (!found || !found->count) {
			stat_inc(STAT_NP_NO_LOCAL);
			return NP_DROP;
		}
		svc = *found;
	}
	if (!svc.count ||
	    !np_backend(p, &k, (const struct svc_entry *)found, &svc, r, b, &sc->akey))
		return NP_REJECT;
	if (addr_is_v4_mapped(b->addr) == p->v6)
		return NP_DROP;  /* a set is of one family; never translate across */

	addr_copy(orig->new_saddr, p->saddr);
	addr_copy(orig->new_daddr, b->addr);
	orig->new_sport = p->sport;
	orig->new_dport = b->port;
	/* A least-conn TCP flow counts until its FIN or RST (lib/conns.h);
	 * the reply entry carries the mark to say the original has it. */
	orig->flags = svc.algorithm == LB_LEAST_CONN && p->proto == IPPROTO_TCP ?
		CT_FLAG_COUNTED : 0;
	orig->svc_id = svc.svc_id;
	orig->backend_id = b->backend_id;
	orig->last_seen_ns = ct_now();
	/* externalTrafficPolicy=Local: local endpoints only, never SNAT (B23). */
	if (!(svc.flags & SVC_FLAG_EXT_LOCAL)) {
		fib_route(ctx, ifindex, p->v6, p->proto, p->saddr, b->addr, &plan->fib);
		remote = np_remote(&plan->fib, ifindex);
	}
	v = np_commit(p, orig, remote, &sc->reply, key);
	if (v != NP_DROP && (orig->flags & CT_FLAG_COUNTED))
		conns_flow_start(orig->backend_id);
	return v;
}

/* FIN, RST or SYN of a SNATed flow in the original direction: the reply
 * entry, which holds the SNAT port, records it. key is scratch. */
static __always_inline void np_track_close(const struct ct_value *ct, const struct pkt *p,
					   struct ct_key *key)
{
	struct ct_value *reply;

	ct_other_key(key, ct, p->proto);
	reply = bpf_map_lookup_elem(&ferry_ct, key);
	if (reply)
		ct_track_close(reply, p);
}

/* The flow's backend left: forget both entries, so the packet is decided
 * anew and lands on a live backend (kubernetes#81775). */
static __always_inline void np_forget(struct ct_value *ct, const struct ct_key *orig_key)
{
	struct ct_key key;

	conns_flow_end(ct);
	ct_other_key(&key, ct, orig_key->proto);
	bpf_map_delete_elem(&ferry_ct, &key);
	bpf_map_delete_elem(&ferry_ct, orig_key);
	stat_inc(STAT_NP_BACKEND_GONE);
}

/* An ICMP error quotes a packet of a flow as it left this node, translated
 * (to a remote backend, or back to a client): the quote's tuple reversed
 * is a packet of the flow's other direction as it arrives, whose entry
 * says what the quoted packet was before translation. Returns that entry;
 * key is scratch. */
static __always_inline struct ct_value *np_icmp_flow(const __u32 qsaddr[4], const __u32 qdaddr[4],
						     const __u16 qports[2], __u8 proto,
						     struct ct_key *key)
{
	addr_copy(key->saddr, qdaddr);
	addr_copy(key->daddr, qsaddr);
	key->sport = qports[1];
	key->dport = qports[0];
	key->proto = proto;
	key->pad[0] = 0;
	key->pad[1] = 0;
	key->pad[2] = 0;
	return bpf_map_lookup_elem(&ferry_ct, key);
}

/* ifindex: the device the program runs on. egress: only replies are
 * translated (a local backend's, leaving through the external device). */
static __always_inline enum np_verdict np_decide(void *ctx, __u32 ifindex, const struct pkt *p,
						 struct np_plan *plan, bool egress)
{
	struct ct_value *ct;
	struct ct_key key;

	ct_key_of(&key, p);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (ct && (ct->flags & CT_FLAG_REPLY))
		return np_reply(ctx, ifindex, p, ct, plan, &key, egress);
	if (egress)
		return NP_PASS;
	if (ct) {
		if (backend_alive(ct->backend_id, ct->svc_id, ct->new_daddr, ct->new_dport)) {
			np_plan_of(plan, ct);
			ct_touch(ct, p);
			if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
				conns_flow_end(ct);
			if (!(ct->flags & CT_FLAG_SNAT))
				return NP_XLATE_PASS;
			if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST | TCP_FLAG_SYN))
				np_track_close(ct, p, &key);
			return np_forward(ctx, ifindex, p, plan);
		}
		np_forget(ct, &key);
	}
	return np_new_flow(ctx, ifindex, p, plan, &key);
}

#endif
