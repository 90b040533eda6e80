/* Conntrack for the per-packet path (ferry_ct). A flow has two entries,
 * each keyed by a packet as it arrives and saying what that packet
 * becomes: the original direction (client -> frontend) and the reply
 * (backend -> client, or backend -> SNAT address:port). One lookup with
 * the packet's own tuple therefore finds either direction. */
#ifndef FERRY_BPF_CT_H
#define FERRY_BPF_CT_H

#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/sockaddr.h"

/* last_seen_ns: TCP entries are refreshed by about one packet in 64,
 * picked by the packet's checksum bits: touching the entry's second cache
 * line on every packet costs about one of the established path's lookups
 * (30-40 ns each in BPF_PROG_TEST_RUN repeat 1), and a write per packet
 * would bounce the line between CPUs; ferryctl's idle time is accurate to
 * a few dozen packets. UDP and SCTP have no close to see: their entries
 * are refreshed by every packet, since idleness is what frees their SNAT
 * ports. */
#define CT_TOUCH_MASK 63

/* Every time in ferry_ct (last_seen_ns) comes from here, since they are
 * compared with each other: CLOCK_MONOTONIC to the tick (a few ms behind
 * at most; the decisions made with it are about tens of seconds), which
 * costs a few ns where bpf_ktime_get_ns costs about 40 in
 * BPF_PROG_TEST_RUN here. ferryctl reads it as CLOCK_MONOTONIC. */
static __always_inline __u64 ct_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

static __always_inline void ct_key_of(struct ct_key *k, const struct pkt *p)
{
	addr_copy(k->saddr, p->saddr);
	addr_copy(k->daddr, p->daddr);
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->pad[0] = 0;
	k->pad[1] = 0;
	k->pad[2] = 0;
}

static __always_inline void ct_touch(struct ct_value *v, const struct pkt *p)
{
	if (p->proto != IPPROTO_TCP || !(p->sample & CT_TOUCH_MASK))
		v->last_seen_ns = ct_now();
}

/* The key of the other direction's entry: the packet this value makes,
 * seen coming back (an original entry gives its reply's key and a reply
 * entry its original's). */
static __always_inline void ct_other_key(struct ct_key *k, const struct ct_value *orig, __u8 proto)
{
	addr_copy(k->saddr, orig->new_daddr);
	addr_copy(k->daddr, orig->new_saddr);
	k->sport = orig->new_dport;
	k->dport = orig->new_sport;
	k->proto = proto;
	k->pad[0] = 0;
	k->pad[1] = 0;
	k->pad[2] = 0;
}

/* A SNATed TCP flow's close and reuse, on its reply entry (the one that
 * holds the SNAT port): FIN or RST in either direction marks it closed, a
 * SYN (the client reusing its tuple) opens it again. */
static __always_inline void ct_track_close(struct ct_value *reply, const struct pkt *p)
{
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) {
		reply->flags |= CT_FLAG_CLOSED;
		reply->last_seen_ns = ct_now();
	} else if (p->tcp_flags & TCP_FLAG_SYN) {
		reply->flags &= ~CT_FLAG_CLOSED;
	}
}

/* The reply entry rewrites back to what the client sent to. now: the
 * original entry's last_seen_ns (one clock read per new flow). */
static __always_inline void ct_reply_value(struct ct_value *r, const struct pkt *p, __u32 flags,
					   __u64 now)
{
	addr_copy(r->new_saddr, p->daddr);
	addr_copy(r->new_daddr, p->saddr);
	r->new_sport = p->dport;
	r->new_dport = p->sport;
	r->flags = flags | CT_FLAG_REPLY;
	r->svc_id = 0;
	r->backend_id = 0;
	r->last_seen_ns = now;
}

#endif
