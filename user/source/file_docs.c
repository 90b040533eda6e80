/* Reading one file into its documents. */
#include <errno.h>
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

/* One JSON value: an array is a list of documents, anything else one. */
static cJSON *file_docs_json(const char *buf, char *why, size_t why_len)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithOpts(buf, &end, 1), *docs;

	if (!root) {
		snprintf(why, why_len, "document 1, line %zu: invalid JSON",
			 file_docs_line(buf, end ? end : buf));
		return NULL;
	}
	if (cJSON_IsArray(root))
		return root;
	docs = cJSON_CreateArray();
	if (!docs) {
		cJSON_Delete(root);
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	cJSON_AddItemToArray(docs, root);
	return docs;
}

cJSON *file_docs_read(const char *path, char *why, size_t why_len)
{
	bool json_name = file_name_has_suffix(path, ".json");
	size_t len;
	char *buf = file_docs_slurp(path, &len), *start;
	cJSON *docs = NULL;

	why[0] = '\0';
	if (!buf)
		return NULL;
	start = buf + strspn(buf, " \t\r\n");
	if (!*start)
		docs = cJSON_CreateArray();
	else if (json_name || *start == '{' || *start == '[')
		docs = file_docs_json(buf, why, why_len);
	if (!docs && *start && !json_name)
		docs = yaml_doc_parse(buf, len, why, why_len);
	else if (!docs && !*start)
		snprintf(why, why_len, "out of memory");
	free(buf);
	errno = 0;
	return docs;
}
