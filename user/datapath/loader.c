#include "datapath/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/fast_map.h"
#include "ferry/maps.h"
#include "reaper.skel.h"
#include "maps.skel.h"
#include "sock_lb.skel.h"

/* What the load running on this thread met, from libbpf's warnings (the
 * maps load on ferryd's thread, the programs on their own): the first map
 * that could not be created, the first program the kernel refused. */
static __thread struct dp_load_failure *load_failure;

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[256];
	va_list copy;

	if (level == LIBBPF_WARN && load_failure) {
		va_copy(copy, ap);
		vsnprintf(line, sizeof(line), fmt, copy);
		va_end(copy);
		dp_load_failure_note(load_failure, line);
	}
	log_vmsg(level == LIBBPF_WARN ? LOG_WARN : LOG_DEBUG, "libbpf", fmt, ap);
	return 0;
}

void dp_load_failure_note(struct dp_load_failure *f, const char *line)
{
	char name[sizeof(f->map)];
	int end = 0;

	if (!f->map[0] && sscanf(line, "libbpf: map '%63[^']': failed to create%n", name, &end) == 1 &&
	    end)
		memcpy(f->map, name, sizeof(name));
	end = 0;
	if (!f->prog[0] &&
	    sscanf(line, "libbpf: prog '%63[^']': BPF program load failed%n", name, &end) == 1 && end)
		memcpy(f->prog, name, sizeof(name));
}

/* The option that sizes a map, for the advice to lower it. */
static const char *map_option(const char *map)
{
	static const char *const options[][2] = {
		{ "ferry_services4", "--max-services" },
		{ "ferry_services6", "--max-services" },
		{ "ferry_slots", "--max-backends or --max-backends-per-service" },
		{ "ferry_backends", "--max-backends" },
		{ "ferry_revnat", "--max-backends or --max-backends-per-service" },
		{ "ferry_affinity", "--max-affinity" },
		{ "ferry_ct", "--max-ct" },
	};

	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (strcmp(map, options[i][0]) == 0)
			return options[i][1];
	return NULL;
}

void dp_load_failure_explain(const struct dp_load_failure *f, int err, char *out, size_t len)
{
	const char *option = map_option(f->map);

	if (f->map[0] && err == -EPERM)
		snprintf(out, len, "not permitted to create BPF map %s (%s): ferryd needs CAP_BPF",
			 f->map, strerror(-err));
	else if (f->map[0])
		snprintf(out, len, "cannot create BPF map %s (%s): the kernel would not give it the "
			 "memory its capacity takes%s%s", f->map, strerror(-err),
			 option ? "; lower " : "", option ? option : "");
	else if (f->prog[0] && err == -EPERM)
		snprintf(out, len, "not permitted to load BPF program %s (%s): ferryd needs CAP_BPF, "
			 "CAP_NET_ADMIN and CAP_PERFMON", f->prog, strerror(-err));
	else if (f->prog[0])
		snprintf(out, len, "the kernel's verifier refused BPF program %s (%s; its log is "
			 "above, component=libbpf): without CAP_PERFMON it refuses the pointer "
			 "arithmetic ferry's programs do; with it, this kernel lacks something the "
			 "program uses", f->prog, strerror(-err));
	else
		snprintf(out, len, "cannot load the BPF object: %s", strerror(-err));
}

/* Map i of an object that declares the maps (bpf/lib/maps.h). */
static struct bpf_map *obj_map(const struct bpf_object *obj, enum dp_map i)
{
	return bpf_object__find_map_by_name(obj, dp_map_names[i]);
}

/* In dp_hook_names order. */
static struct bpf_program *skel_prog(struct ferry_sock_lb *skel, int hook)
{
	struct bpf_program *progs[DP_HOOK_COUNT] = {
		skel->progs.ferry_connect4, skel->progs.ferry_connect6,
		skel->progs.ferry_sendmsg4, skel->progs.ferry_sendmsg6,
		skel->progs.ferry_recvmsg4, skel->progs.ferry_recvmsg6,
		skel->progs.ferry_getpeername4, skel->progs.ferry_getpeername6,
		skel->progs.ferry_sock_release,
	};
	return progs[hook];
}

/* Whether the pinned map fd is what want would create; why says otherwise. */
static bool map_matches(const struct bpf_map *want, int fd, char *why, size_t len)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &info_len)) {
		snprintf(why, len, "%s: unreadable", bpf_map__name(want));
		return false;
	}
	if (info.type != bpf_map__type(want) || info.key_size != bpf_map__key_size(want) ||
	    info.value_size != bpf_map__value_size(want)) {
		snprintf(why, len, "%s: key/value sizes %u/%u, this ferryd's %u/%u",
			 bpf_map__name(want), info.key_size, info.value_size,
			 bpf_map__key_size(want), bpf_map__value_size(want));
		return false;
	}
	if (info.max_entries != bpf_map__max_entries(want)) {
		snprintf(why, len, "%s: max_entries %u, this ferryd's %u", bpf_map__name(want),
			 info.max_entries, bpf_map__max_entries(want));
		return false;
	}
	if (info.map_flags != bpf_map__map_flags(want)) {
		snprintf(why, len, "%s: flags 0x%x, this ferryd's 0x%x", bpf_map__name(want),
			 info.map_flags, bpf_map__map_flags(want));
		return false;
	}
	return true;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* The socket state alone, when the other maps migrate. Whether it is kept. */
static bool adopt_sk_storage(struct ferry_maps *skel, int fd, const char *bpffs)
{
	char why[256];

	if (fd >= 0 && map_matches(skel->maps.ferry_sk_revnat, fd, why, sizeof(why)) &&
	    bpf_map__reuse_fd(skel->maps.ferry_sk_revnat, fd) == 0) {
		log_info("datapath", "adopted the socket state pinned under %s", bpffs);
		return true;
	}
	if (fd >= 0)
		log_warn("datapath", "socket state under %s has another layout (%s); open sockets "
			 "lose reverse translation", bpffs, why);
	return false;
}

/* Adopt every pinned map when all match, else only the socket state
 * (*sk_kept then says whether it was). */
static bool adopt_maps(struct ferry_maps *skel, const char *bpffs, bool *sk_kept)
{
	int fds[DP_MAP__COUNT], found = 0;
	struct agent_state st = { 0 };
	char path[512], why[256] = "";
	bool match = true;
	__u32 zero = 0;

	for (int i = 0; i < DP_MAP__COUNT; i++) {
		pinned_map_path(bpffs, dp_map_names[i], path, sizeof(path));
		fds[i] = bpf_obj_get(path);
		found += fds[i] >= 0;
		if (fds[i] < 0 && match)
			snprintf(why, sizeof(why), "%s is not pinned", dp_map_names[i]);
		match = match && fds[i] >= 0 && map_matches(obj_map(skel->obj, i), fds[i], why, sizeof(why));
	}
	if (match && (bpf_map_lookup_elem(fds[DP_MAP_STATE], &zero, &st) ||
		      st.layout_version != FERRY_LAYOUT_VERSION)) {
		snprintf(why, sizeof(why), "layout version %u, this ferryd's %u", st.layout_version,
			 FERRY_LAYOUT_VERSION);
		match = false;
	}
	for (int i = 0; match && i < DP_MAP__COUNT; i++)
		match = bpf_map__reuse_fd(obj_map(skel->obj, i), fds[i]) == 0;
	if (match)
		log_info("datapath", "adopting the maps pinned under %s", bpffs);
	else if (found)
		log_warn("datapath", "pinned maps under %s differ (%s): migrating to new maps, filled "
			 "from the source and swapped in", bpffs, why);
	*sk_kept = !match && found && adopt_sk_storage(skel, fds[DP_MAP_SK_REVNAT], bpffs);
	close_all(fds, DP_MAP__COUNT);
	return match;
}

/* Load obj; on failure, say what failed. */
static int load_object(struct bpf_object *obj)
{
	struct dp_load_failure failure = { 0 };
	char why[512];
	int err;

	load_failure = &failure;
	err = bpf_object__load(obj);
	load_failure = NULL;
	if (err) {
		dp_load_failure_explain(&failure, err, why, sizeof(why));
		log_error("datapath", "%s", why);
	}
	return err;
}

/* The loader thread: it creates (or adopts) the maps, says so, loads the
 * programs, says so, then loads the UDP reaper's object. Each takes the
 * kernel tens to hundreds of ms and needs nothing from the source, which
 * ferryd reads meanwhile. The reaper's (a parse of the kernel's BTF of its
 * own, 5-10 MB for a moment) waits until ferryd has published the programs
 * (datapath_reaper_load): the first fill's memory is freed by then, and
 * nothing before waits for it (datapath_reaper). */
struct dp_loader {
	pthread_t thread;
	char bpffs[512];
	struct dp_limits limits;
	bool udp_reaper;
	pthread_mutex_t lock;
	pthread_cond_t progress;
	bool maps_done;   /* under lock: the maps are made, or failed */
	int maps_err;     /* under lock */
	bool progs_done;  /* under lock: the programs are loaded, or failed */
	int progs_err;    /* under lock */
	bool reaper_go;   /* under lock: load the reaper (published), or not */
	int reaper_skip;  /* under lock: not (ferryd stops before it publishes) */
	struct ferry_reaper *reaper; /* the thread's until joined */
	int reaper_err;   /* read once joined */
};

uint32_t dp_limits_backends_held(const struct dp_limits *limits)
{
	return limits->max_backends + limits->max_per_service;
}

/* ferry_fast4's entries: a power of two, two per service port, so that
 * the table is at most half full. With 4 probes a full table would leave
 * out about a sixth of the ClusterIP ports, a half-full one 3 %. */
static uint32_t fast_slots(uint32_t max_services)
{
	uint32_t slots = 64;

	while (slots / 2 < max_services && slots < (1u << 30))
		slots <<= 1;
	return slots;
}

/* ferry_fast4's writer; an adopted table is checked against the adopted
 * ferry_services4 first. */
static int open_fast(struct datapath *dp)
{
	dp->maps.fast = fast_map_open(dp->maps.fd[DP_MAP_FAST4], dp->adopted);
	if (!dp->maps.fast)
		return -EIO;
	if (dp->adopted)
		return fast_map_rebuild(dp->maps.fast, dp->maps.fd[DP_MAP_SERVICES4]);
	return 0;
}

/* The maps' object (bpf/maps.bpf.c): sized, adopting what is pinned. */
static int create_maps(struct datapath *dp, const char *bpffs, const struct dp_limits *limits)
{
	struct ferry_maps *skel = ferry_maps__open();
	struct peer_mark mark = { .seen = 1 };
	bool sk_kept = false;
	__u32 zero = 0;
	int err;

	if (!skel) {
		log_error("datapath", "cannot open BPF object: %s", strerror(errno));
		return -errno;
	}
	dp->maps_skel = skel;
	/* Room for one VIP marker per service port in the worst case, all of
	 * one family. */
	bpf_map__set_max_entries(skel->maps.ferry_services4, 2 * limits->max_services);
	bpf_map__set_max_entries(skel->maps.ferry_services6, 2 * limits->max_services);
	bpf_map__set_max_entries(skel->maps.ferry_fast4, fast_slots(limits->max_services));
	bpf_map__set_max_entries(skel->maps.ferry_slots, dp_limits_backends_held(limits));
	bpf_map__set_max_entries(skel->maps.ferry_revnat, dp_limits_backends_held(limits));
	bpf_map__set_max_entries(skel->maps.ferry_affinity, limits->max_affinity);
	bpf_map__set_max_entries(skel->maps.ferry_ct, limits->max_ct);
	bpf_map__set_max_entries(skel->maps.ferry_source_ranges, limits->max_source_ranges);
	bpf_map__set_max_entries(skel->maps.ferry_node_addrs, limits->max_node_addrs);
	/* Indexed by svc_id, whose space is the sync engine's (user/sync/ids.h). */
	bpf_map__set_max_entries(skel->maps.ferry_rr, 4 * limits->max_services);
	bpf_map__set_max_entries(skel->maps.ferry_maglev,
				 limits->max_maglev_entries / FERRY_MAGLEV_PER_CELL);
	bpf_map__set_max_entries(skel->maps.ferry_svc_names, 2 * limits->max_services);
	/* By backend_id, whose space is the engine's too. */
	bpf_map__set_max_entries(skel->maps.ferry_backends, 4 * limits->max_backends);
	bpf_map__set_max_entries(skel->maps.ferry_conns, 4 * limits->max_backends);
	dp->adopted = adopt_maps(skel, bpffs, &sk_kept);
	err = load_object(skel->obj);
	for (int i = 0; i < DP_MAP__COUNT && !err; i++)
		dp->maps.fd[i] = bpf_map__fd(obj_map(skel->obj, i));
	if (!err)
		err = open_fast(dp);
	/* Kept socket state may hold peer entries the new mark never saw. */
	if (!err && sk_kept &&
	    bpf_map_update_elem(dp->maps.fd[DP_MAP_PEER_MARK], &zero, &mark, BPF_ANY)) {
		err = -errno;
		log_error("datapath", "cannot set ferry_peer_mark: %s", strerror(errno));
	}
	return err;
}

/* The socket LB's programs, on the maps' object's maps. */
static int open_programs(struct datapath *dp)
{
	struct ferry_sock_lb *skel = ferry_sock_lb__open();
	int err;

	if (!skel) {
		log_error("datapath", "cannot open BPF object: %s", strerror(errno));
		return -errno;
	}
	dp->skel = skel;
	for (int i = 0; i < DP_MAP__COUNT; i++) {
		err = bpf_map__reuse_fd(obj_map(skel->obj, i), dp->maps.fd[i]);
		if (err) {
			log_error("datapath", "cannot give %s to the programs: %s", dp_map_names[i],
				  strerror(-err));
			return err;
		}
	}
	skel->rodata->ferry_fast_mask = bpf_map__max_entries(dp->maps_skel->maps.ferry_fast4) - 1;
	return 0;
}

/* The UDP reaper's object, on the same maps, found by name. Its kfunc is
 * resolved only here: ferryd loads it where the kernel has it. */
static int load_reaper(const struct datapath *dp, struct dp_loader *l)
{
	struct ferry_reaper *skel = ferry_reaper__open();
	struct bpf_map *map;
	int err;

	if (!skel) {
		log_error("datapath", "cannot open the UDP reaper's BPF object: %s", strerror(errno));
		return -errno;
	}
	l->reaper = skel;
	for (int i = 0; i < DP_MAP__COUNT; i++) {
		map = bpf_object__find_map_by_name(skel->obj, dp_map_names[i]);
		err = map ? bpf_map__reuse_fd(map, dp->maps.fd[i]) : 0;
		if (err) {
			log_error("datapath", "cannot give %s to the UDP reaper: %s", dp_map_names[i],
				  strerror(-err));
			return err;
		}
	}
	return load_object(skel->obj);
}

/* Say that a stage is done (*done, *err under the lock). */
static void loader_signal(struct dp_loader *l, bool *done, int *stage_err, int err)
{
	pthread_mutex_lock(&l->lock);
	*done = true;
	*stage_err = err;
	pthread_cond_broadcast(&l->progress);
	pthread_mutex_unlock(&l->lock);
}

/* Wait for a stage; its error. */
static int loader_wait(struct dp_loader *l, const bool *done, const int *stage_err)
{
	int err;

	pthread_mutex_lock(&l->lock);
	while (!*done)
		pthread_cond_wait(&l->progress, &l->lock);
	err = *stage_err;
	pthread_mutex_unlock(&l->lock);
	return err;
}

/* The thread reads dp->maps and dp->skel once ferryd's thread has let
 * them be (maps made, programs loaded) and writes only l->reaper after. */
static void *load_datapath(void *arg)
{
	struct datapath *dp = arg;
	struct dp_loader *l = dp->loader;
	int err = create_maps(dp, l->bpffs, &l->limits);

	if (!err)
		err = open_programs(dp);
	loader_signal(l, &l->maps_done, &l->maps_err, err);
	if (!err)
		err = load_object(dp->skel->obj);
	loader_signal(l, &l->progs_done, &l->progs_err, err);
	if (!err && l->udp_reaper && !loader_wait(l, &l->reaper_go, &l->reaper_skip))
		l->reaper_err = load_reaper(dp, l);
	return NULL;
}

int datapath_load(struct datapath *dp, const char *bpffs, const struct dp_limits *limits,
		  bool udp_reaper)
{
	struct dp_loader *l = calloc(1, sizeof(*l));
	sigset_t all, mask;
	int err;

	memset(dp, 0, sizeof(*dp));
	for (int i = 0; i < DP_HOOK_COUNT; i++)
		dp->link_fd[i] = -1;
	if (!l)
		return -ENOMEM;
	snprintf(l->bpffs, sizeof(l->bpffs), "%s", bpffs);
	l->limits = *limits;
	l->udp_reaper = udp_reaper;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->progress, NULL);
	libbpf_set_print(libbpf_log);
	dp->loader = l;
	/* Signals are ferryd's loop's (a signalfd): the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &mask);
	err = pthread_create(&l->thread, NULL, load_datapath, dp);
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
	if (err) {
		log_error("datapath", "cannot start loading the datapath: %s", strerror(err));
		dp->loader = NULL;
		free(l);
		return -err;
	}
	return 0;
}

int datapath_maps(struct datapath *dp)
{
	if (!dp->loader)
		return dp->maps_skel ? 0 : -ENOENT;
	return loader_wait(dp->loader, &dp->loader->maps_done, &dp->loader->maps_err);
}

/* Join the loader thread: the reaper's object is ferryd's thread's from
 * now on. Returns the reaper's load's result. */
static int join_loader(struct datapath *dp)
{
	struct dp_loader *l = dp->loader;
	int err;

	pthread_join(l->thread, NULL);
	err = l->reaper_err;
	dp->reaper = l->reaper;
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->progress);
	free(l);
	dp->loader = NULL;
	return err;
}

int datapath_programs(struct datapath *dp)
{
	struct dp_loader *l = dp->loader;
	int err;

	if (!l)
		return dp->skel ? 0 : -ENOENT;
	err = loader_wait(l, &l->progs_done, &l->progs_err);
	/* Nothing more to wait for: the thread ends here. */
	if (err || !l->udp_reaper)
		join_loader(dp);
	if (err) {
		ferry_sock_lb__destroy(dp->skel);
		dp->skel = NULL;
	}
	return err;
}

static int replace_pin(int fd, const char *path)
{
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return bpf_obj_pin(fd, path) ? -errno : 0;
}

/* Swap the program of the pinned link in place when it sits on this cgroup:
 * the hook never runs without a program. Returns the link's fd, held, or
 * -1 when there is none to adopt. */
static int adopt_pinned_link(const char *path, __u64 cgroup_id, int prog_fd)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return -1;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_LINK_TYPE_CGROUP &&
	    info.cgroup.cgroup_id == cgroup_id && bpf_link_update(fd, prog_fd, NULL) == 0)
		return fd;
	close(fd);
	return -1;
}

/* A new link on the cgroup, pinned at path in place of what is there (an
 * old ferryd's link, which its unpinning detaches). Returns its fd, held,
 * or -errno (logged). */
static int attach_hook(struct datapath *dp, int hook, int cg_fd, const char *path)
{
	struct bpf_program *prog = skel_prog(dp->skel, hook);
	int fd, err;

	fd = bpf_link_create(bpf_program__fd(prog), cg_fd, bpf_program__expected_attach_type(prog),
			     NULL);
	if (fd < 0) {
		err = -errno;
		log_error("datapath", "cannot attach %s: %s", dp_hook_names[hook], strerror(-err));
		return err;
	}
	err = replace_pin(fd, path);
	if (err) {
		log_error("datapath", "cannot pin %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static void hold_link(struct datapath *dp, int hook, int fd)
{
	if (dp->link_fd[hook] >= 0)
		close(dp->link_fd[hook]);
	dp->link_fd[hook] = fd;
}

/* sock_release while nothing asked for it: a pinned link on adopted maps
 * stays (its sockets may still count in ferry_conns); one on new maps
 * counts nothing and goes. */
static int keep_release(struct datapath *dp, __u64 cgroup_id, const char *bpffs)
{
	int prog_fd = bpf_program__fd(skel_prog(dp->skel, DP_HOOK_RELEASE));
	char path[512];
	int fd;

	pinned_link_path(bpffs, dp_hook_names[DP_HOOK_RELEASE], path, sizeof(path));
	fd = dp->adopted ? adopt_pinned_link(path, cgroup_id, prog_fd) : -1;
	if (fd >= 0) {
		hold_link(dp, DP_HOOK_RELEASE, fd);
		return 0;
	}
	if (unlink(path) && errno != ENOENT) {
		log_error("datapath", "cannot unpin %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Adopt the pinned link, else attach beside it and unpin it. */
static int publish_hook(struct datapath *dp, int hook, int cg_fd, __u64 cgroup_id,
			const char *bpffs)
{
	char path[512];
	int fd;

	pinned_link_path(bpffs, dp_hook_names[hook], path, sizeof(path));
	fd = adopt_pinned_link(path, cgroup_id, bpf_program__fd(skel_prog(dp->skel, hook)));
	if (fd < 0)
		fd = attach_hook(dp, hook, cg_fd, path);
	if (fd < 0)
		return fd;
	hold_link(dp, hook, fd);
	return 0;
}

static int publish_maps(struct datapath *dp, const char *bpffs)
{
	char path[512];

	for (int i = 0; i < DP_MAP__COUNT && !dp->adopted; i++) {
		int err;

		pinned_map_path(bpffs, dp_map_names[i], path, sizeof(path));
		err = replace_pin(dp->maps.fd[i], path);
		if (err) {
			log_error("datapath", "cannot pin %s: %s", path, strerror(-err));
			return err;
		}
	}
	for (int i = 0; i < DP_RETIRED_MAP_COUNT && !dp->adopted; i++) {
		pinned_map_path(bpffs, dp_retired_map_names[i], path, sizeof(path));
		if (unlink(path) && errno != ENOENT)
			log_warn("datapath", "cannot unpin %s: %s", path, strerror(errno));
	}
	return 0;
}

/* Pinned while this ferryd has the reaper, so that status can tell. */
static int publish_reap_link(const struct datapath *dp, const char *bpffs)
{
	char path[512];
	int err = 0;

	pinned_link_path(bpffs, DP_REAP_LINK, path, sizeof(path));
	if (dp->reap_link)
		err = replace_pin(bpf_link__fd(dp->reap_link), path);
	else if (unlink(path) && errno != ENOENT)
		err = -errno;
	if (err)
		log_error("datapath", "cannot %s %s: %s", dp->reap_link ? "pin" : "unpin", path,
			  strerror(-err));
	return err;
}

int datapath_publish(struct datapath *dp, const char *bpffs, const char *cgroup)
{
	int cg_fd;
	char path[512];
	struct stat st;
	int err = datapath_programs(dp);

	if (err)
		return err;
	/* A cgroup v2 directory's inode number is its cgroup ID. */
	cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY);
	if (cg_fd < 0 || fstat(cg_fd, &st)) {
		log_error("datapath", "cannot open cgroup %s: %s", cgroup, strerror(errno));
		if (cg_fd >= 0)
			close(cg_fd);
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/links", bpffs);
	if (mkdir(path, 0700) && errno != EEXIST)
		err = -errno;
	dp->cgroup_id = st.st_ino;
	for (int i = 0; i < DP_HOOK_COUNT && !err; i++)
		err = i == DP_HOOK_RELEASE && !dp->release_wanted ?
			      keep_release(dp, st.st_ino, bpffs) :
			      publish_hook(dp, i, cg_fd, st.st_ino, bpffs);
	close(cg_fd);
	if (!err)
		err = publish_maps(dp, bpffs);
	/* A reaper still to load pins its link when taken (datapath_reaper). */
	if (!err && !dp->loader)
		err = publish_reap_link(dp, bpffs);
	if (!err)
		log_info("datapath", "%d programs serving %s, pinned under %s%s",
			 DP_HOOK_COUNT - (dp->link_fd[DP_HOOK_RELEASE] < 0), cgroup, bpffs,
			 dp->link_fd[DP_HOOK_RELEASE] < 0 ?
				 " (sock_release waits for a least-conn service)" : "");
	return err;
}

int datapath_want_release(struct datapath *dp, const char *bpffs, const char *cgroup)
{
	int cg_fd, err;

	dp->release_wanted = true;
	if (!dp->cgroup_id || dp->link_fd[DP_HOOK_RELEASE] >= 0)
		return 0;
	cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		err = -errno;
		log_error("datapath", "cannot open cgroup %s: %s", cgroup, strerror(-err));
		return err;
	}
	err = publish_hook(dp, DP_HOOK_RELEASE, cg_fd, dp->cgroup_id, bpffs);
	close(cg_fd);
	if (!err)
		log_info("datapath", "sock_release attached to %s: a least-conn service counts "
			 "connections until their sockets close", cgroup);
	return err;
}

void datapath_reaper_load(struct datapath *dp)
{
	if (dp->loader)
		loader_signal(dp->loader, &dp->loader->reaper_go, &dp->loader->reaper_skip, 0);
}

int datapath_reaper(struct datapath *dp, const char *bpffs)
{
	int err;

	if (!dp->loader)
		return dp->reaper_err;
	/* Started, should no one have (ferryd waits for it now). */
	datapath_reaper_load(dp);
	err = join_loader(dp);
	if (!err) {
		dp->reap_link = bpf_program__attach_iter(dp->reaper->progs.ferry_udp_reap, NULL);
		if (!dp->reap_link) {
			err = -errno;
			log_error("datapath", "cannot create the UDP socket iterator: %s",
				  strerror(-err));
		}
	}
	if (!err)
		err = publish_reap_link(dp, bpffs);
	if (err) {
		bpf_link__destroy(dp->reap_link);
		dp->reap_link = NULL;
		ferry_reaper__destroy(dp->reaper);
		dp->reaper = NULL;
	}
	dp->reaper_err = err;
	return err;
}

static __u32 prog_id_of(int prog_fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(prog_fd, &info, &len) ? 0 : info.id;
}

/* One held link: attached again when it left the cgroup (a detached link
 * reads cgroup 0), its program put back when another was swapped in.
 * Returns 1 when repaired, 0 when it serves, -errno. */
static int heal_hook(struct datapath *dp, int hook, const char *bpffs, const char *cgroup)
{
	int prog_fd = bpf_program__fd(skel_prog(dp->skel, hook));
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[512];
	int cg_fd, fd;

	if (bpf_obj_get_info_by_fd(dp->link_fd[hook], &info, &len))
		return -errno;
	if (info.cgroup.cgroup_id == dp->cgroup_id && info.prog_id == prog_id_of(prog_fd))
		return 0;
	if (info.cgroup.cgroup_id == dp->cgroup_id) {
		log_warn("datapath", "%s: another program (id %u) was put in ferry's link on %s: "
			 "ferry's put back", dp_hook_names[hook], info.prog_id, cgroup);
		return bpf_link_update(dp->link_fd[hook], prog_fd, NULL) ? -errno : 1;
	}
	log_warn("datapath", "%s: ferry's program was detached from %s (link %u): attaching "
		 "it again", dp_hook_names[hook], cgroup, info.id);
	cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return -errno;
	pinned_link_path(bpffs, dp_hook_names[hook], path, sizeof(path));
	fd = attach_hook(dp, hook, cg_fd, path);
	close(cg_fd);
	if (fd < 0)
		return fd;
	hold_link(dp, hook, fd);
	return 1;
}

int datapath_heal_links(struct datapath *dp, const char *bpffs, const char *cgroup)
{
	int repaired = 0;

	for (int i = 0; i < DP_HOOK_COUNT; i++) {
		int r = dp->link_fd[i] >= 0 ? heal_hook(dp, i, bpffs, cgroup) : 0;

		if (r < 0)
			log_error("datapath", "%s: cannot check or repair its link on %s: %s",
				  dp_hook_names[i], cgroup, strerror(-r));
		repaired += r > 0;
	}
	return repaired;
}

void datapath_close(struct datapath *dp)
{
	for (int i = 0; i < DP_HOOK_COUNT; i++) {
		if (dp->link_fd[i] >= 0)
			close(dp->link_fd[i]);
		dp->link_fd[i] = -1;
	}
	if (dp->loader) {
		/* Without a publish, the reaper's load never starts. */
		loader_signal(dp->loader, &dp->loader->reaper_go, &dp->loader->reaper_skip, 1);
		join_loader(dp);
	}
	bpf_link__destroy(dp->reap_link);
	dp->reap_link = NULL;
	ferry_reaper__destroy(dp->reaper);
	dp->reaper = NULL;
	ferry_sock_lb__destroy(dp->skel);
	dp->skel = NULL;
	ferry_maps__destroy(dp->maps_skel);
	dp->maps_skel = NULL;
	fast_map_free(dp->maps.fast);
	dp->maps.fast = NULL;
}

void datapath_pinned_state(const char *bpffs, struct agent_state *out)
{
	/* The value as another layout wrote it: read whole, taken as far as
	 * it goes (older layouts end before the ID counters). */
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info), zero = 0;
	char value[1024] = { 0 };
	char path[512];
	int fd;

	memset(out, 0, sizeof(*out));
	pinned_map_path(bpffs, dp_map_names[DP_MAP_STATE], path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.value_size <= sizeof(value) &&
	    bpf_map_lookup_elem(fd, &zero, value) == 0)
		memcpy(out, value, info.value_size < sizeof(*out) ? info.value_size : sizeof(*out));
	close(fd);
}

static int remove_path(const char *path, int (*fn)(const char *))
{
	if (fn(path) == 0 || errno == ENOENT)
		return 0;
	log_error("datapath", "cannot remove %s: %s", path, strerror(errno));
	return -errno;
}

int datapath_cleanup(const char *bpffs)
{
	char path[512];
	int err = 0;

	for (int i = 0; i < DP_HOOK_COUNT; i++) {
		pinned_link_path(bpffs, dp_hook_names[i], path, sizeof(path));
		err |= remove_path(path, unlink);
	}
	pinned_link_path(bpffs, DP_REAP_LINK, path, sizeof(path));
	err |= remove_path(path, unlink);
	snprintf(path, sizeof(path), "%s/links", bpffs);
	err |= remove_path(path, rmdir);
	for (int i = 0; i < DP_MAP__COUNT; i++) {
		pinned_map_path(bpffs, dp_map_names[i], path, sizeof(path));
		err |= remove_path(path, unlink);
	}
	for (int i = 0; i < DP_RETIRED_MAP_COUNT; i++) {
		pinned_map_path(bpffs, dp_retired_map_names[i], path, sizeof(path));
		err |= remove_path(path, unlink);
	}
	err |= remove_path(bpffs, rmdir);
	return err ? -1 : 0;
}
