/* A chained hash map with byte-string keys, owned by the caller's entries.
 * Entries embed struct hmap_node; the map never allocates per entry.
 *
 * Keys come from the API (object names): the hash is SipHash-1-3 keyed with
 * 128 random bits per process (getrandom at the first hmap_init), so that
 * no one can compute names that fall into one bucket and make every lookup
 * walk them all. Iteration order therefore differs from one run to the next. */
#ifndef FERRY_HMAP_H
#define FERRY_HMAP_H

#include <stddef.h>
#include <stdint.h>

/* 24 bytes: a map holds one per entry (hundreds of thousands in ferryd),
 * so the length and the hash take 32 bits each (keys are names). */
struct hmap_node {
	struct hmap_node *next;
	const void *key;
	uint32_t key_len;
	uint32_t hash;
};

struct hmap {
	struct hmap_node **buckets;
	size_t n_buckets;
	size_t count;
};

int hmap_init(struct hmap *map, size_t expected);
void hmap_free(struct hmap *map);   /* frees buckets, not entries */
struct hmap_node *hmap_get(const struct hmap *map, const void *key, size_t len);
/* The node's key must stay valid while it is in the map. Never fails: when
 * the table cannot grow, chains just get longer. */
void hmap_put(struct hmap *map, struct hmap_node *node, const void *key, size_t len);
void hmap_remove(struct hmap *map, struct hmap_node *node);
/* The keyed hash hmap uses, for an index of the caller's own. */
uint64_t hmap_hash_bytes(const void *key, size_t len);

/* Walk every node: for (it = hmap_first(m); it; it = hmap_next(m, it)).
 * Removing the current node is allowed when the next one was taken first. */
struct hmap_node *hmap_first(const struct hmap *map);
struct hmap_node *hmap_next(const struct hmap *map, const struct hmap_node *node);

#define hmap_entry(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#endif
