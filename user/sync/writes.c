#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "datapath/svc_entry.h"
#include "sync/state.h"

int wr_stage_sink(void *ctx, const void *keys, const void *values, uint32_t *count)
{
	const struct wr_stage_to *to = ctx;

	return mio_update_batch(to->eng, to->map, keys, values, count);
}

int wr_put(struct sync_engine *eng, enum dp_map map, const void *key, const void *value)
{
	int err;

	/* Only the maps the first apply fills in bulk are staged. A failed
	 * early write stays staged: the apply's final flush reports it. */
	if (eng->staging && eng->stage[map].key_size) {
		struct stage *s = &eng->stage[map];

		if (stage_push(s, key, value))
			return -ENOMEM;
		eng->writes++;
		if (stage_full(s))
			stage_write(s, wr_stage_sink, &(struct wr_stage_to){ eng, map });
		return 0;
	}
	err = mio_update(eng, map, key, value, BPF_ANY);
	if (!err) {
		eng->writes++;
		return 0;
	}
	/* Hash maps say E2BIG when full; ENOMEM when the kernel is short. */
	if (err == -E2BIG || err == -ENOMEM)
		eng->stats.map_full_errors++;
	return err;
}

void wr_del(struct sync_engine *eng, enum dp_map map, const void *key)
{
	int err;

	/* A staged key may already have been written (stage_write). */
	if (eng->staging && eng->stage[map].key_size && stage_drop(&eng->stage[map], key) == 0)
		return;
	err = mio_delete(eng, map, key);

	if (!err)
		eng->writes++;
	else if (err != -ENOENT)
		log_warn("sync", "cannot delete from %s: %s", dp_map_label(map), strerror(-err));
}

static int backend_cmp(const struct applied_backend *a, const struct desired_backend *b)
{
	int c = addr_compare(&a->addr, &b->addr);

	return c ? c : (int)a->port - (int)b->port;
}

static int backend_write(struct sync_engine *eng, const struct applied_backend *b,
			 uint32_t svc_id, uint8_t proto, uint8_t state)
{
	struct backend_value v = {
		.port = htons(b->port),
		.proto = proto,
		.state = state,
		.svc_id = svc_id,
	};

	memcpy(v.addr, b->addr.w, sizeof(v.addr));
	return wr_put(eng, DP_MAP_BACKENDS, &b->id, &v);
}

void wr_backends_drop(struct sync_engine *eng, const struct applied_backend *b,
		      const bool *only, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (only && !only[i])
			continue;
		wr_del(eng, DP_MAP_BACKENDS, &b[i].id);
		id_pool_put(&eng->backend_ids, b[i].id);
	}
}

int wr_backends_prepare(struct sync_engine *eng, const struct applied_svc *old,
			const struct desired_svc *d, uint32_t svc_id,
			struct applied_backend **out, bool **fresh)
{
	bool fallback = old && (old->value.flags & SVC_FLAG_FALLBACK);
	/* A change of state (ready <-> terminating fallback) renews every ID. */
	size_t n_old = old && fallback == d->fallback ? old->n_backends : 0;
	/* Exactly n: a million backends at 100,000 x 10 are held here. */
	struct applied_backend *nb = d->n_backends ? calloc(d->n_backends, sizeof(*nb)) : NULL;
	bool *made = d->n_backends ? calloc(d->n_backends, sizeof(*made)) : NULL;
	uint8_t state = d->fallback ? BACKEND_TERMINATING : BACKEND_ACTIVE;
	size_t j = 0;

	if (d->n_backends && (!nb || !made))
		goto fail;
	for (size_t i = 0; i < d->n_backends; i++) {
		nb[i].addr = d->backends[i].addr;
		nb[i].port = d->backends[i].port;
		while (j < n_old && backend_cmp(&old->backends[j], &d->backends[i]) < 0)
			j++;
		if (j < n_old && backend_cmp(&old->backends[j], &d->backends[i]) == 0) {
			nb[i].id = old->backends[j].id;
			continue;
		}
		nb[i].id = id_pool_get(&eng->backend_ids);
		if (!nb[i].id) {
			eng->stats.map_full_errors++;
			goto fail;
		}
		made[i] = true;
		if (backend_write(eng, &nb[i], svc_id, d->proto, state) < 0)
			goto fail;
	}
	*out = nb;
	*fresh = made;
	return 0;
fail:
	if (nb && made)
		wr_backends_drop(eng, nb, made, d->n_backends);
	free(nb);
	free(made);
	return -1;
}

void wr_backends_release(struct sync_engine *eng, const struct applied_svc *old,
			 const struct applied_backend *nb, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < old->n_backends; i++) {
		const struct applied_backend *ob = &old->backends[i];
		struct desired_backend as_desired = { ob->addr, ob->port };

		while (j < n && backend_cmp(&nb[j], &as_desired) < 0)
			j++;
		if (j < n && nb[j].id == ob->id)
			continue;
		wr_backends_drop(eng, ob, NULL, 1);
		eng->udp_backend_gone |= old->proto == IPPROTO_UDP;
	}
}

size_t wr_slots_of(const struct applied_backend *b, size_t n, uint32_t count)
{
	return n && !svc_entry_inline(b[0].addr.w, count) ? count : 0;
}

int wr_slots_write(struct sync_engine *eng, uint32_t svc_id, uint32_t rev,
		   const struct applied_backend *b, size_t n)
{
	n = wr_slots_of(b, n, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		struct slot_key key = { .svc_id = svc_id, .rev = rev, .slot = (uint32_t)i };
		struct slot_value v = {
			.backend_id = b[i].id,
			.port = htons(b[i].port),
			.flags = b[i].slot_flags,
		};
		int err;

		memcpy(v.addr, b[i].addr.w, sizeof(v.addr));
		err = wr_put(eng, DP_MAP_SLOTS, &key, &v);

		if (err) {
			wr_slots_delete(eng, svc_id, rev, i);
			return err;
		}
	}
	return 0;
}

void wr_slots_delete(struct sync_engine *eng, uint32_t svc_id, uint32_t rev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct slot_key key = { .svc_id = svc_id, .rev = rev, .slot = (uint32_t)i };

		wr_del(eng, DP_MAP_SLOTS, &key);
	}
}

static void vip_key(struct svc_key *key, const struct ferry_ip *addr)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, addr->w, sizeof(key->addr));
}

/* One more reference to addr's marker; *created says whether it is new. */
static struct vip_ref *vip_take(struct sync_engine *eng, const struct ferry_ip *addr,
				bool *created)
{
	struct hmap_node *n = hmap_get(&eng->vips, addr, sizeof(*addr));
	struct vip_ref *ref;

	*created = !n;
	if (n) {
		ref = hmap_entry(n, struct vip_ref, node);
		ref->refs++;
		return ref;
	}
	ref = calloc(1, sizeof(*ref));
	if (!ref)
		return NULL;
	ref->addr = *addr;
	ref->refs = 1;
	hmap_put(&eng->vips, &ref->node, &ref->addr, sizeof(ref->addr));
	eng->vips_v6 += !addr_is_v4(addr);
	return ref;
}

static int vip_write(struct sync_engine *eng, const struct ferry_ip *addr)
{
	struct svc_entry marker = { .v.flags = SVC_FLAG_VIP_MARKER };
	struct svc_key key;

	vip_key(&key, addr);
	return wr_put(eng, DP_MAP_SERVICES, &key, &marker);
}

int wr_vip_ref(struct sync_engine *eng, const struct ferry_ip *addr)
{
	bool created;
	int err;

	if (!vip_take(eng, addr, &created))
		return -ENOMEM;
	if (!created)
		return 0;
	err = vip_write(eng, addr);
	if (err)
		wr_vip_unref(eng, addr);
	return err;
}

/* A marker someone deleted (B34) is written again: without it a port the
 * Service does not define would reach the host instead of being refused
 * (B17). */
int wr_vip_adopt(struct sync_engine *eng, const struct ferry_ip *addr)
{
	struct svc_entry seen;
	struct svc_key key;
	bool created;

	if (!vip_take(eng, addr, &created))
		return -ENOMEM;
	vip_key(&key, addr);
	if (!created || (mio_lookup(eng, DP_MAP_SERVICES, &key, &seen) == 0 &&
			 (seen.v.flags & SVC_FLAG_VIP_MARKER)))
		return 0;
	return vip_write(eng, addr);
}

int wr_vip_known(const struct sync_engine *eng, const struct ferry_ip *addr)
{
	return hmap_get(&eng->vips, addr, sizeof(*addr)) != NULL;
}

void wr_vip_unref(struct sync_engine *eng, const struct ferry_ip *addr)
{
	struct hmap_node *n = hmap_get(&eng->vips, addr, sizeof(*addr));
	struct vip_ref *ref;
	struct svc_key key;

	if (!n)
		return;
	ref = hmap_entry(n, struct vip_ref, node);
	if (--ref->refs)
		return;
	vip_key(&key, addr);
	wr_del(eng, DP_MAP_SERVICES, &key);
	hmap_remove(&eng->vips, &ref->node);
	eng->vips_v6 -= !addr_is_v4(addr);
	free(ref);
}
