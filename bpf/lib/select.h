/* Backend selection. The set's algorithm gives a slot: uniform random,
 * round-robin (one counter per service port, shared by all CPUs), Maglev
 * (the client's hash in the set's table), or least-conn (the fewest live
 * connections, lib/conns.h). The slot is read inline
 * from the service entry when the set rides there, else from the
 * revision's slots. A slot that vanished means ferryd published a new set
 * and reaped this one under us, so the service is looked up again. */
#ifndef FERRY_BPF_SELECT_H
#define FERRY_BPF_SELECT_H

#include "ferry/hash.h"
#include "lib/conns.h"
#include "lib/lookup.h"
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

/* Maglev: the slot the table of svc's revision holds for hash; false
 * when the set has no table (ferryd could not write it). */
static __always_inline bool maglev_slot(const struct svc_value *svc, __u32 hash, __u32 *slot)
{
	struct maglev_cell *cell;
	__u32 i, cell_index;

	if (!svc->maglev_size)
		return false;
	i = hash % svc->maglev_size;
	cell_index = svc->maglev_offset + i / FERRY_MAGLEV_PER_CELL;
	cell = bpf_map_lookup_elem(&ferry_maglev, &cell_index);
	if (!cell)
		return false;
	*slot = cell->slot[i & (FERRY_MAGLEV_PER_CELL - 1)];
	return *slot < svc->count;
}

/* Inline entry slot of e, whose value svc was copied from, into out; false
 * when e no longer holds svc's revision. Hash elements are reused without
 * a grace period, so e may have become another entry since the copy: the
 * entry is read first, then its revision checked, and the writer writes
 * the revision before the entries (it copies the value from the start). */
static __always_inline bool backend_inline_at(const struct svc_entry *e, bool v4,
					      const struct svc_value *svc, __u32 slot,
					      struct slot_value *out)
{
	const struct svc_inline_v4 *b;

	/* The masks (the sizes are powers of two) keep the bound visible to
	 * the verifier; slot is below count already. */
	if (!v4) {
		*out = e->in.v6[slot & (FERRY_SVC_INLINE_V6 - 1)];
	} else {
		b = &e->in.v4[slot & (FERRY_SVC_INLINE_V4 - 1)];
		out->backend_id = e->in.v4_backend_id[slot & (FERRY_SVC_INLINE_V4 - 1)];
		out->port = b->port;
		out->flags = b->flags;
		addr_map_v4(out->addr, b->addr);
	}
	asm volatile("" ::: "memory");
	return *(volatile const __u32 *)&e->v.svc_id == svc->svc_id &&
	       *(volatile const __u32 *)&e->v.rev == svc->rev;
}

/* Backend slot of svc's set; e is the entry svc was copied from. */
static __always_inline bool backend_at(const struct svc_entry *e, bool v4,
				       const struct svc_value *svc, __u32 slot,
				       struct slot_value *out)
{
	struct slot_key key = { .svc_id = svc->svc_id, .rev = svc->rev, .slot = slot };
	struct slot_value *b;

	if (set_inline(v4, svc->count))
		return backend_inline_at(e, v4, svc, slot, out);
	b = bpf_map_lookup_elem(&ferry_slots, &key);
	if (!b)
		return false;
	*out = *b;
	return true;
}

/* Sets least-conn reads every count of; beyond, two choices. */
#define LC_SCAN_MAX 32

struct lc_scan {
	const struct svc_entry *e;
	const struct svc_value *svc;
	__u32 r;
	__u32 best;
	__u32 best_live;
	bool v4;
	bool changed;    /* the set changed under the scan */
};

/* One slot of the scan: a bpf_loop callback, so the verifier checks it
 * once rather than once per slot. */
static long lc_scan_slot(__u32 i, void *ctx)
{
	struct lc_scan *scan = ctx;
	struct slot_value b;
	__u32 s = (scan->r + i) % scan->svc->count, live;

	if (!backend_at(scan->e, scan->v4, scan->svc, s, &b)) {
		scan->changed = true;
		return 1;
	}
	live = conns_live(b.backend_id);
	if (live < scan->best_live) {
		scan->best_live = live;
		scan->best = s;
	}
	return 0;
}

/* least-conn: the slot with the fewest live connections, each slot of a
 * set up to LC_SCAN_MAX looked at from a random one on, so that ties go at
 * random; in a larger set the better of two random slots, which keeps a
 * connection's cost bounded and the load close to the exact pick's. False
 * when the set changed under us. */
static __always_inline bool lc_slot(const struct svc_entry *e, bool v4,
				    const struct svc_value *svc, __u32 r, __u32 *slot)
{
	struct lc_scan scan = { .e = e, .svc = svc, .r = r, .best = r % svc->count,
				.best_live = ~0U, .v4 = v4 };
	struct slot_value b;
	__u32 live, s;

	if (svc->count <= LC_SCAN_MAX) {
		bpf_loop(svc->count, lc_scan_slot, &scan, 0);
		*slot = scan.best;
		return !scan.changed;
	}
	s = rand_u32() % svc->count;
	if (!backend_at(e, v4, svc, scan.best, &b))
		return false;
	live = conns_live(b.backend_id);
	if (!backend_at(e, v4, svc, s, &b))
		return false;
	*slot = conns_live(b.backend_id) < live ? s : scan.best;
	return true;
}

/* The slot a new connection to the set svc was copied from e takes. r: a
 * random draw; hash: the client's (Maglev only). An algorithm whose state
 * is missing falls back to r. False when the set changed under us. */
static __always_inline bool backend_slot(const struct svc_entry *e, bool v4,
					 const struct svc_value *svc, __u32 r, __u32 hash,
					 __u32 *slot)
{
	__u32 *next;

	if (svc->algorithm == LB_ROUND_ROBIN) {
		next = bpf_map_lookup_elem(&ferry_rr, &svc->svc_id);
		if (next) {
			*slot = __sync_fetch_and_add(next, 1) % svc->count;
			return true;
		}
		stat_inc(STAT_LB_STATE_MISSING);
	} else if (svc->algorithm == LB_MAGLEV) {
		if (maglev_slot(svc, hash, slot))
			return true;
		stat_inc(STAT_LB_STATE_MISSING);
	} else if (svc->algorithm == LB_LEAST_CONN) {
		return lc_slot(e, v4, svc, r, slot);
	}
	/* r scaled to the set (no division); connect_inline takes the
	 * same slot for r. */
	*slot = ((__u64)r * svc->count) >> 32;
	return true;
}

/* The backend of a new connection to the set svc was copied from e (found
 * at key); when the set changed under us, the service is looked up again
 * and svc becomes the new one's. hash as for backend_slot; slot (if not
 * NULL) gets the slot taken. */
static __always_inline bool backend_pick(const struct svc_key *key, bool v4,
					 const struct svc_entry *e, struct svc_value *svc,
					 __u32 r, __u32 hash, struct slot_value *out, __u32 *slot)
{
	__u32 s;

	if (!backend_slot(e, v4, svc, r, hash, &s) || !backend_at(e, v4, svc, s, out)) {
		stat_inc(STAT_SLOT_MISS);
		e = svc_find(key, v4);
		if (!e || !e->v.count)
			return false;
		*svc = e->v;
		if (!backend_slot(e, v4, svc, r, hash, &s) || !backend_at(e, v4, svc, s, out))
			return false;
	}
	if (slot)
		*slot = s;
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
