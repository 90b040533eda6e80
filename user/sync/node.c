/* This node's addresses (ferry_node_addrs: where NodePorts answer, B22)
 * and the datapath's configuration (ferry_config), whose SNAT addresses
 * follow the node addresses: the first of each family. */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sync/state.h"

/* Whether list[i] is the first address of its family in list. */
static bool first_of_family(const struct ferry_ip *list, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (addr_is_v4(&list[j]) == addr_is_v4(&list[i]))
			return false;
	return true;
}

static ssize_t addr_index(const struct ferry_ip *list, size_t n, const struct ferry_ip *ip)
{
	for (size_t i = 0; i < n; i++)
		if (addr_equal(&list[i], ip))
			return (ssize_t)i;
	return -1;
}

static void snat_fill(const struct sync_engine *eng, struct dp_config *c)
{
	memset(c->snat_v4, 0, sizeof(c->snat_v4));
	memset(c->snat_v6, 0, sizeof(c->snat_v6));
	for (size_t i = eng->n_node_addrs; i-- > 0;)
		memcpy(addr_is_v4(&eng->node_addrs[i]) ? c->snat_v4 : c->snat_v6,
		       eng->node_addrs[i].w, sizeof(c->snat_v4));
}

static int config_write(struct sync_engine *eng, const struct dp_config *c)
{
	uint32_t zero = 0;
	int err;

	if (eng->config_known && memcmp(c, &eng->config, sizeof(*c)) == 0)
		return 0;
	err = wr_put(eng, DP_MAP_CONFIG, &zero, c);
	if (err) {
		log_error("sync", "cannot write ferry_config: %s", strerror(-err));
		return err;
	}
	eng->config = *c;
	eng->config_known = true;
	return 0;
}

int sync_set_config(struct sync_engine *eng, const struct dp_config *config)
{
	uint64_t before = eng->writes;
	struct dp_config c = *config;
	int err;

	snat_fill(eng, &c);
	err = config_write(eng, &c);
	return err ? err : (int)(eng->writes - before);
}

/* Write addrs[i] unless the map holds it with the same flag already. */
static int node_addr_put(struct sync_engine *eng, const struct ferry_ip *addrs, size_t i)
{
	struct node_addr_value v = { .flags = first_of_family(addrs, i) ? NODE_ADDR_SNAT : 0 };
	ssize_t was = addr_index(eng->node_addrs, eng->n_node_addrs, &addrs[i]);
	struct node_addr_key k;
	char text[ADDR_STR_LEN];
	int err;

	if (was >= 0 && first_of_family(eng->node_addrs, (size_t)was) == !!v.flags)
		return 0;
	memcpy(k.addr, addrs[i].w, sizeof(k.addr));
	err = wr_put(eng, DP_MAP_NODE_ADDRS, &k, &v);
	if (err)
		log_error("sync", "node address %s: cannot write ferry_node_addrs: %s",
			  addr_format(&addrs[i], text), strerror(-err));
	return err;
}

int sync_set_node_addrs(struct sync_engine *eng, const struct ferry_ip *addrs, size_t n)
{
	struct ferry_ip *want = calloc(n + 1, sizeof(*want));
	uint64_t before = eng->writes;
	size_t k = 0;
	int err = 0;

	if (!want)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (addr_index(want, k, &addrs[i]) < 0)
			want[k++] = addrs[i];
	/* New and changed entries first, then the departed: no gap. One that
	 * cannot be written is left out of the record, to be tried again. */
	for (size_t i = 0; i < k;) {
		if (node_addr_put(eng, want, i) == 0) {
			i++;
			continue;
		}
		err = -EIO;
		memmove(&want[i], &want[i + 1], (k - i - 1) * sizeof(*want));
		k--;
	}
	for (size_t i = 0; i < eng->n_node_addrs; i++) {
		struct node_addr_key key;

		if (addr_index(want, k, &eng->node_addrs[i]) >= 0)
			continue;
		memcpy(key.addr, eng->node_addrs[i].w, sizeof(key.addr));
		wr_del(eng, DP_MAP_NODE_ADDRS, &key);
	}
	free(eng->node_addrs);
	eng->node_addrs = want;
	eng->n_node_addrs = k;
	if (eng->config_known) {
		struct dp_config c = eng->config;

		snat_fill(eng, &c);
		if (config_write(eng, &c) && !err)
			err = -EIO;
	}
	return err ? err : (int)(eng->writes - before);
}

/* SNAT addresses first, so that the first of each family keeps its flag. */
static int node_addr_cmp(const void *x, const void *y)
{
	const struct { struct ferry_ip ip; uint32_t flags; } *a = x, *b = y;

	return (int)(b->flags & NODE_ADDR_SNAT) - (int)(a->flags & NODE_ADDR_SNAT);
}

void node_adopt(struct sync_engine *eng)
{
	struct { struct ferry_ip ip; uint32_t flags; } *found;
	size_t n;
	struct node_addr_key *keys = map_keys(eng, DP_MAP_NODE_ADDRS, sizeof(*keys), &n);
	uint32_t zero = 0;

	found = calloc(n + 1, sizeof(*found));
	eng->node_addrs = calloc(n + 1, sizeof(*eng->node_addrs));
	if (keys && found && eng->node_addrs) {
		for (size_t i = 0; i < n; i++) {
			struct node_addr_value v = { 0 };

			mio_lookup(eng, DP_MAP_NODE_ADDRS, &keys[i], &v);
			memcpy(found[i].ip.w, keys[i].addr, sizeof(found[i].ip.w));
			found[i].flags = v.flags;
		}
		qsort(found, n, sizeof(*found), node_addr_cmp);
		for (size_t i = 0; i < n; i++)
			eng->node_addrs[i] = found[i].ip;
		eng->n_node_addrs = n;
	}
	free(found);
	free(keys);
	eng->config_known =
		mio_lookup(eng, DP_MAP_CONFIG, &zero, &eng->config) == 0;
}
