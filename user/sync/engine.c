#include "sync/engine.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/fast_map.h"
#include "sync/extents.h"
#include "sync/lb.h"
#include "sync/state.h"

struct sync_engine *sync_new(const struct dp_maps *maps, const struct dp_limits *limits,
			     const struct agent_state *last)
{
	struct sync_engine *eng = calloc(1, sizeof(*eng));

	if (!eng)
		return NULL;
	eng->maps = *maps;
	eng->io = &map_io_bpf;
	eng->io_ctx = &eng->maps;
	eng->stats.generation = last ? last->generation : 0;
	eng->max_services = limits->max_services;
	eng->max_backends = limits->max_backends;
	eng->backends_capacity = dp_limits_backends_held(limits);
	eng->first_apply = true;
	eng->maps_fresh = true;
	stage_init(&eng->stage[DP_MAP_SERVICES], sizeof(struct svc_key), sizeof(struct svc_entry));
	stage_init(&eng->stage[DP_MAP_SLOTS], sizeof(struct slot_key), sizeof(struct slot_value));
	stage_init(&eng->stage[DP_MAP_BACKENDS], sizeof(__u32), sizeof(struct backend_value));
	stage_init(&eng->stage[DP_MAP_SVC_NAMES], sizeof(__u32), sizeof(struct svc_name));
	stage_init(&eng->stage[DP_MAP_REVNAT], sizeof(struct revnat_key),
		   sizeof(struct revnat_value));
	/* IDs range over 4x the capacity so that freed ones rest a while. */
	if (hmap_init(&eng->svcs, 1024) || hmap_init(&eng->frontends, 1024) ||
	    hmap_init(&eng->vips, 1024) || hmap_init(&eng->pending, 64) ||
	    hmap_init(&eng->conflicts, 16) || hmap_init(&eng->rn_orphans, 64) ||
	    hmap_init(&eng->rn_taken, 1024) ||
	    id_pool_init(&eng->svc_ids, 4 * limits->max_services) ||
	    id_pool_init(&eng->backend_ids, 4 * limits->max_backends) ||
	    ext_init(&eng->maglev_space, limits->max_maglev_entries / FERRY_MAGLEV_PER_CELL)) {
		sync_free(eng);
		return NULL;
	}
	if (last) {
		id_pool_resume(&eng->svc_ids, last->next_svc_id);
		id_pool_resume(&eng->backend_ids, last->next_backend_id);
	}
	return eng;
}

static void svc_free(struct applied_svc *a)
{
	if (a->frontends != &a->one)
		free(a->frontends);
	free(a->ranges);
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
	conflict_clear(eng);
	rn_clear(eng);
	for (int i = 0; i < DP_MAP__COUNT; i++)
		stage_free(&eng->stage[i]);
	hmap_free(&eng->svcs);
	hmap_free(&eng->frontends);
	hmap_free(&eng->vips);
	hmap_free(&eng->pending);
	hmap_free(&eng->conflicts);
	id_pool_free(&eng->svc_ids);
	id_pool_free(&eng->backend_ids);
	ext_free_all(&eng->maglev_space);
	dp_maps_unmap_cells(&eng->maps);
	free(eng->node_addrs);
	free(eng);
}

/* What the set stands for, shared by every frontend (each adds its own,
 * FE_FLAGS); the socket LB reads only the marker flag. */
static uint32_t svc_flags(const struct desired_svc *d)
{
	return (d->fallback ? SVC_FLAG_FALLBACK : 0) | (d->local ? SVC_FLAG_LOCAL : 0) |
	       (d->zone_hints ? SVC_FLAG_ZONE_HINTS : 0);
}

static bool svc_unchanged(const struct sync_engine *eng, const struct applied_svc *a,
			  const struct desired_svc *d)
{
	if (a->rn_stale || a->n_backends != d->n_backends || a->value.flags != svc_flags(d) ||
	    a->value.affinity_timeout != d->affinity_timeout ||
	    a->value.algorithm != lb_algorithm(eng, d))
		return false;
	for (size_t i = 0; i < d->n_backends; i++)
		if (!addr_equal(&a->backends[i].addr, &d->backends[i].addr) ||
		    a->backends[i].port != d->backends[i].port)
			return false;
	return true;
}

/* Publish d's backends for a under a new revision through every frontend
 * in want[], then reap the old revision. Returns how many of want[] are
 * written, or -1 when none could be (what was programmed before stays). */
static int svc_program(struct sync_engine *eng, struct applied_svc *a,
		       const struct desired_svc *d, const struct fe_want *want, size_t n_want)
{
	struct svc_value v = {
		.svc_id = a->value.svc_id,
		.rev = a->value.rev + 1 ? a->value.rev + 1 : 1,
		.count = (uint32_t)d->n_backends,
		.flags = svc_flags(d),
		.affinity_timeout = d->affinity_timeout,
		.algorithm = lb_algorithm(eng, d),
	};
	struct svc_value old = a->value;
	const struct applied_backend *held = a->backends;
	size_t n_held = a->n_backends;
	struct applied_backend *nb;
	size_t old_slots;
	bool *fresh;
	int written;

	/* The map has room for one service's new set beside the old one; the
	 * steady state stays within --max-backends. */
	if (eng->stats.backends - a->n_backends + d->n_backends > eng->max_backends) {
		eng->stats.map_full_errors++;
		return -1;
	}
	/* The close hook runs before a socket can count (lb.c). */
	if (v.algorithm == LB_LEAST_CONN)
		lb_least_conn_ready(eng);
	/* The new revision's table is in place before the entry naming it. */
	if (v.algorithm == LB_MAGLEV && v.count &&
	    lb_table_write(eng, d, &v.maglev_size, &v.maglev_offset))
		return -1;
	if (wr_backends_prepare(eng, a, d, v.svc_id, &nb, &fresh)) {
		lb_table_delete(eng, &v);
		return -1;
	}
	/* Adopted slots that claim entries naming another: taken as unowned. */
	for (size_t i = 0; a->rn_stale && i < a->n_backends; i++)
		a->backends[i].slot_flags = 0;
	if (rn_primary_changed(a, want, n_want)) {
		rn_release(eng, a->proto, held, n_held, NULL, 0);
		n_held = 0;
	}
	rn_take(eng, a, want, n_want, nb, d->n_backends, held, n_held);
	written = wr_slots_write(eng, v.svc_id, v.rev, nb, d->n_backends) ? -1 : 0;
	if (written == 0) {
		a->value = v;
		written = fe_publish(eng, a, want, n_want, true, nb, d->n_backends);
		if (written < 0) {
			a->value = old;
			wr_slots_delete(eng, v.svc_id, v.rev,
					wr_slots_of(nb, d->n_backends, v.count));
		}
	}
	if (written < 0) {
		lb_table_delete(eng, &v);
		rn_release(eng, a->proto, nb, d->n_backends, held, n_held);
		wr_backends_drop(eng, nb, fresh, d->n_backends);
		free(nb);
		free(fresh);
		return -1;
	}
	old_slots = old.rev ? wr_slots_of(a->backends, a->n_backends, old.count) : 0;
	wr_slots_delete(eng, v.svc_id, old.rev, old_slots);
	lb_table_delete(eng, &old);
	eng->stats.slots += wr_slots_of(nb, d->n_backends, v.count);
	eng->stats.slots -= old_slots;
	rn_release(eng, a->proto, held, n_held, nb, d->n_backends);
	a->rn_stale = false;
	wr_backends_release(eng, a, nb, d->n_backends);
	eng->stats.backends += d->n_backends;
	eng->stats.backends -= a->n_backends;
	eng->room_freed |= d->n_backends < a->n_backends;
	free(a->backends);
	free(fresh);
	a->backends = nb;
	a->n_backends = d->n_backends;
	return written;
}

static void svc_remove(struct sync_engine *eng, struct applied_svc *a)
{
	size_t slots = wr_slots_of(a->backends, a->n_backends, a->value.count);

	fe_remove_all(eng, a);
	rg_commit(eng, a, NULL, 0);
	wr_slots_delete(eng, a->value.svc_id, a->value.rev, slots);
	lb_table_delete(eng, &a->value);
	lb_name_delete(eng, a->value.svc_id);
	eng->stats.slots -= slots;
	rn_release(eng, a->proto, a->backends, a->n_backends, NULL, 0);
	wr_backends_drop(eng, a->backends, NULL, a->n_backends);
	eng->udp_backend_gone |= a->n_backends && a->proto == IPPROTO_UDP;
	eng->stats.backends -= a->n_backends;
	eng->stats.services--;
	id_pool_put(&eng->svc_ids, a->value.svc_id);
	hmap_remove(&eng->svcs, &a->by_id);
	svc_free(a);
	eng->room_freed = true;
}

/* A desired service port one of whose frontends an adopted service port
 * holds becomes that port, IDs and all, so only what differs is written. */
static void svc_claim_adopted(struct sync_engine *eng, const struct desired_svc *d)
{
	struct applied_svc *a = NULL;
	size_t n, skipped;
	struct fe_want *w;
	bool takeover;
	char *id;

	if (fe_wanted(eng, d, NULL, &w, &n, &skipped, &takeover))
		return;
	for (size_t i = 0; i < n && !a; i++) {
		struct applied_frontend *f = fe_owner(eng, &w[i].key);

		if (f && f->svc->adopted)
			a = f->svc;
	}
	free(w);
	if (!a || !(id = strdup(d->id)))
		return;
	hmap_remove(&eng->svcs, &a->by_id);
	free(a->id);
	a->id = id;
	a->adopted = false;
	a->seen = true;
	hmap_put(&eng->svcs, &a->by_id, a->id, strlen(a->id));
	lb_name_keep(eng, a->value.svc_id, a->id);
}

static struct applied_svc *svc_find(const struct sync_engine *eng, const char *id)
{
	struct hmap_node *n = hmap_get(&eng->svcs, id, strlen(id));

	return n ? hmap_entry(n, struct applied_svc, by_id) : NULL;
}

/* A new service port, not yet in the maps nor in eng->svcs. */
static struct applied_svc *svc_new(struct sync_engine *eng, const struct desired_svc *d)
{
	struct applied_svc *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->id = strdup(d->id);
	a->proto = d->proto;
	a->seen = true;
	a->value.svc_id = id_pool_get(&eng->svc_ids);
	if (a->id && a->value.svc_id)
		return a;
	id_pool_put(&eng->svc_ids, a->value.svc_id);
	svc_free(a);
	return NULL;
}

/* a's frontends, source ranges and backends brought to d. Returns how many
 * of want[] are written, or -1 (nothing changed). */
static int svc_write(struct sync_engine *eng, struct applied_svc *a, const struct desired_svc *d,
		     const struct fe_want *want, size_t n_want, bool created)
{
	struct ferry_prefix *ranges;
	size_t n_ranges;
	int written;

	if (rg_put(eng, a, d, &ranges, &n_ranges))
		return -1;
	if (created || !svc_unchanged(eng, a, d) || rn_primary_changed(a, want, n_want))
		written = svc_program(eng, a, d, want, n_want);
	else
		written = fe_publish(eng, a, want, n_want, false, a->backends, a->n_backends);
	if (written < 0)
		rg_abort(eng, a, ranges, n_ranges);
	else
		rg_commit(eng, a, ranges, n_ranges);
	return written;
}

/* Returns 0; 1 when a frontend belongs to another service port (the rest
 * is programmed); -1 when the service port, or one of its frontends, could
 * not be (re)programmed for lack of room (what was programmed before
 * stays). */
static int svc_apply(struct sync_engine *eng, const struct desired_svc *d)
{
	struct applied_svc *a = svc_find(eng, d->id);
	bool created = !a, takeover;
	size_t n_want, skipped;
	struct fe_want *want;
	int written;

	if (fe_wanted(eng, d, a, &want, &n_want, &skipped, &takeover))
		return -1;
	if (created && !n_want) {
		free(want);
		return 1;
	}
	if (created && !takeover && eng->stats.services >= eng->max_services) {
		eng->stats.map_full_errors++;
		free(want);
		return -1;
	}
	if (created && !(a = svc_new(eng, d))) {
		free(want);
		return -1;
	}
	written = svc_write(eng, a, d, want, n_want, created);
	free(want);
	if (created && written < 0) {
		id_pool_put(&eng->svc_ids, a->value.svc_id);
		svc_free(a);
		return -1;
	}
	if (created) {
		hmap_put(&eng->svcs, &a->by_id, a->id, strlen(a->id));
		eng->stats.services++;
		lb_name_write(eng, a->value.svc_id, a->id);
	}
	if (written < 0 || (size_t)written < n_want)
		return -1;
	return skipped ? 1 : 0;
}

/* Service ports named one by one per apply; the rest get one line at its
 * end (apply_end): a state far over the capacity, or --max-services set too
 * low for it, would otherwise log a line per port on every apply. */
#define ROOM_LOG_MAX 10

static void svc_report_failure(struct sync_engine *eng, const struct desired_svc *d)
{
	bool programmed = hmap_get(&eng->svcs, d->id, strlen(d->id)) != NULL;

	if (++eng->room_failures > ROOM_LOG_MAX)
		return;
	log_error("sync", "%s: %s: no room (a map is full or --max-backends is reached)", d->id,
		  programmed ? "backends not updated, the previous set stays" : "not programmed");
}

/* Backends before the slots that name them, slots before the services that
 * publish them: the order a reader would need, were there one. */
static int stage_flush_all(struct sync_engine *eng)
{
	static const enum dp_map order[] = { DP_MAP_BACKENDS, DP_MAP_REVNAT, DP_MAP_SLOTS,
					     DP_MAP_SERVICES, DP_MAP_SVC_NAMES };

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int err = stage_flush(&eng->stage[order[i]], wr_stage_sink,
				      &(struct wr_stage_to){ eng, order[i] });

		if (err) {
			log_error("sync", "cannot fill %s: %s", dp_map_label(order[i]), strerror(-err));
			return err;
		}
	}
	return 0;
}

/* Removals come last so a departing frontend is taken over without a gap;
 * what lacked the room they freed, or met a frontend they released, gets a
 * second try, and what still fails waits in the pending set. */
static void svc_second_try(struct sync_engine *eng, const struct desired_svc *d)
{
	int rc;

	eng->report_conflicts = true;
	rc = svc_apply(eng, d);
	eng->report_conflicts = false;

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
	if (eng->room_failures > ROOM_LOG_MAX)
		log_error("sync", "%zu more service ports found no room (a map is full or "
			  "--max-backends is reached), not named one by one; "
			  "ferry_service_ports_pending counts them all",
			  eng->room_failures - ROOM_LOG_MAX);
	eng->room_failures = 0;
	rn_expire(eng);
	ext_settle(&eng->maglev_space);
	/* The first state applied is a generation even when it is empty. */
	if (eng->writes != writes_before || eng->first_apply)
		eng->stats.generation++;
	eng->first_apply = false;
	eng->stats.pending = pending_count(eng);
	eng->stats.svc_entries6 = eng->frontends_v6 + eng->vips_v6;
	eng->stats.svc_entries4 = eng->frontends.count + eng->vips.count - eng->stats.svc_entries6;
	if (eng->maps.fast) {
		struct fast_counts c = fast_map_counts(eng->maps.fast);

		eng->stats.fast_entries = c.used;
		eng->stats.fast_left_out = c.left_out;
	}
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
	conflict_sweep(eng);
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
		conflict_forget(eng, delta->removed[i]);
		if ((a = svc_find(eng, delta->removed[i])))
			a->seen = false;
	}
	failed = calloc(set->n_svcs + 1, sizeof(*failed));
	for (size_t i = 0; i < set->n_svcs; i++) {
		pending_drop(eng, set->svcs[i].id);
		conflict_forget(eng, set->svcs[i].id);
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

int sync_publish(struct sync_engine *eng, uint64_t parse_errors, uint64_t objects_skipped,
		 uint64_t fields_ignored)
{
	struct agent_state st = {
		.generation = eng->stats.generation,
		.layout_version = FERRY_LAYOUT_VERSION,
		.pid = (uint32_t)getpid(),
		.parse_errors = parse_errors,
		.objects_skipped = objects_skipped,
		.fields_ignored = fields_ignored,
		.map_full_errors = eng->stats.map_full_errors,
		.fast_left_out = eng->stats.fast_left_out,
		.services = eng->stats.services,
		.backends = eng->stats.backends,
		.next_svc_id = eng->svc_ids.next,
		.next_backend_id = eng->backend_ids.next,
		.datapath_repairs = eng->stats.repairs,
		.backends_capacity = eng->backends_capacity,
	};
	struct timespec now;
	uint32_t zero = 0;
	int err;

	memcpy(st.node_name, eng->node_name, sizeof(st.node_name));
	memcpy(st.node_zone, eng->node_zone, sizeof(st.node_zone));
	clock_gettime(CLOCK_REALTIME, &now);
	st.applied_unix_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	err = mio_update(eng, DP_MAP_STATE, &zero, &st, BPF_ANY);
	if (err) {
		log_error("sync", "cannot publish state: %s", strerror(-err));
		return err;
	}
	eng->published = st;
	return 0;
}

void sync_set_lb_default(struct sync_engine *eng, uint8_t algorithm)
{
	eng->lb_default = algorithm;
}

void sync_set_least_conn_hook(struct sync_engine *eng, int (*ready)(void *arg), void *arg)
{
	eng->lc_ready = ready;
	eng->lc_arg = arg;
}

void sync_set_node_identity(struct sync_engine *eng, const char *name, const char *zone)
{
	snprintf(eng->node_name, sizeof(eng->node_name), "%s", name ? name : "");
	snprintf(eng->node_zone, sizeof(eng->node_zone), "%s", zone ? zone : "");
}

void sync_note_repairs(struct sync_engine *eng, uint64_t n)
{
	uint32_t zero = 0;
	int err;

	eng->stats.repairs += n;
	if (!eng->published.pid)
		return;
	eng->published.datapath_repairs = eng->stats.repairs;
	err = mio_update(eng, DP_MAP_STATE, &zero, &eng->published, BPF_ANY);
	if (err)
		log_error("sync", "cannot publish state: %s", strerror(-err));
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
