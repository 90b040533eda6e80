#include "common/json_items.h"

#include <stdlib.h>
#include <string.h>

/* What the scan is in: before the value, the envelope, the items array
 * between two items, an item, after the value, or failed for good. */
enum { JI_START, JI_ENV, JI_BETWEEN, JI_ITEM, JI_DONE, JI_FAILED };
/* Where in the top-level object (depth 1) the envelope scan is. */
enum { OBJ_KEY, OBJ_INKEY, OBJ_COLON, OBJ_VALUE, OBJ_INVALUE };
/* In the items array, what came last: its '[', an item, a ','. */
enum { AFTER_OPEN, AFTER_ITEM, AFTER_COMMA };

#define JI_MAX_DEPTH 1024 /* bits in nest; cJSON itself stops at 1000 */

enum { C_PLAIN, C_WS, C_QUOTE, C_OPEN_OBJ, C_OPEN_ARR, C_CLOSE_OBJ, C_CLOSE_ARR, C_COMMA, C_COLON };

static const unsigned char cls[256] = {
	[' '] = C_WS,	       ['\t'] = C_WS,	     ['\n'] = C_WS,	 ['\r'] = C_WS,
	['"'] = C_QUOTE,       ['{'] = C_OPEN_OBJ,   ['['] = C_OPEN_ARR, ['}'] = C_CLOSE_OBJ,
	[']'] = C_CLOSE_ARR,   [','] = C_COMMA,	     [':'] = C_COLON,
};

/* The bytes that end a run inside a string. */
static const unsigned char str_stop[256] = { ['"'] = 1, ['\\'] = 1 };

void json_items_init(struct json_items *ji, size_t max_item, size_t max_envelope)
{
	memset(ji, 0, sizeof(*ji));
	ji->max_item = max_item;
	ji->max_envelope = max_envelope;
}

void json_items_reset(struct json_items *ji)
{
	struct json_items keep = *ji;

	json_items_init(ji, keep.max_item, keep.max_envelope);
	ji->item = keep.item;
	ji->item_cap = keep.item_cap;
	ji->envelope = keep.envelope;
	ji->env_cap = keep.env_cap;
}

void json_items_free(struct json_items *ji)
{
	free(ji->item);
	free(ji->envelope);
	json_items_init(ji, ji->max_item, ji->max_envelope);
}

/* Appends n bytes and keeps the buffer NUL-terminated. */
static int buf_append(char **buf, size_t *len, size_t *cap, size_t max, const char *s, size_t n)
{
	if (n > max - *len)
		return -2;
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;
		char *b;

		while (c < *len + n + 1)
			c *= 2;
		b = realloc(*buf, c);
		if (!b)
			return -1;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static int env_append(struct json_items *ji, const char *s, size_t n)
{
	return buf_append(&ji->envelope, &ji->env_len, &ji->env_cap, ji->max_envelope, s, n);
}

static int push(struct json_items *ji, bool array)
{
	unsigned long long bit = 1ULL << (ji->depth % 64);

	if (ji->depth >= JI_MAX_DEPTH)
		return -2;
	if (array)
		ji->nest[ji->depth / 64] |= bit;
	else
		ji->nest[ji->depth / 64] &= ~bit;
	ji->depth++;
	return 0;
}

/* A close must match the open it ends. */
static int pop(struct json_items *ji, bool array)
{
	int d = ji->depth - 1;

	if (d < 0 || !(ji->nest[d / 64] >> (d % 64) & 1) != !array)
		return -3;
	ji->depth = d;
	return 0;
}

/* Skips string bytes from p; clears in_string after the closing quote and
 * returns what follows it, or end. */
static inline const char *skip_string(struct json_items *ji, const char *p, const char *end)
{
	if (ji->escaped) {
		if (p == end)
			return p;
		p++;
		ji->escaped = false;
	}
	for (;;) {
		while (p < end && !str_stop[(unsigned char)*p])
			p++;
		if (p == end)
			return p;
		if (*p == '"') {
			ji->in_string = false;
			return p + 1;
		}
		if (p + 1 == end) { /* a backslash, its escaped byte in the next chunk */
			ji->escaped = true;
			return end;
		}
		p += 2;
	}
}

/* Whitespace, then the top-level value must open. */
static int scan_start(struct json_items *ji, const char **pp, const char *end)
{
	const char *p = *pp;
	int rc;

	while (p < end && cls[(unsigned char)*p] == C_WS)
		p++;
	*pp = p;
	if (p == end)
		return 0;
	if (*p != '{' && *p != '[')
		return -3;
	rc = push(ji, *p == '[');
	if (!rc)
		rc = env_append(ji, p, 1);
	if (rc)
		return rc;
	if (*p == '[') { /* a top-level array: its elements are the items */
		ji->item_depth = 1;
		ji->between = AFTER_OPEN;
		ji->state = JI_BETWEEN;
	} else {
		ji->obj = OBJ_KEY;
		ji->state = JI_ENV;
	}
	*pp = p + 1;
	return 0;
}

/* Collects the chars of a top-level key, as far as "items" needs; an
 * escape makes it something else. */
static void key_add(struct json_items *ji, const char *s, size_t n)
{
	if (memchr(s, '\\', n))
		ji->key_len = sizeof(ji->key);
	for (size_t i = 0; i < n && ji->key_len < sizeof(ji->key); i++)
		ji->key[ji->key_len++] = s[i];
}

static bool key_is_items(const struct json_items *ji)
{
	return ji->key_len == 5 && !memcmp(ji->key, "items", 5);
}

/* Byte by byte through the envelope (small), following the top-level
 * object's keys, until the "items" array opens or the object closes. */
static int scan_env(struct json_items *ji, const char **pp, const char *end)
{
	const char *p = *pp, *start = p;
	int rc = 0;

	while (p < end && ji->state == JI_ENV) {
		unsigned char c;

		if (ji->in_string) {
			const char *s = p;

			p = skip_string(ji, p, end);
			if (ji->depth == 1 && ji->obj == OBJ_INKEY) {
				key_add(ji, s, (size_t)(p - s) - !ji->in_string);
				if (!ji->in_string)
					ji->obj = OBJ_COLON;
			}
			continue;
		}
		c = (unsigned char)*p++;
		switch (cls[c]) {
		case C_WS:
			break;
		case C_QUOTE:
			ji->in_string = true;
			if (ji->depth == 1 && ji->obj == OBJ_KEY) {
				ji->obj = OBJ_INKEY;
				ji->key_len = 0;
			} else if (ji->depth == 1 && ji->obj == OBJ_VALUE) {
				ji->obj = OBJ_INVALUE;
			}
			break;
		case C_OPEN_OBJ:
		case C_OPEN_ARR:
			if (ji->depth == 1 && ji->obj == OBJ_VALUE && c == '[' && key_is_items(ji)) {
				ji->item_depth = 2;
				ji->between = AFTER_OPEN;
				ji->state = JI_BETWEEN;
			}
			if (ji->depth == 1)
				ji->obj = OBJ_INVALUE;
			rc = push(ji, c == '[');
			break;
		case C_CLOSE_OBJ:
		case C_CLOSE_ARR:
			rc = pop(ji, c == ']');
			if (!rc && ji->depth == 0)
				ji->state = JI_DONE;
			break;
		case C_COLON:
			if (ji->depth == 1 && ji->obj == OBJ_COLON)
				ji->obj = OBJ_VALUE;
			break;
		case C_COMMA:
			if (ji->depth == 1)
				ji->obj = OBJ_KEY;
			break;
		default:
			if (ji->depth == 1 && ji->obj == OBJ_VALUE)
				ji->obj = OBJ_INVALUE;
			break;
		}
		if (rc) {
			*pp = p - 1;
			return rc;
		}
	}
	*pp = p;
	return env_append(ji, start, (size_t)(p - start));
}

/* In the items array, between items: separators, the array's end, or the
 * first byte of the next item. */
static int scan_between(struct json_items *ji, const char **pp, const char *end)
{
	const char *p = *pp;
	int rc = -3;

	for (; p < end; p++) {
		switch (cls[(unsigned char)*p]) {
		case C_WS:
			continue;
		case C_COMMA:
			if (ji->between != AFTER_ITEM)
				goto fail;
			ji->between = AFTER_COMMA;
			continue;
		case C_CLOSE_ARR:
			if (ji->between == AFTER_COMMA)
				goto fail;
			rc = pop(ji, true);
			if (!rc)
				rc = env_append(ji, p, 1);
			if (rc)
				goto fail;
			ji->item_depth = 0;
			ji->state = ji->depth ? JI_ENV : JI_DONE;
			*pp = p + 1;
			return 0;
		case C_CLOSE_OBJ:
		case C_COLON:
			goto fail;
		default:
			if (ji->between == AFTER_ITEM)
				goto fail;
			ji->state = JI_ITEM;
			*pp = p;
			return 0;
		}
	}
	*pp = p;
	return 0;
fail:
	*pp = p;
	return rc;
}

static int item_append(struct json_items *ji, const char *s, size_t n)
{
	return buf_append(&ji->item, &ji->item_len, &ji->item_cap, ji->max_item, s, n);
}

static int item_done(struct json_items *ji, json_items_fn *fn, void *ctx)
{
	size_t len = ji->item_len;

	ji->item_len = 0;
	ji->items++;
	ji->state = JI_BETWEEN;
	ji->between = AFTER_ITEM;
	return fn(ji->item, len, ctx);
}

/* The hot loop: through one item to its end (the close that brings the
 * depth back to the array's, or, for a scalar, the byte after it), copied
 * in one piece per chunk. */
static int scan_item(struct json_items *ji, const char **pp, const char *end, json_items_fn *fn,
		     void *ctx)
{
	const char *p = *pp, *start = p;
	int rc;

	for (;;) {
		if (ji->in_string) {
			p = skip_string(ji, p, end);
			if (ji->in_string)
				break;
			if (ji->depth == ji->item_depth)
				goto item_end; /* a string item */
			continue;
		}
		while (p < end && cls[(unsigned char)*p] == C_PLAIN)
			p++;
		if (p == end)
			break;
		switch (cls[(unsigned char)*p]) {
		case C_QUOTE:
			ji->in_string = true;
			p++;
			break;
		case C_OPEN_OBJ:
		case C_OPEN_ARR:
			rc = push(ji, *p == '[');
			if (rc)
				goto fail;
			p++;
			break;
		case C_CLOSE_OBJ:
		case C_CLOSE_ARR:
			if (ji->depth == ji->item_depth)
				goto item_end; /* ends a scalar; the close is the array's */
			rc = pop(ji, *p == ']');
			if (rc)
				goto fail;
			p++;
			if (ji->depth == ji->item_depth)
				goto item_end;
			break;
		default: /* whitespace, ',' or ':' */
			if (ji->depth == ji->item_depth)
				goto item_end;
			p++;
			break;
		}
	}
	*pp = p;
	return item_append(ji, start, (size_t)(p - start));
item_end:
	*pp = p;
	rc = item_append(ji, start, (size_t)(p - start));
	return rc ? rc : item_done(ji, fn, ctx);
fail:
	*pp = p;
	return rc;
}

/* An object item offered to take, at its first byte. */
static int scan_take(struct json_items *ji, const char **pp, const char *end,
		     json_items_take_fn *take, void *ctx)
{
	size_t avail = (size_t)(end - *pp), len = 0;
	int rc;

	ji->items++;
	rc = take(*pp, avail < ji->max_item ? avail : ji->max_item, &len, ctx);
	if (rc || !len) {
		ji->items -= !rc;
		return rc;
	}
	*pp += len;
	ji->state = JI_BETWEEN;
	ji->between = AFTER_ITEM;
	return 0;
}

static int scan_done(const char **pp, const char *end)
{
	const char *p = *pp;

	while (p < end && cls[(unsigned char)*p] == C_WS)
		p++;
	*pp = p;
	return p == end ? 0 : -3;
}

int json_items_feed(struct json_items *ji, const char *data, size_t n, json_items_fn *fn,
		    void *ctx)
{
	return json_items_feed_take(ji, data, n, NULL, fn, ctx);
}

int json_items_feed_take(struct json_items *ji, const char *data, size_t n,
			 json_items_take_fn *take, json_items_fn *fn, void *ctx)
{
	const char *p = data, *end = data + n;
	bool from_fn = false;
	int rc = 0;

	if (ji->state == JI_FAILED)
		return -3;
	while (p < end && !rc) {
		switch (ji->state) {
		case JI_START:
			rc = scan_start(ji, &p, end);
			break;
		case JI_ENV:
			rc = scan_env(ji, &p, end);
			break;
		case JI_BETWEEN:
			rc = scan_between(ji, &p, end);
			if (!rc && ji->state == JI_ITEM)
				ji->at = ji->fed + (size_t)(p - data);
			break;
		case JI_ITEM:
			if (take && !ji->item_len && *p == '{') {
				rc = scan_take(ji, &p, end, take, ctx);
				from_fn = rc != 0;
				if (rc || ji->state != JI_ITEM)
					break;
			}
			rc = scan_item(ji, &p, end, fn, ctx);
			/* item_done changes the state before fn */
			from_fn = rc && ji->state == JI_BETWEEN;
			break;
		default:
			rc = scan_done(&p, end);
			break;
		}
	}
	if (rc) {
		if (!from_fn)
			ji->at = ji->fed + (size_t)(p - data);
		ji->state = JI_FAILED;
		return rc;
	}
	ji->fed += n;
	return 0;
}

const char *json_items_envelope(const struct json_items *ji, size_t *len)
{
	if (ji->state != JI_DONE)
		return NULL;
	if (len)
		*len = ji->env_len;
	return ji->envelope;
}

size_t json_items_offset(const struct json_items *ji)
{
	return ji->at;
}

size_t json_items_count(const struct json_items *ji)
{
	return ji->items;
}
