/* Maglev lookup tables: sizes, the two hashes of an identity and the
 * population of section 3.4 (see maglev.h for the choices). */
#include <stdlib.h>
#include <string.h>

#include "sync/maglev.h"

#define EMPTY 0xffffu
#define FNV_PRIME 0x100000001b3ULL
#define FNV_BASIS 0xcbf29ce484222325ULL  /* FNV-1a 64's offset basis */
#define SKIP_BASIS 0x9e3779b97f4a7c15ULL /* 2^64 / golden ratio */
#define TAIL 32u  /* entries left to populate_tail */

/* The largest backend count of each size class, and its size: the
 * smallest prime >= 100 times the count. */
static const struct {
	uint32_t max_n;
	uint32_t size;
} classes[] = {
	{ 7, 701 }, { 14, 1409 }, { 28, 2801 }, { 56, 5623 }, { 112, 11213 },
	{ 224, 22409 }, { 448, 44809 }, { 896, 89603 }, { MAGLEV_BACKENDS_MAX, MAGLEV_SIZE_MAX },
};

/* A backend's place in its permutation: the next entry it prefers. */
struct perm {
	uint32_t pos;
	uint32_t skip;
	uint32_t inv;   /* skip^-1 mod size, 0 until the tail needs it */
};

uint32_t maglev_table_size(uint32_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (n <= classes[i].max_n)
			return classes[i].size;
	return 0;
}

static int is_prime(uint32_t m)
{
	if (m < 2)
		return 0;
	for (uint32_t d = 2; d <= m / d; d++)
		if (m % d == 0)
			return 0;
	return 1;
}

/* MurmurHash3's 64-bit finalizer: every input bit reaches every output
 * bit. */
static uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return fmix64(h);
}

/* The 18 identity bytes as stored (network order: the same bytes on every
 * architecture), never the struct's padding. */
static struct perm perm_of(const struct maglev_backend *b, uint32_t size)
{
	unsigned char id[18];
	struct perm p;

	memcpy(id, b->addr, 16);
	memcpy(id + 16, &b->port, 2);
	p.pos = (uint32_t)(fnv1a(FNV_BASIS, id, sizeof(id)) % size);
	p.skip = (uint32_t)(fnv1a(SKIP_BASIS, id, sizeof(id)) % (size - 1)) + 1;
	p.inv = 0;
	return p;
}

/* x % size for x < 2^64 without a division: r = floor(2^64 / size)
 * estimates the quotient from below by at most one. */
static uint32_t reduce(uint64_t x, uint32_t size, uint64_t r)
{
	uint64_t q = (uint64_t)(((unsigned __int128)x * r) >> 64);
	uint64_t m = x - q * size;

	return (uint32_t)(m >= size ? m - size : m);
}

/* skip^-1 mod size (size prime): skip^(size-2), Fermat. */
static uint32_t inverse(uint32_t skip, uint32_t size, uint64_t r)
{
	uint64_t acc = 1, base = skip;

	for (uint32_t e = size - 2; e; e >>= 1) {
		if (e & 1)
			acc = reduce(acc * base, size, r);
		base = reduce(base * base, size, r);
	}
	return (uint32_t)acc;
}

/* Each backend in turn takes the next entry of its permutation that is
 * still empty, until only TAIL entries are: shares differ by at most one.
 * The search ends because skip < size and size is prime, so a permutation
 * visits every entry, and one is still empty. Returns the next backend's
 * turn. */
static uint32_t populate_head(struct perm *perm, uint32_t n, uint32_t size, uint16_t *table)
{
	uint32_t filled = 0, stop = size > TAIL ? size - TAIL : 0;

	memset(table, 0xff, (size_t)size * sizeof(*table));
	for (;;) {
		for (uint32_t i = 0; i < n; i++) {
			uint32_t c = perm[i].pos, skip = perm[i].skip;

			if (filled == stop)
				return i;
			while (table[c] != EMPTY) {
				c += skip;
				c -= c >= size ? size : 0;
			}
			table[c] = (uint16_t)i;
			c += skip;
			perm[i].pos = c - (c >= size ? size : 0);
			filled++;
		}
	}
}

/* The last empty entries, the same choices as probing would make, at a
 * cost per turn of the entries left instead of about size / left probes: a
 * backend takes the empty entry fewest steps ahead in its permutation, the
 * entry e at steps (e - pos) * skip^-1 mod size. */
static void populate_tail(struct perm *perm, uint32_t n, uint32_t turn, uint32_t size,
			  uint16_t *table)
{
	uint64_t r = UINT64_MAX / size;
	uint32_t left[TAIL], n_left = 0;

	for (uint32_t e = 0; e < size; e++)
		if (table[e] == EMPTY)
			left[n_left++] = e;
	for (uint32_t i = turn; n_left; i = i + 1 == n ? 0 : i + 1) {
		uint32_t best = 0, best_steps = UINT32_MAX;

		if (!perm[i].inv)
			perm[i].inv = inverse(perm[i].skip, size, r);
		for (uint32_t k = 0; k < n_left; k++) {
			uint32_t ahead = left[k] >= perm[i].pos ? left[k] - perm[i].pos
								 : left[k] + size - perm[i].pos;
			uint32_t steps = reduce((uint64_t)ahead * perm[i].inv, size, r);

			if (steps < best_steps) {
				best_steps = steps;
				best = k;
			}
		}
		table[left[best]] = (uint16_t)i;
		perm[i].pos = reduce((uint64_t)left[best] + perm[i].skip, size, r);
		left[best] = left[--n_left];
	}
}

int maglev_build(const struct maglev_backend *b, uint32_t n, uint32_t size, uint16_t *table)
{
	struct perm stack[MAGLEV_STACK_BACKENDS], *perm = stack;

	if (n == 0 || n > MAGLEV_BACKENDS_MAX || size < n || size > MAGLEV_SIZE_MAX ||
	    !is_prime(size))
		return -1;
	if (n > MAGLEV_STACK_BACKENDS) {
		perm = malloc((size_t)n * sizeof(*perm));
		if (!perm)
			return -1;
	}
	for (uint32_t i = 0; i < n; i++)
		perm[i] = perm_of(&b[i], size);
	populate_tail(perm, n, populate_head(perm, n, size, table), size, table);
	if (perm != stack)
		free(perm);
	return 0;
}
