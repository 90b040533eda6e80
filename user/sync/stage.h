/* Staging for the first apply into fresh maps. Nothing is attached to them
 * yet, so neither order nor atomicity matters: puts are gathered per map
 * and written with BPF_MAP_UPDATE_BATCH, a syscall per few thousand
 * entries instead of one per entry. Internal to user/sync. */
#ifndef FERRY_SYNC_STAGE_H
#define FERRY_SYNC_STAGE_H

#include <stddef.h>
#include <stdint.h>

struct stage {
	char *keys;
	char *values;
	size_t n, cap;
	uint32_t key_size;
	uint32_t value_size;
};

void stage_init(struct stage *s, uint32_t key_size, uint32_t value_size);
void stage_free(struct stage *s);
/* Returns 0, or -ENOMEM. */
int stage_push(struct stage *s, const void *key, const void *value);
/* Forget a staged key (a failed service port's puts). Returns 0 when found. */
int stage_drop(struct stage *s, const void *key);
/* Write everything staged into the map fd, then empty the stage. Returns 0
 * or -errno. */
int stage_flush(struct stage *s, int fd);

#endif
