/* ferryctl explain: which backend set a frontend gives one client, and
 * why, read from the pinned maps with the datapath's own steps: the socket
 * path (bpf/sock_lb.bpf.c) for a client on the node, the per-packet path
 * (bpf/lib/nodeport.h) for one from outside. Every answer is what the
 * datapath would do now; nothing is written, and map lookups from a
 * syscall do not refresh an LRU entry. This half finds the client and the
 * service entry that decides for it; explain_set.c describes that entry. */
#define _GNU_SOURCE /* setns, name_to_handle_at */
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "datapath/svc_map.h"
#include "ferryctl/ctl.h"
#include "ferryctl/explain.h"

/* SO_NETNS_COOKIE (Linux 5.14) may be missing from the build's headers. */
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

void explain_say(struct explain *ex, const char *label, const char *fmt, ...)
{
	size_t used = strlen(ex->text);
	va_list ap;

	if (used + 16 >= sizeof(ex->text))
		return;
	used += (size_t)snprintf(ex->text + used, sizeof(ex->text) - used, "%-11s", label);
	va_start(ap, fmt);
	if (used < sizeof(ex->text))
		used += (size_t)vsnprintf(ex->text + used, sizeof(ex->text) - used, fmt, ap);
	va_end(ap);
	if (used + 1 < sizeof(ex->text))
		strcat(ex->text, "\n");
}

const char *explain_hostport(const __u32 addr[4], __u16 port_be, char *buf, size_t len)
{
	struct ferry_ip ip;

	memcpy(ip.w, addr, sizeof(ip.w));
	return addr_format_port(&ip, ntohs(port_be), buf, len);
}

/* --- the question ---------------------------------------------------------- */

/* "10.96.0.10:53/udp", "[fd00::a]:80" (TCP unless a protocol is given). */
static int parse_frontend(const char *arg, struct svc_key *key)
{
	char buf[128], *slash, *colon, *host = buf;
	struct ferry_ip ip;
	char *end;
	long port;

	snprintf(buf, sizeof(buf), "%s", arg);
	key->proto = IPPROTO_TCP;
	slash = strchr(buf, '/');
	if (slash) {
		*slash++ = '\0';
		for (char *c = slash; *c; c++)
			*c = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
		key->proto = proto_parse(slash);
		if (!key->proto)
			return -1;
	}
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	if (*host == '[' && colon > host && colon[-1] == ']') {
		host++;
		colon[-1] = '\0';
	}
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535 || addr_parse(host, &ip) < 0)
		return -1;
	memcpy(key->addr, ip.w, sizeof(key->addr));
	key->port = htons((__u16)port);
	return 0;
}

/* "192.0.2.10", "192.0.2.10:40000", "2001:db8::10", "[2001:db8::10]:40000". */
static int parse_source(const char *arg, struct explain_req *req)
{
	char buf[128], *colon, *end;
	long port;

	snprintf(buf, sizeof(buf), "%s", arg);
	if (addr_parse(buf, &req->source) >= 0)
		return 0;
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return -1;
	req->sport = htons((__u16)port);
	if (buf[0] == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		return addr_parse(buf + 1, &req->source) < 0 ? -1 : 0;
	}
	return addr_parse(buf, &req->source) < 0 ? -1 : 0;
}

/* The cookie of the network namespace at path (a netns file): a socket
 * made in it says. ferryctl is single-threaded: it enters the namespace,
 * makes the socket and comes back. */
static int netns_cookie(const char *path, __u64 *cookie)
{
	int ns = open(path, O_RDONLY | O_CLOEXEC);
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	socklen_t len = sizeof(*cookie);
	int fd = -1, err = 0;

	if (ns < 0 || home < 0) {
		err = errno;
	} else if (setns(ns, CLONE_NEWNET) < 0) {
		err = errno;
	} else {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			err = errno;
		if (setns(home, CLONE_NEWNET) < 0) {
			fprintf(stderr, "ferryctl: cannot return to my network namespace: %s\n",
				strerror(errno));
			exit(1);
		}
	}
	if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) < 0)
		err = errno;
	if (fd >= 0)
		close(fd);
	if (ns >= 0)
		close(ns);
	if (home >= 0)
		close(home);
	if (err)
		fprintf(stderr, "ferryctl: network namespace %s: %s\n", path, strerror(err));
	return err ? -1 : 0;
}

/* Where the cgroup2 hierarchy is mounted, or "". */
static void cgroup2_mount(char *out, size_t len)
{
	char dev[256], dir[512], type[64];
	FILE *f = fopen("/proc/mounts", "r");

	out[0] = '\0';
	while (f && fscanf(f, "%255s %511s %63s %*[^\n]", dev, dir, type) == 3)
		if (strcmp(type, "cgroup2") == 0) {
			snprintf(out, len, "%s", dir);
			break;
		}
	if (f)
		fclose(f);
}

/* The cgroup of process pid as a path under the cgroup2 mount. */
static int pid_cgroup(const char *pid, char *out, size_t len)
{
	char path[64], line[600], mount[512];
	FILE *f;
	int ret = -1;

	snprintf(path, sizeof(path), "/proc/%s/cgroup", pid);
	cgroup2_mount(mount, sizeof(mount));
	f = fopen(path, "r");
	while (f && mount[0] && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			ret = snprintf(out, len, "%s%s", mount,
				       strcmp(line + 3, "/") ? line + 3 : "") < (int)len ? 0 : -1;
			break;
		}
	if (f)
		fclose(f);
	return ret;
}

/* A cgroup's ID (cgroup v2: the kernfs node's, as a file handle holds it). */
static int cgroup_id(const char *path, __u64 *id)
{
	struct {
		struct file_handle fh;
		__u64 id;
	} h = { .fh.handle_bytes = sizeof(__u64) };
	int mount_id;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) < 0)
		return -1;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/* --- the frontend ------------------------------------------------------------- */

static const char *kind_name(__u32 flags)
{
	if (!(flags & SVC_FLAG_EXTERNAL))
		return "ClusterIP";
	if (flags & SVC_FLAG_NODE_PORT)
		return "NodePort";
	return flags & SVC_FLAG_LOAD_BALANCER ? "LoadBalancer" : "ExternalIP";
}

static bool svc_get(struct explain *ex, const struct svc_key *key)
{
	if (svc_map_lookup(ex->maps, key, &ex->e))
		return false;
	ex->key = *key;
	ex->found = true;
	return true;
}

/* The family's NodePort wildcard (::ffff:0.0.0.0 or ::) for key. */
static void wildcard(struct svc_key *key)
{
	bool v4 = key->addr[0] == 0 && key->addr[1] == 0 && key->addr[2] == htonl(0xffff);

	memset(key->addr, 0, sizeof(key->addr));
	key->addr[2] = v4 ? htonl(0xffff) : 0;
}

static bool is_loopback(const __u32 a[4])
{
	if (a[0] == 0 && a[1] == 0 && a[2] == htonl(0xffff))
		return (ntohl(a[3]) >> 24) == 127;
	return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == htonl(1);
}

static bool is_node_addr(const struct explain *ex, const __u32 a[4])
{
	struct node_addr_value v;

	return bpf_map_lookup_elem(ex->maps->fd[DP_MAP_NODE_ADDRS], a, &v) == 0;
}

void explain_verdict(struct explain *ex, const char *what, const char *why)
{
	cJSON_AddStringToObject(ex->json, "verdict", what);
	cJSON_AddStringToObject(ex->json, "reason", why);
	explain_say(ex, "verdict", "%s: %s", what, why);
}

static void frontend_json(struct explain *ex, const char *kind, const struct svc_key *given)
{
	cJSON *fe = cJSON_CreateObject();
	char text[ADDR_STR_LEN];
	struct ferry_ip ip;

	memcpy(ip.w, given->addr, sizeof(ip.w));
	cJSON_AddStringToObject(fe, "address", addr_format(&ip, text));
	cJSON_AddNumberToObject(fe, "port", ntohs(given->port));
	cJSON_AddStringToObject(fe, "protocol", proto_name(given->proto));
	if (kind)
		cJSON_AddStringToObject(fe, "kind", kind);
	else
		cJSON_AddNullToObject(fe, "kind");
	cJSON_AddItemToObject(ex->json, "frontend", fe);
}

enum local_match {
	LOCAL_FRONTEND,     /* the address and port as given */
	LOCAL_NODE_PORT,    /* the NodePort wildcard, for a node address or loopback */
	LOCAL_UNKNOWN_PORT, /* a known ClusterIP, another port (B17) */
	LOCAL_NEED_NETNS,   /* loopback NodePort: whose loopback decides (B22) */
	LOCAL_NOT_SERVICE,
};

/* The entry connect() finds (bpf/lib/lookup.h): the frontend itself, else
 * the VIP marker (B17), else, for a port in the NodePort range, the
 * family's wildcard on a node address or, from the node's network
 * namespace only, on loopback (B22). */
static enum local_match local_lookup(struct explain *ex, const struct explain_req *req)
{
	struct svc_key key = req->key, vip = { 0 };
	struct dp_config cfg = { 0 };
	struct svc_entry marker;
	__u16 port = ntohs(req->key.port);
	bool loop = is_loopback(key.addr);
	__u32 zero = 0;

	if (svc_get(ex, &key))
		return LOCAL_FRONTEND;
	memcpy(vip.addr, key.addr, sizeof(vip.addr));
	if (svc_map_lookup(ex->maps, &vip, &marker) == 0)
		return LOCAL_UNKNOWN_PORT;
	bpf_map_lookup_elem(ex->maps->fd[DP_MAP_CONFIG], &zero, &cfg);
	if (port < cfg.node_port_min || port > cfg.node_port_max)
		return LOCAL_NOT_SERVICE;
	if (loop && !req->has_cookie)
		return LOCAL_NEED_NETNS;
	if (loop ? req->cookie != cfg.node_netns_cookie : !is_node_addr(ex, key.addr))
		return LOCAL_NOT_SERVICE;
	wildcard(&key);
	return svc_get(ex, &key) ? LOCAL_NODE_PORT : LOCAL_NOT_SERVICE;
}

/* A client on the node: connect() and sendmsg() as sock_lb.bpf.c decides
 * them. Returns true when a backend set applies. */
static bool match_local(struct explain *ex, const struct explain_req *req)
{
	const char *proto = proto_name(req->key.proto), *kind = NULL;
	char fe[80];

	explain_hostport(req->key.addr, req->key.port, fe, sizeof(fe));
	if (req->key.proto == IPPROTO_SCTP) {
		frontend_json(ex, NULL, &req->key);
		explain_say(ex, "frontend", "%s/SCTP", fe);
		explain_verdict(ex, "untouched", "the socket hooks do not see SCTP: only traffic "
				"from outside the node is served");
		return false;
	}
	switch (local_lookup(ex, req)) {
	case LOCAL_FRONTEND:
		kind = kind_name(ex->e.v.flags);
		explain_say(ex, "frontend", "%s/%s: %s", fe, proto, kind);
		break;
	case LOCAL_NODE_PORT:
		kind = kind_name(ex->e.v.flags);
		explain_say(ex, "frontend", "%s/%s: %s %s", fe, proto, kind,
			    is_loopback(req->key.addr) ? "on loopback (the node's network "
			    "namespace, B22)" : "on a node address");
		break;
	case LOCAL_UNKNOWN_PORT:
		kind = "ClusterIP";
		explain_say(ex, "frontend", "%s/%s: a known ClusterIP, but no service port %u/%s",
			    fe, proto, ntohs(req->key.port), proto);
		explain_verdict(ex, "refused", "undefined port of a ClusterIP: connect() and "
				"sendmsg() fail with ECONNREFUSED (B17)");
		break;
	case LOCAL_NEED_NETNS:
		explain_say(ex, "frontend", "%s/%s", fe, proto);
		explain_verdict(ex, "unknown", "a NodePort on loopback serves the node's network "
				"namespace only (B22): give --netns or --pid");
		break;
	case LOCAL_NOT_SERVICE:
		explain_say(ex, "frontend", "%s/%s: not a service", fe, proto);
		explain_verdict(ex, "untouched",
				"not a service: traffic goes to that address untouched");
		break;
	}
	frontend_json(ex, kind, &req->key);
	return ex->found;
}

static bool source_allowed(const struct explain *ex, __u32 svc_id, const struct ferry_ip *src)
{
	struct source_range_key k = { .prefixlen = 32 + 128, .svc_id = htonl(svc_id) };
	__u8 value[64];

	memcpy(k.addr, src->w, sizeof(k.addr));
	return bpf_map_lookup_elem(ex->maps->fd[DP_MAP_SOURCE_RANGES], &k, value) == 0;
}

/* A flow the per-packet path knows already keeps its backend while that
 * backend lives (conntrack first, nodeport.h). */
static void known_flow(struct explain *ex, const struct explain_req *req)
{
	struct ct_key k = { .sport = req->sport, .dport = req->key.port, .proto = req->key.proto };
	struct ct_value v;
	char to[80];

	memcpy(k.saddr, req->source.w, sizeof(k.saddr));
	memcpy(k.daddr, req->key.addr, sizeof(k.daddr));
	if (!req->sport || bpf_map_lookup_elem(ex->maps->fd[DP_MAP_CT], &k, &v) ||
	    (v.flags & CT_FLAG_REPLY))
		return;
	explain_hostport(v.new_daddr, v.new_dport, to, sizeof(to));
	cJSON_AddStringToObject(ex->json, "existing_flow", to);
	explain_say(ex, "flow", "this flow is known: its packets go to %s (backend %u) while it "
		    "lives", to, v.backend_id);
}

/* A client outside the node: the per-packet path's np_new_flow. */
static bool match_external(struct explain *ex, const struct explain_req *req)
{
	struct svc_key key = req->key, local;
	char fe[80], text[ADDR_STR_LEN];
	bool node = is_node_addr(ex, key.addr);
	const char *kind;
	__u32 f;

	explain_hostport(req->key.addr, req->key.port, fe, sizeof(fe));
	if (node) {
		wildcard(&key);
		if (!svc_get(ex, &key))
			key = req->key;
	}
	if (!ex->found)
		svc_get(ex, &key);
	kind = ex->found ? kind_name(ex->e.v.flags) : NULL;
	frontend_json(ex, kind, &req->key);
	if (!ex->found || !(ex->e.v.flags & SVC_FLAG_EXTERNAL)) {
		explain_say(ex, "frontend", "%s/%s: %s", fe, proto_name(key.proto),
			    ex->found ? "a ClusterIP" : "not a service");
		explain_verdict(ex, "untouched", ex->found ?
				"a ClusterIP is not served from outside the node: packets to it "
				"pass untouched" :
				"not a service: traffic goes to that address untouched");
		return false;
	}
	f = ex->e.v.flags;
	explain_say(ex, "frontend", "%s/%s: %s%s", fe, proto_name(key.proto), kind,
		    node && (f & SVC_FLAG_NODE_PORT) ? " on a node address" : "");
	known_flow(ex, req);
	if (f & SVC_FLAG_SOURCE_RANGES) {
		bool ok = source_allowed(ex, ex->e.v.svc_id, &req->source);

		cJSON_AddBoolToObject(ex->json, "source_allowed", ok);
		explain_say(ex, "source", "%s %s loadBalancerSourceRanges",
			    addr_format(&req->source, text), ok ? "is inside" : "is outside");
		if (!ok) {
			explain_verdict(ex, "dropped",
					"the source is outside loadBalancerSourceRanges (B26)");
			return false;
		}
	}
	if (f & SVC_FLAG_EXT_LOCAL) {
		local = ex->key;
		local.scope = SVC_SCOPE_EXTERNAL;
		if (!svc_get(ex, &local) || !ex->e.v.count) {
			ex->found = false;
			explain_verdict(ex, "dropped", "externalTrafficPolicy Local and no "
					"endpoint on this node: packets are dropped (B16)");
			return false;
		}
	}
	return true;
}
/* --- the client ------------------------------------------------------------------- */

/* Whether ferry's socket programs run for the cgroup at path: they are
 * attached to one cgroup and run for its descendants too. */
static bool explain_cgroup(struct explain *ex, const char *bpffs, const char *path)
{
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);
	char link[512], dir[512];
	__u64 id;
	int fd;

	pinned_link_path(bpffs, dp_hook_names[0], link, sizeof(link));
	fd = bpf_obj_get(link);
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		if (fd >= 0)
			close(fd);
		cJSON_AddBoolToObject(ex->json, "cgroup_served", false);
		explain_say(ex, "cgroup", "%s: ferry's socket programs are not attached", path);
		return false;
	}
	close(fd);
	snprintf(dir, sizeof(dir), "%s", path);
	while (cgroup_id(dir, &id) == 0) {
		char *slash;

		if (id == info.cgroup.cgroup_id) {
			cJSON_AddBoolToObject(ex->json, "cgroup_served", true);
			explain_say(ex, "cgroup", "%s: served (ferry is attached to %s)", path,
				    dir);
			return true;
		}
		slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			break;
		*slash = '\0';
	}
	cJSON_AddBoolToObject(ex->json, "cgroup_served", false);
	explain_say(ex, "cgroup", "%s: not served (ferry's programs are attached to cgroup ID "
		    "%llu, not this one or a parent)", path,
		    (unsigned long long)info.cgroup.cgroup_id);
	return false;
}

static void explain_client(struct explain *ex, const struct explain_req *req)
{
	char text[ADDR_STR_LEN];

	if (req->external) {
		cJSON_AddStringToObject(ex->json, "client", "external");
		cJSON_AddStringToObject(ex->json, "source", addr_format(&req->source, text));
		if (req->sport)
			cJSON_AddNumberToObject(ex->json, "source_port", ntohs(req->sport));
		explain_say(ex, "client", "%s from outside the node: the per-packet path (XDP, tc) "
			    "decides", text);
		return;
	}
	cJSON_AddStringToObject(ex->json, "client", "local");
	if (req->has_cookie) {
		cJSON_AddNumberToObject(ex->json, "netns_cookie", (double)req->cookie);
		explain_say(ex, "client", "on the node, network namespace cookie %llu: the socket "
			    "path (connect, sendmsg) decides", (unsigned long long)req->cookie);
	} else {
		explain_say(ex, "client", "on the node, network namespace unknown: the socket "
			    "path (connect, sendmsg) decides");
	}
}

static int explain_run(const struct dp_maps *maps, const char *bpffs,
		       const struct explain_req *req, bool json)
{
	struct explain ex = { .maps = maps, .json = cJSON_CreateObject() };
	bool served = true;
	__u32 zero = 0;

	bpf_map_lookup_elem(maps->fd[DP_MAP_STATE], &zero, &ex.node);
	ex.node.node_name[sizeof(ex.node.node_name) - 1] = '\0';
	ex.node.node_zone[sizeof(ex.node.node_zone) - 1] = '\0';

	explain_client(&ex, req);
	if (!req->external && req->cgroup[0])
		served = explain_cgroup(&ex, bpffs, req->cgroup);
	if (!served) {
		frontend_json(&ex, NULL, &req->key);
		explain_verdict(&ex, "untouched",
				"ferry's programs do not run for this client's cgroup");
	} else if (req->external ? match_external(&ex, req) : match_local(&ex, req)) {
		explain_set(&ex, req);
	}
	if (json) {
		ctl_print_json(ex.json);
	} else {
		fputs(ex.text, stdout);
		cJSON_Delete(ex.json);
	}
	return 0;
}

int ctl_explain(const struct dp_maps *maps, const char *bpffs, const struct ctl_explain_args *a,
		bool json)
{
	struct explain_req req = { 0 };
	char path[64];
	int clients = !!a->netns + !!a->pid + !!a->source;

	if (!a->frontend || parse_frontend(a->frontend, &req.key)) {
		fprintf(stderr, "ferryctl: explain: want ADDRESS:PORT[/tcp|/udp|/sctp], got '%s'\n",
			a->frontend ? a->frontend : "");
		return 2;
	}
	if (clients > 1 || (a->source && a->cgroup)) {
		fprintf(stderr, "ferryctl: explain: one client: --netns, --pid or --source "
			"(--cgroup goes with the first two)\n");
		return 2;
	}
	if (a->source) {
		req.external = true;
		if (parse_source(a->source, &req)) {
			fprintf(stderr, "ferryctl: explain: --source wants ADDRESS[:PORT], "
				"got '%s'\n", a->source);
			return 2;
		}
		return explain_run(maps, bpffs, &req, json);
	}
	/* Without a client, the caller's own process is the client. */
	snprintf(path, sizeof(path), "/proc/%s/ns/net", a->pid ? a->pid : "self");
	if ((a->netns || a->pid || !a->cgroup) &&
	    netns_cookie(a->netns ? a->netns : path, &req.cookie) == 0)
		req.has_cookie = true;
	else if (a->netns || a->pid)
		return 1;
	if (a->cgroup && access(a->cgroup, F_OK) < 0) {
		fprintf(stderr, "ferryctl: explain: cgroup %s: %s\n", a->cgroup, strerror(errno));
		return 1;
	}
	if (a->cgroup)
		snprintf(req.cgroup, sizeof(req.cgroup), "%s", a->cgroup);
	else if ((a->pid || !a->netns) &&
		 pid_cgroup(a->pid ? a->pid : "self", req.cgroup, sizeof(req.cgroup))) {
		fprintf(stderr, "ferryctl: explain: cannot read the cgroup of %s\n",
			a->pid ? a->pid : "ferryctl");
		return 1;
	}
	return explain_run(maps, bpffs, &req, json);
}
