/* Backend selection: uniform random over the revision's slots. The svc
 * value is copied first, so slot and revision always belong together; a
 * slot that vanished means ferryd published a new set and reaped this one
 * under us, so the caller looks the service up again. */
#ifndef FERRY_BPF_SELECT_H
#define FERRY_BPF_SELECT_H

#include "lib/maps.h"

static __always_inline struct slot_value *backend_select(const struct svc_value *svc)
{
	struct slot_key key = {
		.svc_id = svc->svc_id,
		.rev = svc->rev,
		.slot = bpf_get_prandom_u32() % svc->count,
	};

	return bpf_map_lookup_elem(&ferry_slots, &key);
}

/* Still the same backend of the same service? backend_ids are not reused
 * while they live, but a freed id may come back for another address. */
static __always_inline bool backend_alive(__u32 backend_id, __u32 svc_id,
					  const __u32 addr[4], __u16 port)
{
	struct backend_value *b = bpf_map_lookup_elem(&ferry_backends, &backend_id);

	return b && b->svc_id == svc_id && b->port == port &&
	       b->addr[0] == addr[0] && b->addr[1] == addr[1] &&
	       b->addr[2] == addr[2] && b->addr[3] == addr[3];
}

#endif
