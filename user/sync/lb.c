/* What a service port's backend choice needs beside its set: the
 * algorithm resolved against --lb-algorithm, the Maglev table of each
 * revision (ferry_maglev), and the name ferryctl shows for its svc_id
 * (ferry_svc_names). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sync/extents.h"
#include "sync/lb.h"
#include "sync/maglev.h"
#include "sync/mapio.h"
#include "sync/state.h"

uint8_t lb_algorithm(const struct sync_engine *eng, const struct desired_svc *d)
{
	switch (d->lb_algorithm) {
	case MODEL_LB_RANDOM:
		return LB_RANDOM;
	case MODEL_LB_ROUND_ROBIN:
		return LB_ROUND_ROBIN;
	case MODEL_LB_MAGLEV:
		return LB_MAGLEV;
	case MODEL_LB_LEAST_CONN:
		return LB_LEAST_CONN;
	default:
		return eng->lb_default;
	}
}

void lb_least_conn_ready(struct sync_engine *eng)
{
	if (!eng->lc_is_ready && eng->lc_ready)
		eng->lc_is_ready = eng->lc_ready(eng->lc_arg) == 0;
}

/* d's table (in its slot order: sorted, so every node agrees) in a new
 * run of ferry_maglev; *size and *offset get its entries and first cell.
 * Returns 0 or -errno, logged. */
int lb_table_write(struct sync_engine *eng, const struct desired_svc *d, uint32_t *size,
		   uint32_t *offset)
{
	uint32_t n = (uint32_t)d->n_backends, m = maglev_table_size(n);
	uint32_t n_cells = (m + FERRY_MAGLEV_PER_CELL - 1) / FERRY_MAGLEV_PER_CELL;
	struct maglev_backend *b = calloc(n, sizeof(*b));
	uint16_t *table = calloc((size_t)n_cells * FERRY_MAGLEV_PER_CELL, sizeof(*table));
	int64_t start = -1;
	int err = -ENOMEM;

	if (b && table) {
		for (uint32_t i = 0; i < n; i++) {
			memcpy(b[i].addr, d->backends[i].addr.w, sizeof(b[i].addr));
			b[i].port = htons(d->backends[i].port);
		}
		start = ext_alloc(&eng->maglev_space, n_cells);
		err = start < 0 ? -E2BIG : maglev_build(b, n, m, table) ? -EINVAL : 0;
	}
	/* Tables go in with memcpy where the map allows it, mapped at the
	 * first: the mapping is the whole array's memory in ferryd's RSS. */
	if (!err && !eng->maglev_map_tried) {
		dp_maps_map_cells(&eng->maps);
		eng->maglev_map_tried = true;
	}
	if (!err)
		err = mio_write_array(eng, DP_MAP_MAGLEV, (uint32_t)start, table, n_cells);
	free(b);
	free(table);
	if (err && start >= 0)
		ext_put(&eng->maglev_space, (uint32_t)start, n_cells);
	if (err) {
		if (err == -E2BIG)
			eng->stats.map_full_errors++;
		log_error("sync", "%s: cannot write its Maglev table (%u entries): %s", d->id, m,
			  err == -E2BIG ? "ferry_maglev is full (--max-maglev-entries)" :
			  strerror(-err));
		return err;
	}
	eng->writes++;
	*size = m;
	*offset = (uint32_t)start;
	return 0;
}

/* Cells of a table of size entries. */
static uint32_t lb_cells(uint32_t size)
{
	return (size + FERRY_MAGLEV_PER_CELL - 1) / FERRY_MAGLEV_PER_CELL;
}

void lb_table_delete(struct sync_engine *eng, const struct svc_value *v)
{
	if (v->maglev_size && ext_put(&eng->maglev_space, v->maglev_offset, lb_cells(v->maglev_size)))
		log_error("sync", "service port %u: out of memory: its Maglev table's room is lost "
			  "until ferryd restarts", v->svc_id);
}

int lb_table_adopt(struct sync_engine *eng, const struct svc_value *v)
{
	if (!v->maglev_size)
		return 0;
	return ext_claim(&eng->maglev_space, v->maglev_offset, lb_cells(v->maglev_size));
}

int lb_name_write(struct sync_engine *eng, uint32_t svc_id, const char *id)
{
	struct svc_name name = {};

	snprintf(name.id, sizeof(name.id), "%s", id);
	return wr_put(eng, DP_MAP_SVC_NAMES, &svc_id, &name);
}

int lb_name_keep(struct sync_engine *eng, uint32_t svc_id, const char *id)
{
	struct svc_name name;

	if (mio_lookup(eng, DP_MAP_SVC_NAMES, &svc_id, &name) == 0 &&
	    strncmp(name.id, id, sizeof(name.id)) == 0)
		return 0;
	return lb_name_write(eng, svc_id, id);
}

void lb_name_delete(struct sync_engine *eng, uint32_t svc_id)
{
	wr_del(eng, DP_MAP_SVC_NAMES, &svc_id);
}
