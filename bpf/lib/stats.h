/* Per-CPU counters: no atomics on the connect path, summed by ferryctl. */
#ifndef FERRY_BPF_STATS_H
#define FERRY_BPF_STATS_H

#include "lib/maps.h"

static __always_inline void stat_inc(__u32 index)
{
	struct stat_value *v = bpf_map_lookup_elem(&ferry_stats, &index);

	if (v)
		v->count++;
}

#endif
