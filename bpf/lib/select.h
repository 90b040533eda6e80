/* Backend selection: uniform random over the set, read inline from the
 * service entry when it rides there, else from the revision's slots. The
 * svc value is copied first, so slot and revision always belong together;
 * a slot that vanished means ferryd published a new set and reaped this
 * one under us, so the service is looked up again. */
#ifndef FERRY_BPF_SELECT_H
#define FERRY_BPF_SELECT_H

#include "lib/maps.h"
#include "lib/rand.h"
#include "lib/sockaddr.h"
#include "lib/stats.h"

/* Whether a set of count backends rides in its service entry (and has no
 * slots): v4 is the family of the entry's key. */
static __always_inline bool set_inline(bool v4, __u32 count)
{
	return count <= (v4 ? FERRY_SVC_INLINE_V4 : FERRY_SVC_INLINE_V6);
}

static __always_inline struct slot_value *backend_select(const struct svc_value *svc)
{
	struct slot_key key = {
		.svc_id = svc->svc_id,
		.rev = svc->rev,
		.slot = rand_u32() % svc->count,
	};

	return bpf_map_lookup_elem(&ferry_slots, &key);
}

/* Entry r % count of an inline set (ferry/maps.h) into out: one lookup per
 * connect() instead of two. Call it straight after the lookup that found e:
 * its element may be reused once another helper runs. False when the set
 * is not inline. */
static __always_inline bool backend_select_inline(const struct svc_entry *e, bool v4,
						  __u32 count, __u32 r, struct slot_value *out)
{
	const struct svc_inline_v4 *b;
	__u32 i;

	if (!count || !set_inline(v4, count))
		return false;
	/* Below count already; the masks (the sizes are powers of two) keep
	 * the bound visible to the verifier whatever the compiler does. */
	i = r % count;
	if (!v4) {
		*out = e->in.v6[i & (FERRY_SVC_INLINE_V6 - 1)];
		return true;
	}
	b = &e->in.v4[i & (FERRY_SVC_INLINE_V4 - 1)];
	out->backend_id = b->backend_id;
	out->port = b->port;
	out->flags = b->flags;
	addr_map_v4(out->addr, b->addr);
	return true;
}

/* A backend of a set that is not inline, from the slots of svc's
 * revision; when they are gone (ferryd published a new set and reaped this
 * one) the service at key is looked up once more, and svc becomes its. */
static __always_inline bool backend_pick_slots(const struct svc_key *key, bool v4,
					       struct svc_value *svc, struct slot_value *out)
{
	struct slot_value *b = backend_select(svc);
	struct svc_value *found;
	__u32 r;

	if (b) {
		*out = *b;
		return true;
	}
	stat_inc(STAT_SLOT_MISS);
	/* Drawn first: nothing may run between the lookup and the copy. */
	r = rand_u32();
	found = bpf_map_lookup_elem(&ferry_services, key);
	if (!found || !found->count)
		return false;
	*svc = *found;
	if (backend_select_inline((const struct svc_entry *)found, v4, svc->count, r, out))
		return true;
	b = backend_select(svc);
	if (!b)
		return false;
	*out = *b;
	return true;
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
