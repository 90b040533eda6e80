#include "datapath/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "ferry/maps.h"
#include "sock_lb.skel.h"

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';
	log_msg(level == LIBBPF_WARN ? LOG_WARN : LOG_DEBUG, "libbpf", "%s", line);
	return 0;
}

static struct bpf_map *skel_map(struct ferry_sock_lb *skel, enum dp_map i)
{
	struct bpf_map *maps[DP_MAP__COUNT] = {
		[DP_MAP_SERVICES] = skel->maps.ferry_services,
		[DP_MAP_SLOTS] = skel->maps.ferry_slots,
		[DP_MAP_BACKENDS] = skel->maps.ferry_backends,
		[DP_MAP_SK_REVNAT] = skel->maps.ferry_sk_revnat,
		[DP_MAP_STATS] = skel->maps.ferry_stats,
		[DP_MAP_STATE] = skel->maps.ferry_state,
	};
	return maps[i];
}

/* In dp_hook_names order. */
static struct bpf_program *skel_prog(struct ferry_sock_lb *skel, int hook)
{
	struct bpf_program *progs[DP_HOOK_COUNT] = {
		skel->progs.ferry_connect4, skel->progs.ferry_connect6,
		skel->progs.ferry_sendmsg4, skel->progs.ferry_sendmsg6,
		skel->progs.ferry_recvmsg4, skel->progs.ferry_recvmsg6,
		skel->progs.ferry_getpeername4, skel->progs.ferry_getpeername6,
	};
	return progs[hook];
}

/* Sockets opened under the previous ferryd keep their translation state. */
static void adopt_sk_storage(struct ferry_sock_lb *skel, const char *bpffs)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[512];
	int fd;

	pinned_map_path(bpffs, dp_map_names[DP_MAP_SK_REVNAT], path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	    info.type == BPF_MAP_TYPE_SK_STORAGE &&
	    info.value_size == sizeof(struct sock_revnat) &&
	    bpf_map__reuse_fd(skel->maps.ferry_sk_revnat, fd) == 0)
		log_info("datapath", "adopted socket state from %s", path);
	else
		log_warn("datapath", "socket state in %s has another layout; open sockets "
			 "lose reverse translation", path);
	close(fd);
}

int datapath_load(struct datapath *dp, const char *bpffs, const struct dp_limits *limits)
{
	struct ferry_sock_lb *skel;
	int err;

	memset(dp, 0, sizeof(*dp));
	libbpf_set_print(libbpf_log);
	skel = ferry_sock_lb__open();
	if (!skel) {
		err = -errno;
		log_error("datapath", "cannot open BPF object: %s", strerror(-err));
		return err;
	}
	/* Room for one VIP marker per service port in the worst case. */
	bpf_map__set_max_entries(skel->maps.ferry_services, 2 * limits->max_services);
	bpf_map__set_max_entries(skel->maps.ferry_slots,
				 limits->max_backends + limits->max_per_service);
	bpf_map__set_max_entries(skel->maps.ferry_backends, limits->max_backends);
	adopt_sk_storage(skel, bpffs);
	err = ferry_sock_lb__load(skel);
	if (err) {
		log_error("datapath", "cannot load BPF programs: %s", strerror(-err));
		ferry_sock_lb__destroy(skel);
		return err;
	}
	dp->skel = skel;
	for (int i = 0; i < DP_MAP__COUNT; i++)
		dp->maps.fd[i] = bpf_map__fd(skel_map(skel, i));
	return 0;
}

static int attach_all(struct datapath *dp, const char *cgroup)
{
	int cg = open(cgroup, O_RDONLY | O_DIRECTORY);

	if (cg < 0) {
		log_error("datapath", "cannot open cgroup %s: %s", cgroup, strerror(errno));
		return -errno;
	}
	for (int i = 0; i < DP_HOOK_COUNT; i++) {
		dp->links[i] = bpf_program__attach_cgroup(skel_prog(dp->skel, i), cg);
		if (!dp->links[i]) {
			int err = -errno;

			log_error("datapath", "cannot attach %s to %s: %s", dp_hook_names[i],
				  cgroup, strerror(-err));
			close(cg);
			return err;
		}
	}
	close(cg);
	return 0;
}

static int replace_pin(int fd, const char *path)
{
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return bpf_obj_pin(fd, path) ? -errno : 0;
}

int datapath_publish(struct datapath *dp, const char *bpffs, const char *cgroup)
{
	char path[512];
	int err = attach_all(dp, cgroup);

	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/links", bpffs);
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	/* Links first: unpinning an old link detaches it, and ours already run. */
	for (int i = 0; i < DP_HOOK_COUNT && !err; i++) {
		pinned_link_path(bpffs, dp_hook_names[i], path, sizeof(path));
		err = replace_pin(bpf_link__fd(dp->links[i]), path);
	}
	for (int i = 0; i < DP_MAP__COUNT && !err; i++) {
		pinned_map_path(bpffs, dp_map_names[i], path, sizeof(path));
		err = replace_pin(dp->maps.fd[i], path);
	}
	if (err)
		log_error("datapath", "cannot pin %s: %s", path, strerror(-err));
	else
		log_info("datapath", "attached %d programs to %s, pinned under %s",
			 DP_HOOK_COUNT, cgroup, bpffs);
	return err;
}

void datapath_close(struct datapath *dp)
{
	for (int i = 0; i < DP_HOOK_COUNT; i++) {
		if (!dp->links[i])
			continue;
		bpf_link__disconnect(dp->links[i]);
		bpf_link__destroy(dp->links[i]);
		dp->links[i] = NULL;
	}
	ferry_sock_lb__destroy(dp->skel);
	dp->skel = NULL;
}

uint64_t datapath_pinned_generation(const char *bpffs)
{
	struct agent_state st = { 0 };
	char path[512];
	__u32 zero = 0;
	int fd;

	pinned_map_path(bpffs, dp_map_names[DP_MAP_STATE], path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fd, &zero, &st))
		st.generation = 0;
	close(fd);
	return st.generation;
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
	snprintf(path, sizeof(path), "%s/links", bpffs);
	err |= remove_path(path, rmdir);
	for (int i = 0; i < DP_MAP__COUNT; i++) {
		pinned_map_path(bpffs, dp_map_names[i], path, sizeof(path));
		err |= remove_path(path, unlink);
	}
	err |= remove_path(bpffs, rmdir);
	return err ? -1 : 0;
}
