/* Backend choice beside the set (user/sync/lb.c). Internal to user/sync. */
#ifndef FERRY_SYNC_LB_H
#define FERRY_SYNC_LB_H

#include <stdint.h>

#include "ferry/maps.h"
#include "model/model.h"

struct sync_engine;

/* d's enum lb_algorithm: its annotation's, else --lb-algorithm. */
uint8_t lb_algorithm(const struct sync_engine *eng, const struct desired_svc *d);
/* Before a least-conn set is written: the hook, until it succeeds once. A
 * failure (logged by the hook) leaves the set written all the same: its
 * picks work, its counts only grow until the hook is in. */
void lb_least_conn_ready(struct sync_engine *eng);
/* d's Maglev table in a new run of ferry_maglev: *size gets its entries
 * (a prime), *offset its first cell. Returns 0 or -errno, logged. */
int lb_table_write(struct sync_engine *eng, const struct desired_svc *d, uint32_t *size,
		   uint32_t *offset);
/* The run of v's table, if it has one, freed once the apply is over. */
void lb_table_delete(struct sync_engine *eng, const struct svc_value *v);
/* The run of an adopted entry's table, taken. 0, or -1 when it overlaps
 * another (the entry is then rewritten). */
int lb_table_adopt(struct sync_engine *eng, const struct svc_value *v);
int lb_name_write(struct sync_engine *eng, uint32_t svc_id, const char *id);
/* The same, for an adopted service port: written only when it differs. */
int lb_name_keep(struct sync_engine *eng, uint32_t svc_id, const char *id);
void lb_name_delete(struct sync_engine *eng, uint32_t svc_id);

#endif
