#include "datapath/nodeport.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_link.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/features.h"
#include "nodeport_tc.skel.h"
#include "nodeport_xdp.skel.h"

/* Fixed ABI the build's UAPI headers (6.1) predate (features.h). */
#define NP_BPF_LINK_TYPE_TCX 11
/* 10 ms each: a released link's device is free again within a second. */
#define NP_BUSY_TRIES 100

enum np_hook {
	NP_HOOK_XDP,
	NP_HOOK_TC_INGRESS,
	NP_HOOK_TC_EGRESS,
	NP_HOOK__COUNT,
};

/* Pin name prefixes: <bpffs>/links/<prefix><ifname>. */
static const char *const hook_prefix[NP_HOOK__COUNT] = { "xdp-", "tc-ingress-", "tc-egress-" };
static const char *const hook_name[NP_HOOK__COUNT] = { "XDP", "tc ingress", "tc egress" };

const char *nodeport_mode_name(enum np_xdp_mode mode)
{
	static const char *const names[] = { "native", "generic", "off" };

	return names[mode];
}

/* Every map of obj that the socket-LB object also has is that one. */
static int reuse_maps(struct bpf_object *obj, const struct dp_maps *maps)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj)
		for (int i = 0; i < DP_MAP__COUNT; i++) {
			int err;

			if (strcmp(bpf_map__name(m), dp_map_names[i]) != 0)
				continue;
			err = bpf_map__reuse_fd(m, maps->fd[i]);
			if (err)
				return err;
		}
	return 0;
}

static int load_xdp(struct nodeport *np, const struct dp_maps *maps)
{
	int err;

	np->xdp = ferry_nodeport_xdp__open();
	if (!np->xdp)
		return -errno;
	/* Probed at start (ferryd's log says what is lost without it). */
	np->xdp_meta = features_used(FEATURE_XDP_META);
	np->xdp->rodata->xdp_meta = np->xdp_meta;
	err = reuse_maps(np->xdp->obj, maps);
	return err ? err : ferry_nodeport_xdp__load(np->xdp);
}

static int load_tc(struct nodeport *np, const struct dp_maps *maps)
{
	int err;

	np->tc = ferry_nodeport_tc__open();
	if (!np->tc)
		return -errno;
	/* With XDP on, XDP does ingress's work but for the packets it hands
	 * over (a neighbour to resolve, bpf/lib/nodeport.h), marked. Unmarked,
	 * tc takes every packet XDP passes: those XDP translated are to a
	 * backend, which no frontend or flow of tc's matches. */
	np->tc->rodata->xdp_first = np->mode != NP_XDP_OFF && np->xdp_meta;
	err = reuse_maps(np->tc->obj, maps);
	return err ? err : ferry_nodeport_tc__load(np->tc);
}

int nodeport_load(struct nodeport *np, const struct dp_maps *maps, enum np_xdp_mode mode,
		  bool tcx)
{
	int err = 0;

	memset(np, 0, sizeof(*np));
	np->mode = mode;
	np->tcx = tcx;
	if (mode != NP_XDP_OFF)
		err = load_xdp(np, maps);
	if (!err)
		err = load_tc(np, maps);
	if (err) {
		log_error("nodeport", "cannot load the per-packet programs: %s", strerror(-err));
		nodeport_close(np);
	}
	return err;
}

/* The program a hook runs. */
static int hook_prog_fd(const struct nodeport *np, enum np_hook hook)
{
	switch (hook) {
	case NP_HOOK_XDP:
		return bpf_program__fd(np->xdp->progs.ferry_xdp_nodeport);
	case NP_HOOK_TC_INGRESS:
		return bpf_program__fd(np->tc->progs.ferry_tc_ingress);
	default:
		return bpf_program__fd(np->tc->progs.ferry_tc_egress);
	}
}

static void hook_path(const char *bpffs, enum np_hook hook, const char *dev, char *out,
		      size_t len)
{
	char name[64];

	snprintf(name, sizeof(name), "%s%s", hook_prefix[hook], dev);
	pinned_link_path(bpffs, name, out, len);
}

/* The XDP mode attached on ifindex, as np_xdp_mode; NP_XDP_OFF when none. */
static enum np_xdp_mode xdp_attached_mode(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return NP_XDP_OFF;
	if (q.attach_mode == XDP_ATTACHED_DRV)
		return NP_XDP_NATIVE;
	return q.attach_mode == XDP_ATTACHED_SKB ? NP_XDP_GENERIC : NP_XDP_OFF;
}

/* Whether the link pinned at fd sits on this hook of ifindex (and, for XDP,
 * in mode). The 6.1 headers lack info.tcx; it has info.xdp's place, with
 * the attach type after the ifindex. */
static bool link_fits(int fd, enum np_hook hook, int ifindex, enum np_xdp_mode mode)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info), tcx[2];

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;
	memcpy(tcx, &info.xdp, sizeof(tcx));
	if (hook == NP_HOOK_XDP)
		return info.type == BPF_LINK_TYPE_XDP && tcx[0] == (__u32)ifindex &&
		       xdp_attached_mode(ifindex) == mode;
	return info.type == NP_BPF_LINK_TYPE_TCX && tcx[0] == (__u32)ifindex &&
	       tcx[1] == (hook == NP_HOOK_TC_INGRESS ? FEATURE_BPF_TCX_INGRESS : FEATURE_BPF_TCX_EGRESS);
}

/* Swap the program of a fitting pinned link in place; a pinned link that
 * does not fit (another device of that name, another mode, detached) is
 * unpinned, which detaches it. Returns the link's fd, held, or -1. */
static int adopt_link(const char *path, enum np_hook hook, int ifindex, enum np_xdp_mode mode,
		      int prog_fd)
{
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return -1;
	if (link_fits(fd, hook, ifindex, mode) && bpf_link_update(fd, prog_fd, NULL) == 0)
		return fd;
	close(fd);
	unlink(path);
	return -1;
}

/* A new link on the hook (XDP in dev's mode), pinned. Returns its fd, held,
 * or -errno. */
static int create_link(const char *path, enum np_hook hook, struct np_device *dev, int prog_fd)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	enum bpf_attach_type type = BPF_XDP;
	int fd, err;

	if (hook == NP_HOOK_XDP)
		opts.flags = dev->xdp == NP_XDP_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	else
		type = hook == NP_HOOK_TC_INGRESS ? FEATURE_BPF_TCX_INGRESS : FEATURE_BPF_TCX_EGRESS;
	fd = bpf_link_create(prog_fd, dev->ifindex, type, hook == NP_HOOK_XDP ? &opts : NULL);
	/* A link just unpinned (another mode) is released by deferred work:
	 * its device still holds it for a moment. */
	for (int i = 0; fd < 0 && (errno == EBUSY || errno == EEXIST) && hook == NP_HOOK_XDP &&
			i < NP_BUSY_TRIES; i++) {
		usleep(10000);
		fd = bpf_link_create(prog_fd, dev->ifindex, type, &opts);
	}
	if (fd < 0)
		return -errno;
	if (bpf_obj_pin(fd, path) == 0)
		return fd;
	err = -errno;
	close(fd);
	return err;
}

static enum np_xdp_mode warn_generic(const struct np_device *dev)
{
	log_warn("nodeport", "%s: the driver has no native XDP; XDP runs in generic mode",
		 dev->name);
	return NP_XDP_GENERIC;
}

/* ferry's clsact filter on a tc hook of ifindex. */
static void filter_of(int ifindex, enum np_hook hook, struct bpf_tc_hook *h, struct bpf_tc_opts *o)
{
	memset(h, 0, sizeof(*h));
	memset(o, 0, sizeof(*o));
	h->sz = sizeof(*h);
	h->ifindex = ifindex;
	h->attach_point = hook == NP_HOOK_TC_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS;
	o->sz = sizeof(*o);
	o->handle = NP_TC_HANDLE;
	o->priority = NP_TC_PRIORITY;
}

/* Put prog_fd in ferry's filter, replacing the one there in place. */
static int attach_filter(enum np_hook hook, const struct np_device *dev, int prog_fd)
{
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	struct bpf_tc_hook h;
	struct bpf_tc_opts o;
	int err;

	filter_of(dev->ifindex, hook, &h, &o);
	err = bpf_tc_hook_create(&h);
	libbpf_set_print(print); /* EEXIST (a clsact qdisc there) is no warning */
	if (err && err != -EEXIST)
		return err;
	o.prog_fd = prog_fd;
	o.flags = BPF_TC_F_REPLACE;
	return bpf_tc_attach(&h, &o);
}

/* Remove ferry's filter from a tc hook, if it has one. Most hooks have
 * none, nor a clsact qdisc: libbpf would log the kernel's answer as a
 * warning each time. */
static void detach_filter(int ifindex, enum np_hook hook)
{
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	struct bpf_tc_hook h;
	struct bpf_tc_opts o;

	filter_of(ifindex, hook, &h, &o);
	bpf_tc_detach(&h, &o);
	libbpf_set_print(print);
}

/* A tc hook without tcx: the filter, then the tcx link of a ferryd that had
 * them goes (a moment with both: each lets through what it does not
 * translate). */
static int attach_tc_filter(const char *path, enum np_hook hook, struct np_device *dev,
			    int prog_fd)
{
	int err = attach_filter(hook, dev, prog_fd);

	if (!err && unlink(path) == 0)
		log_info("nodeport", "%s: %s tcx link replaced by a clsact filter", dev->name,
			 hook_name[hook]);
	return err;
}

/* Returns the link's fd, held, or -errno. */
static int attach_link(const char *path, enum np_hook hook, struct np_device *dev, int prog_fd)
{
	int fd = adopt_link(path, hook, dev->ifindex, dev->xdp, prog_fd);

	if (fd >= 0)
		return fd;
	fd = create_link(path, hook, dev, prog_fd);
	if (fd == -EOPNOTSUPP && hook == NP_HOOK_XDP && dev->xdp == NP_XDP_NATIVE) {
		dev->xdp = warn_generic(dev);
		fd = create_link(path, hook, dev, prog_fd);
	}
	return fd;
}

/* The link now serving a hook of dev (-1: none); the one held before is
 * closed (pinned, or defunct). */
static void hold_link(struct np_device *dev, enum np_hook hook, int fd)
{
	if (dev->link_fd[hook] >= 0)
		close(dev->link_fd[hook]);
	dev->link_fd[hook] = fd;
}

static int attach_hook(const char *bpffs, const struct nodeport *np, enum np_hook hook,
		       struct np_device *dev, int prog_fd)
{
	char path[512];
	int err;

	hook_path(bpffs, hook, dev->name, path, sizeof(path));
	if (hook != NP_HOOK_XDP && !np->tcx) {
		err = attach_tc_filter(path, hook, dev, prog_fd);
		hold_link(dev, hook, -1);
	} else {
		int fd = attach_link(path, hook, dev, prog_fd);

		err = fd < 0 ? fd : 0;
		if (fd >= 0)
			hold_link(dev, hook, fd);
	}
	if (err)
		log_error("nodeport", "%s: cannot attach %s%s%s: %s", dev->name, hook_name[hook],
			  hook == NP_HOOK_XDP ? " " : np->tcx ? "" : " (clsact filter)",
			  hook == NP_HOOK_XDP ? nodeport_mode_name(dev->xdp) : "", strerror(-err));
	return err;
}

/* Native where the driver says it has it; the attach tells otherwise. */
static enum np_xdp_mode device_mode(const struct nodeport *np, const struct np_device *dev)
{
	if (np->mode != NP_XDP_NATIVE || features_xdp_native(dev->ifindex) != 0)
		return np->mode;
	return warn_generic(dev);
}

static int attach_device(struct nodeport *np, const char *bpffs, struct np_device *dev)
{
	int err = 0;

	dev->xdp = device_mode(np, dev);
	if (np->mode != NP_XDP_OFF)
		err = attach_hook(bpffs, np, NP_HOOK_XDP, dev, hook_prog_fd(np, NP_HOOK_XDP));
	if (!err)
		err = attach_hook(bpffs, np, NP_HOOK_TC_INGRESS, dev,
				  hook_prog_fd(np, NP_HOOK_TC_INGRESS));
	if (!err)
		err = attach_hook(bpffs, np, NP_HOOK_TC_EGRESS, dev,
				  hook_prog_fd(np, NP_HOOK_TC_EGRESS));
	/* With tcx, the filters of a ferryd that had none, once the links serve
	 * (a moment with both: each lets through what it does not translate). */
	for (int h = NP_HOOK_TC_INGRESS; !err && np->tcx && h <= NP_HOOK_TC_EGRESS; h++)
		detach_filter(dev->ifindex, (enum np_hook)h);
	if (!err)
		log_info("nodeport", "%s: new flows at %s, replies at tc egress%s", dev->name,
			 dev->xdp == NP_XDP_OFF ? "tc ingress (--xdp=off)" :
			 dev->xdp == NP_XDP_NATIVE ? "XDP (native; tc ingress resolves neighbours)" :
			 "XDP (generic; tc ingress resolves neighbours)",
			 np->tcx ? "" : " (clsact filters)");
	return err;
}

/* Whether a pin name under links/ is a per-packet link; *dev its device. */
static bool np_pin_name(const char *name, enum np_hook *hook, const char **dev)
{
	for (int h = 0; h < NP_HOOK__COUNT; h++) {
		size_t n = strlen(hook_prefix[h]);

		if (strncmp(name, hook_prefix[h], n) == 0) {
			*hook = (enum np_hook)h;
			*dev = name + n;
			return true;
		}
	}
	return false;
}

static bool hook_wanted(const struct nodeport *np, enum np_hook hook, const char *dev)
{
	if (!np || (hook == NP_HOOK_XDP && np->mode == NP_XDP_OFF))
		return false;
	for (size_t i = 0; i < np->n_devs; i++)
		if (strcmp(np->devs[i].name, dev) == 0)
			return true;
	return false;
}

/* Unpin every per-packet link that np does not want (np NULL: all). */
static int unpin_others(const struct nodeport *np, const char *bpffs)
{
	char dir[512], path[1024];
	struct dirent *e;
	enum np_hook hook;
	const char *dev;
	int err = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/links", bpffs);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)))
		if (np_pin_name(e->d_name, &hook, &dev) && !hook_wanted(np, hook, dev)) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (unlink(path) && errno != ENOENT)
				err = -errno;
			else
				log_info("nodeport", "%s: %s link removed", dev, hook_name[hook]);
		}
	closedir(d);
	return err;
}

/* Without tcx, remove ferry's filters wherever np does not want them (np
 * NULL: everywhere): a device no longer configured. Filters are no pins
 * to list: every device is asked. */
static void sweep_filters(const struct nodeport *np)
{
	struct if_nameindex *all = if_nameindex();

	for (struct if_nameindex *i = all; i && i->if_index; i++)
		for (int h = NP_HOOK_TC_INGRESS; h <= NP_HOOK_TC_EGRESS; h++)
			if (!np || !hook_wanted(np, (enum np_hook)h, i->if_name))
				detach_filter((int)i->if_index, (enum np_hook)h);
	if (all)
		if_freenameindex(all);
}

static void release_device(struct np_device *dev)
{
	for (int h = 0; h < NP_HOOK__COUNT; h++)
		hold_link(dev, (enum np_hook)h, -1);
}

/* Close the held links of every device attached (their pins stay). */
static void release_links(struct nodeport *np)
{
	for (size_t i = 0; i < np->n_devs; i++)
		release_device(&np->devs[i]);
	np->n_devs = 0;
}

int nodeport_attach(struct nodeport *np, const char *bpffs, char (*const names)[IF_NAMESIZE],
		    size_t n)
{
	char path[512];
	int err = 0;

	snprintf(path, sizeof(path), "%s/links", bpffs);
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	release_links(np);
	for (size_t i = 0; i < n && i < NP_MAX_DEVICES && !err; i++) {
		struct np_device *dev = &np->devs[np->n_devs];

		for (int h = 0; h < NP_HOOK__COUNT; h++)
			dev->link_fd[h] = -1;
		snprintf(dev->name, sizeof(dev->name), "%s", names[i]);
		dev->ifindex = (int)if_nametoindex(dev->name);
		if (!dev->ifindex) {
			err = -ENODEV;
			log_error("nodeport", "device %s does not exist", dev->name);
			break;
		}
		err = attach_device(np, bpffs, dev);
		if (err)
			release_device(dev);
		np->n_devs += !err;
	}
	unpin_others(np, bpffs);
	if (!np->tcx)
		sweep_filters(np);
	return err;
}

static __u32 prog_id_of(int prog_fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(prog_fd, &info, &len) ? 0 : info.id;
}

/* The program on ferry's filter of a tc hook, 0 when there is none. */
static __u32 filter_prog_id(int ifindex, enum np_hook hook)
{
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	struct bpf_tc_hook h;
	struct bpf_tc_opts o;
	int err;

	filter_of(ifindex, hook, &h, &o);
	err = bpf_tc_query(&h, &o);
	libbpf_set_print(print); /* ENOENT (no filter, no qdisc) is no warning */
	return err ? 0 : o.prog_id;
}

/* The program a hook of dev runs now (0: none), and the link's id. */
static __u32 hook_running(const struct nodeport *np, const struct np_device *dev,
			  enum np_hook hook, __u32 *link_id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info), ifindex;

	*link_id = 0;
	if (hook != NP_HOOK_XDP && !np->tcx)
		return filter_prog_id(dev->ifindex, hook);
	if (dev->link_fd[hook] < 0 || bpf_obj_get_info_by_fd(dev->link_fd[hook], &info, &len))
		return 0;
	*link_id = info.id;
	/* A detached link reads ifindex 0 (tcx's info has xdp's place). */
	memcpy(&ifindex, &info.xdp, sizeof(ifindex));
	return ifindex == (__u32)dev->ifindex ? info.prog_id : 0;
}

/* One hook of dev: 1 when repaired, 0 when it serves, -errno. */
static int heal_hook(const struct nodeport *np, const char *bpffs, struct np_device *dev,
		     enum np_hook hook)
{
	int prog_fd = hook_prog_fd(np, hook);
	__u32 want = prog_id_of(prog_fd), link_id, running;

	running = hook_running(np, dev, hook, &link_id);
	if (running == want)
		return 0;
	if (running && link_id) {
		log_warn("nodeport", "%s: another program (id %u) was put in ferry's %s link: "
			 "ferry's put back", dev->name, running, hook_name[hook]);
		return bpf_link_update(dev->link_fd[hook], prog_fd, NULL) ? -errno : 1;
	}
	if (running)
		log_warn("nodeport", "%s: another program (id %u) was put in ferry's %s filter: "
			 "ferry's put back", dev->name, running, hook_name[hook]);
	else
		log_warn("nodeport", "%s: ferry's %s program was detached%s: attaching it again",
			 dev->name, hook_name[hook], link_id ? " (its link)" : " (its clsact filter)");
	return attach_hook(bpffs, np, hook, dev, prog_fd) ? -EIO : 1;
}

static bool hook_used(const struct nodeport *np, enum np_hook hook)
{
	return hook != NP_HOOK_XDP || np->mode != NP_XDP_OFF;
}

int nodeport_heal(struct nodeport *np, const char *bpffs)
{
	int repaired = 0;

	for (size_t i = 0; i < np->n_devs; i++) {
		struct np_device *dev = &np->devs[i];

		if ((int)if_nametoindex(dev->name) != dev->ifindex)
			continue;
		for (int h = 0; h < NP_HOOK__COUNT; h++) {
			int r = hook_used(np, (enum np_hook)h) ?
				heal_hook(np, bpffs, dev, (enum np_hook)h) : 0;

			if (r < 0 && r != -EIO)
				log_error("nodeport", "%s: cannot repair %s: %s", dev->name,
					  hook_name[h], strerror(-r));
			repaired += r > 0;
		}
	}
	return repaired;
}

void nodeport_close(struct nodeport *np)
{
	release_links(np);
	ferry_nodeport_xdp__destroy(np->xdp);
	ferry_nodeport_tc__destroy(np->tc);
	np->xdp = NULL;
	np->tc = NULL;
}

int nodeport_cleanup(const char *bpffs)
{
	int err = unpin_others(NULL, bpffs);

	sweep_filters(NULL);
	if (err)
		log_error("nodeport", "cannot remove the per-packet links under %s: %s", bpffs,
			  strerror(-err));
	return err ? -1 : 0;
}
