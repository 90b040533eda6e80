/* cJSON trees parsed without an allocation per value, for list items (a
 * state has tens of thousands): the nodes come from blocks, and the
 * strings from one buffer, that the parser keeps for the next parse. A
 * text reads as cJSON_ParseWithLengthOpts reads it NUL-terminated (the same
 * leniencies: any byte up to a space is whitespace, a UTF-8 BOM first is
 * skipped, numbers through strtod, nesting up to CJSON_NESTING_LIMIT) and
 * gives the tree cJSON would build, so that cJSON's accessors and the
 * decoders read it unchanged. The tree is read-only: never to cJSON_Delete,
 * nor to a cJSON function that adds, replaces or frees. */
#ifndef FERRY_JSON_TREE_H
#define FERRY_JSON_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct json_tree_block;

/* Zero it to start. */
struct json_tree {
	struct json_tree_block *first;
	struct json_tree_block *cur;   /* the block nodes are taken from */
	size_t used;                   /* nodes taken in cur */
	char *chars;                   /* the strings of the tree */
	size_t chars_cap;
};

enum json_tree_result {
	JSON_TREE_OK,
	JSON_TREE_INVALID,   /* not JSON; *at: the byte the parse stopped at */
	JSON_TREE_PARTIAL,   /* prefix: the text ends before the value does */
	JSON_TREE_NOMEM,
};

/* Parses text[0, len) (left as it is): the whole of it as one value, or with
 * prefix, the value it starts with, whose length goes to *at. *tree lives
 * until the next parse or json_tree_free. */
enum json_tree_result json_tree_parse(struct json_tree *t, const char *text, size_t len,
				      bool prefix, const cJSON **tree, size_t *at);

/* The memory back to the system. */
void json_tree_free(struct json_tree *t);

#endif
