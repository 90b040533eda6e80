/* The in-place parser of list items (common/json_tree.c), against cJSON: on
 * any text, it must accept exactly what cJSON_ParseWithLengthOpts accepts
 * (NUL-terminated) and build the same tree, node for node: types, keys,
 * strings (with their NULs from \u0000), numbers to the bit, valueint, and
 * cJSON's links (the first child's prev is the last). The same tree
 * parses a second time from its blocks, which are kept.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct json_tree tree;
	char *a = malloc(size + 1), *b = malloc(size + 1);
	const cJSON *got;
	cJSON *want;
	size_t at = 0;

	if (!a || !b)
		abort();
	memcpy(a, data, size);
	memcpy(b, data, size);
	a[size] = b[size] = '\0';
	want = cJSON_ParseWithLengthOpts(a, size + 1, NULL, true);
	got = json_tree_parse(&tree, b, size, &at);
	if (!want != !got || (!got && at > size))
		abort();
	if (got) {
		same_tree(want, got);
		memcpy(b, data, size);
		same_tree(want, json_tree_parse(&tree, b, size, &at));
	}
	cJSON_Delete(want);
	free(a);
	free(b);
	return 0;
}
