/* Services and EndpointSlices grouped by (namespace, service name), so that
 * computing the desired state is linear in the number of objects. */
#ifndef FERRY_MODEL_GROUPS_H
#define FERRY_MODEL_GROUPS_H

#include "common/hmap.h"
#include "model/model.h"

struct group {
	struct hmap_node node;
	const struct model_service *svc; /* the last Service of that name */
	size_t first_slice;              /* index + 1 into links, 0 = none */
	size_t key_len;
	char key[];                      /* namespace '\0' name */
};

/* One slice of a group and the index + 1 of the next one (0 = none). */
struct group_link {
	const struct model_slice *slice;
	size_t next;
};

struct groups {
	struct hmap map;     /* of struct group, walk it with hmap_first/next */
	struct group_link *links; /* the slices that joined a group */
	size_t n_links;
	char *scratch;
	size_t scratch_cap;
};

/* Every Service of every set gets a group (a repeated one, in the same set
 * or a later one: the last wins, with a warning); proxied slices (B2) of a
 * known family (B6) join their Service's group. The sets must outlive *g.
 * Returns 0, or -1 when out of memory (*g freed). */
int groups_build(struct groups *g, const struct model_objects *sets, size_t n_sets);
/* The slice at index + 1 `*at` of a group, moving *at to the next one (start
 * with *at = grp->first_slice); NULL at the end. */
const struct model_slice *groups_slice(const struct groups *g, size_t *at);
void groups_free(struct groups *g);

#endif
