#include "sync/stage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Entries per BPF_MAP_UPDATE_BATCH call: large enough that the syscall
 * cost vanishes, small enough to keep each call short. */
#define STAGE_BATCH 8192

void stage_init(struct stage *s, uint32_t key_size, uint32_t value_size)
{
	memset(s, 0, sizeof(*s));
	s->key_size = key_size;
	s->value_size = value_size;
}

void stage_free(struct stage *s)
{
	free(s->keys);
	free(s->values);
	stage_init(s, s->key_size, s->value_size);
}

int stage_push(struct stage *s, const void *key, const void *value)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		char *k = realloc(s->keys, cap * s->key_size);
		char *v;

		if (!k)
			return -ENOMEM;
		s->keys = k;
		v = realloc(s->values, cap * s->value_size);
		if (!v)
			return -ENOMEM;
		s->values = v;
		s->cap = cap;
	}
	memcpy(s->keys + s->n * s->key_size, key, s->key_size);
	memcpy(s->values + s->n * s->value_size, value, s->value_size);
	s->n++;
	return 0;
}

int stage_drop(struct stage *s, const void *key)
{
	for (size_t i = s->n; i-- > 0;) {
		if (memcmp(s->keys + i * s->key_size, key, s->key_size))
			continue;
		s->n--;
		memmove(s->keys + i * s->key_size, s->keys + s->n * s->key_size, s->key_size);
		memmove(s->values + i * s->value_size, s->values + s->n * s->value_size,
			s->value_size);
		return 0;
	}
	return -ENOENT;
}

bool stage_full(const struct stage *s)
{
	return !s->held && s->n >= STAGE_HOLD;
}

/* The first done entries are in the map: move the rest to the front. */
static void stage_keep_from(struct stage *s, size_t done)
{
	memmove(s->keys, s->keys + done * s->key_size, (s->n - done) * s->key_size);
	memmove(s->values, s->values + done * s->value_size, (s->n - done) * s->value_size);
	s->n -= done;
}

int stage_write(struct stage *s, stage_sink *sink, void *ctx)
{
	size_t done = 0;

	while (done < s->n) {
		uint32_t count = s->n - done < STAGE_BATCH ? (uint32_t)(s->n - done) : STAGE_BATCH;
		int err = sink(ctx, s->keys + done * s->key_size, s->values + done * s->value_size,
			       &count);

		/* count says how many went in, also on an error. */
		done += count;
		if (err) {
			stage_keep_from(s, done);
			s->held = true;
			return err;
		}
	}
	s->n = 0;
	return 0;
}

int stage_flush(struct stage *s, stage_sink *sink, void *ctx)
{
	int err = stage_write(s, sink, ctx);

	if (!err)
		stage_free(s);
	return err;
}
