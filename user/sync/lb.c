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

/* The table of d's set (in its slot order: sorted, so every node agrees)
 * at (svc_id, rev); *size gets its entries. Returns 0 or -errno. */
int lb_table_write(struct sync_engine *eng, uint32_t svc_id, uint32_t rev,
		   const struct desired_svc *d, uint32_t *size)
{
	struct maglev_key key = { .svc_id = svc_id, .rev = rev };
	uint32_t n = (uint32_t)d->n_backends, m = maglev_table_size(n), n_cells;
	struct maglev_backend *b = calloc(n, sizeof(*b));
	uint16_t *table = calloc((size_t)m + FERRY_MAGLEV_PER_CELL, sizeof(*table));
	int err = -ENOMEM;

	n_cells = (m + FERRY_MAGLEV_PER_CELL - 1) / FERRY_MAGLEV_PER_CELL;
	if (b && table) {
		for (uint32_t i = 0; i < n; i++) {
			memcpy(b[i].addr, d->backends[i].addr.w, sizeof(b[i].addr));
			b[i].port = htons(d->backends[i].port);
		}
		err = maglev_build(b, n, m, table) ? -EINVAL :
			mio_update_inner(eng, DP_MAP_MAGLEV, &key, table, n_cells,
					 sizeof(struct maglev_cell));
	}
	free(b);
	free(table);
	if (err) {
		if (err == -E2BIG || err == -ENOMEM)
			eng->stats.map_full_errors++;
		log_error("sync", "%s: cannot write its Maglev table (%u entries): %s", d->id, m,
			  strerror(-err));
		return err;
	}
	eng->writes++;
	*size = m;
	return 0;
}

void lb_table_delete(struct sync_engine *eng, const struct svc_value *v)
{
	struct maglev_key key = { .svc_id = v->svc_id, .rev = v->rev };

	if (v->maglev_size)
		wr_del(eng, DP_MAP_MAGLEV, &key);
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
