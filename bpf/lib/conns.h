/* Live connection counts for least-conn (ferry_conns). Every CPU adds and
 * takes off atomically; a count is never taken below zero, so one that
 * lost its connections' additions (new maps after a restart that could not
 * adopt them) settles at zero instead of wrapping. */
#ifndef FERRY_BPF_CONNS_H
#define FERRY_BPF_CONNS_H

#include "lib/maps.h"

static __always_inline __u32 conns_live(__u32 backend_id)
{
	struct backend_conns *c = bpf_map_lookup_elem(&ferry_conns, &backend_id);

	return c ? c->sock + c->packet : 0;
}

static __always_inline void conns_add(__u32 *count)
{
	__sync_fetch_and_add(count, 1);
}

/* One less, unless already zero: a few tries against concurrent changes. */
static __always_inline void conns_sub(__u32 *count)
{
	__u32 old = *(volatile __u32 *)count;

	for (int i = 0; i < 4 && old; i++) {
		__u32 seen = __sync_val_compare_and_swap(count, old, old - 1);

		if (seen == old)
			return;
		old = seen;
	}
}

/* A socket now counts for backend_id (0: none): taken off the backend it
 * counted for before (a UDP socket connected again), added to this one. */
static __always_inline void conns_sock_set(struct bpf_sock *sk, __u32 backend_id)
{
	struct sock_conn *st;
	struct backend_conns *c;
	__u32 old;

	if (!sk)
		return;
	st = bpf_sk_storage_get(&ferry_sk_conn, sk, NULL,
				backend_id ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (!st)
		return;
	old = st->backend_id;
	if (old == backend_id)
		return;
	st->backend_id = backend_id;
	c = bpf_map_lookup_elem(&ferry_conns, &old);
	if (old && c)
		conns_sub(&c->sock);
	c = bpf_map_lookup_elem(&ferry_conns, &backend_id);
	if (backend_id && c)
		conns_add(&c->sock);
}

/* A per-packet flow counted (CT_FLAG_COUNTED in its original entry) is
 * taken off once, by whichever CPU clears the flag. */
static __always_inline void conns_flow_end(struct ct_value *orig)
{
	struct backend_conns *c;
	__u32 id = orig->backend_id;

	if (!(orig->flags & CT_FLAG_COUNTED))
		return;
	if (!(__sync_fetch_and_and(&orig->flags, ~(__u32)CT_FLAG_COUNTED) & CT_FLAG_COUNTED))
		return;
	c = bpf_map_lookup_elem(&ferry_conns, &id);
	if (c)
		conns_sub(&c->packet);
}

static __always_inline void conns_flow_start(__u32 backend_id)
{
	struct backend_conns *c = bpf_map_lookup_elem(&ferry_conns, &backend_id);

	if (c)
		conns_add(&c->packet);
}

#endif
