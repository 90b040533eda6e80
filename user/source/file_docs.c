/* Reading one file into its documents, in chunks: JSON through json_items,
 * YAML through libyaml's event parser fed the file's pieces (yaml_split_line)
 * one after the other. A List's items are parsed and handed over one at a
 * time, never the whole file or its whole tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/json_items.h"
#include "common/json_tree.h"
#include "source/file_priv.h"
#include "source/yaml_doc.h"

#define DOCS_CHUNK 65536
/* A file is the administrator's: no limit on an item but the memory. */
#define DOCS_NO_LIMIT (SIZE_MAX / 4)

/* The file, read forward; buf[pos, len) not yet used. */
struct docs_reader {
	int fd;
	char *buf;
	size_t pos, len, cap;
	bool eof;
	int err;            /* errno of a failed read, 0 */
	/* YAML: the piece under way */
	size_t line;        /* the line at pos, from 1 */
	size_t line_left;   /* bytes of that line the piece takes, not yet handed */
	bool cut_after;     /* the piece ends after that line */
	bool content;       /* yaml_split_line's */
	bool piece_end;
};

/* Keeps buf[pos, len) and reads more after it. Returns -1 on error. */
static int docs_fill(struct docs_reader *r)
{
	ssize_t n;

	if (r->pos) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	if (r->len == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : DOCS_CHUNK;
		char *p = realloc(r->buf, cap);

		if (!p)
			return -1;
		r->buf = p;
		r->cap = cap;
	}
	do
		n = read(r->fd, r->buf + r->len, r->cap - r->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	r->eof = n == 0;
	r->len += (size_t)n;
	return 0;
}

/* Back to the start of the file. */
static int docs_rewind(struct docs_reader *r)
{
	r->pos = r->len = 0;
	r->eof = false;
	r->line = 1;
	return lseek(r->fd, 0, SEEK_SET) < 0 ? -1 : 0;
}

/* The line of the file that byte `at` is on (re-read: only for errors). */
static size_t docs_line_at(struct docs_reader *r, size_t at)
{
	size_t line = 1, done = 0;

	if (docs_rewind(r) < 0)
		return 1;
	while (done < at && docs_fill(r) == 0 && r->len) {
		size_t n = r->len < at - done ? r->len : at - done;

		for (const char *p = r->buf; (p = memchr(p, '\n', n - (size_t)(p - r->buf))); p++)
			line++;
		done += n;
		r->pos = r->len;
	}
	return line;
}

static void docs_failed(int number, size_t line, const char *why, file_doc_fn *fn, void *ctx)
{
	struct file_doc doc = { .what = FILE_DOC_END, .number = number, .line = line, .why = why };

	fn(&doc, ctx);
}

/* --- JSON ----------------------------------------------------------------- */

struct docs_json {
	struct json_items ji;
	struct json_tree tree;  /* each item's, parsed in place */
	bool top_array;     /* its elements are documents, else items of one */
	int number;         /* documents handed over */
	size_t fed;         /* bytes fed */
	bool bad;
	size_t bad_at;      /* where it does not parse */
	file_doc_fn *fn;
	file_known_fn *known;
	void *ctx;
};

#define HASH_K1 0xff51afd7ed558ccdULL
#define HASH_K2 0xc4ceb9fe1a85ec53ULL

uint64_t file_hash(const char *p, size_t len)
{
	return file_hash_more(0x9e3779b97f4a7c15ULL, p, len);
}

static uint64_t hash_word(uint64_t h, uint64_t w)
{
	h ^= w * HASH_K1;
	return ((h << 31) | (h >> 33)) * HASH_K2;
}

uint64_t file_hash_more(uint64_t h, const void *data, size_t len)
{
	const char *p = data;
	uint64_t w, lane[4];
	size_t i = 0;

	h ^= len;
	/* 32 bytes a round in four lanes: one lane's multiplies do not wait
	 * for another's (the hash runs over every byte of a file) */
	if (len >= 32) {
		for (int l = 0; l < 4; l++)
			lane[l] = h + (uint64_t)l * HASH_K2;
		for (; i + 32 <= len; i += 32)
			for (int l = 0; l < 4; l++) {
				memcpy(&w, p + i + 8 * l, 8);
				lane[l] = hash_word(lane[l], w);
			}
		for (int l = 0; l < 4; l++)
			h = hash_word(h, lane[l]);
	}
	for (; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = hash_word(h, w);
	}
	w = 0;
	memcpy(&w, p + i, len - i);
	h ^= w * HASH_K1;
	/* murmur3's finalizer */
	h ^= h >> 33;
	h *= HASH_K1;
	h ^= h >> 33;
	h *= HASH_K2;
	return h ^ (h >> 33);
}

/* Whether the consumer has the List item of these bytes from before: then
 * it is not handed over (nor parsed, when its end is known without). */
static bool docs_json_known(struct docs_json *j, const char *item, size_t len,
			    struct file_doc *doc)
{
	if (!j->known || j->top_array)
		return false;
	doc->hash = file_hash(item, len);
	doc->len = len;
	return j->known(doc->hash, len, j->ctx);
}

static void docs_json_give(struct docs_json *j, struct file_doc *doc, const cJSON *v)
{
	doc->value = v;
	if (j->top_array)
		*doc = (struct file_doc){ .what = FILE_DOC_END, .number = ++j->number, .value = v };
	j->fn(doc, j->ctx);
}

/* An item that does not parse (at: where, from its first byte) stops the
 * read: 1, or -1 when out of memory. */
static int docs_json_failed(struct docs_json *j, enum json_tree_result r, size_t at)
{
	if (r == JSON_TREE_NOMEM)
		return -1;
	j->bad = true;
	j->bad_at = json_items_offset(&j->ji) + at;
	return 1;
}

/* An item collected by json_items (it spans chunks, or is not an object). */
static int docs_json_item(char *item, size_t len, void *ctx)
{
	struct docs_json *j = ctx;
	struct file_doc doc = { .what = FILE_DOC_ITEM, .number = 1,
				.item = json_items_count(&j->ji) };
	enum json_tree_result r;
	const cJSON *v;
	size_t at;

	if (docs_json_known(j, item, len, &doc))
		return 0;
	r = json_tree_parse(&j->tree, item, len, false, &v, &at);
	if (r != JSON_TREE_OK)
		return docs_json_failed(j, r, at);
	docs_json_give(j, &doc, v);
	return 0;
}

/* An object item parsed straight from the chunk read, when it ends within
 * it (most do): its end is known from the parse, and the hash of its bytes
 * comes after. */
static int docs_json_take(const char *data, size_t avail, size_t *len, void *ctx)
{
	struct docs_json *j = ctx;
	struct file_doc doc = { .what = FILE_DOC_ITEM, .number = 1,
				.item = json_items_count(&j->ji) };
	enum json_tree_result r = json_tree_parse(&j->tree, data, avail, true, &doc.value, len);

	if (r == JSON_TREE_PARTIAL || r != JSON_TREE_OK) {
		size_t at = *len;

		*len = 0;
		return r == JSON_TREE_PARTIAL ? 0 : docs_json_failed(j, r, at);
	}
	if (!docs_json_known(j, data, *len, &doc))
		docs_json_give(j, &doc, doc.value);
	return 0;
}

/* The document around the items: an object's envelope. An error in it is
 * placed exactly when no item was cut out of it, else at its start. */
static void docs_json_envelope(struct docs_json *j, size_t start)
{
	size_t len;
	const char *env = json_items_envelope(&j->ji, &len), *end = NULL;
	cJSON *v;

	if (!env) { /* the value does not close */
		j->bad = true;
		j->bad_at = j->fed;
		return;
	}
	if (j->top_array)
		return;
	v = cJSON_ParseWithLengthOpts(env, len + 1, &end, 1);
	if (!v) {
		j->bad = true;
		j->bad_at = start + (end && !json_items_count(&j->ji) ? (size_t)(end - env) : 0);
		return;
	}
	j->fn(&(struct file_doc){ .what = FILE_DOC_END, .number = 1, .value = v }, j->ctx);
	cJSON_Delete(v);
}

/* A *.json file that is not an object or an array: one scalar document,
 * read whole. */
static int docs_json_scalar(struct docs_reader *r, size_t start, struct docs_json *j)
{
	const char *end = NULL;
	cJSON *v;

	while (!r->eof || r->len == r->cap)
		if (docs_fill(r) < 0)
			return -1;
	r->buf[r->len] = '\0';
	v = cJSON_ParseWithLengthOpts(r->buf + start, r->len - start + 1, &end, 1);
	if (!v) {
		j->bad = true;
		j->bad_at = end ? (size_t)(end - r->buf) : start;
		return 0;
	}
	j->fn(&(struct file_doc){ .what = FILE_DOC_END, .number = 1, .value = v }, j->ctx);
	cJSON_Delete(v);
	return 0;
}

static void docs_json_free(struct docs_json *j)
{
	json_items_free(&j->ji);
	json_tree_free(&j->tree);
}

/* The file as JSON from its first byte; start is its first non-blank one.
 * Returns -1 on a read error, else 0 (j->bad when it is not JSON). */
static int docs_json(struct docs_reader *r, size_t start, struct docs_json *j)
{
	int rc = 0;

	j->top_array = r->buf[start] == '[';
	json_items_init(&j->ji, DOCS_NO_LIMIT, DOCS_NO_LIMIT);
	for (;;) {
		rc = json_items_feed_take(&j->ji, r->buf + r->pos, r->len - r->pos, docs_json_take,
					  docs_json_item, j);
		j->fed += r->len - r->pos;
		r->pos = r->len;
		if (rc || r->eof)
			break;
		if (docs_fill(r) < 0) {
			docs_json_free(j);
			return -1;
		}
	}
	if (rc == -1) {
		docs_json_free(j);
		errno = ENOMEM;
		return -1;
	}
	if (rc && !j->bad) { /* the scanner's: -2 or -3 */
		j->bad = true;
		j->bad_at = json_items_offset(&j->ji);
	}
	if (!rc)
		docs_json_envelope(j, start);
	docs_json_free(j);
	return 0;
}

/* --- YAML ----------------------------------------------------------------- */

struct docs_yaml {
	int base;           /* documents of the pieces before */
	file_doc_fn *fn;
	void *ctx;
};

static void docs_yaml_item(const cJSON *item, int doc, size_t n, void *ctx)
{
	struct docs_yaml *y = ctx;

	y->fn(&(struct file_doc){ .what = FILE_DOC_ITEM, .number = y->base + doc, .item = n,
				  .value = item },
	      y->ctx);
}

static void docs_yaml_doc(const cJSON *value, int number, void *ctx)
{
	struct docs_yaml *y = ctx;

	y->fn(&(struct file_doc){ .what = FILE_DOC_END, .number = y->base + number, .value = value },
	      y->ctx);
}

/* Takes the line at pos into the piece, or ends the piece before it (or at
 * the end of the file): 1. Returns -1 on a read error. */
static int docs_yaml_line(struct docs_reader *r)
{
	size_t scanned = 0, end;
	char *eol;

	while (!(eol = memchr(r->buf + r->pos + scanned, '\n', r->len - r->pos - scanned)) &&
	       !r->eof) {
		scanned = r->len - r->pos;
		if (docs_fill(r) < 0)
			return -1;
	}
	end = eol ? (size_t)(eol + 1 - r->buf) : r->len;
	if (end == r->pos)
		return 1;
	switch (yaml_split_line(r->buf + r->pos, r->buf + end, &r->content)) {
	case YAML_SPLIT_BEFORE:
		return 1;
	case YAML_SPLIT_AFTER:
		r->cut_after = true;
		break;
	case YAML_SPLIT_IN:
		r->cut_after = false;
		break;
	}
	r->line_left = end - r->pos;
	return 0;
}

/* libyaml's read handler: the current piece's bytes, then its end. */
static int docs_yaml_read(void *data, unsigned char *out, size_t size, size_t *size_read)
{
	struct docs_reader *r = data;
	size_t n = 0, k;
	int rc;

	while (n < size && !r->piece_end) {
		if (!r->line_left) {
			rc = docs_yaml_line(r);
			if (rc < 0) {
				r->err = errno ? errno : EIO;
				return 0;
			}
			if (rc) {
				r->piece_end = true;
				break;
			}
		}
		k = r->line_left < size - n ? r->line_left : size - n;
		memcpy(out + n, r->buf + r->pos, k);
		r->pos += k;
		r->line_left -= k;
		n += k;
		if (!r->line_left) {
			r->line++;
			r->piece_end = r->cut_after;
		}
	}
	*size_read = n;
	return 1;
}

/* Each piece of the file parsed on its own: a broken document hides none of
 * the others. Returns -1 on a read error. */
static int docs_yaml(struct docs_reader *r, file_doc_fn *fn, void *ctx)
{
	struct docs_yaml y = { .fn = fn, .ctx = ctx };
	struct yaml_doc_sink sink = { .item = docs_yaml_item, .doc = docs_yaml_doc, .ctx = &y };
	struct yaml_doc_error err;
	unsigned char skip[4096];
	size_t n;
	int docs;

	for (;;) {
		if (r->pos == r->len && !r->eof && docs_fill(r) < 0)
			return -1;
		if (r->pos == r->len)
			return 0;
		r->content = r->piece_end = r->cut_after = false;
		r->line_left = 0;
		docs = yaml_doc_read(docs_yaml_read, r, r->line, &sink, &err);
		while (!r->piece_end && !r->err && docs_yaml_read(r, skip, sizeof(skip), &n))
			;
		if (r->err) {
			errno = r->err;
			return -1;
		}
		if (docs < 0) {
			docs_failed(y.base + err.doc, err.line, err.msg, fn, ctx);
			docs = err.doc;
		}
		y.base += docs;
	}
}

/* --- the file --------------------------------------------------------------- */

/* Fills until a byte that is not blank shows; its index, or len when the
 * file is blank. */
static int docs_first(struct docs_reader *r, size_t *at)
{
	size_t i = 0;

	/* A UTF-8 byte-order mark, as some editors write, is not content:
	 * consumed, the JSON after it streams like any other. */
	if (r->pos == 0 && r->len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0)
		i = r->pos = 3;

	for (;;) {
		while (i < r->len && (r->buf[i] == ' ' || r->buf[i] == '\t' || r->buf[i] == '\r' ||
				      r->buf[i] == '\n'))
			i++;
		if (i < r->len || r->eof)
			break;
		i -= r->pos; /* docs_fill drops the consumed bytes before them */
		if (docs_fill(r) < 0)
			return -1;
	}
	*at = i;
	return 0;
}

static int docs_read(struct docs_reader *r, bool json_name, file_doc_fn *fn,
		     file_known_fn *known, void *ctx)
{
	struct docs_json j = { .fn = fn, .known = known, .ctx = ctx };
	size_t start;
	int rc;

	if (docs_fill(r) < 0 || docs_first(r, &start) < 0)
		return -1;
	if (start == r->len) /* only blanks: no document */
		return 0;
	if (r->buf[start] == '{' || r->buf[start] == '[')
		rc = docs_json(r, start, &j);
	else if (json_name)
		rc = docs_json_scalar(r, start, &j);
	else
		return docs_yaml(r, fn, ctx);
	if (rc < 0)
		return -1;
	if (!j.bad)
		return 0;
	if (json_name) {
		docs_failed(j.number + 1, docs_line_at(r, j.bad_at), "invalid JSON", fn, ctx);
		return 0;
	}
	fn(&(struct file_doc){ .what = FILE_DOC_RESTART }, ctx);
	return docs_rewind(r) < 0 ? -1 : docs_yaml(r, fn, ctx);
}

int file_docs_read(const char *path, file_doc_fn *fn, void *ctx)
{
	return file_docs_read_known(path, fn, NULL, ctx);
}

int file_docs_read_known(const char *path, file_doc_fn *fn, file_known_fn *known, void *ctx)
{
	struct docs_reader r = { .line = 1 };
	int rc, err;

	r.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0)
		return -1;
	rc = docs_read(&r, file_name_has_suffix(path, ".json"), fn, known, ctx);
	err = errno;
	close(r.fd);
	free(r.buf);
	errno = err;
	return rc;
}
