/* YAML to cJSON, as Kubernetes reads manifests: every document of a
 * multi-document stream, block and flow style, scalars typed like the core
 * schema (plain integers -> numbers, true/false -> bools, null/~/empty ->
 * null, anything else or quoted -> strings). Anchors and aliases are refused. */
#ifndef FERRY_YAML_DOC_H
#define FERRY_YAML_DOC_H

#include <stdbool.h>
#include <stddef.h>

struct cJSON;

/* Where and why a stream does not parse. */
struct yaml_doc_error {
	int doc;          /* 1-based, counted from the start of the stream */
	size_t line;      /* 1-based, counted from the stream's first_line */
	char msg[256];
};

/* A cJSON array with one item per document (null for an empty document), or
 * NULL with *err set. first_line is the line the stream starts at, for a
 * stream cut from a larger text (1 otherwise). */
struct cJSON *yaml_doc_parse(const char *buf, size_t len, size_t first_line,
			     struct yaml_doc_error *err);

/* A cursor over the pieces of a multi-document stream cut at its document
 * markers: zero it, then call yaml_split_next until it returns false. */
struct yaml_piece {
	const char *text; /* the current piece */
	size_t len;
	size_t line;      /* the line it starts at, 1-based */
	size_t next;      /* where the next one starts */
	size_t next_line;
};

/* The next piece of buf. A piece starts at a `---` line (`---` at column 0
 * followed by a space, a tab or the end of the line) and ends before the
 * next one or after a `...` line, so each piece holds at most one document
 * and parses on its own: one broken document does not hide the others.
 * Comments and directives before a `---` line stay with the document it
 * starts. */
bool yaml_split_next(const char *buf, size_t len, struct yaml_piece *piece);

#endif
