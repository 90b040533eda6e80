/* Reading one file into its documents. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "source/file_priv.h"
#include "source/yaml_doc.h"

/* The whole file, NUL-terminated. NULL with errno set on failure. */
static char *file_docs_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	size_t n = 0, cap = 0;
	char *buf = NULL, *p;
	int err;

	if (!f)
		return NULL;
	do {
		if (n + 1 >= cap) {
			cap = cap ? cap * 2 : 65536;
			p = realloc(buf, cap);
			if (!p)
				goto fail;
			buf = p;
		}
		n += fread(buf + n, 1, cap - n - 1, f);
	} while (!feof(f) && !ferror(f));
	if (ferror(f))
		goto fail;
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	err = errno ? errno : EIO;
	fclose(f);
	free(buf);
	errno = err;
	return NULL;
}

static size_t file_docs_line(const char *buf, const char *at)
{
	size_t line = 1;

	for (; buf < at && *buf; buf++)
		line += *buf == '\n';
	return line;
}

static void file_docs_failed(int number, size_t line, const char *why, file_doc_fn *fn,
			     void *ctx)
{
	struct file_doc doc = { .number = number, .line = line, .why = why };

	fn(&doc, ctx);
}

/* One JSON value: an array is a list of documents, anything else one.
 * Returns false when buf is not JSON. */
static bool file_docs_json(const char *buf, file_doc_fn *fn, void *ctx, size_t *bad_line)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithOpts(buf, &end, 1), *item;
	struct file_doc doc = { .value = root };

	if (!root) {
		*bad_line = file_docs_line(buf, end ? end : buf);
		return false;
	}
	if (!cJSON_IsArray(root)) {
		doc.number = 1;
		fn(&doc, ctx);
	} else {
		cJSON_ArrayForEach(item, root) {
			doc = (struct file_doc){ .number = doc.number + 1, .value = item };
			fn(&doc, ctx);
		}
	}
	cJSON_Delete(root);
	return true;
}

/* Each document of the stream parsed on its own (see yaml_split_next). */
static void file_docs_yaml(const char *buf, size_t len, file_doc_fn *fn, void *ctx)
{
	struct yaml_piece piece = { 0 };
	struct yaml_doc_error err;
	struct file_doc doc = { 0 };
	cJSON *docs, *item;

	while (yaml_split_next(buf, len, &piece)) {
		docs = yaml_doc_parse(piece.text, piece.len, piece.line, &err);
		if (!docs) {
			doc.number += err.doc;
			file_docs_failed(doc.number, err.line, err.msg, fn, ctx);
			continue;
		}
		cJSON_ArrayForEach(item, docs) {
			doc = (struct file_doc){ .number = doc.number + 1, .value = item };
			fn(&doc, ctx);
		}
		cJSON_Delete(docs);
	}
}

int file_docs_read(const char *path, file_doc_fn *fn, void *ctx)
{
	bool json_name = file_name_has_suffix(path, ".json");
	size_t len, bad_line = 1;
	char *buf = file_docs_slurp(path, &len), *start;
	bool done;

	if (!buf)
		return -1;
	start = buf + strspn(buf, " \t\r\n");
	done = !*start; /* only blanks: no document */
	if (!done && (json_name || *start == '{' || *start == '['))
		done = file_docs_json(buf, fn, ctx, &bad_line);
	if (!done && json_name)
		file_docs_failed(1, bad_line, "invalid JSON", fn, ctx);
	else if (!done)
		file_docs_yaml(buf, len, fn, ctx);
	free(buf);
	return 0;
}
