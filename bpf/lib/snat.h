/* SNAT port allocation for flows to a backend on another node: the reply
 * must come back to this node, so the source becomes the node's address
 * and a port no other flow to the same backend uses. The reply entry's
 * insertion with BPF_NOEXIST is both the check and the claim, so two CPUs
 * cannot take the same port.
 *
 * Entries are never expired, only evicted when ferry_ct fills, so a port
 * held by a flow that ended is taken back when a new flow draws it: a TCP
 * flow SNAT_CLOSED_NS after its FIN or RST (Linux's TIME_WAIT, so the
 * backend's old socket is gone), a UDP or SCTP flow idle for SNAT_IDLE_NS
 * (conntrack's UDP stream timeout). Without this, about 28,000 flows to
 * one backend would exhaust the default range for good. */
#ifndef FERRY_BPF_SNAT_H
#define FERRY_BPF_SNAT_H

#include "lib/maps.h"
#include "lib/ct.h"

#ifndef NSEC_PER_SEC
#define NSEC_PER_SEC 1000000000ULL
#endif
#define SNAT_TRIES 8
#define SNAT_CLOSED_NS (60 * NSEC_PER_SEC)
#define SNAT_IDLE_NS (120 * NSEC_PER_SEC)
#define SNAT_CURSORS 4096

/* Where each backend's next port is (an offset in the range), per CPU, by
 * backend_id folded: a backend's ports are handed out in turn, so a port
 * comes back to it only after the whole range, by when the LRU has
 * usually evicted its last holder, and the first try succeeds. A random
 * port collides with as many of the backend's ports as ferry_ct holds (a
 * third when full, with 16 backends): each miss an insert refused and a
 * lookup, and now and then all eight tries, a dropped packet. A try that
 * collides (a long-lived flow, another CPU's turn, ports held across a
 * restart) moves the cursor to a random port. The ports a backend sees
 * are thus in sequence, as from a NAT without port randomisation. Private
 * to the object, not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SNAT_CURSORS);
	__type(key, __u32);
	__type(value, __u32);
} ferry_snat_cursor SEC(".maps");

/* Frees the reply entry at key (a SNAT port's) when its flow ended, with
 * its original entry if that still leads here: a late packet of the old
 * flow is then decided anew instead of joining the new one. */
static __always_inline bool snat_reclaim(const struct ct_key *key)
{
	struct ct_value *old = bpf_map_lookup_elem(&ferry_ct, key), *o;
	__u64 idle, now = ct_now();
	struct ct_key orig;

	if (!old || (old->flags & (CT_FLAG_REPLY | CT_FLAG_SNAT)) != (CT_FLAG_REPLY | CT_FLAG_SNAT))
		return false;
	idle = now - old->last_seen_ns;
	if (key->proto == IPPROTO_TCP ? !(old->flags & CT_FLAG_CLOSED) || idle < SNAT_CLOSED_NS
				      : idle < SNAT_IDLE_NS)
		return false;
	ct_other_key(&orig, old, key->proto);
	o = bpf_map_lookup_elem(&ferry_ct, &orig);
	if (o && o->new_sport == key->dport && addr_eq(o->new_daddr, key->saddr))
		bpf_map_delete_elem(&ferry_ct, &orig);
	bpf_map_delete_elem(&ferry_ct, key);
	return true;
}

/* Claims a port for the flow whose original entry is orig (new_saddr set
 * to the SNAT address, backend_id and last_seen_ns set) by inserting its
 * reply entry; returns the port in network order (also in orig), 0 when
 * every try was taken. reply and key are the caller's scratch. */
static __always_inline __u16 snat_claim(const struct dp_config *cfg, struct ct_value *orig,
					const struct pkt *p, struct ct_value *reply,
					struct ct_key *key)
{
	__u32 span = (__u32)cfg->snat_port_max - cfg->snat_port_min + 1;
	__u32 idx = orig->backend_id & (SNAT_CURSORS - 1), off, *next;

	if (!cfg->snat_port_min || cfg->snat_port_max < cfg->snat_port_min)
		return 0;
	next = bpf_map_lookup_elem(&ferry_snat_cursor, &idx);
	if (!next)
		return 0;
	off = *next;
	ct_reply_value(reply, p, CT_FLAG_SNAT | (orig->flags & CT_FLAG_COUNTED), orig->last_seen_ns);
	for (int i = 0; i < SNAT_TRIES; i++) {
		__u16 port;

		off %= span;
		port = bpf_htons(cfg->snat_port_min + off);
		orig->new_sport = port;
		ct_other_key(key, orig, p->proto);
		if (!bpf_map_update_elem(&ferry_ct, key, reply, BPF_NOEXIST) ||
		    (snat_reclaim(key) && !bpf_map_update_elem(&ferry_ct, key, reply, BPF_NOEXIST))) {
			*next = off + 1;
			return port;
		}
		off = bpf_get_prandom_u32();
	}
	return 0;
}

#endif
