/* cJSON trees parsed without an allocation per value, for list items (a
 * state has tens of thousands): the nodes come from blocks the parser keeps
 * for the next parse, and strings are unescaped in place in the text, which
 * the tree points into. A text reads as cJSON_ParseWithLengthOpts reads it
 * NUL-terminated (the same leniencies: any byte up to a space is
 * whitespace, a UTF-8 BOM first is skipped, numbers through strtod, nesting
 * up to CJSON_NESTING_LIMIT) and gives the tree cJSON would build, so that
 * cJSON's accessors and the decoders read it unchanged. The tree is
 * read-only: never to cJSON_Delete, nor to a cJSON function that adds,
 * replaces or frees. */
#ifndef FERRY_JSON_TREE_H
#define FERRY_JSON_TREE_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct json_tree_block;

/* Zero it to start. */
struct json_tree {
	struct json_tree_block *first;
	struct json_tree_block *cur;   /* the block nodes are taken from */
	size_t used;                   /* nodes taken in cur */
};

/* Parses text[0, len), which must be followed by a NUL, and changes it.
 * The tree lives until the next parse or json_tree_free, and points into
 * text. NULL when the text is not one JSON value (*error_at: the byte the
 * parse stopped at) or memory runs out (*error_at: len). */
const cJSON *json_tree_parse(struct json_tree *t, char *text, size_t len, size_t *error_at);

/* The blocks back to the system. */
void json_tree_free(struct json_tree *t);

#endif
