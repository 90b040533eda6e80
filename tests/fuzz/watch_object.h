/* The handler's side of a watch, for the targets that drive one: an object
 * is decoded as ferryd's source decodes it, so that what the watch hands
 * over reaches the decoders too. */
#ifndef FERRY_FUZZ_WATCH_OBJECT_H
#define FERRY_FUZZ_WATCH_OBJECT_H

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "kube/watch.h"
#include "model/model.h"

static inline void fuzz_watch_object(void *ctx, struct watch *w, enum kube_event ev, cJSON *obj)
{
	struct model_objects objs = { 0 };
	char why[512];

	(void)ctx;
	if (ev >= KUBE_EVENT__COUNT)
		abort();
	if (!cJSON_GetObjectItemCaseSensitive(obj, "kind"))
		cJSON_AddStringToObject(obj, "kind", w->kind);
	model_decode(obj, &objs, why, sizeof(why));
	model_objects_free(&objs);
}

#endif
