/* ferryctl service list / backend list. A service port is listed once,
 * with every frontend that shares its backends (its ClusterIP, NodePort,
 * LB IPs, externalIPs). */
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/addr.h"
#include "ferry/maps.h"
#include "datapath/backend_map.h"
#include "datapath/svc_entry.h"
#include "datapath/svc_map.h"
#include "ferryctl/ctl.h"

struct svc_row {
	struct svc_key key;
	struct svc_value value;
};

/* ClusterIP first (the frontend existing lines show), then NodePort, LB
 * IPs and externalIPs. */
static int kind_rank(__u32 flags)
{
	if (!(flags & SVC_FLAG_EXTERNAL))
		return 0;
	if (flags & SVC_FLAG_NODE_PORT)
		return 1;
	return flags & SVC_FLAG_LOAD_BALANCER ? 2 : 3;
}

static const char *kind_name(__u32 flags)
{
	static const char *const names[] = { "ClusterIP", "NodePort", "LoadBalancer",
					     "ExternalIP" };

	return names[kind_rank(flags)];
}

static int row_cmp(const void *a, const void *b)
{
	const struct svc_row *x = a, *y = b;
	int rx = kind_rank(x->value.flags), ry = kind_rank(y->value.flags);

	if (x->value.svc_id != y->value.svc_id)
		return x->value.svc_id < y->value.svc_id ? -1 : 1;
	if (rx != ry)
		return rx - ry;
	return memcmp(&x->key, &y->key, sizeof(x->key));
}

static int rows_push(struct svc_row **rows, size_t *n, size_t *cap, const struct svc_row *row)
{
	if (*n == *cap) {
		size_t want = *cap ? 2 * *cap : 64;
		struct svc_row *grown = realloc(*rows, want * sizeof(**rows));

		if (!grown)
			return -1;
		*rows = grown;
		*cap = want;
	}
	(*rows)[(*n)++] = *row;
	return 0;
}

/* Every service entry except the VIP markers, ordered by service ID, each
 * service port's frontends together. */
static struct svc_row *collect_services(const struct dp_maps *maps, size_t *n_out)
{
	struct svc_key cursor, *prev = NULL;
	struct svc_row row, *rows = NULL;
	size_t n = 0, cap = 0;
	struct svc_entry e;

	while (svc_map_next_key(maps, prev, &row.key) == 0) {
		cursor = row.key;
		prev = &cursor;
		if (svc_map_lookup(maps, &row.key, &e) || (e.v.flags & SVC_FLAG_VIP_MARKER))
			continue;
		row.value = e.v;
		if (rows_push(&rows, &n, &cap, &row)) {
			free(rows);
			return NULL;
		}
	}
	if (n)
		qsort(rows, n, sizeof(*rows), row_cmp);
	*n_out = n;
	return rows;
}

/* ferry_source_ranges, read once. */
struct ranges {
	size_t n;
	struct source_range_key *keys;
};

static void ranges_read(int fd, struct ranges *r)
{
	struct source_range_key key, cursor, *grown;
	void *prev = NULL;
	size_t cap = 0;

	memset(r, 0, sizeof(*r));
	while (fd >= 0 && bpf_map_get_next_key(fd, prev, &key) == 0) {
		cursor = key;
		prev = &cursor;
		if (r->n == cap) {
			cap = cap ? 2 * cap : 64;
			grown = realloc(r->keys, cap * sizeof(*grown));
			if (!grown)
				return;
			r->keys = grown;
		}
		r->keys[r->n++] = key;
	}
}

/* "192.0.2.0/24" or "2001:db8::/32". */
static const char *prefix_format(const struct source_range_key *k, char *buf, size_t len)
{
	char text[ADDR_STR_LEN];
	struct ferry_ip ip;
	unsigned bits = k->prefixlen - 32;

	memcpy(ip.w, k->addr, sizeof(ip.w));
	if (addr_is_v4(&ip))
		bits = bits >= 96 ? bits - 96 : 0;
	snprintf(buf, len, "%s/%u", addr_format(&ip, text), bits);
	return buf;
}

static void to_ip(struct ferry_ip *ip, const __u32 addr[4])
{
	memcpy(ip->w, addr, sizeof(ip->w));
}

static const char *state_name(__u8 state)
{
	return state == BACKEND_TERMINATING ? "terminating" : "active";
}

/* The backend in slot i of the row's current revision: inline in its
 * entry for a small set, else in ferry_slots. */
static int slot_backend(const struct dp_maps *maps, const struct svc_row *row, __u32 i,
			__u32 *id, struct backend_value *b)
{
	struct slot_key key = { .svc_id = row->value.svc_id, .rev = row->value.rev, .slot = i };
	struct slot_value slot;
	struct svc_entry e;

	if (svc_entry_inline(row->key.addr, row->value.count)) {
		if (svc_map_lookup(maps, &row->key, &e) ||
		    e.v.rev != row->value.rev)
			return -1;
		svc_entry_slot(&e, row->key.addr, i, &slot);
	} else if (bpf_map_lookup_elem(maps->fd[DP_MAP_SLOTS], &key, &slot)) {
		return -1;
	}
	*id = slot.backend_id;
	return backend_map_lookup(maps->fd[DP_MAP_BACKENDS], *id, b);
}

/* A least-conn backend's live connections (sockets and per-packet flows);
 * -1 when ferry_conns cannot be read. */
static long long live_conns(const struct dp_maps *maps, __u32 id)
{
	struct backend_conns c;

	if (maps->fd[DP_MAP_CONNS] < 0 || bpf_map_lookup_elem(maps->fd[DP_MAP_CONNS], &id, &c))
		return -1;
	return (long long)c.sock + c.packet;
}

static cJSON *backend_json(__u32 id, const struct backend_value *b)
{
	cJSON *o = cJSON_CreateObject();
	char text[ADDR_STR_LEN];
	struct ferry_ip ip;

	to_ip(&ip, b->addr);
	cJSON_AddNumberToObject(o, "id", id);
	cJSON_AddStringToObject(o, "address", addr_format(&ip, text));
	cJSON_AddNumberToObject(o, "port", ntohs(b->port));
	cJSON_AddStringToObject(o, "protocol", proto_name(b->proto));
	cJSON_AddStringToObject(o, "state", state_name(b->state));
	cJSON_AddNumberToObject(o, "service_id", b->svc_id);
	return o;
}

static cJSON *frontend_json(const struct svc_row *row)
{
	cJSON *o = cJSON_CreateObject();
	char text[ADDR_STR_LEN];
	struct ferry_ip ip;

	to_ip(&ip, row->key.addr);
	cJSON_AddStringToObject(o, "kind", kind_name(row->value.flags));
	cJSON_AddStringToObject(o, "address", addr_format(&ip, text));
	cJSON_AddNumberToObject(o, "port", ntohs(row->key.port));
	cJSON_AddStringToObject(o, "scope",
				row->key.scope == SVC_SCOPE_EXTERNAL ? "external" : "all");
	cJSON_AddBoolToObject(o, "ext_local", row->value.flags & SVC_FLAG_EXT_LOCAL);
	cJSON_AddBoolToObject(o, "source_ranges", row->value.flags & SVC_FLAG_SOURCE_RANGES);
	cJSON_AddNumberToObject(o, "flags", row->value.flags);
	return o;
}

/* One service port: its first frontend's address, port and protocol as
 * before (the ClusterIP when it has one), then every frontend. */
static cJSON *service_json(const struct dp_maps *maps, const struct svc_row *row, size_t n_fe,
			   const struct ranges *r)
{
	cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
	cJSON *fes = cJSON_CreateArray(), *prefixes = cJSON_CreateArray();
	char text[ADDR_STR_LEN + 8];
	struct ferry_ip ip;

	to_ip(&ip, row->key.addr);
	cJSON_AddNumberToObject(o, "id", row->value.svc_id);
	cJSON_AddStringToObject(o, "address", addr_format(&ip, text));
	cJSON_AddNumberToObject(o, "port", ntohs(row->key.port));
	cJSON_AddStringToObject(o, "protocol", proto_name(row->key.proto));
	cJSON_AddNumberToObject(o, "revision", row->value.rev);
	cJSON_AddBoolToObject(o, "terminating_fallback", row->value.flags & SVC_FLAG_FALLBACK);
	cJSON_AddBoolToObject(o, "internal_local", row->value.flags & SVC_FLAG_LOCAL);
	cJSON_AddBoolToObject(o, "zone_hints", row->value.flags & SVC_FLAG_ZONE_HINTS);
	cJSON_AddNumberToObject(o, "affinity_timeout", row->value.affinity_timeout);
	cJSON_AddStringToObject(o, "algorithm", svc_entry_algorithm(row->value.algorithm));
	if (row->value.algorithm == LB_MAGLEV) {
		cJSON_AddNumberToObject(o, "maglev_table_size", row->value.maglev_size);
		cJSON_AddNumberToObject(o, "maglev_offset", row->value.maglev_offset);
	}
	for (size_t i = 0; i < n_fe; i++)
		cJSON_AddItemToArray(fes, frontend_json(&row[i]));
	cJSON_AddItemToObject(o, "frontends", fes);
	for (size_t i = 0; i < r->n; i++)
		if (ntohl(r->keys[i].svc_id) == row->value.svc_id)
			cJSON_AddItemToArray(prefixes, cJSON_CreateString(
				prefix_format(&r->keys[i], text, sizeof(text))));
	cJSON_AddItemToObject(o, "source_ranges", prefixes);
	for (__u32 i = 0; i < row->value.count; i++) {
		struct backend_value b;
		cJSON *bo;
		__u32 id;

		if (slot_backend(maps, row, i, &id, &b))
			continue;
		bo = backend_json(id, &b);
		if (row->value.algorithm == LB_LEAST_CONN && live_conns(maps, id) >= 0)
			cJSON_AddNumberToObject(bo, "live_connections", (double)live_conns(maps, id));
		cJSON_AddItemToArray(list, bo);
	}
	cJSON_AddItemToObject(o, "backends", list);
	return o;
}

static void appendf(char *buf, size_t len, const char *fmt, const char *arg)
{
	size_t used = strlen(buf);

	if (used < len)
		snprintf(buf + used, len - used, fmt, arg);
}

/* "(source ranges 192.0.2.0/24,2001:db8::/32)"; an LB IP flagged without
 * any admits nobody. */
static void ranges_text(const struct ranges *r, __u32 svc_id, char *buf, size_t len)
{
	char text[ADDR_STR_LEN + 8];
	bool any = false;

	appendf(buf, len, "%s", " (source ranges ");
	for (size_t i = 0; i < r->n; i++) {
		if (ntohl(r->keys[i].svc_id) != svc_id)
			continue;
		appendf(buf, len, any ? ",%s" : "%s",
			prefix_format(&r->keys[i], text, sizeof(text)));
		any = true;
	}
	appendf(buf, len, "%s", any ? ")" : "none: nobody admitted)");
}

/* A frontend as the Frontend column shows it: a ClusterIP as before
 * ("10.96.0.10:53/TCP"), the others with their kind and flags; the
 * NodePort's wildcard as 0.0.0.0:PORT or [::]:PORT. The service port's own
 * marks go on its first line. */
static void frontend_text(const struct svc_row *row, bool first, const struct ranges *r,
			  char *buf, size_t len)
{
	__u32 f = row->value.flags;
	char num[16], alg[32] = "";
	struct ferry_ip ip;

	to_ip(&ip, row->key.addr);
	addr_format_port(&ip, ntohs(row->key.port), buf, len);
	appendf(buf, len, "/%s", proto_name(row->key.proto));
	if (first) {
		appendf(buf, len, "%s", f & SVC_FLAG_LOCAL ? " (local)" : "");
		appendf(buf, len, "%s", f & SVC_FLAG_ZONE_HINTS ? " (zone)" : "");
		snprintf(num, sizeof(num), "%u", row->value.affinity_timeout);
		if (row->value.affinity_timeout)
			appendf(buf, len, " (affinity %ss)", num);
		if (row->value.algorithm == LB_MAGLEV)
			snprintf(alg, sizeof(alg), " (maglev %u)", row->value.maglev_size);
		else if (row->value.algorithm != LB_RANDOM)
			snprintf(alg, sizeof(alg), " (%s)", svc_entry_algorithm(row->value.algorithm));
		appendf(buf, len, "%s", alg);
	}
	if (f & SVC_FLAG_EXTERNAL)
		appendf(buf, len, " %s", kind_name(f));
	if (row->key.scope == SVC_SCOPE_EXTERNAL)
		appendf(buf, len, "%s", " (external: local endpoints)");
	else if (f & SVC_FLAG_EXT_LOCAL)
		appendf(buf, len, "%s", " (ext-local)");
	if (f & SVC_FLAG_SOURCE_RANGES)
		ranges_text(r, row->value.svc_id, buf, len);
	/* The socket hooks never see SCTP: only the per-packet path serves it. */
	if (row->key.proto == IPPROTO_SCTP)
		appendf(buf, len, "%s", " (SCTP: from outside the node only)");
}

static const char *no_backends(const struct svc_row *row)
{
	if (row->key.scope == SVC_SCOPE_EXTERNAL)
		return "(no local backends: external traffic dropped)";
	return row->value.flags & SVC_FLAG_LOCAL ? "(no local backends: connections refused)"
						 : "(no backends: connections refused)";
}

/* A service port's frontends beside its backends, one of each per line. */
static void service_print(const struct dp_maps *maps, const struct svc_row *row, size_t n_fe,
			  const struct ranges *r)
{
	size_t lines = row->value.count > n_fe ? row->value.count : n_fe;

	for (size_t i = 0; i < lines; i++) {
		char id[16] = "", front[512] = "", back[128] = "", where[80];
		struct backend_value b;
		__u32 bid;

		if (i == 0)
			snprintf(id, sizeof(id), "%u", row->value.svc_id);
		if (i < n_fe)
			frontend_text(&row[i], i == 0, r, front, sizeof(front));
		if (i == 0 && !row->value.count)
			snprintf(back, sizeof(back), "%s", no_backends(row));
		if (i < row->value.count && slot_backend(maps, row, (__u32)i, &bid, &b) == 0) {
			struct ferry_ip ip;

			to_ip(&ip, b.addr);
			addr_format_port(&ip, ntohs(b.port), where, sizeof(where));
			snprintf(back, sizeof(back), "%u => %s (%s)", bid, where,
				 state_name(b.state));
			if (row->value.algorithm == LB_LEAST_CONN && live_conns(maps, bid) >= 0)
				snprintf(back + strlen(back), sizeof(back) - strlen(back),
					 " (live %lld)", live_conns(maps, bid));
		}
		printf("%-6s %-45s %s\n", id, front, back);
	}
}

/* How many rows from row on belong to its service port. */
static size_t group_len(const struct svc_row *row, size_t left)
{
	size_t n = 1;

	while (n < left && row[n].value.svc_id == row->value.svc_id)
		n++;
	return n;
}

int ctl_service_list(const struct dp_maps *maps, bool json)
{
	size_t n = 0, g;
	struct svc_row *rows = collect_services(maps, &n);
	struct ranges r;
	cJSON *list;

	if (!rows && n) {
		fprintf(stderr, "ferryctl: out of memory\n");
		return 1;
	}
	ranges_read(maps->fd[DP_MAP_SOURCE_RANGES], &r);
	if (json) {
		list = cJSON_CreateArray();
		for (size_t i = 0; i < n; i += g) {
			g = group_len(&rows[i], n - i);
			cJSON_AddItemToArray(list, service_json(maps, &rows[i], g, &r));
		}
		ctl_print_json(list);
	} else {
		printf("%-6s %-45s %s\n", "ID", "Frontend", "Backends");
		for (size_t i = 0; i < n; i += g) {
			g = group_len(&rows[i], n - i);
			service_print(maps, &rows[i], g, &r);
		}
	}
	free(r.keys);
	free(rows);
	return 0;
}

int ctl_backend_list(const struct dp_maps *maps, bool json)
{
	enum { BATCH = 1024 };
	cJSON *list = cJSON_CreateArray();
	struct backend_value b[BATCH];
	uint32_t ids[BATCH], cursor = 0, count;
	int err;

	do {
		count = BATCH;
		err = backend_map_read(maps->fd[DP_MAP_BACKENDS], &cursor, ids, b, &count);
		for (uint32_t i = 0; i < count; i++)
			cJSON_AddItemToArray(list, backend_json(ids[i], &b[i]));
	} while (!err);
	if (err != -ENOENT) {
		fprintf(stderr, "ferryctl: cannot read ferry_backends: %s\n", strerror(-err));
		cJSON_Delete(list);
		return 1;
	}
	if (json) {
		ctl_print_json(list);
		return 0;
	}
	printf("%-8s %-48s %-12s %s\n", "ID", "Address", "State", "Service ID");
	for (cJSON *o = list->child; o; o = o->next) {
		char where[80];
		struct ferry_ip ip;

		addr_parse(cJSON_GetObjectItem(o, "address")->valuestring, &ip);
		addr_format_port(&ip, (uint16_t)cJSON_GetObjectItem(o, "port")->valueint, where,
				 sizeof(where));
		printf("%-8d %-48s %-12s %d\n", cJSON_GetObjectItem(o, "id")->valueint, where,
		       cJSON_GetObjectItem(o, "state")->valuestring,
		       cJSON_GetObjectItem(o, "service_id")->valueint);
	}
	cJSON_Delete(list);
	return 0;
}
