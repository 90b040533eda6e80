#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/groups.h"

/* Finds the group of ns/name, with its key left in the scratch buffer.
 * Returns -1 when out of memory. */
static int groups_lookup(struct groups *g, const char *ns, const char *name,
			 struct group **grp, size_t *key_len)
{
	size_t ns_len = strlen(ns), len = ns_len + 1 + strlen(name);
	struct hmap_node *node;
	char *p;

	if (len + 1 > g->scratch_cap) {
		p = realloc(g->scratch, len + 1);
		if (!p)
			return -1;
		g->scratch = p;
		g->scratch_cap = len + 1;
	}
	memcpy(g->scratch, ns, ns_len + 1);
	memcpy(g->scratch + ns_len + 1, name, len - ns_len);
	node = hmap_get(&g->map, g->scratch, len);
	*grp = node ? hmap_entry(node, struct group, node) : NULL;
	*key_len = len;
	return 0;
}

static int groups_add_service(struct groups *g, const struct model_service *svc)
{
	struct group *grp;
	size_t len;

	if (groups_lookup(g, svc->ns, svc->name, &grp, &len) < 0)
		return -1;
	if (grp) {
		log_warn("model", "Service %s/%s is defined more than once: the last one is used",
			 svc->ns, svc->name);
		grp->svc = svc;
		return 0;
	}
	grp = calloc(1, sizeof(*grp) + len);
	if (!grp)
		return -1;
	grp->svc = svc;
	grp->key_len = len;
	memcpy(grp->key, g->scratch, len);
	hmap_put(&g->map, &grp->node, grp->key, len);
	return 0;
}

static int groups_add_slice(struct groups *g, const struct model_slice *slice)
{
	struct group *grp;
	size_t len;

	if (!slice->proxied || !slice->family)
		return 0;
	if (groups_lookup(g, slice->ns, slice->service_name, &grp, &len) < 0)
		return -1;
	if (grp) {
		g->links[g->n_links] = (struct group_link){ slice, grp->first_slice };
		grp->first_slice = ++g->n_links;
	}
	return 0;
}

int groups_build(struct groups *g, const struct model_objects *sets, size_t n_sets)
{
	size_t n_services = 0, n_slices = 0;

	memset(g, 0, sizeof(*g));
	for (size_t s = 0; s < n_sets; s++) {
		n_services += sets[s].n_services;
		n_slices += sets[s].n_slices;
	}
	g->links = malloc((n_slices + 1) * sizeof(*g->links));
	if (!g->links || hmap_init(&g->map, n_services) < 0)
		goto fail;
	for (size_t s = 0; s < n_sets; s++)
		for (size_t i = 0; i < sets[s].n_services; i++)
			if (groups_add_service(g, &sets[s].services[i]) < 0)
				goto fail;
	for (size_t s = 0; s < n_sets; s++)
		for (size_t i = 0; i < sets[s].n_slices; i++)
			if (groups_add_slice(g, &sets[s].slices[i]) < 0)
				goto fail;
	return 0;
fail:
	groups_free(g);
	return -1;
}

const struct model_slice *groups_slice(const struct groups *g, size_t *at)
{
	const struct group_link *link;

	if (!*at)
		return NULL;
	link = &g->links[*at - 1];
	*at = link->next;
	return link->slice;
}

void groups_free(struct groups *g)
{
	struct hmap_node *it, *next;

	for (it = g->map.buckets ? hmap_first(&g->map) : NULL; it; it = next) {
		next = hmap_next(&g->map, it);
		free(hmap_entry(it, struct group, node));
	}
	hmap_free(&g->map);
	free(g->links);
	free(g->scratch);
	memset(g, 0, sizeof(*g));
}
