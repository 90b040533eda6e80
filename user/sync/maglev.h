/* Maglev lookup tables (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI 2016, section 3.4), built in
 * userspace and written to the datapath: entry hash(flow) % size of a set's
 * table names the backend slot that serves the flow.
 *
 * Every node must build the same table for the same set, so a table depends
 * only on the backends' identities (address and port) and their order:
 * sets arrive sorted by (addr, port) on every node, and nothing else (no
 * seed, no pointer, no per-node state) goes in.
 *
 * Table size. A prime (so that every skip visits every entry), chosen by
 * the backend count alone, from a few classes:
 *   n <= 7: 701, <= 14: 1409, <= 28: 2801, <= 56: 5623, <= 112: 11213,
 *   <= 224: 22409, <= 448: 44809, <= 896: 89603, beyond: 131071 (2^17-1).
 * Each is the smallest prime >= 100 * (7 << k), so size >= 100 n up to
 * n = 1310. Why 100 n: population is round-robin, so backend shares differ
 * by at most one entry (floor or ceil of size/n), an imbalance of at most
 * n/size <= 1%, the paper's figure for size >= 100 n.
 * Why classes instead of the smallest prime >= 100 n: flows reach entries by
 * hash % size, so a table of another size reshuffles every flow; removing or
 * adding a backend must keep the size for Maglev's minimal disruption (about
 * 1/n of the flows move) to hold. Under "smallest prime >= 100 n" nearly
 * every change of n changes the size. With doubling classes the size changes
 * only across 7/8, 14/15, 28/29, ..., 896/897: counts chosen away from the
 * usual replica counts (1-6, 10, 20, 50, 100, 200, 500, 1000) and their
 * +-1 surges, at a memory cost of at most twice the tight rule.
 * Why the cap: each entry costs 2 bytes in the kernel, so 131071 bounds a
 * set's table at 256 KiB; beyond 1310 backends the balance bound loosens
 * to n/131071 (50% at 65535).
 * Why 701 at least: a set of 1 to 7 backends costs 1.4 KiB, and the small
 * sets, the most common, keep their size as they grow to 7.
 *
 * Disruption at these sizes (tests/unit/test_maglev.c prints its own
 * figures): removing one of n backends moves its 1/n of the entries and,
 * over random sets, a median of 0.5 (n = 3), 1.5 (5), 2.0 (10), 1.9 (50),
 * 1.5 (100) points more; 1% of sets see 3 to 5 points more, and rare small
 * sets (two backends with equal skips) up to 23. The extra shrinks as
 * size/n grows (a mean of 0.7 points at n = 10, size 10007).
 *
 * Hashes: offset and skip come from two 64-bit hashes of the 18 identity
 * bytes (addr then port, as stored: network order, so the same on every
 * architecture): FNV-1a 64 from its standard offset basis, and FNV-1a 64
 * from a second basis (the golden ratio constant 0x9e3779b97f4a7c15), each
 * finished by MurmurHash3's 64-bit finalizer (fmix64), which spreads FNV's
 * last bytes (the port) over all 64 bits. offset = h1 % size,
 * skip = h2 % (size - 1) + 1, as in the paper. */
#ifndef FERRY_MAGLEV_H
#define FERRY_MAGLEV_H

#include <stdint.h>

#define MAGLEV_SIZE_MAX 131071u     /* 2^17 - 1, prime: 256 KiB of entries */
#define MAGLEV_BACKENDS_MAX 65535u  /* slots fit an entry; 0xffff marks empty */

/* A backend's identity for the table: what every node knows the same way. */
struct maglev_backend {
	uint32_t addr[4];  /* network order, IPv4 v4-mapped (as include/ferry/maps.h) */
	uint16_t port;     /* network order */
};

/* Entries of the table for a set of n backends (the classes above): a
 * prime, 0 for n == 0 or n > MAGLEV_BACKENDS_MAX. */
uint32_t maglev_table_size(uint32_t n);

/* Fill table[0..size-1] with slot indexes (0..n-1, the position of the
 * backend in b[]) by Maglev's population. b[] must be in the same order on
 * every node (sorted by addr, then port). Returns 0, or -1 (n == 0,
 * n > MAGLEV_BACKENDS_MAX, size not prime, size < n, size > MAGLEV_SIZE_MAX,
 * allocation: only sets beyond MAGLEV_STACK_BACKENDS allocate). */
int maglev_build(const struct maglev_backend *b, uint32_t n, uint32_t size, uint16_t *table);

/* Sets up to this many backends build with no allocation (12 bytes each on
 * the stack). */
#define MAGLEV_STACK_BACKENDS 256u

#endif
