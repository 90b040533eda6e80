/* Maglev table builds (user/sync/maglev.c): the time to build S tables of N
 * backends each (IPv4 pod addresses, every set its own), best of R rounds,
 * and what the tables take in the kernel (2 bytes an entry).
 *
 *   build/bench/maglev_build [S N [R]]
 *
 * Without arguments: 10,000 x 10, 1,000 x 10, 1,000 x 100, 100 x 1,000, 5
 * rounds. One line per case: sets= backends= size= best_ms= best_cpu_ms=
 * (the least CPU time of a round: on a busy machine, steadier than
 * best_ms) ns_per_entry= (from best_cpu_ms) table_kib= (one set's table)
 * tables_mib= (all S sets' tables).
 *
 * The generic bench rule builds each C file of tests/bench alone, without
 * libferry: the module is compiled in (it needs nothing else). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sync/maglev.c"

static double clock_s(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Set s, backend i: 10.0.0.0 + s * n + i, port 8080 (up to 2^24 backends in
 * all); sorted by i. */
static void make_set(struct maglev_backend *b, uint32_t s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		memset(&b[i], 0, sizeof(b[i]));
		b[i].addr[2] = htonl(0xffff);
		b[i].addr[3] = htonl(0x0a000000 + s * n + i);
		b[i].port = htons(8080);
	}
}

static int run(uint32_t sets, uint32_t n, int rounds)
{
	uint32_t size = maglev_table_size(n);
	struct maglev_backend *b = calloc(n, sizeof(*b));
	uint16_t *t = malloc((size_t)size * sizeof(*t));
	double best = 1e9, best_cpu = 1e9;
	unsigned long check = 0;

	if (!size || !b || !t || (uint64_t)sets * n > (1u << 24) || rounds < 1) {
		fprintf(stderr, "maglev_build: %u x %u: bad size or out of memory\n", sets, n);
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), d, c;

		for (uint32_t s = 0; s < sets; s++) {
			make_set(b, s, n);
			if (maglev_build(b, n, size, t) < 0) {
				fprintf(stderr, "maglev_build: build failed\n");
				return 1;
			}
			check += t[s % size];
		}
		d = clock_s(CLOCK_MONOTONIC) - t0;
		c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		best = d < best ? d : best;
		best_cpu = c < best_cpu ? c : best_cpu;
	}
	printf("sets=%u backends=%u size=%u best_ms=%.1f best_cpu_ms=%.1f ns_per_entry=%.2f "
	       "table_kib=%.1f tables_mib=%.1f check=%lu\n", sets, n, size, best * 1e3,
	       best_cpu * 1e3, best_cpu * 1e9 / ((double)sets * size), size * 2 / 1024.0,
	       (double)sets * size * 2 / (1024.0 * 1024.0), check % 1000);
	free(t);
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	static const uint32_t cases[][2] = { { 10000, 10 }, { 1000, 10 }, { 1000, 100 }, { 100, 1000 } };
	int rc = 0;

	if (argc >= 3)
		return run((uint32_t)strtoul(argv[1], NULL, 10), (uint32_t)strtoul(argv[2], NULL, 10),
			   argc > 3 ? atoi(argv[3]) : 5);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		rc |= run(cases[i][0], cases[i][1], 5);
	return rc;
}
