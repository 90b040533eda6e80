/* ClientIP session affinity (B30). The remembered backend is checked
 * against ferry_backends, which holds exactly the backends of the current
 * sets once a generation is published: a removed backend breaks the
 * affinity instead of receiving new connections (B12). */
#ifndef FERRY_BPF_AFFINITY_H
#define FERRY_BPF_AFFINITY_H

#include "lib/maps.h"
#include "lib/stats.h"

#define NSEC_PER_SEC 1000000000ULL

/* The client's remembered backend, as a slot, when it is still live and
 * the client connected within the timeout; the timer restarts. */
static __always_inline bool affinity_get(const struct affinity_key *key, const struct svc_value *svc,
					 struct slot_value *out)
{
	/* Read the clock first: an LRU element can be reused for another key
	 * once other helpers run, so a is copied before any does. */
	__u64 now = bpf_ktime_get_ns();
	struct affinity_value *a = bpf_map_lookup_elem(&ferry_affinity, key);
	struct affinity_value seen;
	struct backend_value *b;

	if (!a)
		return false;
	seen = *a;
	if (now - seen.last_used_ns > (__u64)svc->affinity_timeout * NSEC_PER_SEC)
		return false;
	a->last_used_ns = now;
	b = bpf_map_lookup_elem(&ferry_backends, &seen.backend_id);
	if (!b || b->svc_id != svc->svc_id)
		return false;
	out->backend_id = seen.backend_id;
	out->port = b->port;
	out->flags = 0; /* ferry_backends does not say who owns the reverse entry */
	out->addr[0] = b->addr[0];
	out->addr[1] = b->addr[1];
	out->addr[2] = b->addr[2];
	out->addr[3] = b->addr[3];
	stat_inc(STAT_AFFINITY_KEPT);
	return true;
}

static __always_inline void affinity_set(const struct affinity_key *key, __u32 backend_id)
{
	struct affinity_value a = {
		.last_used_ns = bpf_ktime_get_ns(),
		.backend_id = backend_id,
	};

	bpf_map_update_elem(&ferry_affinity, key, &a, BPF_ANY);
}

#endif
