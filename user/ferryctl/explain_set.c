/* ferryctl explain, the backend set: what the entry that decides for a
 * client holds (service port, traffic policy, zone, fallback, backends),
 * the client's session affinity (B30), the algorithm, and the backend it
 * would pick where that is determined, as bpf/lib/select.h and
 * bpf/lib/affinity.h would. */
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "datapath/backend_map.h"
#include "datapath/svc_entry.h"
#include "ferry/hash.h"
#include "ferryctl/explain.h"

#define NSEC_PER_SEC 1000000000ULL
#define TEXT_BACKENDS 16 /* the text lists this many; JSON lists all */
/* A slot of the set was gone: ferryd published a new set meanwhile. */
#define SET_CHANGED "the set changed while explain read it: run it again"

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * NSEC_PER_SEC + (__u64)ts.tv_nsec;
}

static const char *state_name(__u8 state)
{
	return state == BACKEND_TERMINATING ? "terminating" : "active";
}

/* Slot i of the set that decides: inline in its entry, else ferry_slots. */
static int set_slot(const struct explain *ex, __u32 i, struct slot_value *out)
{
	struct slot_key k = { .svc_id = ex->e.v.svc_id, .rev = ex->e.v.rev, .slot = i };

	if (svc_entry_inline(ex->key.addr, ex->e.v.count)) {
		svc_entry_slot(&ex->e, ex->key.addr, i, out);
		return 0;
	}
	return bpf_map_lookup_elem(ex->maps->fd[DP_MAP_SLOTS], &k, out);
}

static cJSON *backend_json(__u32 id, const __u32 addr[4], __u16 port, const char *state)
{
	cJSON *o = cJSON_CreateObject();
	char text[ADDR_STR_LEN];
	struct ferry_ip ip;

	memcpy(ip.w, addr, sizeof(ip.w));
	cJSON_AddNumberToObject(o, "id", id);
	cJSON_AddStringToObject(o, "address", addr_format(&ip, text));
	cJSON_AddNumberToObject(o, "port", ntohs(port));
	if (state)
		cJSON_AddStringToObject(o, "state", state);
	return o;
}

static void explain_backends(struct explain *ex)
{
	cJSON *list = cJSON_CreateArray();
	char line[TEXT_BACKENDS * 56 + 64] = "", where[80];
	__u32 n = ex->e.v.count;

	for (__u32 i = 0; i < n; i++) {
		struct slot_value s;
		struct backend_value b;
		const char *state = NULL;
		size_t used = strlen(line);

		if (set_slot(ex, i, &s))
			continue;
		if (backend_map_lookup(ex->maps->fd[DP_MAP_BACKENDS], s.backend_id, &b) == 0)
			state = state_name(b.state);
		cJSON_AddItemToArray(list, backend_json(s.backend_id, s.addr, s.port, state));
		if (i < TEXT_BACKENDS)
			snprintf(line + used, sizeof(line) - used, "%s%s%s", i ? ", " : "",
				 explain_hostport(s.addr, s.port, where, sizeof(where)),
				 state && strcmp(state, "active") ? " (terminating)" : "");
	}
	cJSON_AddItemToObject(ex->json, "backends", list);
	cJSON_AddNumberToObject(ex->json, "revision", ex->e.v.rev);
	if (n > TEXT_BACKENDS)
		explain_say(ex, "backends", "%u (revision %u): %s, and %u more", n, ex->e.v.rev,
			    line, n - TEXT_BACKENDS);
	else
		explain_say(ex, "backends", "%u (revision %u): %s", n, ex->e.v.rev, line);
}

/* Topology hints (B31), and this node's zone as ferryd knows it. */
static void explain_zone(struct explain *ex)
{
	const char *zone = ex->node.node_zone;

	cJSON_AddBoolToObject(ex->json, "zone_hints", ex->e.v.flags & SVC_FLAG_ZONE_HINTS);
	if (zone[0])
		cJSON_AddStringToObject(ex->json, "node_zone", zone);
	else
		cJSON_AddNullToObject(ex->json, "node_zone");
	if (ex->e.v.flags & SVC_FLAG_ZONE_HINTS)
		explain_say(ex, "zone", "topology hints in use: only the endpoints hinted for %s, "
			    "this node's zone (B31)", zone[0] ? zone : "this node's zone");
	else if (zone[0])
		explain_say(ex, "zone", "topology hints not in use (this node's zone: %s)", zone);
	else
		explain_say(ex, "zone", "topology hints not in use (this node has no zone)");
}

/* The service port's traffic policy and the endpoints it keeps. */
static void explain_policy(struct explain *ex, bool external)
{
	__u32 f = ex->e.v.flags;
	bool local = f & (external ? SVC_FLAG_EXT_LOCAL : SVC_FLAG_LOCAL);
	const char *node = ex->node.node_name[0] ? ex->node.node_name : "this node";

	cJSON_AddStringToObject(ex->json, "traffic_policy", local ? "Local" : "Cluster");
	if (external && local)
		explain_say(ex, "policy", "externalTrafficPolicy Local: the endpoints on %s only, "
			    "the client's address kept (B16, B23)", node);
	else if (external)
		explain_say(ex, "policy", "externalTrafficPolicy Cluster: every endpoint; to one "
			    "on another node with the node's address as source (B23)");
	else if (local)
		explain_say(ex, "policy", "internalTrafficPolicy Local: the endpoints on %s only "
			    "(B13, B15)", node);
	else if (f & SVC_FLAG_EXT_LOCAL)
		explain_say(ex, "policy", "Cluster from the node itself: externalTrafficPolicy "
			    "Local applies to traffic from outside only (B23)");
	else
		explain_say(ex, "policy", "Cluster: every endpoint");
	explain_zone(ex);
	cJSON_AddBoolToObject(ex->json, "terminating_fallback", f & SVC_FLAG_FALLBACK);
	if (f & SVC_FLAG_FALLBACK)
		explain_say(ex, "fallback",
			    "no ready endpoint: the serving, terminating ones serve (B11)");
}

/* The remembered backend, as affinity.h finds it; fills b when it is the
 * one the next connection takes. */
static bool explain_affinity(struct explain *ex, const struct explain_req *req,
			     struct slot_value *b)
{
	struct affinity_key k = { .svc_id = ex->e.v.svc_id };
	struct affinity_value a = { 0 };
	struct backend_value bv;
	__u32 timeout = ex->e.v.affinity_timeout;
	cJSON *o = cJSON_CreateObject();
	const char *state;
	char where[80] = "";
	double age = 0;

	cJSON_AddItemToObject(ex->json, "affinity", o);
	cJSON_AddNumberToObject(o, "timeout", timeout);
	if (!timeout) {
		cJSON_AddStringToObject(o, "state", "off");
		explain_say(ex, "affinity", "none (sessionAffinity None)");
		return false;
	}
	if (req->external)
		memcpy(k.client_addr, req->source.w, sizeof(k.client_addr));
	else
		k.netns_cookie = req->cookie;
	if (!req->external && !req->has_cookie) {
		state = "unknown: the client is its network namespace (give --netns or --pid)";
	} else if (bpf_map_lookup_elem(ex->maps->fd[DP_MAP_AFFINITY], &k, &a)) {
		state = "none yet";
	} else {
		age = (double)(now_ns() - a.last_used_ns) / 1e9;
		cJSON_AddNumberToObject(o, "age_seconds", age);
		cJSON_AddNumberToObject(o, "backend_id", a.backend_id);
		if (backend_map_lookup(ex->maps->fd[DP_MAP_BACKENDS], a.backend_id, &bv) ||
		    bv.svc_id != ex->e.v.svc_id) {
			state = "its backend left: the next connection picks anew (B12)";
		} else {
			explain_hostport(bv.addr, bv.port, where, sizeof(where));
			cJSON_AddItemToObject(o, "backend",
					      backend_json(a.backend_id, bv.addr, bv.port,
							   state_name(bv.state)));
			if (now_ns() - a.last_used_ns > (__u64)timeout * NSEC_PER_SEC) {
				state = "expired: the next connection picks anew";
			} else {
				state = "remembered";
				b->backend_id = a.backend_id;
				b->port = bv.port;
				memcpy(b->addr, bv.addr, sizeof(b->addr));
			}
		}
	}
	cJSON_AddStringToObject(o, "state", state);
	if (where[0])
		explain_say(ex, "affinity", "ClientIP, timeout %u s: %s %s (backend %u), last used "
			    "%.1f s ago", timeout, strcmp(state, "remembered") ? "was" :
			    "remembered", where, a.backend_id, age);
	if (!where[0] || strcmp(state, "remembered"))
		explain_say(ex, "affinity", "ClientIP, timeout %u s: %s", timeout, state);
	return b->backend_id != 0;
}

/* Maglev's hash of this client, as the datapath computes it (select.h):
 * on the node its network namespace; from outside its address under
 * session affinity, else its flow. False, with what is missing, when the
 * client does not say. */
static bool maglev_hash(const struct explain *ex, const struct explain_req *req, __u32 *hash,
			const char **what)
{
	if (!req->external) {
		*what = req->has_cookie ? "the client's network namespace" :
			"the client's network namespace: give --netns or --pid";
		if (req->has_cookie)
			*hash = ferry_hash_netns(req->cookie);
		return req->has_cookie;
	}
	if (ex->e.v.affinity_timeout) {
		*what = "the client's address (session affinity)";
		*hash = ferry_hash_client(req->source.w);
		return true;
	}
	*what = req->sport ? "the flow" : "the flow's source port: give --source ADDRESS:PORT";
	if (req->sport)
		*hash = ferry_hash_flow(req->source.w, req->sport, req->key.addr, req->key.port,
					req->key.proto);
	return req->sport != 0;
}

/* The slot the set's Maglev table holds at entry index; -1 when the table
 * is missing or names no slot of the set (the datapath picks at random). */
static int maglev_slot(const struct explain *ex, __u32 index, __u32 *slot)
{
	__u32 cell_index = ex->e.v.maglev_offset + index / FERRY_MAGLEV_PER_CELL;
	struct maglev_cell cell;

	if (bpf_map_lookup_elem(ex->maps->fd[DP_MAP_MAGLEV], &cell_index, &cell))
		return -1;
	*slot = cell.slot[index % FERRY_MAGLEV_PER_CELL];
	return *slot < ex->e.v.count ? 0 : -1;
}

/* Maglev for this client: its hash, the table entry, the slot. */
static const char *explain_maglev(struct explain *ex, const struct explain_req *req,
				  struct slot_value *b, const char **why_not)
{
	__u32 size = ex->e.v.maglev_size, hash, index, slot;
	const char *what;

	cJSON_AddNumberToObject(ex->json, "maglev_size", size);
	if (!maglev_hash(ex, req, &hash, &what)) {
		explain_say(ex, "algorithm", "maglev, a table of %u entries: the pick hashes %s",
			    size, what);
		*why_not = "it depends on the client (see the algorithm line)";
		return NULL;
	}
	index = size ? hash % size : 0;
	if (!size || maglev_slot(ex, index, &slot)) {
		explain_say(ex, "algorithm",
			    "maglev, but the set's table is missing: picked at random");
		return NULL;
	}
	cJSON_AddNumberToObject(ex->json, "maglev_hash", hash);
	cJSON_AddNumberToObject(ex->json, "maglev_entry", index);
	explain_say(ex, "algorithm", "maglev: hash of %s %#010x -> table entry %u of %u -> "
		    "slot %u", what, hash, index, size, slot);
	*why_not = SET_CHANGED;
	return set_slot(ex, slot, b) ? NULL : "maglev's table entry for this client";
}

/* Round-robin: the counter every connection to the service port advances. */
static const char *explain_rr(struct explain *ex, struct slot_value *b, const char **why_not)
{
	__u32 next, slot;

	if (bpf_map_lookup_elem(ex->maps->fd[DP_MAP_RR], &ex->e.v.svc_id, &next)) {
		explain_say(ex, "algorithm",
			    "round-robin, but its counter is missing: picked at random");
		return NULL;
	}
	slot = next % ex->e.v.count;
	cJSON_AddNumberToObject(ex->json, "rr_next", next);
	explain_say(ex, "algorithm", "round-robin: counter %u, next slot %u %% %u = %u", next, next,
		    ex->e.v.count, slot);
	*why_not = SET_CHANGED;
	return set_slot(ex, slot, b) ? NULL :
	       "round-robin's next, unless another connection to the service takes it first";
}

/* Least-conn: each backend's live connections (ferry_conns). The pick is
 * determined when one backend has fewer than every other. */
static const char *explain_lc(struct explain *ex, struct slot_value *b, const char **why_not)
{
	__u32 n = ex->e.v.count, best = 0, best_live = UINT32_MAX, tied = 0;
	cJSON *live = cJSON_AddArrayToObject(ex->json, "live_connections");
	struct backend_conns c;
	struct slot_value s;

	for (__u32 i = 0; i < n && i < 32; i++) {
		__u32 count;

		if (set_slot(ex, i, &s) ||
		    bpf_map_lookup_elem(ex->maps->fd[DP_MAP_CONNS], &s.backend_id, &c)) {
			explain_say(ex, "algorithm", "least-conn, but the set or its counts changed "
				    "while read");
			return NULL;
		}
		count = c.sock + c.packet;
		cJSON_AddItemToArray(live, cJSON_CreateNumber(count));
		if (count < best_live) {
			best_live = count;
			best = i;
			tied = 1;
		} else if (count == best_live) {
			tied++;
		}
	}
	if (n > 32) {
		explain_say(ex, "algorithm", "least-conn over %u backends: the less loaded of two "
			    "picked at random", n);
		return NULL;
	}
	if (tied > 1) {
		explain_say(ex, "algorithm", "least-conn: %u backends share the fewest live "
			    "connections (%u): one of them at random", tied, best_live);
		return NULL;
	}
	explain_say(ex, "algorithm", "least-conn: slot %u has the fewest live connections (%u)",
		    best, best_live);
	*why_not = SET_CHANGED;
	return set_slot(ex, best, b) ? NULL :
	       "least-conn's pick: the fewest live connections, unless they change first";
}

/* The algorithm's line; returns why it names b, or NULL when it does not
 * name one (why_not: why, if not just random). */
static const char *explain_algorithm(struct explain *ex, const struct explain_req *req,
				     struct slot_value *b, const char **why_not)
{
	cJSON_AddStringToObject(ex->json, "algorithm", svc_entry_algorithm(ex->e.v.algorithm));
	switch (ex->e.v.algorithm) {
	case LB_ROUND_ROBIN:
		return explain_rr(ex, b, why_not);
	case LB_MAGLEV:
		return explain_maglev(ex, req, b, why_not);
	case LB_LEAST_CONN:
		return explain_lc(ex, b, why_not);
	default:
		explain_say(ex, "algorithm", "%s: each new connection picks one of the set "
			    "uniformly", svc_entry_algorithm(ex->e.v.algorithm));
		return NULL;
	}
}

static void pick_say(struct explain *ex, cJSON *o, const struct slot_value *b, const char *why)
{
	char where[80];

	cJSON_AddStringToObject(o, "why", why);
	cJSON_AddItemToObject(o, "backend", backend_json(b->backend_id, b->addr, b->port, NULL));
	explain_say(ex, "pick", "%s: %s", explain_hostport(b->addr, b->port, where, sizeof(where)),
		    why);
}

/* The algorithm, and the backend when it is determined: the remembered
 * one, the algorithm's, or the only one. */
static void explain_pick(struct explain *ex, const struct explain_req *req,
			 const struct slot_value *kept)
{
	cJSON *o = cJSON_CreateObject();
	struct slot_value b = { 0 };
	const char *why_not = NULL, *why = explain_algorithm(ex, req, &b, &why_not);

	cJSON_AddItemToObject(ex->json, "pick", o);
	if (kept->backend_id) {
		pick_say(ex, o, kept, "the remembered backend (B30)");
	} else if (why) {
		pick_say(ex, o, &b, why);
	} else if (ex->e.v.count == 1 && set_slot(ex, 0, &b) == 0) {
		pick_say(ex, o, &b, "the only backend");
	} else {
		cJSON_AddStringToObject(o, "why", why_not ? why_not : "random");
		cJSON_AddNullToObject(o, "backend");
		explain_say(ex, "pick", "any of %u%s%s", ex->e.v.count,
			    why_not ? ": " : " (random)", why_not ? why_not : "");
	}
}

/* The service port's name as ferryd recorded it (ferry_svc_names). */
static void explain_service(struct explain *ex)
{
	struct svc_name name = { 0 };

	cJSON_AddNumberToObject(ex->json, "service_id", ex->e.v.svc_id);
	if (bpf_map_lookup_elem(ex->maps->fd[DP_MAP_SVC_NAMES], &ex->e.v.svc_id, &name) == 0 &&
	    name.id[0]) {
		name.id[sizeof(name.id) - 1] = '\0';
		cJSON_AddStringToObject(ex->json, "service", name.id);
		explain_say(ex, "service", "%s (service port ID %u)", name.id, ex->e.v.svc_id);
	} else {
		cJSON_AddNullToObject(ex->json, "service");
		explain_say(ex, "service", "service port ID %u (no name recorded)", ex->e.v.svc_id);
	}
}

void explain_set(struct explain *ex, const struct explain_req *req)
{
	struct slot_value kept = { 0 };
	const char *path = req->external ? "packet" : "socket";

	explain_service(ex);
	explain_policy(ex, req->external);
	if (!ex->e.v.count) {
		explain_backends(ex);
		if (req->external)
			explain_verdict(ex, "rejected",
					"no endpoint: an ICMP port unreachable answers (B14)");
		else
			explain_verdict(ex, "refused", ex->e.v.flags & SVC_FLAG_LOCAL ?
					"no endpoint on this node: connect() and sendmsg() fail "
					"with ECONNREFUSED (B15)" :
					"no endpoint: connect() and sendmsg() fail with "
					"ECONNREFUSED (B14)");
		return;
	}
	explain_verdict(ex, "translated", req->external ?
			"the per-packet path sends new flows to a backend of this set" :
			"connect() and sendmsg() go to a backend of this set");
	cJSON_AddStringToObject(ex->json, "path", path);
	explain_backends(ex);
	explain_affinity(ex, req, &kept);
	explain_pick(ex, req, &kept);
}
