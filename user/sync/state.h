/* The sync engine's record of what it has written to the maps. Internal to
 * user/sync. */
#ifndef FERRY_SYNC_STATE_H
#define FERRY_SYNC_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/hmap.h"
#include "datapath/pinned.h"
#include "ferry/maps.h"
#include "model/model.h"
#include "sync/engine.h"
#include "sync/ids.h"
#include "sync/stage.h"

struct applied_backend {
	struct ferry_ip addr;
	uint16_t port;            /* host order */
	uint32_t id;
};

/* A service port as the maps hold it. */
struct applied_svc {
	struct hmap_node by_id;
	struct hmap_node by_key;  /* in engine->frontends while owner */
	char *id;
	struct svc_key key;
	struct svc_value value;   /* as last written; rev 0 = not yet */
	size_t n_backends;
	struct applied_backend *backends; /* sorted by (addr, port) */
	bool owner;               /* its frontend entry is ours to delete */
	bool adopted;             /* read from pinned maps, not yet matched to a desired id */
	bool seen;                /* still desired in this apply */
};

struct vip_ref {
	struct hmap_node node;
	struct ferry_ip addr;
	uint32_t refs;            /* applied service ports on this VIP */
};

struct sync_engine {
	struct dp_maps maps;
	struct hmap svcs;         /* applied_svc by id */
	struct hmap frontends;    /* applied_svc by svc_key */
	struct hmap vips;         /* vip_ref by address */
	struct hmap pending;      /* pending_svc by id: desired, not programmed */
	bool room_freed;          /* this apply removed entries: retry the pending */
	bool udp_backend_gone;    /* a UDP backend left a service since the last
				   * sync_take_udp_gone (B21) */
	struct id_pool svc_ids;
	struct id_pool backend_ids;
	uint64_t max_services;    /* --max-services */
	uint64_t max_backends;    /* --max-backends; the map holds one service more */
	bool maps_fresh;          /* created empty by this ferryd, not adopted */
	bool staging;             /* puts go to stage[] (first apply into fresh maps) */
	struct stage stage[DP_MAP__COUNT];
	uint64_t writes;          /* successful map writes, ever */
	bool first_apply;         /* no state applied yet */
	struct sync_stats stats;
};

/* writes.c: one map concern each. Failures return -errno; "full" errors
 * are counted in stats.map_full_errors. */
int wr_put(struct sync_engine *eng, enum dp_map map, const void *key, const void *value);
void wr_del(struct sync_engine *eng, enum dp_map map, const void *key);

/* New backend list for d: backends that stay keep their ID, new ones are
 * written to ferry_backends. fresh[i] says which were written. */
int wr_backends_prepare(struct sync_engine *eng, const struct applied_svc *old,
			const struct desired_svc *d, uint32_t svc_id,
			struct applied_backend **out, bool **fresh);
void wr_backends_drop(struct sync_engine *eng, const struct applied_backend *b,
		      const bool *only, size_t n);
/* Remove old backends whose ID is not in the new list. */
void wr_backends_release(struct sync_engine *eng, const struct applied_svc *old,
			 const struct applied_backend *nb, size_t n);

int wr_slots_write(struct sync_engine *eng, uint32_t svc_id, uint32_t rev,
		   const struct applied_backend *b, size_t n);
void wr_slots_delete(struct sync_engine *eng, uint32_t svc_id, uint32_t rev, size_t n);

int wr_vip_ref(struct sync_engine *eng, const struct ferry_ip *addr);
/* Count a reference to a marker that is already in the map. */
int wr_vip_adopt(struct sync_engine *eng, const struct ferry_ip *addr);
/* Whether addr has a marker reference. */
int wr_vip_known(const struct sync_engine *eng, const struct ferry_ip *addr);
void wr_vip_unref(struct sync_engine *eng, const struct ferry_ip *addr);

/* pending.c: service ports that are desired but not programmed (no room,
 * or their frontend belongs to another service port), with a copy of what
 * they want; tried again whenever an apply frees room. */
typedef int svc_apply_fn(struct sync_engine *eng, const struct desired_svc *d);
void pending_add(struct sync_engine *eng, const struct desired_svc *d);
void pending_drop(struct sync_engine *eng, const char *id);
void pending_retry(struct sync_engine *eng, svc_apply_fn *apply);
size_t pending_count(const struct sync_engine *eng);
void pending_clear(struct sync_engine *eng);

#endif
