/* The Service and EndpointSlice decoders on any JSON (an API object, or an
 * array of them), then the rules over what decoded: both take what an API
 * server or a file sends. */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "model/model.h"

#define MAX_PER_SERVICE 4 /* small, so that the truncation path runs too */

/* What model.h promises of the desired state: service ports sorted by id,
 * each id once (sync keeps IDs per identity), each with at least one
 * frontend, all of one family and with a port; at most MAX_PER_SERVICE
 * backends, of the frontends' family, sorted by (addr, port) without
 * duplicates (B9). */
static void check_state(const struct desired_state *st)
{
	for (size_t i = 0; i < st->n_svcs; i++) {
		const struct desired_svc *svc = &st->svcs[i];
		bool v4 = svc->n_frontends && addr_is_v4(&svc->frontends[0].addr);

		if (!svc->id || (i && strcmp(st->svcs[i - 1].id, svc->id) >= 0) ||
		    !svc->n_frontends || svc->n_backends > MAX_PER_SERVICE)
			abort();
		for (size_t f = 0; f < svc->n_frontends; f++)
			if (addr_is_v4(&svc->frontends[f].addr) != v4 || !svc->frontends[f].port)
				abort();
		for (size_t b = 0; b < svc->n_backends; b++) {
			const struct desired_backend *be = &svc->backends[b];
			int c = b ? addr_compare(&svc->backends[b - 1].addr, &be->addr) : -1;

			if (addr_is_v4(&be->addr) != v4 || !be->port ||
			    c > 0 || (c == 0 && svc->backends[b - 1].port >= be->port))
				abort();
		}
	}
}

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
	if (model_compute(&objs, 1, &node, MAX_PER_SERVICE, &st) == 0) {
		check_state(&st);
		desired_free(&st);
	}
	model_objects_free(&objs);
	cJSON_Delete(root);
	return 0;
}
