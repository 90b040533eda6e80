/* Room in a fixed array handed out as runs of elements (Maglev tables in
 * ferry_maglev). A run given back stays out of reach until ext_settle: a
 * reader of the datapath that copied a service entry just before it moved
 * to a new run may still read the old one for a moment. */
#ifndef FERRY_SYNC_EXTENTS_H
#define FERRY_SYNC_EXTENTS_H

#include <stddef.h>
#include <stdint.h>

struct extent {
	uint32_t start;
	uint32_t len;
};

struct extents {
	uint32_t size;           /* elements in the array */
	uint32_t used;           /* elements handed out or settling */
	size_t n_free, cap_free;
	struct extent *free;     /* sorted by start, none adjacent */
	size_t n_settling, cap_settling;
	struct extent *settling; /* given back since the last ext_settle */
};

int ext_init(struct extents *x, uint32_t size);
void ext_free_all(struct extents *x);
/* The start of a free run of len elements (the first that fits), or -1. */
int64_t ext_alloc(struct extents *x, uint32_t len);
/* A run in use already (read back from the maps): 0, or -1 when it is not
 * free. */
int ext_claim(struct extents *x, uint32_t start, uint32_t len);
/* Give a run back; it becomes free at the next ext_settle. 0 or -1 (out of
 * memory: the run is lost until restart). */
int ext_put(struct extents *x, uint32_t start, uint32_t len);
/* The runs given back become free. */
void ext_settle(struct extents *x);

#endif
