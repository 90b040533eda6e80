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
#include "sync/extents.h"
#include "sync/ids.h"
#include "sync/mapio.h"
#include "sync/stage.h"

struct applied_backend {
	struct ferry_ip addr;
	uint16_t port;            /* host order */
	uint16_t slot_flags;      /* enum slot_flags of its slot */
	uint32_t id;
};

/* One frontend of a service port: its own ferry_services4/6 key, holding the
 * service port's shared value plus its own flags. */
struct applied_frontend {
	struct hmap_node by_key;  /* in engine->frontends while owner */
	struct svc_key key;
	uint32_t flags;           /* FE_FLAGS: what this frontend adds to the shared value */
	bool owner;               /* its entry is ours to delete */
	bool stale;               /* adopted with another revision: rewrite it */
	struct applied_svc *svc;
};

/* The flags that belong to one frontend, not to the service port. */
#define FE_FLAGS (SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT | SVC_FLAG_SOURCE_RANGES | \
		  SVC_FLAG_EXT_LOCAL | SVC_FLAG_LOAD_BALANCER)

/* A service port as the maps hold it. */
struct applied_svc {
	struct hmap_node by_id;
	char *id;
	uint8_t proto;
	struct svc_value value;   /* shared by every frontend, without FE_FLAGS;
				   * rev 0 = not yet written */
	size_t n_frontends;
	struct applied_frontend *frontends; /* sorted by key; &one when there is one */
	struct applied_frontend one;
	size_t n_ranges;
	struct ferry_prefix *ranges; /* in ferry_source_ranges, sorted, masked */
	size_t n_backends;
	struct applied_backend *backends; /* sorted by (addr, port) */
	struct svc_key rn_primary; /* the ClusterIP its ferry_revnat entries name */
	bool rn_has_primary;      /* a TCP port with a ClusterIP: it may own entries */
	bool rn_stale;            /* adopted slots disagree with ferry_revnat: rewrite */
	bool adopted;             /* read from pinned maps, not yet matched to a desired id */
	bool seen;                /* still desired in this apply */
};

/* A frontend a desired service port wants, with its flags. */
struct fe_want {
	struct svc_key key;
	uint32_t flags;
};

struct vip_ref {
	struct hmap_node node;
	struct ferry_ip addr;
	uint32_t refs;            /* applied service ports on this VIP */
};

struct sync_engine {
	struct dp_maps maps;
	const struct map_io *io;  /* how the maps are reached (mapio.h) */
	void *io_ctx;
	struct agent_state published; /* what sync_publish wrote last (pid 0: nothing) */
	struct hmap svcs;         /* applied_svc by id */
	struct hmap frontends;    /* applied_frontend by svc_key */
	struct hmap vips;         /* vip_ref by address */
	size_t frontends_v6;      /* of frontends, the IPv6 ones */
	size_t vips_v6;           /* of vips, the IPv6 ones */
	struct hmap pending;      /* pending_svc by id: desired, not programmed */
	struct hmap conflicts;    /* frontends left out, as reported (conflicts.c) */
	struct hmap rn_orphans;   /* rn_orphan by revnat_key: entries no port owns */
	struct rn_orphan *rn_oldest; /* the same, a ring, oldest first */
	struct hmap rn_taken;     /* keys taken in the first, staged apply (revnat.c) */
	struct rn_chunk *rn_chunks; /* where rn_taken's entries live */
	bool room_freed;          /* this apply removed entries: retry the pending */
	size_t room_failures;     /* service ports of this apply that found no room */
	bool udp_backend_gone;    /* a UDP backend left a service since the last
				   * sync_take_udp_gone (B21) */
	struct id_pool svc_ids;
	struct id_pool backend_ids;
	struct extents maglev_space; /* ferry_maglev's cells (lb.c) */
	bool maglev_map_tried;    /* lb.c mapped ferry_maglev, or could not */
	uint64_t max_services;    /* --max-services */
	uint64_t max_backends;    /* --max-backends; the map holds one service more */
	uint64_t backends_capacity; /* that much: published in ferry_state */
	bool maps_fresh;          /* created empty by this ferryd, not adopted */
	bool staging;             /* puts go to stage[] (first apply into fresh maps) */
	struct stage stage[DP_MAP__COUNT];
	uint64_t writes;          /* successful map writes, ever */
	bool first_apply;         /* no state applied yet */
	bool report_conflicts;    /* the last try: log and count frontends left out */
	size_t n_node_addrs;
	struct ferry_ip *node_addrs; /* ferry_node_addrs as written, in order */
	uint8_t lb_default;       /* --lb-algorithm, enum lb_algorithm */
	int (*lc_ready)(void *arg); /* sync_set_least_conn_hook's */
	void *lc_arg;
	bool lc_is_ready;         /* lc_ready returned 0 */
	char node_name[sizeof(((struct agent_state *)0)->node_name)]; /* for ferry_state */
	char node_zone[sizeof(((struct agent_state *)0)->node_zone)];
	bool config_known;        /* config holds what ferry_config holds */
	struct dp_config config;
	struct sync_stats stats;
};

/* writes.c: one map concern each. Failures return -errno; "full" errors
 * are counted in stats.map_full_errors. */
int wr_put(struct sync_engine *eng, enum dp_map map, const void *key, const void *value);
/* A stage's sink (stage.h) into one map of eng. */
struct wr_stage_to {
	const struct sync_engine *eng;
	enum dp_map map;
};
int wr_stage_sink(void *ctx, const void *keys, const void *values, uint32_t *count);
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

/* How many ferry_slots entries a published set of count backends has (b[],
 * n of them, gives its family): count, or none when it rides inline in
 * its service entry. count, not n: adopted sets may miss slots. */
size_t wr_slots_of(const struct applied_backend *b, size_t n, uint32_t count);
/* Write b[]'s slots under (svc_id, rev); an inline set has none. */
int wr_slots_write(struct sync_engine *eng, uint32_t svc_id, uint32_t rev,
		   const struct applied_backend *b, size_t n);
void wr_slots_delete(struct sync_engine *eng, uint32_t svc_id, uint32_t rev, size_t n);

int wr_vip_ref(struct sync_engine *eng, const struct ferry_ip *addr);
/* Count a reference to a marker that is already in the map. */
int wr_vip_adopt(struct sync_engine *eng, const struct ferry_ip *addr);
/* Whether addr has a marker reference. */
int wr_vip_known(const struct sync_engine *eng, const struct ferry_ip *addr);
void wr_vip_unref(struct sync_engine *eng, const struct ferry_ip *addr);

/* frontends.c. The ferry_services4/6 value a's frontend key holds: the
 * shared value with the frontend's own flags, and set[] inline when it is
 * small enough. */
void fe_entry(struct svc_entry *e, const struct applied_svc *a, const struct svc_key *key,
	      uint32_t flags, const struct applied_backend *set, size_t n);
/* The frontends d wants, sorted, without those another still-desired
 * service port holds (*skipped counts them). *takeover: one is held by a
 * departing port. */
int fe_wanted(struct sync_engine *eng, const struct desired_svc *d,
	      const struct applied_svc *a, struct fe_want **out, size_t *n,
	      size_t *skipped, bool *takeover);
/* Bring a's frontends to want[] (rewriting all when every is true, after a
 * new revision). A frontend that cannot be written is left out (its old
 * entry deleted). Returns how many of want[] are written, or -1 when
 * none could be and a kept its old entries (nothing to roll forward). */
int fe_publish(struct sync_engine *eng, struct applied_svc *a, const struct fe_want *want,
	       size_t n, bool every, const struct applied_backend *set, size_t n_set);
/* Delete every frontend entry a owns (and its VIP markers). */
void fe_remove_all(struct sync_engine *eng, struct applied_svc *a);
/* The applied frontend holding key, or NULL. */
struct applied_frontend *fe_owner(const struct sync_engine *eng, const struct svc_key *key);
/* Add an adopted frontend to a (pinned entry of a's svc_id); when all are
 * added, fe_adopt_done sorts and indexes them. */
int fe_adopt(struct sync_engine *eng, struct applied_svc *a, const struct svc_key *key,
	     const struct svc_value *v);
void fe_adopt_done(struct sync_engine *eng, struct applied_svc *a);

/* ranges.c: a's loadBalancerSourceRanges brought to d's. rg_put writes
 * the new ones (before the frontends flag them) into *want (d's, masked,
 * sorted); then rg_commit deletes the old ones, or rg_abort the new ones. */
int rg_put(struct sync_engine *eng, const struct applied_svc *a, const struct desired_svc *d,
	   struct ferry_prefix **want, size_t *n);
void rg_commit(struct sync_engine *eng, struct applied_svc *a, struct ferry_prefix *want,
	       size_t n);
void rg_abort(struct sync_engine *eng, const struct applied_svc *a, struct ferry_prefix *want,
	      size_t n);
/* Adopt the pinned entries of the adopted service ports; delete the rest.
 * Returns how many were deleted. */
size_t rg_adopt(struct sync_engine *eng);

/* node.c: adopt ferry_node_addrs and ferry_config as they are. */
void node_adopt(struct sync_engine *eng);

/* adopt.c */
struct applied_svc *adopt_find(const struct sync_engine *eng, uint32_t svc_id);
/* applied_backend order (address, then port): how every set is sorted. */
int backend_sort_cmp(const void *x, const void *y);
void *map_keys(const struct sync_engine *eng, enum dp_map map, size_t key_size, size_t *n_out);

/* conflicts.c: conflict_note says whether (key, id) is a new conflict, to
 * report; conflict_sweep (end of a full apply) forgets those not noted
 * since the last sweep; conflict_forget those of one service port. */
bool conflict_note(struct sync_engine *eng, const struct svc_key *key, const char *id);
void conflict_sweep(struct sync_engine *eng);
void conflict_forget(struct sync_engine *eng, const char *id);
void conflict_clear(struct sync_engine *eng);

/* pending.c: service ports that are desired but not programmed (no room,
 * or their frontend belongs to another service port), with a copy of what
 * they want; tried again whenever an apply frees room. */
typedef int svc_apply_fn(struct sync_engine *eng, const struct desired_svc *d);
void pending_add(struct sync_engine *eng, const struct desired_svc *d);
void pending_drop(struct sync_engine *eng, const char *id);
void pending_retry(struct sync_engine *eng, svc_apply_fn *apply);
size_t pending_count(const struct sync_engine *eng);
void pending_clear(struct sync_engine *eng);

/* revnat.c: ferry_revnat, the TCP and UDP backends' reverse entries. Each
 * names the ClusterIP of the backend's owner, the first service port of its
 * protocol with a ClusterIP to take it; slots of the owner carry SLOT_FLAG_REVNAT_OWNER,
 * and applied_backend.slot_flags remembers them. An owner that lets go
 * leaves the entry as an orphan, for the connections that outlive the
 * backend's membership; the next port to (re)write a set holding the
 * backend takes it over. */
/* Whether want[] gives a a different ClusterIP than its entries name (the
 * set must then be written again). */
bool rn_primary_changed(const struct applied_svc *a, const struct fe_want *want, size_t n);
/* Before a's new set nb[] is written: take ownership where the backend has
 * no owner (writing its entry) and set nb[i].slot_flags. old[] is what a
 * held until now, with its flags. Never fails: a backend left unowned keeps
 * socket state. */
void rn_take(struct sync_engine *eng, struct applied_svc *a, const struct fe_want *want,
	     size_t n_want, struct applied_backend *nb, size_t n,
	     const struct applied_backend *old, size_t n_old);
/* The backends of from[] not in keep[] are let go: those owned become
 * orphans. */
void rn_release(struct sync_engine *eng, uint8_t proto, const struct applied_backend *from,
		size_t n_from, const struct applied_backend *keep, size_t n_keep);
/* After adoption: rebuild the owners from the pinned entries; the rest
 * are orphans. */
void rn_adopt(struct sync_engine *eng);
/* Delete orphans past their time, or beyond their number. */
void rn_expire(struct sync_engine *eng);
void rn_clear(struct sync_engine *eng);

#endif
