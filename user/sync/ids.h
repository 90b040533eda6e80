/* IDs for service ports and backends. A freed ID comes back only after the
 * counter has gone round the whole range, also across restarts and
 * migrations (ferry_state keeps where it stood), so socket state that still
 * names an old ID rarely meets its successor (and the datapath checks the
 * address anyway). */
#ifndef FERRY_IDS_H
#define FERRY_IDS_H

#include <stdint.h>

struct id_pool {
	uint64_t *bits;
	uint32_t limit;   /* IDs are 1 .. limit-1 */
	uint32_t next;
	uint32_t used;
};

int id_pool_init(struct id_pool *pool, uint32_t limit);
void id_pool_free(struct id_pool *pool);
/* A free ID, or 0 when the pool is exhausted. */
uint32_t id_pool_get(struct id_pool *pool);
void id_pool_put(struct id_pool *pool, uint32_t id);
/* Take a given ID (adopting maps a previous ferryd wrote). Returns 0, or -1
 * when it is out of range or taken. */
int id_pool_claim(struct id_pool *pool, uint32_t id);
int id_pool_taken(const struct id_pool *pool, uint32_t id);
/* Go on from next, where a previous pool stood (ignored when out of range:
 * a migration to a smaller range starts over). */
void id_pool_resume(struct id_pool *pool, uint32_t next);

#endif
