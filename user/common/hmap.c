#include "hmap.h"

#include <stdlib.h>
#include <string.h>

int hmap_init(struct hmap *map, size_t expected)
{
	size_t n = 16;

	while (n < expected)
		n <<= 1;
	map->buckets = calloc(n, sizeof(*map->buckets));
	map->n_buckets = n;
	map->count = 0;
	return map->buckets ? 0 : -1;
}

void hmap_free(struct hmap *map)
{
	free(map->buckets);
	map->buckets = NULL;
	map->n_buckets = 0;
	map->count = 0;
}

/* FNV-1a: keys are short (names, addresses), so speed beats strength. */
uint64_t hmap_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

struct hmap_node *hmap_get(const struct hmap *map, const void *key, size_t len)
{
	uint64_t h = hmap_hash(key, len);
	struct hmap_node *n = map->buckets[h & (map->n_buckets - 1)];

	for (; n; n = n->next)
		if (n->hash == h && n->key_len == len && memcmp(n->key, key, len) == 0)
			return n;
	return NULL;
}

static int hmap_grow(struct hmap *map)
{
	size_t n = map->n_buckets * 2;
	struct hmap_node **b = calloc(n, sizeof(*b));

	if (!b)
		return -1;
	for (size_t i = 0; i < map->n_buckets; i++) {
		struct hmap_node *node = map->buckets[i], *next;

		for (; node; node = next) {
			next = node->next;
			node->next = b[node->hash & (n - 1)];
			b[node->hash & (n - 1)] = node;
		}
	}
	free(map->buckets);
	map->buckets = b;
	map->n_buckets = n;
	return 0;
}

void hmap_put(struct hmap *map, struct hmap_node *node, const void *key, size_t len)
{
	size_t idx;

	if (map->count >= map->n_buckets)
		hmap_grow(map);
	node->key = key;
	node->key_len = len;
	node->hash = hmap_hash(key, len);
	idx = node->hash & (map->n_buckets - 1);
	node->next = map->buckets[idx];
	map->buckets[idx] = node;
	map->count++;
}

void hmap_remove(struct hmap *map, struct hmap_node *node)
{
	struct hmap_node **pp = &map->buckets[node->hash & (map->n_buckets - 1)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == node) {
			*pp = node->next;
			map->count--;
			return;
		}
	}
}

static struct hmap_node *hmap_scan(const struct hmap *map, size_t from)
{
	for (size_t i = from; i < map->n_buckets; i++)
		if (map->buckets[i])
			return map->buckets[i];
	return NULL;
}

struct hmap_node *hmap_first(const struct hmap *map)
{
	return hmap_scan(map, 0);
}

struct hmap_node *hmap_next(const struct hmap *map, const struct hmap_node *node)
{
	if (node->next)
		return node->next;
	return hmap_scan(map, (node->hash & (map->n_buckets - 1)) + 1);
}
