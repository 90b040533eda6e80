#include "sync/engine.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "sync/state.h"

struct sync_engine *sync_new(const struct dp_maps *maps, const struct dp_limits *limits,
			     uint64_t last_generation)
{
	struct sync_engine *eng = calloc(1, sizeof(*eng));

	if (!eng)
		return NULL;
	eng->maps = *maps;
	eng->stats.generation = last_generation;
	eng->max_services = limits->max_services;
	eng->max_backends = limits->max_backends;
	eng->first_apply = true;
	eng->maps_fresh = true;
	stage_init(&eng->stage[DP_MAP_SERVICES], sizeof(struct svc_key), sizeof(struct svc_value));
	stage_init(&eng->stage[DP_MAP_SLOTS], sizeof(struct slot_key), sizeof(struct slot_value));
	stage_init(&eng->stage[DP_MAP_BACKENDS], sizeof(__u32), sizeof(struct backend_value));
	/* IDs range over 4x the capacity so that freed ones rest a while. */
	if (hmap_init(&eng->svcs, 1024) || hmap_init(&eng->frontends, 1024) ||
	    hmap_init(&eng->vips, 1024) || hmap_init(&eng->pending, 64) ||
	    id_pool_init(&eng->svc_ids, 4 * limits->max_services) ||
	    id_pool_init(&eng->backend_ids, 4 * limits->max_backends)) {
		sync_free(eng);
		return NULL;
	}
	return eng;
}

static void svc_free(struct applied_svc *a)
{
	free(a->id);
	free(a->backends);
	free(a);
}

void sync_free(struct sync_engine *eng)
{
	struct hmap_node *n, *next;

	if (!eng)
		return;
	for (n = eng->svcs.buckets ? hmap_first(&eng->svcs) : NULL; n; n = next) {
		next = hmap_next(&eng->svcs, n);
		svc_free(hmap_entry(n, struct applied_svc, by_id));
	}
	for (n = eng->vips.buckets ? hmap_first(&eng->vips) : NULL; n; n = next) {
		next = hmap_next(&eng->vips, n);
		free(hmap_entry(n, struct vip_ref, node));
	}
	pending_clear(eng);
	for (int i = 0; i < DP_MAP__COUNT; i++)
		stage_free(&eng->stage[i]);
	hmap_free(&eng->svcs);
	hmap_free(&eng->frontends);
	hmap_free(&eng->vips);
	hmap_free(&eng->pending);
	id_pool_free(&eng->svc_ids);
	id_pool_free(&eng->backend_ids);
	free(eng);
}

static void frontend_key(struct svc_key *key, const struct desired_svc *d)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, d->vip.w, sizeof(key->addr));
	key->port = htons(d->port);
	key->proto = d->proto;
}

/* What the set stands for, for ferryctl and bpftool; the datapath reads
 * only the marker flag. */
static uint32_t svc_flags(const struct desired_svc *d)
{
	return (d->fallback ? SVC_FLAG_FALLBACK : 0) | (d->local ? SVC_FLAG_LOCAL : 0) |
	       (d->zone_hints ? SVC_FLAG_ZONE_HINTS : 0);
}

static bool svc_unchanged(const struct applied_svc *a, const struct desired_svc *d)
{
	if (a->n_backends != d->n_backends || a->value.flags != svc_flags(d) ||
	    a->value.affinity_timeout != d->affinity_timeout)
		return false;
	for (size_t i = 0; i < d->n_backends; i++)
		if (!addr_equal(&a->backends[i].addr, &d->backends[i].addr) ||
		    a->backends[i].port != d->backends[i].port)
			return false;
	return true;
}

/* Publish d's backends for a under a new revision, then reap the old one. */
static int svc_program(struct sync_engine *eng, struct applied_svc *a,
		       const struct desired_svc *d)
{
	struct svc_value v = {
		.svc_id = a->value.svc_id,
		.rev = a->value.rev + 1 ? a->value.rev + 1 : 1,
		.count = (uint32_t)d->n_backends,
		.flags = svc_flags(d),
		.affinity_timeout = d->affinity_timeout,
	};
	struct applied_backend *nb;
	bool *fresh;
	int err;

	/* The map has room for one service's new set beside the old one; the
	 * steady state stays within --max-backends. */
	if (eng->stats.backends - a->n_backends + d->n_backends > eng->max_backends) {
		eng->stats.map_full_errors++;
		return -1;
	}
	if (wr_backends_prepare(eng, a, d, v.svc_id, &nb, &fresh))
		return -1;
	err = wr_slots_write(eng, v.svc_id, v.rev, nb, d->n_backends);
	if (!err) {
		err = wr_put(eng, DP_MAP_SERVICES, &a->key, &v);
		if (err)
			wr_slots_delete(eng, v.svc_id, v.rev, d->n_backends);
	}
	if (err) {
		wr_backends_drop(eng, nb, fresh, d->n_backends);
		free(nb);
		free(fresh);
		return err;
	}
	if (a->value.rev)
		wr_slots_delete(eng, v.svc_id, a->value.rev, a->n_backends);
	wr_backends_release(eng, a, nb, d->n_backends);
	eng->stats.backends += d->n_backends;
	eng->stats.backends -= a->n_backends;
	eng->room_freed |= d->n_backends < a->n_backends;
	free(a->backends);
	free(fresh);
	a->backends = nb;
	a->n_backends = d->n_backends;
	a->value = v;
	return 0;
}

static void svc_remove(struct sync_engine *eng, struct applied_svc *a)
{
	struct ferry_ip vip;

	memcpy(vip.w, a->key.addr, sizeof(vip.w));
	if (a->owner) {
		wr_del(eng, DP_MAP_SERVICES, &a->key);
		hmap_remove(&eng->frontends, &a->by_key);
		eng->stats.services--;
	}
	wr_slots_delete(eng, a->value.svc_id, a->value.rev, a->n_backends);
	wr_backends_drop(eng, a->backends, NULL, a->n_backends);
	eng->udp_backend_gone |= a->n_backends && a->key.proto == IPPROTO_UDP;
	eng->stats.backends -= a->n_backends;
	wr_vip_unref(eng, &vip);
	id_pool_put(&eng->svc_ids, a->value.svc_id);
	hmap_remove(&eng->svcs, &a->by_id);
	svc_free(a);
	eng->room_freed = true;
}

/* A frontend claimed by another service port that is still desired is a
 * conflict (two Services with one ClusterIP); one that is going away is
 * taken over by overwriting its entry, without a gap. */
static struct applied_svc *frontend_owner(struct sync_engine *eng, const struct svc_key *key)
{
	struct hmap_node *n = hmap_get(&eng->frontends, key, sizeof(*key));

	return n ? hmap_entry(n, struct applied_svc, by_key) : NULL;
}

/* A desired service port whose frontend an adopted entry holds becomes
 * that entry, IDs and all, so only what differs is written. */
static void svc_claim_adopted(struct sync_engine *eng, const struct desired_svc *d)
{
	struct svc_key key;
	struct applied_svc *a;
	char *id;

	frontend_key(&key, d);
	a = frontend_owner(eng, &key);
	if (!a || !a->adopted || !(id = strdup(d->id)))
		return;
	hmap_remove(&eng->svcs, &a->by_id);
	free(a->id);
	a->id = id;
	a->adopted = false;
	a->seen = true;
	hmap_put(&eng->svcs, &a->by_id, a->id, strlen(a->id));
}

static int svc_create(struct sync_engine *eng, const struct desired_svc *d)
{
	struct applied_svc *a = calloc(1, sizeof(*a));
	struct applied_svc *prev;

	if (!a)
		return -1;
	frontend_key(&a->key, d);
	prev = frontend_owner(eng, &a->key);
	if (!prev && eng->stats.services >= eng->max_services) {
		eng->stats.map_full_errors++;
		free(a);
		return -1;
	}
	if (prev && prev->seen) {
		eng->stats.conflicts++;
		log_warn("sync", "%s: frontend already programmed for %s; skipped", d->id, prev->id);
		free(a);
		return 1;
	}
	a->id = strdup(d->id);
	a->value.svc_id = id_pool_get(&eng->svc_ids);
	if (!a->id || !a->value.svc_id || wr_vip_ref(eng, &d->vip))
		goto fail;
	if (svc_program(eng, a, d)) {
		wr_vip_unref(eng, &d->vip);
		goto fail;
	}
	if (prev) {
		prev->owner = false;
		hmap_remove(&eng->frontends, &prev->by_key);
		eng->stats.services--;
	}
	a->owner = true;
	a->seen = true;
	hmap_put(&eng->frontends, &a->by_key, &a->key, sizeof(a->key));
	hmap_put(&eng->svcs, &a->by_id, a->id, strlen(a->id));
	eng->stats.services++;
	return 0;
fail:
	id_pool_put(&eng->svc_ids, a->value.svc_id);
	svc_free(a);
	return -1;
}

/* Returns 0; 1 when the frontend belongs to another service port; -1 when
 * the service port could not be (re)programmed for lack of room (what was
 * programmed before stays). */
static int svc_apply(struct sync_engine *eng, const struct desired_svc *d)
{
	struct hmap_node *n = hmap_get(&eng->svcs, d->id, strlen(d->id));
	struct applied_svc *a;
	struct svc_key key;

	if (!n)
		return svc_create(eng, d);
	a = hmap_entry(n, struct applied_svc, by_id);
	frontend_key(&key, d);
	if (memcmp(&key, &a->key, sizeof(key)) != 0) {
		/* A new ClusterIP (B5): different addresses, nothing to bridge. */
		svc_remove(eng, a);
		return svc_create(eng, d);
	}
	return svc_unchanged(a, d) ? 0 : svc_program(eng, a, d);
}

static void svc_report_failure(struct sync_engine *eng, const struct desired_svc *d)
{
	bool programmed = hmap_get(&eng->svcs, d->id, strlen(d->id)) != NULL;

	log_error("sync", "%s: %s: no room (a map is full or --max-backends is reached)", d->id,
		  programmed ? "backends not updated, the previous set stays" : "not programmed");
}

/* Backends before the slots that name them, slots before the services that
 * publish them: the order a reader would need, were there one. */
static int stage_flush_all(struct sync_engine *eng)
{
	static const enum dp_map order[] = { DP_MAP_BACKENDS, DP_MAP_SLOTS, DP_MAP_SERVICES };

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int err = stage_flush(&eng->stage[order[i]], eng->maps.fd[order[i]]);

		if (err) {
			log_error("sync", "cannot fill %s: %s", dp_map_names[order[i]], strerror(-err));
			return err;
		}
	}
	return 0;
}

static struct applied_svc *svc_find(const struct sync_engine *eng, const char *id)
{
	struct hmap_node *n = hmap_get(&eng->svcs, id, strlen(id));

	return n ? hmap_entry(n, struct applied_svc, by_id) : NULL;
}

/* Removals come last so a departing frontend is taken over without a gap;
 * what lacked the room they freed, or met a frontend they released, gets a
 * second try, and what still fails waits in the pending set. */
static void svc_second_try(struct sync_engine *eng, const struct desired_svc *d)
{
	int rc = svc_apply(eng, d);

	if (rc < 0)
		svc_report_failure(eng, d);
	if (rc)
		pending_add(eng, d);
}

static void apply_end(struct sync_engine *eng, uint64_t writes_before)
{
	if (eng->room_freed)
		pending_retry(eng, svc_apply);
	eng->room_freed = false;
	/* The first state applied is a generation even when it is empty. */
	if (eng->writes != writes_before || eng->first_apply)
		eng->stats.generation++;
	eng->first_apply = false;
	eng->stats.pending = pending_count(eng);
	eng->stats.vip_markers = eng->vips.count;
}

int64_t sync_apply(struct sync_engine *eng, const struct desired_state *desired)
{
	uint64_t before = eng->writes;
	struct hmap_node *n, *next;
	size_t *failed, n_failed = 0;
	struct applied_svc *a;

	eng->staging = eng->first_apply && eng->maps_fresh;
	pending_clear(eng);
	for (n = hmap_first(&eng->svcs); n; n = hmap_next(&eng->svcs, n))
		hmap_entry(n, struct applied_svc, by_id)->seen = false;
	for (size_t i = 0; i < desired->n_svcs; i++) {
		if ((a = svc_find(eng, desired->svcs[i].id)))
			a->seen = true;
		else
			svc_claim_adopted(eng, &desired->svcs[i]);
	}
	failed = calloc(desired->n_svcs + 1, sizeof(*failed));
	for (size_t i = 0; i < desired->n_svcs; i++)
		if (svc_apply(eng, &desired->svcs[i]) && failed)
			failed[n_failed++] = i;
	for (n = hmap_first(&eng->svcs); n; n = next) {
		a = hmap_entry(n, struct applied_svc, by_id);
		next = hmap_next(&eng->svcs, n);
		if (!a->seen)
			svc_remove(eng, a);
	}
	for (size_t j = 0; j < n_failed; j++)
		svc_second_try(eng, &desired->svcs[failed[j]]);
	free(failed);
	eng->room_freed = false;
	if (eng->staging) {
		eng->staging = false;
		if (stage_flush_all(eng))
			return -1;
	}
	apply_end(eng, before);
	return (int64_t)(eng->writes - before);
}

/* Between applies every applied service port is desired (seen); a delta
 * names the ones that go, so a frontend they hold can be taken over. */
int64_t sync_apply_delta(struct sync_engine *eng, const struct desired_delta *delta)
{
	const struct desired_state *set = &delta->set;
	uint64_t before = eng->writes;
	size_t *failed, n_failed = 0;
	struct applied_svc *a;

	for (size_t i = 0; i < delta->n_removed; i++) {
		pending_drop(eng, delta->removed[i]);
		if ((a = svc_find(eng, delta->removed[i])))
			a->seen = false;
	}
	failed = calloc(set->n_svcs + 1, sizeof(*failed));
	for (size_t i = 0; i < set->n_svcs; i++) {
		pending_drop(eng, set->svcs[i].id);
		if (svc_apply(eng, &set->svcs[i]) && failed)
			failed[n_failed++] = i;
	}
	for (size_t i = 0; i < delta->n_removed; i++)
		if ((a = svc_find(eng, delta->removed[i])) && !a->seen)
			svc_remove(eng, a);
	for (size_t j = 0; j < n_failed; j++)
		svc_second_try(eng, &set->svcs[failed[j]]);
	free(failed);
	apply_end(eng, before);
	return (int64_t)(eng->writes - before);
}

int sync_publish(struct sync_engine *eng, uint64_t parse_errors, uint64_t objects_skipped)
{
	struct agent_state st = {
		.generation = eng->stats.generation,
		.layout_version = FERRY_LAYOUT_VERSION,
		.pid = (uint32_t)getpid(),
		.parse_errors = parse_errors,
		.objects_skipped = objects_skipped,
		.map_full_errors = eng->stats.map_full_errors,
		.services = eng->stats.services,
		.backends = eng->stats.backends,
	};
	struct timespec now;
	uint32_t zero = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	st.applied_unix_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	if (bpf_map_update_elem(eng->maps.fd[DP_MAP_STATE], &zero, &st, BPF_ANY)) {
		log_error("sync", "cannot publish state: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

bool sync_take_udp_gone(struct sync_engine *eng)
{
	bool gone = eng->udp_backend_gone;

	eng->udp_backend_gone = false;
	return gone;
}

const struct sync_stats *sync_stats(const struct sync_engine *eng)
{
	return &eng->stats;
}
