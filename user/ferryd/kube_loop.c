/* ferryd on the API server: nothing is programmed until Services and
 * EndpointSlices have been listed in full (B33); after that every watch
 * event reaches the maps through a flush of the Services it touched. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "ferryd/agent.h"
#include "ferryd/hcnp.h"
#include "model/store.h"

/* A change is flushed as soon as the API connections have nothing more
 * to read (a poll that does not wait): an isolated change costs only its
 * apply. One that arrives less than FLUSH_BURST_MS after the last apply is
 * part of a burst: it waits until the connections have been quiet for
 * FLUSH_QUIET_MS, so a burst becomes few applies however its bytes are cut
 * up on the way. Either way no change waits more than FLUSH_MAX_MS. */
#define FLUSH_BURST_MS 5
#define FLUSH_QUIET_MS 1
#define FLUSH_MAX_MS 5
/* How long to wait at most when nothing is due (signals wake us anyway). */
#define IDLE_WAIT_MS 1000
/* The first apply waits this long at most for the Node, whose zone steers
 * topology hints (B31), once Services and EndpointSlices are in: a restart
 * must not briefly undo the hints the maps already follow, nor a Node that
 * cannot be read (403) hold back every Service. */
#define NODE_WAIT_S 2.0

struct kube_loop {
	struct agent *ag;
	bool attached;
	double synced_at;           /* when the first full lists were in */
	uint64_t node_addrs_gen;    /* store_node_addrs' number as last taken */
	uint64_t published_skipped; /* objects_skipped as last published */
	double flushed_at;          /* kube_now() after the last apply */
	uint64_t flushed_events;    /* watch events read by then */
};

/* Why a flush went out then, for its log line. */
enum kube_flush_why {
	FLUSH_AT_ONCE,              /* nothing more to read, without a wait */
	FLUSH_QUIET,                /* nothing came during a wait (a burst) */
	FLUSH_CAP,                  /* FLUSH_MAX_MS after its oldest change */
};

static const char *const flush_why_text[] = {
	[FLUSH_AT_ONCE] = "at once",
	[FLUSH_QUIET] = "after quiet",
	[FLUSH_CAP] = "at the cap",
};

static uint64_t kube_bad_data(const struct kube_source *ks)
{
	uint64_t n = 0;

	for (int c = 0; c < KUBE_COLLECTION__COUNT; c++)
		n += kube_source_watch_stats(ks, (enum kube_collection)c)->errors[WATCH_ERR_BAD_DATA];
	return n;
}

/* Watch events read so far, every collection and kind. */
static uint64_t kube_events(const struct kube_source *ks)
{
	uint64_t n = 0;

	for (int c = 0; c < KUBE_COLLECTION__COUNT; c++)
		for (int e = 0; e < KUBE_EVENT__COUNT; e++)
			n += kube_source_watch_stats(ks, (enum kube_collection)c)->events[e];
	return n;
}

static void kube_publish(struct kube_loop *kl)
{
	const struct kube_source *ks = kl->ag->kube;

	kl->published_skipped = kube_source_stats(ks)->objects_skipped;
	agent_reap_udp(kl->ag);
	sync_set_node_identity(kl->ag->eng, kl->ag->opts.node_name,
			       store_node_zone(kube_source_store(kl->ag->kube)));
	sync_publish(kl->ag->eng, kube_bad_data(ks), kl->published_skipped,
		     model_fields_ignored());
}

/* The node's addresses, when the Node changed them, to the datapath
 * (--node-ips went there at start, in their order). */
static void kube_node_addrs(struct kube_loop *kl)
{
	const struct ferry_ip *addrs;
	uint64_t gen;
	size_t n;

	if (kl->ag->opts.n_node_ips)
		return;
	addrs = store_node_addrs(kube_source_store(kl->ag->kube), &n, &gen);
	if (gen == kl->node_addrs_gen)
		return;
	kl->node_addrs_gen = gen;
	packet_set_node_addrs(kl->ag, addrs, n);
}

/* The generation that applied the slice changes taken with its flush is
 * published: the SLI (nothing measured when the apply failed). */
static void kube_programmed(struct kube_loop *kl, int64_t writes)
{
	size_t n;
	int64_t *triggers = store_take_triggers(kube_source_store(kl->ag->kube), &n);

	if (writes >= 0)
		observe_programmed(kl->ag, triggers, n);
	free(triggers);
}

/* The first full state: written (batched into fresh maps), then attached. */
static int kube_first_apply(struct kube_loop *kl)
{
	struct agent *ag = kl->ag;
	struct desired_state desired;
	int64_t writes;
	double t0;

	kube_node_addrs(kl);
	if (store_compute_all(kube_source_store(ag->kube), &desired) < 0)
		return -1;
	kube_source_flushed(ag->kube);
	t0 = kube_now();
	writes = sync_apply(ag->eng, &desired);
	if (writes >= 0) {
		observe_applied(ag, kube_now() - t0, -1);
		hcnp_apply(ag->hcnp, &desired);
	}
	log_info("sync", "generation %llu: first list programmed: %zu service ports, %lld map "
		 "writes", (unsigned long long)sync_stats(ag->eng)->generation, desired.n_svcs,
		 (long long)writes);
	desired_free(&desired);
	agent_trim_after(writes);
	if (writes < 0 || agent_attach(ag))
		return -1;
	kl->attached = true;
	kube_publish(kl);
	kube_programmed(kl, writes);
	kl->flushed_at = kube_now();
	kl->flushed_events = kube_events(ag->kube);
	return 0;
}

static void kube_flush(struct kube_loop *kl, enum kube_flush_why why)
{
	struct agent *ag = kl->ag;
	double since = kube_source_changed_since(ag->kube);
	uint64_t events = kube_events(ag->kube);
	struct desired_delta delta;
	int64_t writes;
	double t0;

	if (store_flush(kube_source_store(ag->kube), &delta) < 0)
		return; /* the store stays touched: the next round tries again */
	kube_source_flushed(ag->kube);
	t0 = kube_now();
	writes = sync_apply_delta(ag->eng, &delta);
	observe_applied(ag, kube_now() - t0, kube_now() - since);
	hcnp_apply_delta(ag->hcnp, &delta);
	kube_publish(kl);
	kube_programmed(kl, writes);
	if (writes > 0)
		log_info("sync", "generation %llu: %zu service ports changed, %zu removed, %lld map "
			 "writes; event to maps %.3f ms; watch events read: %llu, flushed %s",
			 (unsigned long long)sync_stats(ag->eng)->generation, delta.set.n_svcs,
			 delta.n_removed, (long long)writes, (kube_now() - since) * 1e3,
			 (unsigned long long)(events - kl->flushed_events), flush_why_text[why]);
	delta_free(&delta);
	agent_trim_after(writes);
	kl->flushed_at = kube_now();
	kl->flushed_events = events;
}

/* The pending change, which arrived at since, came within FLUSH_BURST_MS
 * of the last apply. */
static bool kube_in_burst(const struct kube_loop *kl, double since)
{
	return (since - kl->flushed_at) * 1e3 < FLUSH_BURST_MS;
}

/* How long the next wait may last: none while an isolated change is
 * pending (only what is already there is read), the quiet time in a burst. */
static int kube_wait_ms(const struct kube_loop *kl)
{
	double since = kube_source_changed_since(kl->ag->kube), left;

	if (!kl->attached || !since)
		return IDLE_WAIT_MS;
	if (!kube_in_burst(kl, since))
		return 0;
	left = FLUSH_MAX_MS - (kube_now() - since) * 1e3;
	if (left < 0)
		return 0;
	return left < FLUSH_QUIET_MS ? (int)left : FLUSH_QUIET_MS;
}

/* Whether a flush is due after a wait of wait_ms that found ready
 * descriptors, and why. Once attached, changes flush even while a
 * collection relists: the relist deletes nothing before it is complete,
 * and a refused relist of one collection must not hold back the others'
 * events. */
static bool kube_flush_due(const struct kube_loop *kl, int wait_ms, int ready,
			   enum kube_flush_why *why)
{
	double since = kube_source_changed_since(kl->ag->kube);

	if (!since)
		return false;
	if ((kube_now() - since) * 1e3 >= FLUSH_MAX_MS)
		*why = FLUSH_CAP;
	else if (ready == 0)
		*why = wait_ms ? FLUSH_QUIET : FLUSH_AT_ONCE;
	else
		return false;
	return true;
}

static bool kube_first_due(struct kube_loop *kl)
{
	const struct kube_source *ks = kl->ag->kube;

	if (!kube_source_synced(ks))
		return false;
	if (!kl->synced_at)
		kl->synced_at = kube_now();
	if (kube_source_node_listed(ks))
		return true;
	if (kube_now() - kl->synced_at < NODE_WAIT_S)
		return false;
	log_warn("ferryd", "node not listed %.0f s after Services and EndpointSlices; "
		 "programming without its zone (topology hints ignored until it arrives)",
		 NODE_WAIT_S);
	return true;
}

/* One wait and what follows it. sig is the signal descriptor. Returns 1 on
 * a signal, -1 on a fatal error. */
static int kube_round(struct kube_loop *kl, struct curl_waitfd *sig)
{
	struct agent *ag = kl->ag;
	int ready = 0, wait_ms = kube_wait_ms(kl);
	enum kube_flush_why why;

	sig->revents = 0;
	if (agent_reaper(ag))
		return -1;
	hcnp_retry(ag->hcnp);
	agent_heal(ag);
	agent_reap_udp(ag);
	packet_check_devices(ag);
	observe_turn(ag, wait_ms);
	if (kube_source_run(ag->kube, sig, 1, wait_ms, &ready) < 0)
		return -1;
	if (sig->revents)
		return 1;
	if (!kl->attached)
		return kube_first_due(kl) ? kube_first_apply(kl) : 0;
	kube_node_addrs(kl);
	if (kube_flush_due(kl, wait_ms, ready, &why))
		kube_flush(kl, why);
	else if (kube_source_stats(ag->kube)->objects_skipped != kl->published_skipped)
		kube_publish(kl);
	return 0;
}

/* --node-port-range, --node-ips in place of the Node's addresses, and the
 * SLI's start: kube-proxy measures only changes made after its own. */
static int kube_node_settings(struct agent *ag)
{
	struct model_store *st = kube_source_store(ag->kube);
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	store_set_trigger_floor(st, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
	store_set_node_port_range(st, ag->opts.node_port_min, ag->opts.node_port_max);
	if (ag->opts.n_node_ips &&
	    store_fix_node_addrs(st, ag->opts.node_ips, ag->opts.n_node_ips) < 0) {
		log_error("ferryd", "out of memory");
		return -1;
	}
	return 0;
}

int kube_loop_run(struct agent *ag)
{
	struct kube_loop kl = { .ag = ag };
	struct curl_waitfd sig = { .fd = -1, .events = CURL_WAIT_POLLIN };
	int rc;

	if (agent_datapath(ag) < 0)
		return -1;
	sig.fd = agent_signals_fd();
	if (sig.fd < 0 || kube_node_settings(ag) < 0)
		return -1;
	watch_set_idle_timeout(ag->opts.watch_idle_timeout);
	watch_set_forbidden_retry(ag->opts.forbidden_retry);
	log_info("ferryd", "waiting for the first list of Services, EndpointSlices and the "
		 "Node; until then the datapath keeps what it holds");
	while ((rc = kube_round(&kl, &sig)) == 0)
		;
	if (rc > 0)
		agent_signalled(sig.fd);
	close(sig.fd);
	return rc < 0 ? -1 : 0;
}
