/* ferry_fast4's writer (include/ferry/maps.h says what the table is). It
 * follows ferry_services4: every write of an IPv4 frontend there is
 * followed here (datapath/svc_map.c), so the table is a function of that
 * map and nothing else writes it. It keeps a copy of what it wrote, for
 * the probes and for the old content each rewrite starts with. Its calls
 * may come from several threads. */
#ifndef FERRY_FAST_MAP_H
#define FERRY_FAST_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry/maps.h"

struct fast_map;

/* The writer of the table behind fd (a power of two entries). adopted: the
 * table is an earlier ferryd's, read back and written on from there; else
 * it is new, all free. NULL on error (logged). */
struct fast_map *fast_map_open(int fd, bool adopted);
void fast_map_free(struct fast_map *fm);

/* The n ferry_services4 entries just written at keys (entries: struct
 * svc_entry each, at any alignment; NULL: the n keys about to be deleted):
 * their fast entries follow. 0 or -errno (logged); on an error the entries
 * written may be left odd, which readers pass over. */
int fast_map_follow(struct fast_map *fm, const struct svc_key4 *keys, const void *entries,
		    uint32_t n);

/* An adopted table against ferry_services4 as it is (services4_fd): what
 * a ferryd stopped between the two maps' writes left is mended. */
int fast_map_rebuild(struct fast_map *fm, int services4_fd);

/* B34: entries someone else changed in the table. */
struct fast_repairs {
	uint32_t missing;  /* freed: written again */
	uint32_t altered;  /* holding another value: rewritten */
	uint32_t unknown;  /* written where the table has none: freed */
};

/* The table against what this writer wrote, brought back to it. Returns
 * the entries read, or -errno (logged). */
int64_t fast_map_check(struct fast_map *fm, struct fast_repairs *out);

struct fast_counts {
	uint32_t used;      /* frontends the table holds */
	uint64_t left_out;  /* writes that found no free entry within
			     * FERRY_FAST_PROBES of their home, since the start */
};

struct fast_counts fast_map_counts(struct fast_map *fm);

/* Entries in use in the table behind fd (ferryctl's count), or -errno. */
long long fast_map_count(int fd);

#endif
