/* ferryctl status: attached programs, the published generation, the
 * agent's and the datapath's counters, and map capacity and memory; the
 * entry counts only on request (--maps): no syscall counts a hash map's
 * entries, so counting reads them all (90 ms at 10,000 services, most of
 * it the kernel stepping through empty buckets), while the rest costs the
 * same few dozen syscalls at any size. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "datapath/backend_map.h"
#include "datapath/fast_map.h"
#include "datapath/counters.h"
#include "datapath/features.h"
#include "datapath/loader.h"
#include "datapath/nodeport.h"
#include "ferry/maps.h"
#include "ferryctl/ctl.h"

/* A /proc/PID/status field in kB ("VmRSS", "VmHWM"), or -1. */
static long long proc_status_kb(uint32_t pid, const char *field)
{
	char path[64], line[128];
	long long kb = -1;
	size_t len = strlen(field);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, len) == 0 && line[len] == ':') {
			kb = atoll(line + len + 1);
			break;
		}
	fclose(f);
	return kb;
}

static cJSON *agent_json(const struct dp_maps *maps)
{
	cJSON *o = cJSON_CreateObject();
	struct agent_state st = { 0 };
	char when[40] = "never";
	__u32 zero = 0;

	bpf_map_lookup_elem(maps->fd[DP_MAP_STATE], &zero, &st);
	if (st.applied_unix_ns) {
		time_t secs = (time_t)(st.applied_unix_ns / 1000000000ULL);
		struct tm tm;

		gmtime_r(&secs, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	cJSON_AddNumberToObject(o, "generation", (double)st.generation);
	cJSON_AddStringToObject(o, "applied_at", when);
	cJSON_AddNumberToObject(o, "ferryd_pid", st.pid);
	cJSON_AddBoolToObject(o, "ferryd_running", st.pid && kill((pid_t)st.pid, 0) == 0);
	cJSON_AddNumberToObject(o, "ferryd_rss_kb", (double)proc_status_kb(st.pid, "VmRSS"));
	cJSON_AddNumberToObject(o, "ferryd_peak_rss_kb", (double)proc_status_kb(st.pid, "VmHWM"));
	cJSON_AddNumberToObject(o, "layout_version", st.layout_version);
	cJSON_AddNumberToObject(o, "services", (double)st.services);
	cJSON_AddNumberToObject(o, "backends", (double)st.backends);
	cJSON_AddNumberToObject(o, "parse_errors", (double)st.parse_errors);
	cJSON_AddNumberToObject(o, "objects_skipped", (double)st.objects_skipped);
	cJSON_AddNumberToObject(o, "map_full_errors", (double)st.map_full_errors);
	cJSON_AddNumberToObject(o, "fast_left_out", (double)st.fast_left_out);
	cJSON_AddNumberToObject(o, "fields_ignored", (double)st.fields_ignored);
	cJSON_AddNumberToObject(o, "datapath_repairs", (double)st.datapath_repairs);
	return o;
}

static cJSON *programs_json(const char *bpffs)
{
	cJSON *list = cJSON_CreateArray();
	char path[512];

	for (int i = 0; i < DP_HOOK_COUNT; i++) {
		struct bpf_link_info info = { 0 };
		__u32 len = sizeof(info);
		cJSON *o = cJSON_CreateObject();
		int fd;

		pinned_link_path(bpffs, dp_hook_names[i], path, sizeof(path));
		fd = bpf_obj_get(path);
		cJSON_AddStringToObject(o, "hook", dp_hook_names[i]);
		cJSON_AddBoolToObject(o, "attached", fd >= 0 &&
				      bpf_obj_get_info_by_fd(fd, &info, &len) == 0);
		/* Attached once a least-conn service needs it (pinned.h). */
		cJSON_AddBoolToObject(o, "on_demand", i == DP_HOOK_RELEASE);
		if (fd >= 0) {
			cJSON_AddNumberToObject(o, "link_id", info.id);
			cJSON_AddNumberToObject(o, "prog_id", info.prog_id);
			cJSON_AddNumberToObject(o, "cgroup_id", (double)info.cgroup.cgroup_id);
			close(fd);
		}
		cJSON_AddItemToArray(list, o);
	}
	return list;
}

/* The per-packet links ferryd pins as links/<kind>-<device>. */
static const char *const packet_kinds[] = { "xdp-", "tc-ingress-", "tc-egress-" };

/* The XDP mode on ifindex, when this network namespace's device of that
 * index is the pinned one (its name and program match); else "unknown". */
static const char *xdp_mode(__u32 ifindex, const char *dev, __u32 prog_id)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char name[IF_NAMESIZE];

	if (!if_indextoname(ifindex, name) || strcmp(name, dev) != 0 ||
	    bpf_xdp_query((int)ifindex, 0, &q) || q.prog_id != prog_id)
		return "unknown (another network namespace)";
	return q.attach_mode == XDP_ATTACHED_DRV ? "native" :
	       q.attach_mode == XDP_ATTACHED_SKB ? "generic" : "unknown";
}

static cJSON *packet_link_json(const char *path, const char *kind, const char *dev)
{
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info), ifindex;
	cJSON *o = cJSON_CreateObject();
	int fd = bpf_obj_get(path);
	bool ok = fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0;

	/* tcx's link info has xdp's place (ifindex first). */
	memcpy(&ifindex, &info.xdp, sizeof(ifindex));
	cJSON_AddStringToObject(o, "device", dev);
	cJSON_AddStringToObject(o, "hook", kind);
	cJSON_AddBoolToObject(o, "attached", ok);
	cJSON_AddStringToObject(o, "attach", "link");
	if (ok) {
		cJSON_AddNumberToObject(o, "link_id", info.id);
		cJSON_AddNumberToObject(o, "prog_id", info.prog_id);
		cJSON_AddNumberToObject(o, "ifindex", ifindex);
	}
	if (ok && strcmp(kind, "xdp") == 0)
		cJSON_AddStringToObject(o, "xdp_mode", xdp_mode(ifindex, dev, info.prog_id));
	if (fd >= 0)
		close(fd);
	return o;
}

/* ferry's clsact filters (without tcx) on this namespace's devices: no
 * pins, so each device is asked (libbpf quiet: most have no clsact qdisc,
 * which it would print as a warning). */
static void packet_filters_json(cJSON *list)
{
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	struct if_nameindex *all = if_nameindex();
	static const char *const hooks[] = { "tc-ingress", "tc-egress" };

	for (struct if_nameindex *i = all; i && i->if_index; i++)
		for (int h = 0; h < 2; h++) {
			LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)i->if_index,
				    .attach_point = h ? BPF_TC_EGRESS : BPF_TC_INGRESS);
			LIBBPF_OPTS(bpf_tc_opts, opts, .handle = NP_TC_HANDLE,
				    .priority = NP_TC_PRIORITY);
			cJSON *o;

			if (bpf_tc_query(&hook, &opts))
				continue;
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "device", i->if_name);
			cJSON_AddStringToObject(o, "hook", hooks[h]);
			cJSON_AddBoolToObject(o, "attached", true);
			cJSON_AddStringToObject(o, "attach", "clsact filter");
			cJSON_AddNumberToObject(o, "prog_id", opts.prog_id);
			cJSON_AddNumberToObject(o, "ifindex", i->if_index);
			cJSON_AddItemToArray(list, o);
		}
	if (all)
		if_freenameindex(all);
	libbpf_set_print(print);
}

static cJSON *packet_path_json(const char *bpffs)
{
	cJSON *list = cJSON_CreateArray();
	char dir[512], path[1024], kind[16];
	struct dirent **names = NULL;
	int n;

	snprintf(dir, sizeof(dir), "%s/links", bpffs);
	n = scandir(dir, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k < sizeof(packet_kinds) / sizeof(packet_kinds[0]); k++) {
			size_t len = strlen(packet_kinds[k]);

			if (strncmp(names[i]->d_name, packet_kinds[k], len) != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			snprintf(kind, sizeof(kind), "%.*s", (int)len - 1, packet_kinds[k]);
			cJSON_AddItemToArray(list, packet_link_json(path, kind,
								    names[i]->d_name + len));
		}
		free(names[i]);
	}
	free(names);
	packet_filters_json(list);
	return list;
}

/* One optional feature: on, or off with why (the kernel's BTF is read only
 * then) and what the user loses. */
static cJSON *feature_json(enum feature f, bool on, const char *flag)
{
	cJSON *o = cJSON_CreateObject();
	char why[128];

	cJSON_AddBoolToObject(o, "available", on);
	if (!on) {
		if (features_kernel_has(f, why, sizeof(why)))
			snprintf(why, sizeof(why), "turned off (ferryd %s off)", flag);
		cJSON_AddStringToObject(o, "why", why);
		cJSON_AddStringToObject(o, "missing", features_loss(f));
	}
	return o;
}

/* Whether the per-packet path's tc programs are tcx links: yes when one is
 * pinned, no when only clsact filters are (those of this network
 * namespace's devices), else (no tc program seen) what the kernel takes. */
static bool tcx_on(cJSON *packet_path)
{
	bool filters = false;

	for (cJSON *l = packet_path->child; l; l = l->next) {
		const char *hook = cJSON_GetObjectItem(l, "hook")->valuestring;
		bool link = strcmp(cJSON_GetObjectItem(l, "attach")->valuestring, "link") == 0;

		if (strncmp(hook, "tc-", 3) != 0)
			continue;
		if (link)
			return true;
		filters = true;
	}
	return !filters && features_tcx_query();
}

/* The optional features: the UDP reaper is served while its link is
 * pinned (loader.h); tcx as tcx_on says; XDP's metadata as the kernel
 * answers (a program load, 0.03 ms). */
static cJSON *features_json(const char *bpffs, cJSON *packet_path)
{
	cJSON *all = cJSON_CreateObject();
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);
	char path[512];
	int fd;
	bool on;

	pinned_link_path(bpffs, DP_REAP_LINK, path, sizeof(path));
	fd = bpf_obj_get(path);
	on = fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	     info.type == BPF_LINK_TYPE_ITER;
	if (fd >= 0)
		close(fd);
	cJSON_AddItemToObject(all, feature_names[FEATURE_UDP_REAPER],
			      feature_json(FEATURE_UDP_REAPER, on, "--udp-reaper"));
	cJSON_AddItemToObject(all, feature_names[FEATURE_TCX],
			      feature_json(FEATURE_TCX, tcx_on(packet_path), "--tcx"));
	cJSON_AddItemToObject(all, feature_names[FEATURE_XDP_META],
			      feature_json(FEATURE_XDP_META, features_xdp_meta(), "--xdp"));
	return all;
}

static cJSON *counters_json(const struct dp_maps *maps)
{
	uint64_t sums[STAT__COUNT];
	cJSON *o = cJSON_CreateObject();

	dp_counters_read(maps, sums);
	for (int i = 0; i < STAT__COUNT; i++)
		cJSON_AddNumberToObject(o, dp_stat_names[i], (double)sums[i]);
	return o;
}

/* The kernel's own account of a map's memory, from fdinfo. */
static long long map_memlock(int fd)
{
	char path[64], line[128];
	long long bytes = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lld", &bytes) == 1)
			break;
	fclose(f);
	return bytes;
}

/* A map's capacity is its max_entries, but for ferry_backends, an array
 * over the backend_id space: the most backends ferryd keeps in it, which
 * it publishes in ferry_state. */
static cJSON *maps_json(const struct dp_maps *maps, bool count)
{
	cJSON *list = cJSON_CreateArray();
	struct agent_state st = { 0 };
	__u32 zero = 0;

	bpf_map_lookup_elem(maps->fd[DP_MAP_STATE], &zero, &st);

	for (int i = 0; i < DP_MAP__COUNT; i++) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);
		cJSON *o = cJSON_CreateObject();

		bpf_obj_get_info_by_fd(maps->fd[i], &info, &len);
		cJSON_AddStringToObject(o, "name", dp_map_names[i]);
		if (count && i == DP_MAP_BACKENDS)
			cJSON_AddNumberToObject(o, "entries",
						(double)backend_map_count(maps->fd[i]));
		else if (count && i == DP_MAP_FAST4)
			cJSON_AddNumberToObject(o, "entries", (double)fast_map_count(maps->fd[i]));
		else if (count && (info.type == BPF_MAP_TYPE_HASH ||
				   info.type == BPF_MAP_TYPE_LRU_HASH))
			cJSON_AddNumberToObject(o, "entries",
						(double)dp_map_count(maps->fd[i]));
		cJSON_AddNumberToObject(o, "max_entries", info.max_entries);
		cJSON_AddNumberToObject(o, "capacity",
					i == DP_MAP_BACKENDS && st.backends_capacity ?
					(double)st.backends_capacity : info.max_entries);
		cJSON_AddNumberToObject(o, "memory_bytes", (double)map_memlock(maps->fd[i]));
		cJSON_AddItemToArray(list, o);
	}
	return list;
}

/* Which path handles what, device by device. */
static void packet_print(cJSON *links)
{
	printf("Per-packet path (NodePort, LB IPs, externalIPs from outside):");
	if (!links->child) {
		printf(" not served (no device attached; ferryd's log says why)\n");
		return;
	}
	printf("\n");
	for (cJSON *l = links->child; l; l = l->next) {
		cJSON *mode = cJSON_GetObjectItem(l, "xdp_mode");
		const char *hook = cJSON_GetObjectItem(l, "hook")->valuestring;

		printf("  %-15s %-10s %-14s %s%s%s\n", cJSON_GetObjectItem(l, "device")->valuestring,
		       hook, cJSON_IsTrue(cJSON_GetObjectItem(l, "attached")) ? "attached" : "NOT ATTACHED",
		       strcmp(hook, "tc-egress") == 0 ? "replies" : "new flows",
		       mode ? (strcmp(mode->valuestring, "native") == 0 ? ", XDP native" :
			       strcmp(mode->valuestring, "generic") == 0 ? ", XDP generic" :
			       ", XDP mode unknown here") : "",
		       strcmp(cJSON_GetObjectItem(l, "attach")->valuestring, "link") ? ", clsact filter" : "");
	}
}

static void features_print(cJSON *features)
{
	printf("Features:\n");
	for (cJSON *f = features->child; f; f = f->next) {
		cJSON *why = cJSON_GetObjectItem(f, "why");

		if (!why) {
			printf("  %-13s on\n", f->string);
			continue;
		}
		printf("  %-13s OFF: %s\n", f->string, why->valuestring);
		printf("  %-13s %s\n", "", cJSON_GetObjectItem(f, "missing")->valuestring);
	}
}

static void status_print(cJSON *root, bool count)
{
	cJSON *agent = cJSON_GetObjectItem(root, "agent");

	printf("Generation:   %.0f (applied %s)\n",
	       cJSON_GetObjectItem(agent, "generation")->valuedouble,
	       cJSON_GetObjectItem(agent, "applied_at")->valuestring);
	if (cJSON_IsTrue(cJSON_GetObjectItem(agent, "ferryd_running")))
		printf("ferryd:       pid %d, running, RSS %.0f kB (peak %.0f kB)\n",
		       cJSON_GetObjectItem(agent, "ferryd_pid")->valueint,
		       cJSON_GetObjectItem(agent, "ferryd_rss_kb")->valuedouble,
		       cJSON_GetObjectItem(agent, "ferryd_peak_rss_kb")->valuedouble);
	else
		printf("ferryd:       pid %d, not running (the datapath keeps serving)\n",
		       cJSON_GetObjectItem(agent, "ferryd_pid")->valueint);
	printf("Agent:");
	for (cJSON *c = cJSON_GetObjectItem(agent, "services"); c; c = c->next)
		printf(" %s=%.0f", c->string, c->valuedouble);
	printf("\nPrograms:\n");
	for (cJSON *p = cJSON_GetObjectItem(root, "programs")->child; p; p = p->next)
		printf("  %-13s %s\n", cJSON_GetObjectItem(p, "hook")->valuestring,
		       cJSON_IsTrue(cJSON_GetObjectItem(p, "attached")) ? "attached" :
		       cJSON_IsTrue(cJSON_GetObjectItem(p, "on_demand")) ?
			       "not attached (attached when a Service uses least-conn)" :
			       "NOT ATTACHED");
	packet_print(cJSON_GetObjectItem(root, "packet_path"));
	features_print(cJSON_GetObjectItem(root, "features"));
	printf("Datapath counters (sockets):\n");
	for (cJSON *c = cJSON_GetObjectItem(root, "counters")->child; c; c = c->next)
		if (strncmp(c->string, "packet_", 7) != 0)
			printf("  %-26s %.0f\n", c->string, c->valuedouble);
	printf("Datapath counters (per packet):\n");
	for (cJSON *c = cJSON_GetObjectItem(root, "counters")->child; c; c = c->next)
		if (strncmp(c->string, "packet_", 7) == 0)
			printf("  %-36s %.0f\n", c->string, c->valuedouble);
	printf("Maps:%s\n", count ? "              entries / capacity" :
	       " (capacity; entries: ferryctl status --maps)");
	for (cJSON *m = cJSON_GetObjectItem(root, "maps")->child; m; m = m->next) {
		cJSON *entries = cJSON_GetObjectItem(m, "entries");
		char filled[24] = "-";

		if (entries)
			snprintf(filled, sizeof(filled), "%.0f", entries->valuedouble);
		printf("  %-20s %10s / %-9.0f %10.0f bytes\n",
		       cJSON_GetObjectItem(m, "name")->valuestring, count ? filled : "",
		       cJSON_GetObjectItem(m, "capacity")->valuedouble,
		       cJSON_GetObjectItem(m, "memory_bytes")->valuedouble);
	}
}

int ctl_status(const struct dp_maps *maps, const char *bpffs, bool json, bool count)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *agent = agent_json(maps);
	cJSON *packet_path = packet_path_json(bpffs);

	/* Top-level generation: what tests and scripts wait on. */
	cJSON_AddNumberToObject(root, "generation",
				cJSON_GetObjectItem(agent, "generation")->valuedouble);
	cJSON_AddItemToObject(root, "agent", agent);
	cJSON_AddItemToObject(root, "programs", programs_json(bpffs));
	cJSON_AddItemToObject(root, "packet_path", packet_path);
	cJSON_AddItemToObject(root, "features", features_json(bpffs, packet_path));
	cJSON_AddItemToObject(root, "counters", counters_json(maps));
	cJSON_AddItemToObject(root, "maps", maps_json(maps, count));
	if (json) {
		ctl_print_json(root);
		return 0;
	}
	status_print(root, count);
	cJSON_Delete(root);
	return 0;
}
