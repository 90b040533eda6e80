/* The parser of list items (common/json_tree.c), against cJSON: on any
 * text, it must accept exactly what cJSON_ParseWithLengthOpts accepts
 * (NUL-terminated) and build the same tree, node for node: types, keys,
 * strings (with their NULs from \u0000), numbers to the bit, valueint, and
 * cJSON's links (the first child's prev is the last), leaving the text as
 * it was. The same tree parses a second time from its blocks, which are
 * kept. As a prefix (the way list items are taken from the bytes of a
 * chunk), a value cJSON reads whole gives the same tree and its length,
 * whatever follows it, and any cut before its end asks for more bytes
 * (PARTIAL), never a tree or an error.
 *
 * Input: the text. */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/json_tree.h"

static bool same_string(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void same_tree(const cJSON *want, const cJSON *got)
{
	for (; want || got; want = want->next, got = got->next) {
		if (!want || !got || (want->type & 0xff) != (got->type & 0xff) ||
		    !same_string(want->string, got->string) ||
		    !same_string(want->valuestring, got->valuestring) ||
		    memcmp(&want->valuedouble, &got->valuedouble, sizeof(double)) != 0 ||
		    want->valueint != got->valueint || !want->child != !got->child)
			abort();
		if (got->child && (got->child->prev == NULL || got->child->prev->next))
			abort();
		same_tree(want->child, got->child);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* The text cut at k, before the value's end: more bytes are needed. */
static void check_cut(struct json_tree *tree, const uint8_t *data, size_t k)
{
	const cJSON *got;
	size_t at;

	if (json_tree_parse(tree, (const char *)data, k, true, &got, &at) != JSON_TREE_PARTIAL)
		abort();
}

/* The value cJSON read, as a prefix of the text: its tree, its length
 * (only whitespace after it) and its cuts. A number at the end of the text
 * could go on: not taken whole, only cut. */
static void check_prefix(struct json_tree *tree, const uint8_t *data, size_t size,
			 const cJSON *want)
{
	const cJSON *got;
	size_t at = 0;

	if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		return; /* a BOM cut in two is not JSON */
	if (json_tree_parse(tree, (const char *)data, size, true, &got, &at) == JSON_TREE_OK) {
		same_tree(want, got);
		for (size_t i = at; i < size; i++)
			if (data[i] > ' ')
				abort();
	} else if (!cJSON_IsNumber(want)) {
		abort();
	} else {
		at = size;
	}
	if (at) {
		check_cut(tree, data, at - 1);
		check_cut(tree, data, at / 2);
		check_cut(tree, data, (size * 7919) % at);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct json_tree tree;
	char *copy = malloc(size + 1);
	const cJSON *got;
	cJSON *want;
	enum json_tree_result rc;
	size_t at = 0;

	if (!copy)
		abort();
	memcpy(copy, data, size);
	copy[size] = '\0';
	want = cJSON_ParseWithLengthOpts(copy, size + 1, NULL, true);
	rc = json_tree_parse(&tree, (const char *)data, size, false, &got, &at);
	if ((rc == JSON_TREE_OK) != !!want || (rc != JSON_TREE_OK && rc != JSON_TREE_INVALID) ||
	    at > size)
		abort();
	if (want) {
		same_tree(want, got);
		rc = json_tree_parse(&tree, (const char *)data, size, false, &got, &at);
		if (rc != JSON_TREE_OK)
			abort();
		same_tree(want, got);
		check_prefix(&tree, data, size, want);
	} else {
		/* any text as a prefix: a tree whose rest is blank is the whole */
		rc = json_tree_parse(&tree, (const char *)data, size, true, &got, &at);
		if (rc == JSON_TREE_OK && at > size)
			abort();
		while (rc == JSON_TREE_OK && at < size && data[at] <= ' ')
			at++;
		if (rc == JSON_TREE_OK && at == size)
			abort();
	}
	cJSON_Delete(want);
	free(copy);
	return 0;
}
