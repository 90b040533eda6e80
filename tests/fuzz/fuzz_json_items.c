/* The incremental split of JSON lists (common/json_items.c), against cJSON:
 * fed in chunks of any size, it must hand over each item as the exact bytes
 * of the document at json_items_offset, and for a document cJSON reads as
 * strict JSON, the same items as cJSON's and an envelope equal to the
 * document with its items emptied. Object items may be taken straight from
 * the bytes fed instead (json_items_feed_take, parsed by common/json_tree.h
 * as a prefix, as the file source does): then the same holds of them. Then
 * reset, the same document in one piece, collected, must split the same
 * way.
 *
 * Input: byte 0 seeds the chunk sizes (and, over 0x7f, small limits that
 * the items and the envelope can exceed; odd, items taken), the rest is the
 * document. */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/json_items.h"
#include "common/json_tree.h"

struct split {
	struct json_items ji;
	const char *doc;
	size_t doc_len;
	const cJSON *want;        /* the next item cJSON read, NULL when not checked */
	bool check;
	size_t items;
	bool take;
	struct json_tree tree;
};

static int on_item(char *item, size_t len, void *ctx)
{
	struct split *s = ctx;
	size_t at = json_items_offset(&s->ji);
	cJSON *got;

	if (item[len] != '\0' || at > s->doc_len || len > s->doc_len - at ||
	    memcmp(s->doc + at, item, len) != 0)
		abort();
	s->items++;
	if (!s->check)
		return 0;
	got = cJSON_ParseWithLength(item, len);
	if (!s->want || !got || !cJSON_Compare(got, s->want, true))
		abort();
	s->want = s->want->next;
	cJSON_Delete(got);
	return 0;
}

/* An object item parsed from the bytes fed: taken when it ends in them and
 * parses (else it is collected, and on_item sees it). */
static int on_take(const char *data, size_t avail, size_t *len, void *ctx)
{
	struct split *s = ctx;
	size_t at = json_items_offset(&s->ji);
	const cJSON *got;

	if (json_tree_parse(&s->tree, data, avail, true, &got, len) != JSON_TREE_OK) {
		*len = 0;
		return 0;
	}
	if (*len > avail || at > s->doc_len || *len > s->doc_len - at ||
	    memcmp(s->doc + at, data, *len) != 0)
		abort();
	s->items++;
	if (json_items_count(&s->ji) != s->items)
		abort();
	if (!s->check)
		return 0;
	if (!s->want || !cJSON_Compare(got, s->want, true))
		abort();
	s->want = s->want->next;
	return 0;
}

/* Strict enough for the comparison: no control byte cJSON would take as
 * whitespace, no BOM, and no \u escape that could spell "items". */
static bool plain_json(const char *doc, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)doc[i] < 0x20 && doc[i] != ' ' && doc[i] != '\t' &&
		    doc[i] != '\n' && doc[i] != '\r')
			return false;
	return !(len >= 3 && memcmp(doc, "\xef\xbb\xbf", 3) == 0) && !memmem(doc, len, "\\u", 2);
}

/* cJSON's reading of the document: the items (*items, may be NULL) and the
 * envelope it must give. NULL when cJSON does not read it as a list whose
 * split is defined (one "items" key at most). */
static cJSON *expect(const char *doc, size_t len, const cJSON **items)
{
	char *copy = malloc(len + 1);
	cJSON *root, *child;
	int n_items = 0;

	if (!copy)
		abort();
	memcpy(copy, doc, len);
	copy[len] = '\0';
	root = plain_json(doc, len) ? cJSON_ParseWithLengthOpts(copy, len + 1, NULL, true) : NULL;
	free(copy);
	*items = NULL;
	if (cJSON_IsArray(root)) {
		*items = root->child;
		root->child = NULL; /* what is left is the envelope: [] */
		return root;
	}
	cJSON_ArrayForEach(child, root)
		n_items += child->string && strcmp(child->string, "items") == 0;
	if (!cJSON_IsObject(root) || n_items > 1) {
		cJSON_Delete(root);
		return NULL;
	}
	child = cJSON_GetObjectItemCaseSensitive(root, "items");
	if (cJSON_IsArray(child)) {
		*items = child->child;
		child->child = NULL;
	}
	return root;
}

/* Feeds the document in chunks; returns the first non-zero result. */
static int feed(struct split *s, unsigned seed)
{
	size_t off = 0;
	int rc = 0;

	while (off < s->doc_len && rc == 0) {
		size_t chunk = seed ? seed % 97 + 1 : s->doc_len;

		seed = seed * 1103515245u + 12345u;
		if (chunk > s->doc_len - off)
			chunk = s->doc_len - off;
		rc = json_items_feed_take(&s->ji, s->doc + off, chunk, s->take ? on_take : NULL,
					  on_item, s);
		off += chunk;
	}
	return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct split s = { 0 };
	const cJSON *items;
	cJSON *want_env, *env;
	const char *text;
	size_t limit, n, len;
	int rc, rc2;

	if (size < 1)
		return 0;
	limit = data[0] & 0x80 ? 64 + data[0] : 1 << 20;
	s.doc = (const char *)data + 1;
	s.doc_len = size - 1;
	json_items_init(&s.ji, limit, limit);
	want_env = expect(s.doc, s.doc_len, &items);
	s.check = want_env != NULL;
	s.want = items;
	s.take = data[0] & 1;
	rc = feed(&s, data[0] | 1u);
	text = json_items_envelope(&s.ji, &len);
	if (s.check && rc != -2) {
		/* cJSON read it: every item came out, the envelope is the rest. */
		if (rc != 0 || s.want || !text || strlen(text) != len)
			abort();
		env = cJSON_Parse(text);
		if (!env || !cJSON_Compare(env, want_env, true))
			abort();
		cJSON_Delete(env);
	}
	if (rc == 0 && text && json_items_count(&s.ji) != s.items)
		abort();
	/* Reset: the same document in one piece splits the same way. */
	n = s.items;
	json_items_reset(&s.ji);
	s.items = 0;
	s.want = items;
	s.check = s.check && rc == 0;
	s.take = false;
	rc2 = feed(&s, 0);
	if (rc2 != rc && (rc2 == 0 || rc == 0 || rc == -1 || rc2 == -1))
		abort();
	if (rc == 0 && rc2 == 0 && s.items != n)
		abort();
	json_items_free(&s.ji);
	json_tree_free(&s.tree);
	/* items are want_env's former children: free them with it. */
	if (want_env && items) {
		cJSON *list = cJSON_IsArray(want_env) ? want_env
						      : cJSON_GetObjectItemCaseSensitive(want_env, "items");
		list->child = (cJSON *)items;
	}
	cJSON_Delete(want_env);
	return 0;
}
