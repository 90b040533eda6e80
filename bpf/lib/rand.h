/* Random numbers for backend choice. They must be uniform, not
 * unpredictable (iptables' statistic match is no better), and cheap:
 * bpf_get_prandom_u32() took about 45 ns a call on Linux 6.18, more than
 * the rest of a connect()'s translation together. A per-CPU xorshift32,
 * seeded from it once per CPU, is a load, a few shifts and a store. The
 * states are an array in the object's own .bss, one cache line per CPU,
 * reached through the CPU number (which the verifier inlines): no map
 * lookup. CPUs beyond FERRY_RNG_CPUS share a state, and two programs
 * interleaved on one CPU may draw the same number: both harmless. */
#ifndef FERRY_BPF_RAND_H
#define FERRY_BPF_RAND_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "ferry/hash.h"

#define FERRY_RNG_CPUS 1024

struct rng_state {
	__u32 x;
	__u8 pad[60];
};

static struct rng_state rng_states[FERRY_RNG_CPUS];

static __always_inline __u32 rand_u32(void)
{
	struct rng_state *s = &rng_states[bpf_get_smp_processor_id() & (FERRY_RNG_CPUS - 1)];
	__u32 x = s->x;

	if (!x)
		x = bpf_get_prandom_u32() | 1;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	s->x = x;
	return x;
}

/* A draw from a count that grows by one per draw: the count times the
 * golden ratio (a Weyl sequence) through murmur3's finalizer, uniform over
 * consecutive counts. The connect hooks draw from the count of the
 * translations they make (lib/stats.h): a per-CPU line they write anyway,
 * where rand_u32's state would be one more line to bring in on a fresh
 * socket's path. */
static __always_inline __u32 rand_of_count(__u64 count)
{
	return ferry_hash_final((__u32)count * FERRY_HASH_SEED, 0);
}

#endif
