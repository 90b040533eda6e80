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

/* What yaml_doc_read hands over, for each document of the stream in turn:
 * when its root is a mapping, the elements of its "items" sequence one by
 * one as they are read (n from 1), then the document with "items" emptied;
 * any other document whole (null when empty). Numbers count documents from
 * 1. The values are freed when the call returns. */
struct yaml_doc_sink {
	void (*item)(const struct cJSON *item, int doc, size_t n, void *ctx);
	void (*doc)(const struct cJSON *doc, int number, void *ctx);
	void *ctx;
};

/* libyaml's read handler: up to size bytes into buf, *size_read 0 at the
 * end; returns 0 on error. */
typedef int yaml_doc_read_fn(void *data, unsigned char *buf, size_t size, size_t *size_read);

/* Reads the stream from read, so that a stream of any size takes the
 * memory of its largest item. Returns the number of documents it had, or -1
 * with *err set (then every document before the failed one was handed over,
 * and maybe some of the failed one's items). */
int yaml_doc_read(yaml_doc_read_fn *read, void *data, size_t first_line,
		  const struct yaml_doc_sink *sink, struct yaml_doc_error *err);

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

/* The same cut one line at a time, for a stream read in chunks: what the
 * line [p, eol) (eol after its newline, if any; p < eol) does to the piece
 * under way, whose *content (a --- or content line seen) it updates. */
enum yaml_split {
	YAML_SPLIT_IN,     /* the line belongs to the piece */
	YAML_SPLIT_BEFORE, /* a new piece starts at the line */
	YAML_SPLIT_AFTER,  /* the piece ends after the line */
};
enum yaml_split yaml_split_line(const char *p, const char *eol, bool *content);

#endif
