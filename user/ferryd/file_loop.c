/* ferryd on the file source: every change of the file (or folder) is read
 * and applied as a whole. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "ferryd/agent.h"
#include "ferryd/hcnp.h"
#include "model/model.h"

/* Events closer together than this are one change (an editor's save is a
 * burst of create, write and rename); a steady stream is cut at the cap. */
#define COALESCE_QUIET_MS 5
#define COALESCE_MAX_MS 50

/* This node as the source says: the Node named --node-name gives its
 * addresses, unless --node-ips does; they go to the datapath first. */
static void file_node(struct agent *ag, const struct model_objects *sets, size_t n_sets,
		      struct model_node *node)
{
	const struct model_node *found = model_objects_node(sets, n_sets, ag->opts.node_name);

	node->node_port_min = ag->opts.node_port_min;
	node->node_port_max = ag->opts.node_port_max;
	if (ag->opts.n_node_ips) {
		node->addrs = ag->opts.node_ips;
		node->n_addrs = ag->opts.n_node_ips;
	} else if (found) {
		node->addrs = found->addrs;
		node->n_addrs = found->n_addrs;
	}
	packet_set_node_addrs(ag, node->addrs, node->n_addrs);
}

/* Read the source, compute, apply, publish. A source that cannot be read
 * changes nothing: the datapath keeps serving the last good state. The
 * first reload attaches the programs once the maps are filled, so no
 * connect() ever meets an empty datapath (B33), and before it publishes:
 * a published generation is served. Returns -1 only when the maps could
 * not be filled or the programs not attached (first reload). */
static int file_reload(struct agent *ag, bool first)
{
	const struct model_objects *sets;
	struct desired_state desired = { 0 };
	const struct file_source_stats *ss = file_source_stats(ag->file);
	struct model_node node = { .name = ag->opts.node_name, .zone = ag->opts.node_zone };
	struct timespec t0, t_sync;
	size_t n_sets;
	int64_t writes = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (file_source_load(ag->file) < 0) {
		log_error("ferryd", "source %s unreadable; keeping the last good state",
			  ag->opts.source_path);
		goto out;
	}
	sets = file_source_objects(ag->file, &n_sets);
	file_node(ag, sets, n_sets, &node);
	if (model_compute(sets, n_sets, &node, ag->opts.limits.max_per_service, &desired)) {
		log_error("ferryd", "out of memory computing the desired state");
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t_sync);
	writes = sync_apply(ag->eng, &desired);
	if (writes >= 0) {
		observe_applied(ag, agent_ms_since(&t_sync) / 1e3, -1);
		hcnp_apply(ag->hcnp, &desired);
	}
	if (writes > 0)
		log_info("sync", "generation %llu: %zu service ports desired, %llu map writes; "
			 "sync %.3f ms, source to maps %.3f ms",
			 (unsigned long long)sync_stats(ag->eng)->generation, desired.n_svcs,
			 (unsigned long long)writes, agent_ms_since(&t_sync), agent_ms_since(&t0));
out:
	if (writes >= 0 && first && agent_attach(ag))
		writes = -1;
	if (writes >= 0) {
		agent_reap_udp(ag);
		sync_publish(ag->eng, ss->parse_errors, ss->objects_skipped,
			     model_fields_ignored());
	}
	desired_free(&desired);
	agent_trim_after(writes);
	return writes < 0 ? -1 : 0;
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

	if (fds[0].fd < 0)
		return -1;
	if (file_reload(ag, true)) {
		close(fds[0].fd);
		return -1;
	}
	for (;;) {
		hcnp_retry(ag->hcnp);
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
			file_reload(ag, false);
		}
	}
	close(fds[0].fd);
	return 0;
}
