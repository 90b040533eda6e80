/* The file source's YAML reader: the cut of a stream into documents, then
 * each piece read two ways, whole (yaml_doc_parse) and streamed in chunks
 * of any size with its items handed over one by one (yaml_doc_read), which
 * must agree. The pieces must follow each other and cover the input.
 *
 * Input: byte 0 seeds the chunk sizes, the rest is the stream. */
#include "fuzz.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "source/yaml_doc.h"

/* The documents yaml_doc_read hands over, put back together. */
struct streamed {
	const char *buf;
	size_t len, off;
	unsigned seed;
	cJSON *docs;              /* as yaml_doc_parse gives them */
	cJSON *items;             /* of the document under way */
};

static int read_chunk(void *data, unsigned char *buf, size_t size, size_t *size_read)
{
	struct streamed *s = data;
	size_t n = s->seed % 61 + 1;

	s->seed = s->seed * 1103515245u + 12345u;
	if (n > size)
		n = size;
	if (n > s->len - s->off)
		n = s->len - s->off;
	memcpy(buf, s->buf + s->off, n);
	s->off += n;
	*size_read = n;
	return 1;
}

static void on_item(const cJSON *item, int doc, size_t n, void *ctx)
{
	struct streamed *s = ctx;
	cJSON *copy = cJSON_Duplicate(item, true);

	if (doc != cJSON_GetArraySize(s->docs) + 1 ||
	    n != (size_t)cJSON_GetArraySize(s->items) + 1 || !copy)
		abort();
	cJSON_AddItemToArray(s->items, copy);
}

static void on_doc(const cJSON *doc, int number, void *ctx)
{
	struct streamed *s = ctx;
	cJSON *copy = cJSON_Duplicate(doc, true);

	if (number != cJSON_GetArraySize(s->docs) + 1 || !copy)
		abort();
	if (cJSON_GetArraySize(s->items)) {
		if (!cJSON_ReplaceItemInObjectCaseSensitive(copy, "items", s->items))
			abort();
		s->items = cJSON_CreateArray();
	}
	cJSON_AddItemToArray(s->docs, copy);
}

/* One piece, both ways. */
static void read_both(const char *text, size_t len, size_t line, unsigned seed)
{
	struct streamed s = { .buf = text, .len = len, .seed = seed,
			      .docs = cJSON_CreateArray(), .items = cJSON_CreateArray() };
	const struct yaml_doc_sink sink = { .item = on_item, .doc = on_doc, .ctx = &s };
	struct yaml_doc_error err;
	cJSON *whole = yaml_doc_parse(text, len, line, &err);
	int n = yaml_doc_read(read_chunk, &s, line, &sink, &err);

	if (!s.docs || !s.items)
		abort();
	if (!whole != (n < 0) ||
	    (whole && (n != cJSON_GetArraySize(whole) || !cJSON_Compare(whole, s.docs, true))))
		abort();
	cJSON_Delete(whole);
	cJSON_Delete(s.docs);
	cJSON_Delete(s.items);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data + 1;
	struct yaml_piece piece = { 0 };
	struct yaml_doc_error err;
	size_t at = 0;

	if (size < 1)
		return 0;
	size--;
	while (yaml_split_next(buf, size, &piece)) {
		if (piece.text != buf + at || piece.len == 0 || piece.next != at + piece.len ||
		    piece.next > size || piece.line < 1 || piece.next_line < piece.line)
			abort();
		at = piece.next;
		read_both(piece.text, piece.len, piece.line, data[0]);
	}
	if (at != size)
		abort();
	cJSON_Delete(yaml_doc_parse(buf, size, 1, &err));
	return 0;
}
