/* Per-CPU counters: no atomics on the connect path, summed by ferryctl. */
#ifndef FERRY_BPF_STATS_H
#define FERRY_BPF_STATS_H

#include "lib/maps.h"

/* This CPU's counter, for a path that reads it before it counts. */
static __always_inline struct stat_value *stat_counter(__u32 index)
{
	return bpf_map_lookup_elem(&ferry_stats, &index);
}

static __always_inline void stat_inc(__u32 index)
{
	struct stat_value *v = stat_counter(index);

	if (v)
		v->count++;
}

#endif
