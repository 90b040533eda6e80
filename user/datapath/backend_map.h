/* ferry_backends as the map of live backends the rest of userspace sees:
 * it is an array over the backend_id space (include/ferry/maps.h), and an
 * element whose svc_id is 0 holds none. Writes and single reads go through
 * bpf(2) like any map's; a deletion writes the element empty. A walk over
 * the live backends reads the array through a read-only mapping, a window
 * at a time: bpf(2) reads an array an element at a time (250 ms for a
 * million), and a mapping of the whole array would put all of its pages in
 * the reader's RSS. The sync engine reaches it through sync/mapio.c,
 * ferryctl directly. Each returns 0 or -errno. */
#ifndef FERRY_BACKEND_MAP_H
#define FERRY_BACKEND_MAP_H

#include <stdint.h>

#include "ferry/maps.h"

/* -ENOENT for an empty element, as a hash answers for a missing key. */
int backend_map_lookup(int fd, uint32_t id, struct backend_value *out);
/* -ENOENT when the element was already empty. */
int backend_map_delete(int fd, uint32_t id);
/* Live backends from *cursor on (0 to start): up to *count of them into
 * ids and values (either may be NULL), *count set to how many, *cursor to
 * where to go on. -ENOENT once the array is done, with its last ones. */
int backend_map_read(int fd, uint32_t *cursor, uint32_t *ids, struct backend_value *values,
		     uint32_t *count);
/* The live backend after *prev (prev NULL: the first); -ENOENT past the
 * last. One window per call: a walk of many wants backend_map_read. */
int backend_map_next_id(int fd, const uint32_t *prev, uint32_t *next);
/* How many live backends; -errno. */
long long backend_map_count(int fd);

#endif
