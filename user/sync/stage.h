/* Staging for the first apply into fresh maps. Nothing is attached to them
 * yet, so neither order nor atomicity matters: puts are gathered per map
 * and written with BPF_MAP_UPDATE_BATCH, a syscall per few thousand
 * entries instead of one per entry. A stage is written out whenever it
 * holds its hold of entries, so it takes about a MB whatever the state's
 * size (a whole 100,000 x 10 state staged took 78 MB of peak RSS; 65,536
 * entries a stage, 15 MB at 10,000 x 10 with 244-byte service entries).
 * Internal to user/sync. */
#ifndef FERRY_SYNC_STAGE_H
#define FERRY_SYNC_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

/* What a stage gathers before it is written: this many entries at most (8
 * batches a write), and about STAGE_HOLD_BYTES of them, so that the stages
 * of large entries (ferry_services4/6', ferry_svc_names') stay as small as the
 * others. */
#define STAGE_HOLD 65536
#define STAGE_HOLD_BYTES (1024 * 1024)

struct stage {
	char *keys;
	char *values;
	size_t n, cap;
	size_t hold;  /* entries gathered before a write */
	uint32_t key_size;
	uint32_t value_size;
	bool held;  /* a write failed: keep everything for stage_flush */
};

/* Where a stage's entries go, as BPF_MAP_UPDATE_BATCH takes them: *count
 * in, how many were written out (also on an error). Returns 0 or -errno.
 * A large write calls it from two threads at once, on distinct entries. */
typedef int stage_sink(void *ctx, const void *keys, const void *values, uint32_t *count);

void stage_init(struct stage *s, uint32_t key_size, uint32_t value_size);
void stage_free(struct stage *s);
/* Returns 0, or -ENOMEM. */
int stage_push(struct stage *s, const void *key, const void *value);
/* Forget a staged key (a failed service port's puts). Returns 0 when found;
 * -ENOENT when it is not staged (never put, or already written). */
int stage_drop(struct stage *s, const void *key);
/* Whether the stage holds its hold of entries and should be written. */
bool stage_full(const struct stage *s);
/* Write everything staged into the sink and keep the buffers. On an
 * error what was not written stays staged, and the stage holds from then
 * on: stage_flush tries it again and reports. Returns 0 or -errno. */
int stage_write(struct stage *s, stage_sink *sink, void *ctx);
/* Write everything staged into the sink, then empty the stage. Returns 0
 * or -errno. */
int stage_flush(struct stage *s, stage_sink *sink, void *ctx);

#endif
