/* The datapath's counters (ferry_stats, per CPU), summed, with the names
 * ferryctl status and the metrics give them. */
#ifndef FERRY_DATAPATH_COUNTERS_H
#define FERRY_DATAPATH_COUNTERS_H

#include <stdint.h>

#include "datapath/pinned.h"
#include "ferry/maps.h"

extern const char *const dp_stat_names[STAT__COUNT];

/* Sums every counter over the CPUs into out. Returns 0, or -1 when the map
 * cannot be read (out zeroed). */
int dp_counters_read(const struct dp_maps *maps, uint64_t out[STAT__COUNT]);

/* A hash map's entries, read in batches (a call per 1,024 entries, where
 * get_next_key costs one per entry); -1 when it cannot be read. No
 * syscall counts entries: this walks every bucket. */
long long dp_map_count(int fd);

/* The capacity of a map (max_entries), 0 when unknown. */
uint32_t dp_map_capacity(const struct dp_maps *maps, enum dp_map map);

#endif
