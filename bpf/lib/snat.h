/* SNAT port allocation for flows to a backend on another node: the reply
 * must come back to this node, so the source becomes the node's address
 * and a port no other flow to the same backend uses. The reply entry's
 * insertion with BPF_NOEXIST is both the check and the claim, so two CPUs
 * cannot take the same port. */
#ifndef FERRY_BPF_SNAT_H
#define FERRY_BPF_SNAT_H

#include "lib/maps.h"
#include "lib/ct.h"

#define SNAT_TRIES 8

/* Claims a port for the flow whose original entry is orig (new_saddr set
 * to the SNAT address) by inserting its reply entry; returns the port in
 * network order (also in orig), 0 when every try was taken. reply and key
 * are the caller's scratch. */
static __always_inline __u16 snat_claim(const struct dp_config *cfg, struct ct_value *orig,
					const struct pkt *p, struct ct_value *reply,
					struct ct_key *key)
{
	__u32 span = (__u32)cfg->snat_port_max - cfg->snat_port_min + 1;

	if (!cfg->snat_port_min || cfg->snat_port_max < cfg->snat_port_min)
		return 0;
	ct_reply_value(reply, p, CT_FLAG_SNAT);
	for (int i = 0; i < SNAT_TRIES; i++) {
		__u16 port = bpf_htons(cfg->snat_port_min + bpf_get_prandom_u32() % span);

		orig->new_sport = port;
		ct_reply_key(key, orig, p->proto);
		if (!bpf_map_update_elem(&ferry_ct, key, reply, BPF_NOEXIST))
			return port;
	}
	return 0;
}

#endif
