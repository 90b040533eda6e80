/* Objects written as flow-style YAML, decoded as the file source does.
 * Include after cmocka.h. */
#ifndef FERRY_TEST_DECODE_YAML_H
#define FERRY_TEST_DECODE_YAML_H

#include <string.h>

#include <cjson/cJSON.h>

#include "model/model.h"
#include "source/yaml_doc.h"

/* Decodes every document of yaml, each expected to give `expect`; why keeps
 * the last reason. */
static void decode_yaml(struct model_objects *objs, const char *yaml, enum decode_result expect,
			char *why, size_t why_len)
{
	struct yaml_doc_error err;
	cJSON *docs = yaml_doc_parse(yaml, strlen(yaml), 1, &err), *doc;

	assert_non_null(docs);
	cJSON_ArrayForEach(doc, docs)
		assert_int_equal(model_decode(doc, objs, why, why_len), expect);
	cJSON_Delete(docs);
}

#endif
