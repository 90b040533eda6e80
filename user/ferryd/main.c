/* ferryd: loads the socket-LB datapath, keeps its maps in sync with the
 * Services and EndpointSlices of its source, and leaves the datapath
 * pinned and serving when it exits. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/features.h"
#include "datapath/loader.h"
#include "datapath/mounts.h"
#include "ferryd/options.h"
#include "model/model.h"
#include "source/file_source.h"
#include "sync/engine.h"

/* Events closer together than this are one change (an editor's save is a
 * burst of create, write and rename); a steady stream is cut at the cap. */
#define COALESCE_QUIET_MS 5
#define COALESCE_MAX_MS 50

struct agent {
	struct ferryd_options opts;
	struct file_source *src;
	struct datapath dp;
	struct sync_engine *eng;
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Read the source, compute, apply, publish. A source that cannot be read
 * changes nothing: the datapath keeps serving the last good state. Returns
 * -1 only when the maps could not be filled at all (first apply). */
static int agent_reload(struct agent *ag)
{
	const struct model_objects *sets;
	struct desired_state desired = { 0 };
	const struct file_source_stats *ss = file_source_stats(ag->src);
	struct timespec t0, t_sync;
	size_t n_sets;
	int64_t writes = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (file_source_load(ag->src) < 0) {
		log_error("ferryd", "source %s unreadable; keeping the last good state",
			  ag->opts.source_path);
		goto out;
	}
	sets = file_source_objects(ag->src, &n_sets);
	if (model_compute(sets, n_sets, ag->opts.limits.max_per_service, &desired)) {
		log_error("ferryd", "out of memory computing the desired state");
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t_sync);
	writes = sync_apply(ag->eng, &desired);
	if (writes > 0)
		log_info("sync", "generation %llu: %zu service ports desired, %llu map writes; "
			 "sync %.3f ms, source to maps %.3f ms",
			 (unsigned long long)sync_stats(ag->eng)->generation, desired.n_svcs,
			 (unsigned long long)writes, ms_since(&t_sync), ms_since(&t0));
out:
	if (writes >= 0)
		sync_publish(ag->eng, ss->parse_errors, ss->objects_skipped);
	desired_free(&desired);
	return writes < 0 ? -1 : 0;
}

static int signals_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

/* After a first event, keep draining until the source is quiet. */
static void coalesce(struct agent *ag)
{
	struct pollfd p = { .fd = file_source_fd(ag->src), .events = POLLIN };
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < COALESCE_MAX_MS && poll(&p, 1, COALESCE_QUIET_MS) > 0)
		file_source_drain(ag->src);
}

static int agent_run(struct agent *ag)
{
	struct pollfd fds[2] = {
		{ .fd = signals_fd(), .events = POLLIN },
		{ .fd = file_source_fd(ag->src), .events = POLLIN },
	};

	if (fds[0].fd < 0)
		return -errno;
	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("ferryd", "poll: %s", strerror(errno));
			break;
		}
		if (fds[0].revents) {
			struct signalfd_siginfo si;

			if (read(fds[0].fd, &si, sizeof(si)) == sizeof(si))
				log_info("ferryd", "signal %u: exiting; the datapath stays pinned and serving",
					 si.ssi_signo);
			break;
		}
		if (fds[1].revents && file_source_drain(ag->src) > 0) {
			coalesce(ag);
			agent_reload(ag);
		}
	}
	close(fds[0].fd);
	return 0;
}

/* One ferryd per pin folder: two would adopt the same maps and undo each
 * other's writes. The lock lives as long as the process. */
static int lock_bpffs(const char *bpffs)
{
	int fd = open(bpffs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd < 0 ? -1 : 0;
	log_error("ferryd", "another ferryd is running on %s (lock held); refusing to start", bpffs);
	close(fd);
	return -1;
}

static int agent_start(struct agent *ag)
{
	if (features_check())
		return -1;
	if (mounts_ensure_bpffs_dir(ag->opts.bpffs) || lock_bpffs(ag->opts.bpffs))
		return -1;
	ag->src = file_source_open(ag->opts.source_path);
	if (!ag->src)
		return -1;
	if (datapath_load(&ag->dp, ag->opts.bpffs, &ag->opts.limits))
		return -1;
	ag->eng = sync_new(&ag->dp.maps, &ag->opts.limits,
			   datapath_pinned_generation(ag->opts.bpffs));
	if (!ag->eng) {
		log_error("ferryd", "out of memory");
		return -1;
	}
	if (ag->dp.adopted)
		sync_adopt(ag->eng);
	/* Fill the maps before attaching, so no connect() ever meets an empty
	 * datapath (B33). */
	if (agent_reload(ag))
		return -1;
	return datapath_publish(&ag->dp, ag->opts.bpffs, ag->opts.cgroup);
}

int main(int argc, char **argv)
{
	struct agent ag = { 0 };
	int ret;

	ret = options_parse(argc, argv, &ag.opts);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (ag.opts.cleanup)
		return datapath_cleanup(ag.opts.bpffs) ? 1 : 0;
	log_info("ferryd", "node %s, source file:%s, cgroup %s, bpffs %s", ag.opts.node_name,
		 ag.opts.source_path, ag.opts.cgroup, ag.opts.bpffs);
	ret = agent_start(&ag);
	if (!ret)
		ret = agent_run(&ag);
	sync_free(ag.eng);
	if (ag.dp.skel)
		datapath_close(&ag.dp);
	if (ag.src)
		file_source_close(ag.src);
	return ret ? 1 : 0;
}
