/* YAML to cJSON, as Kubernetes reads manifests: every document of a
 * multi-document stream, block and flow style, scalars typed like the core
 * schema (plain integers -> numbers, true/false -> bools, null/~/empty ->
 * null, anything else or quoted -> strings). Anchors and aliases are refused. */
#ifndef FERRY_YAML_DOC_H
#define FERRY_YAML_DOC_H

#include <stddef.h>

struct cJSON;

/* A cJSON array with one item per document (null for an empty document), or
 * NULL with why = "document N, line L: problem". */
struct cJSON *yaml_doc_parse(const char *buf, size_t len, char *why, size_t why_len);

#endif
