#include "datapath/svc_map.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "datapath/fast_map.h"

/* A hash map's batch token is a bucket index, far below 2^31: the top bit
 * says the walk has reached ferry_services4. */
#define SVC_BATCH_V4 0x80000000u
/* IPv4 keys packed per update_batch call. */
#define SVC_PACK_MAX 256

static int bpf_rc(int rc)
{
	return rc ? -errno : 0;
}

bool svc_key_is_v4(const struct svc_key *key)
{
	return key->addr[0] == 0 && key->addr[1] == 0 && key->addr[2] == htonl(0xffff);
}

void svc_key_pack4(const struct svc_key *key, struct svc_key4 *out)
{
	out->addr = key->addr[3];
	out->port = key->port;
	out->proto = key->proto;
	out->scope = key->scope;
}

void svc_key_unpack4(const struct svc_key4 *key, struct svc_key *out)
{
	out->addr[0] = 0;
	out->addr[1] = 0;
	out->addr[2] = htonl(0xffff);
	out->addr[3] = key->addr;
	out->port = key->port;
	out->proto = key->proto;
	out->scope = key->scope;
}

/* The key at p (struct svc_key) copied: the sync engine's records pack
 * keys and values without padding, so p may not be aligned. */
static struct svc_key key_at(const void *p)
{
	struct svc_key key;

	memcpy(&key, p, sizeof(key));
	return key;
}

/* Where key_in (a struct svc_key) goes: the fd of its family's map, and
 * in *k the key that map takes (key, or k4 packed from it). */
static int svc_route(const struct dp_maps *maps, const void *key_in, struct svc_key *key,
		     struct svc_key4 *k4, const void **k)
{
	*key = key_at(key_in);
	if (!svc_key_is_v4(key)) {
		*k = key;
		return maps->fd[DP_MAP_SERVICES];
	}
	svc_key_pack4(key, k4);
	*k = k4;
	return maps->fd[DP_MAP_SERVICES4];
}

int svc_map_lookup(const struct dp_maps *maps, const void *key_in, void *value)
{
	struct svc_key key;
	struct svc_key4 k4;
	const void *k;
	int fd = svc_route(maps, key_in, &key, &k4, &k);

	return bpf_rc(bpf_map_lookup_elem(fd, k, value));
}

int svc_map_update(const struct dp_maps *maps, const void *key_in, const void *value,
		   uint64_t flags)
{
	struct svc_key key;
	struct svc_key4 k4;
	const void *k;
	int fd = svc_route(maps, key_in, &key, &k4, &k);
	int err = bpf_rc(bpf_map_update_elem(fd, k, value, flags));

	if (!err && k == &k4 && maps->fast)
		err = fast_map_follow(maps->fast, &k4, value, 1);
	return err;
}

int svc_map_delete(const struct dp_maps *maps, const void *key_in)
{
	struct svc_key key;
	struct svc_key4 k4;
	const void *k;
	int fd = svc_route(maps, key_in, &key, &k4, &k);
	int err = 0;

	/* The fast entry goes first: it must not outlive the frontend. */
	if (k == &k4 && maps->fast)
		err = fast_map_follow(maps->fast, &k4, NULL, 1);
	return err ? err : bpf_rc(bpf_map_delete_elem(fd, k));
}

int svc_map_next_key(const struct dp_maps *maps, const void *key_in, void *next)
{
	struct svc_key key, out;
	struct svc_key4 k4, n4;

	if (key_in)
		key = key_at(key_in);
	if (key_in && svc_key_is_v4(&key)) {
		svc_key_pack4(&key, &k4);
		if (bpf_map_get_next_key(maps->fd[DP_MAP_SERVICES4], &k4, &n4))
			return -errno;
	} else {
		if (bpf_map_get_next_key(maps->fd[DP_MAP_SERVICES], key_in ? &key : NULL, next) == 0)
			return 0;
		if (errno != ENOENT)
			return -errno;
		if (bpf_map_get_next_key(maps->fd[DP_MAP_SERVICES4], NULL, &n4))
			return -errno;
	}
	svc_key_unpack4(&n4, &out);
	memcpy(next, &out, sizeof(out));
	return 0;
}

static bool key_is_v4_at(const char *keys, uint32_t i)
{
	struct svc_key key = key_at(keys + (size_t)i * sizeof(key));

	return svc_key_is_v4(&key);
}

/* Keys i..i+n-1 are of one family. */
static int update_run(const struct dp_maps *maps, const char *keys, const char *values,
		      uint32_t n, uint32_t *done)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	struct svc_key4 packed[SVC_PACK_MAX];
	int err;

	*done = n;
	if (!key_is_v4_at(keys, 0))
		return bpf_rc(bpf_map_update_batch(maps->fd[DP_MAP_SERVICES], keys, values, done,
						   &opts));
	for (uint32_t i = 0; i < n; i++) {
		struct svc_key key = key_at(keys + (size_t)i * sizeof(key));

		svc_key_pack4(&key, &packed[i]);
	}
	err = bpf_rc(bpf_map_update_batch(maps->fd[DP_MAP_SERVICES4], packed, values, done, &opts));
	if (*done && maps->fast) {
		int fast_err = fast_map_follow(maps->fast, packed, values, *done);

		err = err ? err : fast_err;
	}
	return err;
}

int svc_map_update_batch(const struct dp_maps *maps, const void *keys, const void *values,
			 uint32_t *count)
{
	uint32_t total = *count, at = 0;
	int err = 0;

	while (at < total && !err) {
		bool v4 = key_is_v4_at(keys, at);
		uint32_t n = 1, done;

		while (at + n < total && n < SVC_PACK_MAX && key_is_v4_at(keys, at + n) == v4)
			n++;
		err = update_run(maps, (const char *)keys + (size_t)at * sizeof(struct svc_key),
				 (const char *)values + (size_t)at * sizeof(struct svc_entry), n,
				 &done);
		at += done;
	}
	*count = at;
	return err;
}

/* The keys ferry_services4 wrote at keys, svc_key4s, widened in place:
 * from the last, so that none is overwritten before it is read. */
static void unpack_in_place(char *keys, uint32_t n)
{
	for (uint32_t i = n; i-- > 0;) {
		struct svc_key4 k4;
		struct svc_key key;

		memcpy(&k4, keys + (size_t)i * sizeof(k4), sizeof(k4));
		svc_key_unpack4(&k4, &key);
		memcpy(keys + (size_t)i * sizeof(key), &key, sizeof(key));
	}
}

int svc_map_lookup_batch(const struct dp_maps *maps, const uint32_t *in, uint32_t *token,
			 void *keys, void *values, uint32_t *count)
{
	uint32_t bucket, out = 0;
	int err;

	if (!in || !(*in & SVC_BATCH_V4)) {
		err = bpf_rc(bpf_map_lookup_batch(maps->fd[DP_MAP_SERVICES], (void *)in, token, keys,
						  values, count, NULL));
		if (err != -ENOENT)
			return err;
		/* The IPv6 walk is over: the next call starts the IPv4 one. */
		*token = SVC_BATCH_V4;
		return 0;
	}
	bucket = *in & ~SVC_BATCH_V4;
	err = bpf_rc(bpf_map_lookup_batch(maps->fd[DP_MAP_SERVICES4], &bucket, &out, keys, values,
					  count, NULL));
	if (!err || err == -ENOENT)
		unpack_in_place(keys, *count);
	*token = out | SVC_BATCH_V4;
	return err;
}
