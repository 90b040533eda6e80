/* Random numbers for backend choice. They must be uniform, not
 * unpredictable (iptables' statistic match is no better), and cheap:
 * bpf_get_prandom_u32() took about 45 ns a call on Linux 6.18, more than
 * the rest of a connect()'s translation together. A per-CPU xorshift32,
 * seeded from it once per CPU, is a load, a few shifts and a store. Two
 * programs interleaved on one CPU may draw the same number: harmless. */
#ifndef FERRY_BPF_RAND_H
#define FERRY_BPF_RAND_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* Private to each loaded object, not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ferry_rng SEC(".maps");

static __always_inline __u32 rand_u32(void)
{
	__u32 zero = 0, x;
	__u32 *state = bpf_map_lookup_elem(&ferry_rng, &zero);

	if (!state)
		return bpf_get_prandom_u32();
	x = *state;
	if (!x)
		x = bpf_get_prandom_u32() | 1;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

#endif
