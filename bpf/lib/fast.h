/* ferry_fast4 (include/ferry/maps.h): a connect() to a common ClusterIP
 * port in one cache line. The array's lookup is inlined by the verifier
 * (no helper call) and the entry holds the key, the set and its version,
 * where ferry_services4 costs a jhash, the bucket's line, the element's
 * header line and the value's. */
#ifndef FERRY_BPF_FAST_H
#define FERRY_BPF_FAST_H

#include "ferry/hash.h"
#include "lib/maps.h"

/* ferry_fast4's size - 1, set by ferryd before the load (the verifier
 * then folds it into the code); 0 leaves the table out. */
const volatile __u32 ferry_fast_mask = 0;

/* The backend r picks, as backend_slot's uniform pick would, in entry e
 * if e holds (addr, port_word): addr and port out. False when it does not,
 * or when ferryd was rewriting it (then ferry_services4 answers). */
static __always_inline bool fast_entry_pick(const struct fast_entry *e, __u32 addr,
					    __u32 port_word, __u32 r, __u32 *out_addr,
					    __u16 *out_port)
{
	__u32 seq = *(volatile const __u32 *)&e->seq, count, slot;

	asm volatile("" ::: "memory");
	if (e->addr != addr || e->port_word != port_word)
		return false;
	count = e->count;
	if (!count)
		return false;
	slot = ((__u64)r * count) >> 32;
	/* clang knows slot < count but not count's bound: the check the
	 * verifier needs. */
	barrier_var(slot);
	if (slot >= FERRY_FAST_BACKENDS)
		return false;
	*out_addr = e->backend[slot];
	*out_port = e->port;
	asm volatile("" ::: "memory");
	return !(seq & 1) && *(volatile const __u32 *)&e->seq == seq;
}

/* The frontend (addr, port_word: svc_key4's words) translated through
 * ferry_fast4 with the draw r. Probes FERRY_FAST_PROBES entries from its
 * home: ferryd puts an entry no further. Loads that are not reordered with
 * one another are what makes the entry's count a version (x86's); on
 * other machines the table is left out. */
static __always_inline bool fast_pick(__u32 addr, __u32 port_word, __u32 r, __u32 *out_addr,
				      __u16 *out_port)
{
#if defined(__TARGET_ARCH_x86)
	__u32 home, idx;
	struct fast_entry *e;

	if (!ferry_fast_mask)
		return false;
	home = ferry_fast_home(addr, port_word, ferry_fast_mask);
#pragma unroll
	for (int i = 0; i < FERRY_FAST_PROBES; i++) {
		idx = (home + i) & ferry_fast_mask;
		e = bpf_map_lookup_elem(&ferry_fast4, &idx);
		if (!e)
			return false;
		if (fast_entry_pick(e, addr, port_word, r, out_addr, out_port))
			return true;
	}
#endif
	return false;
}

#endif
