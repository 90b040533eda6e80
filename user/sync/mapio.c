#include "sync/mapio.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "datapath/backend_map.h"
#include "datapath/svc_map.h"
#include "sync/state.h"

static int bpf_rc(int rc)
{
	return rc ? -errno : 0;
}

/* DP_MAP_SERVICES stands for both frontend maps (datapath/svc_map.h);
 * ferry_backends is an array read as a map of its live elements
 * (datapath/backend_map.h). */
static int backends_fd(void *ctx)
{
	return ((struct dp_maps *)ctx)->fd[DP_MAP_BACKENDS];
}

/* A backend_id key, at any alignment (the sync engine's records are
 * packed). */
static uint32_t backend_id_of(const void *key)
{
	uint32_t id;

	memcpy(&id, key, sizeof(id));
	return id;
}

static int io_update(void *ctx, enum dp_map map, const void *key, const void *value,
		     uint64_t flags)
{
	if (map == DP_MAP_SERVICES)
		return svc_map_update(ctx, key, value, flags);
	return bpf_rc(bpf_map_update_elem(((struct dp_maps *)ctx)->fd[map], key, value, flags));
}

static int io_remove(void *ctx, enum dp_map map, const void *key)
{
	if (map == DP_MAP_SERVICES)
		return svc_map_delete(ctx, key);
	if (map == DP_MAP_BACKENDS)
		return backend_map_delete(backends_fd(ctx), backend_id_of(key));
	return bpf_rc(bpf_map_delete_elem(((struct dp_maps *)ctx)->fd[map], key));
}

static int io_lookup(void *ctx, enum dp_map map, const void *key, void *value)
{
	if (map == DP_MAP_SERVICES)
		return svc_map_lookup(ctx, key, value);
	if (map == DP_MAP_BACKENDS)
		return backend_map_lookup(backends_fd(ctx), backend_id_of(key), value);
	return bpf_rc(bpf_map_lookup_elem(((struct dp_maps *)ctx)->fd[map], key, value));
}

static int io_next_key(void *ctx, enum dp_map map, const void *key, void *next)
{
	uint32_t prev;

	if (map == DP_MAP_SERVICES)
		return svc_map_next_key(ctx, key, next);
	if (map == DP_MAP_BACKENDS) {
		prev = key ? backend_id_of(key) : 0;
		return backend_map_next_id(backends_fd(ctx), key ? &prev : NULL, next);
	}
	return bpf_rc(bpf_map_get_next_key(((struct dp_maps *)ctx)->fd[map], key, next));
}

static int io_update_batch(void *ctx, enum dp_map map, const void *keys, const void *values,
			   uint32_t *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);

	if (map == DP_MAP_SERVICES)
		return svc_map_update_batch(ctx, keys, values, count);
	return bpf_rc(bpf_map_update_batch(((struct dp_maps *)ctx)->fd[map], keys, values, count,
					   &opts));
}

static int io_lookup_batch(void *ctx, enum dp_map map, void *in, uint32_t *token, void *keys,
			   void *values, uint32_t *count)
{
	uint32_t cursor;
	int err;

	if (map == DP_MAP_SERVICES)
		return svc_map_lookup_batch(ctx, in, token, keys, values, count);
	if (map == DP_MAP_BACKENDS) {
		cursor = in ? *(uint32_t *)in : 0;
		err = backend_map_read(backends_fd(ctx), &cursor, keys, values, count);
		*token = cursor;
		return err;
	}
	return bpf_rc(bpf_map_lookup_batch(((struct dp_maps *)ctx)->fd[map], in, token, keys,
					   values, count, NULL));
}

/* Through the mapping of an mmapable array: plain stores, ordered before
 * the entry that publishes them by the syscall that writes it. */
static int io_write_array(void *ctx, enum dp_map map, uint32_t first, const void *values,
			  uint32_t n)
{
	struct dp_maps *maps = ctx;
	size_t at = (size_t)first * sizeof(struct maglev_cell), len = (size_t)n * sizeof(struct maglev_cell);

	if (map != DP_MAP_MAGLEV || !maps->maglev_cells)
		return -EOPNOTSUPP;
	if (at > maps->maglev_len || len > maps->maglev_len - at)
		return -E2BIG;
	memcpy((char *)maps->maglev_cells + at, values, len);
	return 0;
}

const struct map_io map_io_bpf = {
	.update = io_update,
	.remove = io_remove,
	.lookup = io_lookup,
	.next_key = io_next_key,
	.update_batch = io_update_batch,
	.lookup_batch = io_lookup_batch,
	.write_array = io_write_array,
};

void sync_set_map_io(struct sync_engine *eng, const struct map_io *io, void *ctx)
{
	eng->io = io;
	eng->io_ctx = ctx;
}

int mio_update(const struct sync_engine *eng, enum dp_map map, const void *key,
	       const void *value, uint64_t flags)
{
	return eng->io->update(eng->io_ctx, map, key, value, flags);
}

int mio_delete(const struct sync_engine *eng, enum dp_map map, const void *key)
{
	return eng->io->remove(eng->io_ctx, map, key);
}

int mio_lookup(const struct sync_engine *eng, enum dp_map map, const void *key, void *value)
{
	return eng->io->lookup(eng->io_ctx, map, key, value);
}

int mio_next_key(const struct sync_engine *eng, enum dp_map map, const void *key, void *next)
{
	return eng->io->next_key(eng->io_ctx, map, key, next);
}

int mio_update_batch(const struct sync_engine *eng, enum dp_map map, const void *keys,
		     const void *values, uint32_t *count)
{
	return eng->io->update_batch(eng->io_ctx, map, keys, values, count);
}

int mio_lookup_batch(const struct sync_engine *eng, enum dp_map map, void *in, uint32_t *token,
		     void *keys, void *values, uint32_t *count)
{
	if (!eng->io->lookup_batch)
		return -EOPNOTSUPP;
	return eng->io->lookup_batch(eng->io_ctx, map, in, token, keys, values, count);
}

int mio_write_array(const struct sync_engine *eng, enum dp_map map, uint32_t first,
		    const void *values, uint32_t n)
{
	uint32_t *keys, done = n;
	int err = eng->io->write_array ?
		eng->io->write_array(eng->io_ctx, map, first, values, n) : -EOPNOTSUPP;

	if (err != -EOPNOTSUPP)
		return err;
	keys = malloc((size_t)n * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		keys[i] = first + i;
	err = mio_update_batch(eng, map, keys, values, &done);
	free(keys);
	return err;
}
