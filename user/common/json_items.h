/* Incremental split of a JSON list as its bytes arrive: each element of the
 * top-level object's "items" array (or of a top-level array) is handed over
 * as one complete JSON text, and the rest of the object, the envelope
 * (kind, metadata with resourceVersion and continue, ...), is kept with its
 * "items" emptied. A list of any size is then decoded with the memory of its
 * largest item, not of the whole response (API lists of 10,000 Services are
 * tens of MB, and cJSON trees several times that).
 *
 * The scanner checks only what it needs to split (strings, escapes, nesting
 * of {} and []); each item still goes through a real parser. */
#ifndef FERRY_JSON_ITEMS_H
#define FERRY_JSON_ITEMS_H

#include <stdbool.h>
#include <stddef.h>

/* One element, NUL-terminated (the NUL not counted in len), valid only
 * during the call; fn may modify it in place. Non-zero stops the feed. */
typedef int json_items_fn(char *item, size_t len, void *ctx);

struct json_items {
	size_t max_item;          /* a longer element is an error (-2) */
	size_t max_envelope;      /* likewise for the envelope */
	/* scanner state: private to json_items.c */
	int state;                /* JI_START, JI_ENV, JI_BETWEEN, JI_ITEM, JI_DONE, JI_FAILED */
	int obj;                  /* where in the top-level object the scan is (OBJ_*) */
	int depth;                /* nesting of {} and [] */
	int item_depth;           /* depth of the array whose elements are items, 0 = none */
	int between;              /* in that array: what may come next (AFTER_*) */
	bool in_string, escaped;
	char key[8];              /* the top-level key being read, when it may be "items" */
	size_t key_len;           /* over sizeof(key) - 1: not "items" */
	unsigned long long nest[16]; /* one bit per depth up to 1024: 1 for [ */
	char *item;               /* the element being collected */
	size_t item_len, item_cap;
	char *envelope;           /* the envelope collected so far */
	size_t env_len, env_cap;
	size_t items;             /* elements handed over */
	size_t fed;               /* bytes fed before the current feed */
	size_t at;                /* json_items_offset */
};

void json_items_init(struct json_items *ji, size_t max_item, size_t max_envelope);
/* Forget the document under way (keeps the limits and the buffers' memory). */
void json_items_reset(struct json_items *ji);
void json_items_free(struct json_items *ji);

/* Feed the next n bytes. Returns 0; what fn returned when it stopped the
 * feed; -1 when out of memory; -2 when an item or the envelope grows over its
 * limit; -3 when the bytes cannot be a JSON object or array (the scanner's
 * own checks: unbalanced brackets, bytes after the value, a top-level
 * scalar). After a non-zero return the document cannot be continued: reset. */
int json_items_feed(struct json_items *ji, const char *data, size_t n, json_items_fn *fn,
		    void *ctx);

/* The consumer's own parse of an object item straight from the bytes fed,
 * which skips the collecting: data[0, avail) starts with the item (avail at
 * most max_item). Sets *len to the item's length when it ends within them
 * (then the item is the consumer's, fn not called), or leaves it 0 when it
 * does not (the item is collected and handed to fn as usual). Non-zero
 * stops the feed, as fn's. During the call, json_items_count counts the
 * item and json_items_offset is its first byte, as during fn. */
typedef int json_items_take_fn(const char *data, size_t avail, size_t *len, void *ctx);

/* json_items_feed, offering each object item that starts in these bytes to
 * take first. */
int json_items_feed_take(struct json_items *ji, const char *data, size_t n,
			 json_items_take_fn *take, json_items_fn *fn, void *ctx);

/* After the last byte: the envelope, NUL-terminated, "items" emptied to []
 * ("[]" for a top-level array), or NULL when the value did not close
 * (truncated) or nothing came. Valid until the next reset or free. */
const char *json_items_envelope(const struct json_items *ji, size_t *len);

/* Where in the document (bytes fed since the last reset): during fn, the
 * item's first byte; after a -2 or -3 return, the byte the scan stopped at
 * (to name the line of an error). */
size_t json_items_offset(const struct json_items *ji);

/* Elements handed over since the last reset. */
size_t json_items_count(const struct json_items *ji);

#endif
