/* The Service and EndpointSlice decoders on any JSON (an API object, or an
 * array of them), then the rules over what decoded: both take what an API
 * server or a file sends. */
#include "fuzz.h"

#include <cjson/cJSON.h>

#include "common/log.h"
#include "model/model.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_DEBUG); /* every message formatted */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct model_node node = { .name = "node-a", .zone = "zone-1" };
	cJSON *root = cJSON_ParseWithLength((const char *)data, size);
	struct model_objects objs = { 0 };
	struct desired_state st;
	const cJSON *item;
	char why[512];

	if (!root)
		return 0;
	if (cJSON_IsArray(root))
		cJSON_ArrayForEach(item, root)
			model_decode(item, &objs, why, sizeof(why));
	else
		model_decode(root, &objs, why, sizeof(why));
	/* A small cap, so that the truncation path runs too. */
	if (model_compute(&objs, 1, &node, 4, &st) == 0)
		desired_free(&st);
	model_objects_free(&objs);
	cJSON_Delete(root);
	return 0;
}
