/* Internals of the object store, shared by store.c and store_flush.c. */
#ifndef FERRY_MODEL_STORE_PRIV_H
#define FERRY_MODEL_STORE_PRIV_H

#include "common/hmap.h"
#include "model/store.h"

struct store_group;

/* An EndpointSlice, keyed by namespace and name. The slice itself is
 * allocated apart (owned) or is a source's (lent): a source that keeps its
 * objects (the file source) costs the store no copy of them. */
struct store_obj {
	struct hmap_node node;
	struct store_group *group;
	struct store_obj *next;        /* the slices of one group */
	struct model_slice *slice;
	bool seen;                     /* in the relist under way */
	bool lent;                     /* *slice is a source's (store_lend_slice) */
	char key[];                    /* namespace, '\0', name */
};

/* A Service's namespace/name: its Service, if any (owned or lent, as a
 * slice), and the slices that name it. ids are the IDs of the service ports
 * the last flush computed for it, n_ids NUL-terminated strings in a row,
 * each without the "namespace/name:" they all start with (store_flush.c). */
struct store_group {
	struct hmap_node node;
	struct model_service *svc;
	struct store_obj *slices;
	char *ids;
	struct store_group *next_dirty;
	uint32_t n_ids;
	bool dirty;
	bool svc_seen;                 /* the Service is in the relist under way */
	bool svc_lent;
	char key[];                    /* namespace, '\0', name */
};

struct model_store {
	struct hmap objs;              /* slices */
	struct hmap groups;            /* by the Service's namespace/name */
	struct store_group *dirty;
	size_t max_per_service;
	char *node_name;               /* owned; "" until store_set_node */
	char *zone;
	struct ferry_ip *node_addrs;   /* owned, sorted, each once */
	size_t n_node_addrs;
	bool node_addrs_fixed;         /* store_fix_node_addrs: the Node's are not used */
	uint64_t node_addrs_gen;
	uint16_t node_port_min, node_port_max;
	size_t count[2];               /* services, slices */
	int64_t trigger_floor;         /* slice trigger times kept only after it */
	int64_t *triggers;             /* kept since the last take (SLI) */
	size_t n_triggers, cap_triggers;
	const struct model_slice **vec; /* scratch: one group's slices */
	size_t cap_vec;
	char *scratch;                 /* scratch: a key */
	size_t cap_scratch;
};

/* store.c */
/* Touched: the next flush recomputes it. */
void group_mark(struct model_store *st, struct store_group *grp);
void group_mark_all(struct model_store *st);
/* The node as model_compute takes it (borrowing the store's). */
void store_model_node(const struct model_store *st, struct model_node *node);
void group_free(struct store_group *grp);
/* Frees what a group's Service or a slice object owns (nothing when lent). */
void group_clear_svc(struct store_group *grp);
void obj_clear(struct store_obj *obj);
/* A group that holds nothing and has nothing to flush goes away. */
void group_release(struct model_store *st, struct store_group *grp);

#endif
