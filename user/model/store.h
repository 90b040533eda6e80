/* The object store of a watched source: the Services and EndpointSlices it
 * holds now, grouped by Service, and which groups changed since the last
 * flush. A watch event touches one object; a flush recomputes only the
 * groups it touched, so one changed endpoint costs the same at 10 or 100,000
 * Services (B35). */
#ifndef FERRY_MODEL_STORE_H
#define FERRY_MODEL_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"

enum store_kind {
	STORE_SERVICE = 'S',
	STORE_SLICE = 'E',
};

struct model_store;

/* What changed since the last flush: the service ports of every touched
 * Service, and the IDs of the service ports that are gone. */
struct desired_delta {
	struct desired_state set;
	size_t n_removed;
	char **removed;
};

struct model_store *store_new(size_t max_per_service);
/* A change recomputes every Service. */
void store_set_max_per_service(struct model_store *st, size_t max_per_service);
void store_free(struct model_store *st);
/* This node's name and zone (model_node; copied). A change touches every
 * Service, since locality (B13) and hints (B31) depend on them. 0, or -1
 * when out of memory (the old values stay). */
int store_set_node(struct model_store *st, const char *name, const char *zone);
/* The zone store_set_node was last given ("" = none). */
const char *store_node_zone(const struct model_store *st);
/* This node's addresses, as its Node's status.addresses says (InternalIP,
 * ExternalIP; model_decode of a Node gives them): copied, sorted, each once.
 * A change recomputes the Services with external frontends (an LB IP or
 * externalIP equal to a node address is left out). Ignored once
 * store_fix_node_addrs was called. 0, or -1 when out of memory (the old
 * ones stay). */
int store_set_node_addrs(struct model_store *st, const struct ferry_ip *addrs, size_t n);
/* ferryd's --node-ips: these are the node's addresses from now on, whatever
 * its Node says. 0, or -1 when out of memory. */
int store_fix_node_addrs(struct model_store *st, const struct ferry_ip *addrs, size_t n);
/* The node's addresses now, and a number that changes with them: compare
 * it with the one of the last look to know they changed. */
const struct ferry_ip *store_node_addrs(const struct model_store *st, size_t *n,
					uint64_t *generation);
/* ferryd's --node-port-range (default 30000-32767): a nodePort outside it
 * is not programmed (logged, counted). A change recomputes the Services
 * with external frontends. */
void store_set_node_port_range(struct model_store *st, uint16_t lo, uint16_t hi);

/* Take a decoded object, replacing the one of the same namespace/name. The
 * object's contents move into the store (*svc / *slice is zeroed), also on
 * failure (-1, out of memory: then the object is freed); its names are
 * then the store's keys (the decoder's copies are freed). */
int store_put_service(struct model_store *st, struct model_service *svc);
int store_put_slice(struct model_store *st, struct model_slice *slice);
/* The same, for a source that keeps its objects (the file source): the
 * store refers to *svc / *slice itself (no copy) and frees nothing of it;
 * it must stay where it is until the object is replaced, deleted or moved
 * (store_relend_*), or the store freed. 0, or -1 when out of memory
 * (nothing kept). */
int store_lend_service(struct model_store *st, const struct model_service *svc);
int store_lend_slice(struct model_store *st, const struct model_slice *slice);
/* The lent object of svc's / slice's identity moved there, unchanged: the
 * store follows it without counting a change (the old place is not read:
 * it may be gone). False, doing nothing, when the store holds no lent object
 * of that identity. */
bool store_relend_service(struct model_store *st, const struct model_service *svc);
bool store_relend_slice(struct model_store *st, const struct model_slice *slice);
/* The object the store holds under that namespace/name, NULL when none. */
const struct model_service *store_service(struct model_store *st, const char *ns,
					  const char *name);
const struct model_slice *store_slice(struct model_store *st, const char *ns, const char *name);
/* Forget an object. Returns true when it was there. */
bool store_delete(struct model_store *st, enum store_kind kind, const char *ns,
		  const char *name);

/* A relist replaces every object of a kind: begin, then put (or keep, for an
 * object that arrived invalid: its last good version stays), then end, which
 * deletes what the list no longer holds and returns how many. */
void store_relist_begin(struct model_store *st, enum store_kind kind);
void store_keep(struct model_store *st, enum store_kind kind, const char *ns, const char *name);
size_t store_relist_end(struct model_store *st, enum store_kind kind);

/* The network-programming SLI: a put slice whose last-change-trigger-time
 * (model_slice.trigger_ns) is later than the floor and than the time of the
 * version it replaces is kept, once per change (a relist that brings the
 * same slice again keeps nothing; deletes are not measured, as kube-proxy).
 * ferryd sets the floor to its start: kube-proxy skips changes older than
 * its own; until a floor is set nothing is kept. Take the times with the flush that applies them: a malloc'd
 * array, in put order, NULL when none (*n = 0). */
void store_set_trigger_floor(struct model_store *st, int64_t ns);
int64_t *store_take_triggers(struct model_store *st, size_t *n);

size_t store_count(const struct model_store *st, enum store_kind kind);
bool store_dirty(const struct model_store *st);

/* The delta of the touched Services; clears the touched set. 0, or -1 when
 * out of memory (then nothing is cleared: the next flush tries again). */
int store_flush(struct model_store *st, struct desired_delta *out);
/* Every Service: the full desired state, sorted; clears the touched set. */
int store_compute_all(struct model_store *st, struct desired_state *out);
void delta_free(struct desired_delta *delta);

/* model_compute's contract (model.h) through a store of the sets' objects,
 * lent: a Service replaces an earlier one of the same namespace/name (with
 * a warning), a slice likewise (the API cannot hold two). */
int store_compute_sets(const struct model_objects *sets, size_t n_sets,
		       const struct model_node *node, size_t max_per_service,
		       struct desired_state *out);

#endif
