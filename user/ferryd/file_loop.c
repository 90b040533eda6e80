/* ferryd on the file source: every change of the file (or folder) is read
 * (items whose bytes did not change are not decoded again) and the objects
 * it changed go through the model store: only their Services reach the
 * sync engine. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "ferryd/agent.h"
#include "ferryd/hcnp.h"
#include "model/model.h"
#include "model/store.h"

/* Events closer together than this are one change (an editor's save is a
 * burst of create, write and rename); a steady stream is cut at the cap. */
#define COALESCE_QUIET_MS 5
#define COALESCE_MAX_MS 50

struct file_loop {
	struct agent *ag;
	bool applied;          /* a full state went to the sync engine: from now
				* on, only what changed does */
};

/* This node as the source says: the Node named --node-name gives its
 * addresses, unless --node-ips does (the store has them then); they go to
 * the datapath first. */
static void file_node(struct agent *ag, struct model_store *st)
{
	size_t n_sets, n;
	const struct model_objects *sets = file_source_objects(ag->file, &n_sets);
	const struct model_node *found = model_objects_node(sets, n_sets, ag->opts.node_name);
	const struct ferry_ip *addrs;

	if (!ag->opts.n_node_ips &&
	    store_set_node_addrs(st, found ? found->addrs : NULL, found ? found->n_addrs : 0) < 0)
		log_error("ferryd", "out of memory taking the node's addresses");
	addrs = store_node_addrs(st, &n, NULL);
	packet_set_node_addrs(ag, ag->opts.n_node_ips ? ag->opts.node_ips : addrs,
			      ag->opts.n_node_ips ? ag->opts.n_node_ips : n);
}

/* The whole state (the first time: batched into fresh maps, or brought to
 * what a previous ferryd left). */
static int64_t file_apply_all(struct file_loop *fl, struct model_store *st)
{
	struct desired_state desired;
	int64_t writes;

	if (store_compute_all(st, &desired) < 0)
		return 0; /* nothing cleared: the next reload tries again */
	writes = sync_apply(fl->ag->eng, &desired);
	fl->applied = writes >= 0;
	if (writes >= 0)
		hcnp_apply(fl->ag->hcnp, &desired);
	desired_free(&desired);
	return writes;
}

/* Only the Services the load touched. */
static int64_t file_apply_delta(struct agent *ag, struct model_store *st, double *flush_ms)
{
	struct desired_delta delta;
	struct timespec t0;
	int64_t writes;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (store_flush(st, &delta) < 0)
		return 0; /* the store stays touched: the next reload tries again */
	*flush_ms = agent_ms_since(&t0);
	writes = sync_apply_delta(ag->eng, &delta);
	hcnp_apply_delta(ag->hcnp, &delta);
	delta_free(&delta);
	return writes;
}

/* Read the source, apply what changed, publish. A source that cannot be
 * read changes nothing: the datapath keeps serving the last good state. The
 * first reload waits for the datapath, which loaded while the source was
 * read (agent_datapath), and attaches the programs once the maps are
 * filled, so no connect() ever meets an empty datapath (B33), and before it
 * publishes: a published generation is served. Returns -1 only when the
 * datapath could not be set up, the maps filled or the programs attached
 * (first reload). */
static int file_reload(struct file_loop *fl, bool first)
{
	struct agent *ag = fl->ag;
	struct model_store *st = file_source_store(ag->file);
	const struct file_source_stats *ss = file_source_stats(ag->file);
	const struct sync_stats *sy;
	struct timespec t0, t_sync;
	double load_ms, flush_ms = 0;
	int64_t writes = 0;
	int loaded;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	loaded = file_source_load(ag->file);
	load_ms = agent_ms_since(&t0);
	/* The datapath loaded while the source was read. */
	if (first && agent_datapath(ag))
		return -1;
	sy = sync_stats(ag->eng);
	if (loaded < 0) {
		log_error("ferryd", "source %s unreadable; keeping the last good state",
			  ag->opts.source_path);
		goto out;
	}
	file_node(ag, st);
	clock_gettime(CLOCK_MONOTONIC, &t_sync);
	writes = fl->applied ? file_apply_delta(ag, st, &flush_ms) : file_apply_all(fl, st);
	if (writes >= 0)
		observe_applied(ag, agent_ms_since(&t_sync) / 1e3, -1);
	if (writes > 0)
		log_info("sync", "generation %llu: %llu service ports desired, %llu map writes; "
			 "sync %.3f ms, source to maps %.3f ms (load %.3f ms, of which store %.3f ms; "
			 "flush %.3f ms)",
			 (unsigned long long)sy->generation,
			 (unsigned long long)(sy->services + sy->pending), (unsigned long long)writes,
			 agent_ms_since(&t_sync) - flush_ms, agent_ms_since(&t0), load_ms,
			 (double)ss->store_ns / 1e6, flush_ms);
out:
	if (writes >= 0 && first && agent_attach(ag))
		writes = -1;
	if (writes >= 0) {
		agent_reap_udp(ag);
		sync_set_node_identity(ag->eng, ag->opts.node_name, store_node_zone(st));
		sync_publish(ag->eng, ss->parse_errors, ss->objects_skipped,
			     model_fields_ignored());
	}
	agent_trim_after(writes);
	return writes < 0 ? -1 : 0;
}

/* The node and limits the store computes with, from the options. */
static int file_store_setup(struct agent *ag)
{
	struct model_store *st = file_source_store(ag->file);

	store_set_max_per_service(st, ag->opts.limits.max_per_service);
	store_set_node_port_range(st, ag->opts.node_port_min, ag->opts.node_port_max);
	if (store_set_node(st, ag->opts.node_name, ag->opts.node_zone ? ag->opts.node_zone : "") < 0 ||
	    (ag->opts.n_node_ips &&
	     store_fix_node_addrs(st, ag->opts.node_ips, ag->opts.n_node_ips) < 0)) {
		log_error("ferryd", "out of memory");
		return -1;
	}
	return 0;
}

/* After a first event, keep draining until the source is quiet. */
static void file_coalesce(struct agent *ag)
{
	struct pollfd p = { .fd = file_source_fd(ag->file), .events = POLLIN };
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (agent_ms_since(&t0) < COALESCE_MAX_MS && poll(&p, 1, COALESCE_QUIET_MS) > 0)
		file_source_drain(ag->file);
}

/* How long a wait lasts at most: the loop's heartbeat (observe_turn). */
#define IDLE_WAIT_MS 1000

int file_loop_run(struct agent *ag)
{
	struct pollfd fds[2] = {
		{ .fd = agent_signals_fd(), .events = POLLIN },
		{ .fd = file_source_fd(ag->file), .events = POLLIN },
	};
	struct file_loop fl = { .ag = ag };
	int rc = 0;

	if (fds[0].fd < 0)
		return -1;
	if (file_store_setup(ag) < 0 || file_reload(&fl, true)) {
		close(fds[0].fd);
		return -1;
	}
	for (;;) {
		if (agent_reaper(ag)) {
			rc = -1;
			break;
		}
		hcnp_retry(ag->hcnp);
		agent_heal(ag);
		agent_reap_udp(ag);
		packet_check_devices(ag);
		observe_turn(ag, IDLE_WAIT_MS);
		if (poll(fds, 2, IDLE_WAIT_MS) < 0) {
			if (errno == EINTR)
				continue;
			log_error("ferryd", "poll: %s", strerror(errno));
			break;
		}
		if (fds[0].revents) {
			agent_signalled(fds[0].fd);
			break;
		}
		if (fds[1].revents && file_source_drain(ag->file) > 0) {
			file_coalesce(ag);
			file_reload(&fl, false);
		}
	}
	close(fds[0].fd);
	return rc;
}
