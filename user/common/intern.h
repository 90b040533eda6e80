/* One shared copy of strings that repeat across many objects: an endpoint's
 * nodeName and hint zones name a few hundred nodes and zones, but stand in
 * hundreds of thousands of endpoints. One allocation per distinct string,
 * with a count of references. Not thread-safe: only the agent's loop
 * decodes and frees objects. */
#ifndef FERRY_INTERN_H
#define FERRY_INTERN_H

#include <stddef.h>
#include <stdint.h>

/* The shared copy of s, one reference more; NULL when out of memory. */
const char *intern_get(const char *s);
/* The same for len bytes that may hold NULs (a NUL is added after them). */
const char *intern_get_len(const char *s, size_t len);
/* One reference more to s, a shared copy (from intern_get): a decoder that
 * meets the string it just interned again takes it without a lookup. */
const char *intern_ref(const char *s);
/* Drops a reference taken by intern_get or intern_ref; NULL is ignored. */
void intern_put(const char *s);

/* A shared copy also has a number while it is referenced, never 0: 32
 * bits where a pointer takes 64, for what a large state holds a million
 * of (an endpoint's node). */
uint32_t intern_index(const char *s);
/* The shared copy numbered index; NULL for 0. */
const char *intern_at(uint32_t index);

#endif
