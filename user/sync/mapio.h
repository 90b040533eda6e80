/* The sync engine's only way to the maps. By default the pinned BPF maps;
 * unit tests give an in-memory implementation that records every write, so
 * the engine's order of writes can be checked without root. Internal to
 * user/sync (and its tests). */
#ifndef FERRY_SYNC_MAPIO_H
#define FERRY_SYNC_MAPIO_H

#include <stddef.h>
#include <stdint.h>

#include "datapath/pinned.h"

struct sync_engine;

/* Each returns 0 or -errno, as the bpf(2) command it stands for. ctx is
 * what sync_set_map_io was given (the BPF implementation: the maps). */
struct map_io {
	int (*update)(void *ctx, enum dp_map map, const void *key, const void *value,
		      uint64_t flags);
	int (*remove)(void *ctx, enum dp_map map, const void *key);
	int (*lookup)(void *ctx, enum dp_map map, const void *key, void *value);
	/* key NULL: the first key. -ENOENT after the last. */
	int (*next_key)(void *ctx, enum dp_map map, const void *key, void *next);
	/* *count in: entries at keys/values; out: how many were written. */
	int (*update_batch)(void *ctx, enum dp_map map, const void *keys, const void *values,
			    uint32_t *count);
	/* BPF_MAP_LOOKUP_BATCH: in NULL to start, *token to go on; -ENOENT
	 * with the last entries. NULL when the implementation has none. */
	int (*lookup_batch)(void *ctx, enum dp_map map, void *in, uint32_t *token, void *keys,
			    void *values, uint32_t *count);
	/* Elements first..first+n-1 of an array map from values. NULL, or
	 * -EOPNOTSUPP, when the implementation cannot: mio_write_array then
	 * writes them with update_batch. */
	int (*write_array)(void *ctx, enum dp_map map, uint32_t first, const void *values,
			   uint32_t n);
};

/* The BPF maps of eng's dp_maps. */
extern const struct map_io map_io_bpf;

/* Replace how eng reaches the maps (tests). */
void sync_set_map_io(struct sync_engine *eng, const struct map_io *io, void *ctx);

int mio_update(const struct sync_engine *eng, enum dp_map map, const void *key,
	       const void *value, uint64_t flags);
int mio_delete(const struct sync_engine *eng, enum dp_map map, const void *key);
int mio_lookup(const struct sync_engine *eng, enum dp_map map, const void *key, void *value);
int mio_next_key(const struct sync_engine *eng, enum dp_map map, const void *key, void *next);
int mio_update_batch(const struct sync_engine *eng, enum dp_map map, const void *keys,
		     const void *values, uint32_t *count);
/* -EOPNOTSUPP when the implementation has no batch reads. */
int mio_lookup_batch(const struct sync_engine *eng, enum dp_map map, void *in, uint32_t *token,
		     void *keys, void *values, uint32_t *count);

/* Elements first..first+n-1 of an array map. */
int mio_write_array(const struct sync_engine *eng, enum dp_map map, uint32_t first,
		    const void *values, uint32_t n);

#endif
