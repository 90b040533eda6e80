/* The frontend maps, ferry_services4 and ferry_services6, as one map of
 * svc_key (include/ferry/maps.h says why they are two): an IPv4 key goes
 * to ferry_services4 as its svc_key4 and comes back as svc_key. The sync
 * engine reaches them through sync/mapio.c, ferryctl directly. Each
 * returns 0 or -errno, as the bpf(2) command it stands for. */
#ifndef FERRY_SVC_MAP_H
#define FERRY_SVC_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "datapath/pinned.h"
#include "ferry/maps.h"

bool svc_key_is_v4(const struct svc_key *key);
void svc_key_pack4(const struct svc_key *key, struct svc_key4 *out);
void svc_key_unpack4(const struct svc_key4 *key, struct svc_key *out);

/* key, next, keys: struct svc_key, at any alignment (the sync engine's
 * records are packed); value(s): struct svc_entry. */
int svc_map_lookup(const struct dp_maps *maps, const void *key, void *value);
int svc_map_update(const struct dp_maps *maps, const void *key, const void *value,
		   uint64_t flags);
int svc_map_delete(const struct dp_maps *maps, const void *key);
/* The IPv6 frontends, then the IPv4 ones; key NULL: the first. */
int svc_map_next_key(const struct dp_maps *maps, const void *key, void *next);
/* *count in: entries at keys/values; out: how many were written. */
int svc_map_update_batch(const struct dp_maps *maps, const void *keys, const void *values,
			 uint32_t *count);
/* BPF_MAP_LOOKUP_BATCH over both maps: in NULL to start, *token to go on;
 * -ENOENT with the last entries. */
int svc_map_lookup_batch(const struct dp_maps *maps, const uint32_t *in, uint32_t *token,
			 void *keys, void *values, uint32_t *count);

#endif
