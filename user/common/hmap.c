#include "hmap.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>

static uint64_t hmap_key[2];
static pthread_once_t hmap_key_once = PTHREAD_ONCE_INIT;

/* The process's hash key. Should getrandom fail (a seccomp profile that
 * forbids it), the 16 random bytes the kernel gives every process at exec
 * (AT_RANDOM) mixed with the time still keep it unknown from outside. */
static void hmap_seed(void)
{
	const unsigned char *at_random = (const void *)getauxval(AT_RANDOM);
	struct timespec ts;
	ssize_t n;

	do
		n = getrandom(hmap_key, sizeof(hmap_key), 0);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(hmap_key))
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (at_random)
		memcpy(hmap_key, at_random, sizeof(hmap_key));
	hmap_key[0] ^= (uint64_t)ts.tv_nsec << 32 ^ (uint64_t)ts.tv_sec;
	hmap_key[1] ^= (uint64_t)(uintptr_t)&ts;
}

int hmap_init(struct hmap *map, size_t expected)
{
	size_t n = 16;

	pthread_once(&hmap_key_once, hmap_seed);
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

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13) ^ v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17) ^ v[2];
	v[2] = rotl(v[2], 32);
}

/* SipHash-1-3 (one round per 8 bytes, three at the end), as Rust's and
 * CPython's hash tables use: a keyed function whose collisions cannot be
 * found without the key, and faster than byte-wise FNV-1a on names. */
static uint64_t hmap_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t v[4] = {
		hmap_key[0] ^ 0x736f6d6570736575ULL, hmap_key[1] ^ 0x646f72616e646f6dULL,
		hmap_key[0] ^ 0x6c7967656e657261ULL, hmap_key[1] ^ 0x7465646279746573ULL,
	};
	uint64_t m, last = (uint64_t)len << 56;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);
		m = le64toh(m);
		v[3] ^= m;
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		last |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= last;
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t hmap_hash_bytes(const void *key, size_t len)
{
	pthread_once(&hmap_key_once, hmap_seed);
	return hmap_hash(key, len);
}

struct hmap_node *hmap_get(const struct hmap *map, const void *key, size_t len)
{
	uint32_t h = (uint32_t)hmap_hash(key, len);
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

	/* Two entries a bucket on average before growing: a chain's nodes
	 * carry their hash, so a longer chain costs little, while the bucket
	 * array of a map of a million entries is 8 MB at one a bucket. */
	if (map->count >= 2 * map->n_buckets)
		hmap_grow(map);
	node->key = key;
	node->key_len = (uint32_t)len;
	node->hash = (uint32_t)hmap_hash(key, len);
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
