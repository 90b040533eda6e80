/* ferryctl service list / backend list. */
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/addr.h"
#include "ferry/maps.h"
#include "ferryctl/ctl.h"

struct svc_row {
	struct svc_key key;
	struct svc_value value;
};

static int row_cmp(const void *a, const void *b)
{
	const struct svc_row *x = a, *y = b;

	return x->value.svc_id < y->value.svc_id ? -1 : x->value.svc_id > y->value.svc_id;
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

/* Every service entry except the VIP markers, ordered by service ID. */
static struct svc_row *collect_services(int fd, size_t *n_out)
{
	struct svc_key cursor;
	struct svc_row row, *rows = NULL;
	size_t n = 0, cap = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &row.key) == 0) {
		cursor = row.key;
		prev = &cursor;
		if (bpf_map_lookup_elem(fd, &row.key, &row.value) ||
		    (row.value.flags & SVC_FLAG_VIP_MARKER))
			continue;
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

static void to_ip(struct ferry_ip *ip, const __u32 addr[4])
{
	memcpy(ip->w, addr, sizeof(ip->w));
}

static const char *state_name(__u8 state)
{
	return state == BACKEND_TERMINATING ? "terminating" : "active";
}

/* The backend in slot i of the row's current revision. */
static int slot_backend(const struct dp_maps *maps, const struct svc_row *row, __u32 i,
			__u32 *id, struct backend_value *b)
{
	struct slot_key key = { .svc_id = row->value.svc_id, .rev = row->value.rev, .slot = i };
	struct slot_value slot;

	if (bpf_map_lookup_elem(maps->fd[DP_MAP_SLOTS], &key, &slot))
		return -1;
	*id = slot.backend_id;
	return bpf_map_lookup_elem(maps->fd[DP_MAP_BACKENDS], id, b);
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

static cJSON *service_json(const struct dp_maps *maps, const struct svc_row *row)
{
	cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
	char text[ADDR_STR_LEN];
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
	for (__u32 i = 0; i < row->value.count; i++) {
		struct backend_value b;
		__u32 id;

		if (slot_backend(maps, row, i, &id, &b) == 0)
			cJSON_AddItemToArray(list, backend_json(id, &b));
	}
	cJSON_AddItemToObject(o, "backends", list);
	return o;
}

static void service_print(const struct dp_maps *maps, const struct svc_row *row)
{
	char front[96], back[80];
	struct ferry_ip ip;

	to_ip(&ip, row->key.addr);
	addr_format_port(&ip, ntohs(row->key.port), front, sizeof(front));
	snprintf(front + strlen(front), sizeof(front) - strlen(front), "/%s%s%s",
		 proto_name(row->key.proto), row->value.flags & SVC_FLAG_LOCAL ? " (local)" : "",
		 row->value.flags & SVC_FLAG_ZONE_HINTS ? " (zone)" : "");
	if (row->value.affinity_timeout)
		snprintf(front + strlen(front), sizeof(front) - strlen(front), " (affinity %us)",
			 row->value.affinity_timeout);
	if (!row->value.count)
		printf("%-6u %-45s (no %sbackends: connections refused)\n", row->value.svc_id, front,
		       row->value.flags & SVC_FLAG_LOCAL ? "local " : "");
	for (__u32 i = 0; i < row->value.count; i++) {
		struct backend_value b;
		__u32 id;

		if (slot_backend(maps, row, i, &id, &b))
			continue;
		to_ip(&ip, b.addr);
		addr_format_port(&ip, ntohs(b.port), back, sizeof(back));
		if (i == 0)
			printf("%-6u %-45s %u => %s (%s)\n", row->value.svc_id, front, id, back,
			       state_name(b.state));
		else
			printf("%-6s %-45s %u => %s (%s)\n", "", "", id, back, state_name(b.state));
	}
}

int ctl_service_list(const struct dp_maps *maps, bool json)
{
	size_t n = 0;
	struct svc_row *rows = collect_services(maps->fd[DP_MAP_SERVICES], &n);
	cJSON *list;

	if (!rows && n) {
		fprintf(stderr, "ferryctl: out of memory\n");
		return 1;
	}
	if (json) {
		list = cJSON_CreateArray();
		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(list, service_json(maps, &rows[i]));
		ctl_print_json(list);
	} else {
		printf("%-6s %-45s %s\n", "ID", "Frontend", "Backends");
		for (size_t i = 0; i < n; i++)
			service_print(maps, &rows[i]);
	}
	free(rows);
	return 0;
}

int ctl_backend_list(const struct dp_maps *maps, bool json)
{
	cJSON *list = cJSON_CreateArray();
	__u32 id, cursor;
	void *prev = NULL;

	while (bpf_map_get_next_key(maps->fd[DP_MAP_BACKENDS], prev, &id) == 0) {
		struct backend_value b;

		cursor = id;
		prev = &cursor;
		if (bpf_map_lookup_elem(maps->fd[DP_MAP_BACKENDS], &id, &b) == 0)
			cJSON_AddItemToArray(list, backend_json(id, &b));
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
