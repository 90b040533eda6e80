#include "sync/ids.h"

#include <stdlib.h>

int id_pool_init(struct id_pool *pool, uint32_t limit)
{
	pool->bits = calloc((limit + 63) / 64, sizeof(uint64_t));
	pool->limit = limit;
	pool->next = 1;
	pool->used = 0;
	return pool->bits ? 0 : -1;
}

void id_pool_free(struct id_pool *pool)
{
	free(pool->bits);
	pool->bits = NULL;
}

int id_pool_taken(const struct id_pool *pool, uint32_t id)
{
	return id < pool->limit && ((pool->bits[id / 64] >> (id % 64)) & 1);
}

uint32_t id_pool_get(struct id_pool *pool)
{
	if (pool->used + 1 >= pool->limit)
		return 0;
	for (;;) {
		uint32_t id = pool->next;

		pool->next = id + 1 < pool->limit ? id + 1 : 1;
		if (!id_pool_taken(pool, id)) {
			pool->bits[id / 64] |= 1ULL << (id % 64);
			pool->used++;
			return id;
		}
	}
}

int id_pool_claim(struct id_pool *pool, uint32_t id)
{
	if (!id || id >= pool->limit || id_pool_taken(pool, id))
		return -1;
	pool->bits[id / 64] |= 1ULL << (id % 64);
	pool->used++;
	return 0;
}

void id_pool_resume(struct id_pool *pool, uint32_t next)
{
	if (next && next < pool->limit)
		pool->next = next;
}

void id_pool_put(struct id_pool *pool, uint32_t id)
{
	if (id && id < pool->limit && id_pool_taken(pool, id)) {
		pool->bits[id / 64] &= ~(1ULL << (id % 64));
		pool->used--;
	}
}
