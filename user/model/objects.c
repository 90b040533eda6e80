/* The decoded object lists: growing them and freeing what they own. */
#include <stdlib.h>
#include <string.h>

#include "common/intern.h"
#include "model/decode_priv.h"

static void objects_free_ports(struct model_port *ports, size_t n)
{
	for (size_t i = 0; i < n; i++)
		intern_put(ports[i].name);
	free(ports);
}

void objects_free_service(struct model_service *svc)
{
	intern_put(svc->ns);
	free(svc->name);
	objects_free_ports(svc->ports, svc->n_ports);
	if (svc->ext) {
		free(svc->ext->ips);
		free(svc->ext->ranges);
		free(svc->ext);
	}
	memset(svc, 0, sizeof(*svc));
}

/* A decoded Node owns what model_node otherwise borrows. */
void objects_free_node(struct model_node *node)
{
	intern_put(node->name);
	intern_put(node->zone);
	free((void *)node->addrs);
	memset(node, 0, sizeof(*node));
}

const char *model_endpoint_node(const struct model_endpoint *ep)
{
	return intern_at(ep->place);
}

const char *model_endpoint_zone(const struct model_endpoint *ep, size_t i)
{
	const char *p = model_endpoint_node(ep);

	p += strlen(p) + 1;

	while (i--)
		p += strlen(p) + 1;
	return p;
}

void objects_free_endpoint(struct model_endpoint *ep)
{
	intern_put(intern_at(ep->place));
	memset(ep, 0, sizeof(*ep));
}

void objects_free_slice(struct model_slice *slice)
{
	intern_put(slice->ns);
	free(slice->name); /* and service_name with it */
	objects_free_ports(slice->ports, slice->n_ports);
	for (size_t i = 0; i < slice->n_endpoints; i++)
		objects_free_endpoint(&slice->endpoints[i]);
	free(slice->endpoints);
	memset(slice, 0, sizeof(*slice));
}

/* Makes room for one more element of size elem in *arr. */
static int objects_grow(void **arr, size_t n, size_t *cap, size_t elem)
{
	size_t new_cap = *cap ? *cap * 2 : 64;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, new_cap * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = new_cap;
	return 0;
}

int objects_add_service(struct model_objects *objs, struct model_service *svc)
{
	if (objects_grow((void **)&objs->services, objs->n_services, &objs->cap_services,
			 sizeof(*svc)) < 0) {
		objects_free_service(svc);
		return -1;
	}
	objs->services[objs->n_services++] = *svc;
	return 0;
}

int objects_add_slice(struct model_objects *objs, struct model_slice *slice)
{
	if (objects_grow((void **)&objs->slices, objs->n_slices, &objs->cap_slices,
			 sizeof(*slice)) < 0) {
		objects_free_slice(slice);
		return -1;
	}
	objs->slices[objs->n_slices++] = *slice;
	return 0;
}

int objects_add_node(struct model_objects *objs, struct model_node *node)
{
	if (objects_grow((void **)&objs->nodes, objs->n_nodes, &objs->cap_nodes,
			 sizeof(*node)) < 0) {
		objects_free_node(node);
		return -1;
	}
	objs->nodes[objs->n_nodes++] = *node;
	return 0;
}

const struct model_node *model_objects_node(const struct model_objects *sets, size_t n_sets,
					    const char *name)
{
	const struct model_node *found = NULL;

	for (size_t s = 0; s < n_sets; s++)
		for (size_t i = 0; i < sets[s].n_nodes; i++)
			if (strcmp(sets[s].nodes[i].name, name) == 0)
				found = &sets[s].nodes[i];
	return found;
}

void model_objects_free(struct model_objects *objs)
{
	for (size_t i = 0; i < objs->n_services; i++)
		objects_free_service(&objs->services[i]);
	for (size_t i = 0; i < objs->n_slices; i++)
		objects_free_slice(&objs->slices[i]);
	for (size_t i = 0; i < objs->n_nodes; i++)
		objects_free_node(&objs->nodes[i]);
	free(objs->services);
	free(objs->slices);
	free(objs->nodes);
	memset(objs, 0, sizeof(*objs));
}
