/* Sets of decoded objects computed in one go, through the store: the same
 * grouping (B6, B7) as the sources' stores, for callers that hold every
 * object at once (tests, tools). */
#include <string.h>

#include "common/log.h"
#include "model/store.h"

/* Every object of sets lent to st: a Service named again replaces the one
 * before (with a warning). */
static int sets_lend(struct model_store *st, const struct model_objects *sets, size_t n_sets)
{
	for (size_t s = 0; s < n_sets; s++) {
		for (size_t i = 0; i < sets[s].n_services; i++) {
			const struct model_service *svc = &sets[s].services[i];

			if (store_service(st, svc->ns, svc->name))
				log_warn("model", "Service %s/%s is defined more than once: the last "
					 "one is used", svc->ns, svc->name);
			if (store_lend_service(st, svc) < 0)
				return -1;
		}
		for (size_t i = 0; i < sets[s].n_slices; i++)
			if (store_lend_slice(st, &sets[s].slices[i]) < 0)
				return -1;
	}
	return 0;
}

static int sets_node(struct model_store *st, const struct model_node *node)
{
	if (!node)
		return 0;
	store_set_node_port_range(st, node->node_port_min, node->node_port_max);
	if (store_set_node(st, node->name ? node->name : "", node->zone ? node->zone : "") < 0 ||
	    store_fix_node_addrs(st, node->addrs, node->n_addrs) < 0)
		return -1;
	return 0;
}

int store_compute_sets(const struct model_objects *sets, size_t n_sets,
		       const struct model_node *node, size_t max_per_service,
		       struct desired_state *out)
{
	struct model_store *st = store_new(max_per_service);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (st && sets_node(st, node) == 0 && sets_lend(st, sets, n_sets) == 0)
		rc = store_compute_all(st, out);
	store_free(st);
	return rc;
}
