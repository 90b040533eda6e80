/* ferryd: loads the socket-LB datapath, keeps its maps in sync with the
 * Services and EndpointSlices of its source (the API server or a file), and
 * leaves the datapath pinned and serving when it exits. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/features.h"
#include "datapath/mounts.h"
#include "datapath/reap.h"
#include "ferryd/agent.h"
#include "ferryd/hcnp.h"

double agent_ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* A large apply leaves its staged writes and the desired state free in
 * many small blocks that malloc keeps for reuse; giving the pages back makes
 * steady RSS the size of the state, not of the peak. Small applies skip it:
 * malloc_trim walks the whole heap. */
#define AGENT_TRIM_WRITES 1000

void agent_trim_after(int64_t writes)
{
	if (writes >= AGENT_TRIM_WRITES)
		malloc_trim(0);
}

int agent_signals_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

void agent_signalled(int fd)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) == sizeof(si))
		log_info("ferryd", "signal %u: exiting; the datapath stays pinned and serving",
			 si.ssi_signo);
}

/* A connect() may have picked a backend from the old set just before the
 * apply that removed it, and finish connecting after the search (a socket
 * not yet connected is not found): a second search a second later fails
 * it. */
#define AGENT_REAP_AGAIN_S 1

int agent_reaper(struct agent *ag)
{
	bool loading = ag->dp.loader;

	if (ag->dp.link_fd[0] < 0)
		return 0;
	if (datapath_reaper(&ag->dp, ag->opts.bpffs))
		return -1;
	/* Its load (a parse of the kernel's BTF) came after the first
	 * apply's trim: its freed blocks go back too. */
	if (loading)
		malloc_trim(0);
	return 0;
}

void agent_reap_udp(struct agent *ag)
{
	struct reap_result res;
	struct timespec t0;
	int err;

	/* A reaper still loading is taken at its first search. */
	if (!ag->dp.reap_link && !ag->dp.loader)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sync_take_udp_gone(ag->eng))
		ag->reap_again = t0.tv_sec + AGENT_REAP_AGAIN_S + 1;
	else if (ag->reap_again && t0.tv_sec >= ag->reap_again)
		ag->reap_again = 0;
	else
		return;
	if (agent_reaper(ag) || !ag->dp.reap_link)
		return;
	err = dp_reap_udp(&ag->dp, ag->opts.netns_dirs, &res);
	if (err < 0) {
		log_warn("datapath", "cannot search for UDP sockets of removed backends: %s",
			 strerror(-err));
		return;
	}
	if (res.failed && !ag->reap_warned) {
		log_warn("datapath", "%u network namespaces could not be searched for connected UDP "
			 "sockets of removed backends (%s); entering pods' namespaces needs "
			 "CAP_SYS_ADMIN", res.failed, strerror(-res.last_error));
		ag->reap_warned = true;
	}
	if (res.dirs_failed && !ag->reap_dirs_warned) {
		log_warn("datapath", "cannot read the --netns-dirs folder %s (%s; %u unreadable in "
			 "all): pods' network namespaces pinned there are not searched for connected "
			 "UDP sockets of removed backends", res.dir, strerror(-res.dir_error),
			 res.dirs_failed);
		ag->reap_dirs_warned = true;
	}
	log_debug("datapath", "UDP sockets of removed backends: %u network namespaces searched "
		  "in %.3f ms; %u files in --netns-dirs pin none", res.namespaces,
		  agent_ms_since(&t0), res.not_netns);
}

int agent_attach(struct agent *ag)
{
	if (datapath_publish(&ag->dp, ag->opts.bpffs, ag->opts.cgroup) || packet_attach(ag))
		return -1;
	/* Beside the per-packet programs' verification (about a second with
	 * devices), the reaper's load would slow the first publish. */
	datapath_reaper_load(&ag->dp);
	return 0;
}

const char *const agent_repair_names[REPAIR__COUNT] = {
	"program", "entry_missing", "entry_altered", "entry_unknown",
};

/* Written by the loop, read by the metrics thread. */
static uint64_t agent_repaired[REPAIR__COUNT];

uint64_t agent_repairs(enum agent_repair kind)
{
	return __atomic_load_n(&agent_repaired[kind], __ATOMIC_RELAXED);
}

static void agent_count_repairs(enum agent_repair kind, int64_t n)
{
	if (n > 0)
		__atomic_add_fetch(&agent_repaired[kind], (uint64_t)n, __ATOMIC_RELAXED);
}

void agent_heal(struct agent *ag)
{
	struct sync_repairs r;
	struct timespec now;
	int64_t programs, read;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (ag->dp.link_fd[0] < 0)
		return;
	/* The first pass one period after the first attach: the first apply
	 * has just written everything, and a pass holds a copy of the largest
	 * map's record for a moment. */
	if (!ag->heal_next)
		ag->heal_next = now.tv_sec + (time_t)ag->opts.resync_period;
	if (now.tv_sec < ag->heal_next)
		return;
	programs = datapath_heal_links(&ag->dp, ag->opts.bpffs, ag->opts.cgroup);
	if (ag->np_attached)
		programs += nodeport_heal(&ag->np, ag->opts.bpffs);
	read = sync_reconcile(ag->eng, &r);
	agent_count_repairs(REPAIR_PROGRAM, programs);
	agent_count_repairs(REPAIR_ENTRY_MISSING, (int64_t)r.missing);
	agent_count_repairs(REPAIR_ENTRY_ALTERED, (int64_t)r.altered);
	agent_count_repairs(REPAIR_ENTRY_UNKNOWN, (int64_t)r.unknown);
	log_debug("ferryd", "datapath checked in %.3f ms: %" PRId64 " programs put back, %"
		  PRId64 " map entries read, %" PRIu64 " missing, %" PRIu64 " altered, %" PRIu64
		  " unknown", agent_ms_since(&now), programs, read, r.missing, r.altered,
		  r.unknown);
	/* A pass that repaired something is followed by one at the next
	 * wake-up: it confirms the repair held. */
	programs += (int64_t)(r.missing + r.altered + r.unknown);
	if (programs > 0)
		sync_note_repairs(ag->eng, (uint64_t)programs);
	ag->heal_next = now.tv_sec + (programs ? 1 : (time_t)ag->opts.resync_period);
	/* Give the record's copies back to the system: a pass at 100,000
	 * Services holds tens of MB for a moment. */
	malloc_trim(0);
}

/* Backoff jitter and watch timeouts must differ from node to node, or the
 * agents of a cluster come back to a restarted API server in one wave. */
static void agent_seed(void)
{
	unsigned int seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	srandom(seed);
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

/* kubeconfig (--kubeconfig, $KUBECONFIG) or in-cluster, then --apiserver
 * in place of the server it names. */
static int agent_kube_config(struct agent *ag)
{
	struct kube_config *cfg = &ag->kube_cfg;
	char err[512];
	int rc;

	if (ag->opts.kubeconfig)
		rc = kube_config_from_kubeconfig(ag->opts.kubeconfig, cfg, err, sizeof(err));
	else
		rc = kube_config_in_cluster(KUBE_SA_DIR, cfg, err, sizeof(err));
	if (rc == 0 && ag->opts.apiserver)
		rc = kube_config_set_server(cfg, ag->opts.apiserver, err, sizeof(err));
	if (rc == 0)
		rc = kube_config_check_transport(cfg, ag->opts.allow_insecure_http, err, sizeof(err));
	if (rc < 0)
		log_error("ferryd", "%s", err);
	return rc;
}

static int agent_open_source(struct agent *ag)
{
	if (ag->opts.source == SOURCE_FILE) {
		ag->file = file_source_open(ag->opts.source_path);
		return ag->file ? 0 : -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || agent_kube_config(ag) < 0)
		return -1;
	ag->kube = kube_source_open(&ag->kube_cfg, ag->opts.node_name,
				    ag->opts.limits.max_per_service, ag->opts.max_event_bytes);
	return ag->kube ? 0 : -1;
}

/* Whether to use an optional kernel feature (off: its flag said so): said
 * once, in users' terms, when it is not. */
static bool agent_feature(enum feature f, bool off, const char *flag)
{
	char why[128];

	if (off)
		snprintf(why, sizeof(why), "%s off", flag);
	else if (features_kernel_has(f, why, sizeof(why))) {
		log_info("ferryd", "%s used", feature_names[f]);
		features_set_used(f, true);
		return true;
	}
	log_warn("ferryd", "%s not used (%s): %s", feature_names[f], why, features_loss(f));
	return false;
}

static int agent_start(struct agent *ag)
{
	bool reaper;

	if (features_check())
		return -1;
	reaper = agent_feature(FEATURE_UDP_REAPER, ag->opts.udp_reaper_off, "--udp-reaper");
	agent_feature(FEATURE_TCX, ag->opts.tcx_off, "--tcx");
	agent_feature(FEATURE_XDP_META, ag->opts.xdp == NP_XDP_OFF, "--xdp");
	if (mounts_ensure_bpffs_dir(ag->opts.bpffs) || lock_bpffs(ag->opts.bpffs))
		return -1;
	if (agent_open_source(ag) < 0)
		return -1;
	return datapath_load(&ag->dp, ag->opts.bpffs, &ag->opts.limits, reaper) ? -1 : 0;
}

/* The sync engine's least-conn hook (sync_set_least_conn_hook). */
static int agent_want_release(void *arg)
{
	struct agent *ag = arg;

	return datapath_want_release(&ag->dp, ag->opts.bpffs, ag->opts.cgroup);
}

int agent_datapath(struct agent *ag)
{
	struct agent_state last;

	if (datapath_maps(&ag->dp))
		return -1;
	/* Adopted maps serve the running programs: nothing is written to them
	 * before this ferryd's programs are known to load. Fresh maps are
	 * filled while the kernel verifies. */
	if (ag->dp.adopted && datapath_programs(&ag->dp))
		return -1;
	datapath_pinned_state(ag->opts.bpffs, &last);
	ag->eng = sync_new(&ag->dp.maps, &ag->opts.limits, &last);
	if (!ag->eng) {
		log_error("ferryd", "out of memory");
		return -1;
	}
	sync_set_lb_default(ag->eng, ag->opts.lb_algorithm);
	sync_set_least_conn_hook(ag->eng, agent_want_release, ag);
	if (ag->dp.adopted)
		sync_adopt(ag->eng);
	ag->hcnp = hcnp_new();
	if (!ag->hcnp) {
		log_error("ferryd", "out of memory");
		return -1;
	}
	if (packet_start(ag))
		return -1;
	return observe_start(ag);
}

static void agent_stop(struct agent *ag)
{
	observe_stop(ag);
	hcnp_free(ag->hcnp);
	nodeport_close(&ag->np);
	sync_free(ag->eng);
	/* The loader thread is joined; a datapath never loaded has no fds. */
	if (ag->dp.loader || ag->dp.maps_skel)
		datapath_close(&ag->dp);
	file_source_close(ag->file);
	kube_source_close(ag->kube);
	kube_config_free(&ag->kube_cfg);
	if (ag->opts.source == SOURCE_KUBE)
		curl_global_cleanup();
}

int main(int argc, char **argv)
{
	struct agent ag = { 0 };
	int ret;

	/* One heap for every thread: the loader and the stage writers are
	 * short-lived, and an arena of their own kept 7-14 MB after they ended
	 * (h8's measurement at 10,000 and 100,000 services). */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	agent_seed();
	ret = options_parse(argc, argv, &ag.opts);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (ag.opts.cleanup)
		return nodeport_cleanup(ag.opts.bpffs) | datapath_cleanup(ag.opts.bpffs) ? 1 : 0;
	log_info("ferryd", "node %s, source %s%s, cgroup %s, bpffs %s", ag.opts.node_name,
		 ag.opts.source == SOURCE_FILE ? "file:" : "k8s",
		 ag.opts.source == SOURCE_FILE ? ag.opts.source_path : "", ag.opts.cgroup,
		 ag.opts.bpffs);
	ret = agent_start(&ag);
	if (!ret)
		ret = ag.opts.source == SOURCE_FILE ? file_loop_run(&ag) : kube_loop_run(&ag);
	agent_stop(&ag);
	return ret ? 1 : 0;
}
