#include "sync/stage.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Entries per BPF_MAP_UPDATE_BATCH call: large enough that the syscall
 * cost vanishes, small enough to keep each call short. */
#define STAGE_BATCH 8192

/* From this many entries on, a write is shared by two threads: a thread
 * costs tens of microseconds, a thousand inserts about a millisecond. */
#define STAGE_SPLIT 4096

void stage_init(struct stage *s, uint32_t key_size, uint32_t value_size)
{
	size_t entry = key_size + value_size;

	memset(s, 0, sizeof(*s));
	s->key_size = key_size;
	s->value_size = value_size;
	/* Maps not staged have an empty stage (sizes 0). */
	if (entry)
		s->hold = STAGE_HOLD_BYTES / entry < STAGE_HOLD ? STAGE_HOLD_BYTES / entry : STAGE_HOLD;
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
		char *k;

		/* Room for the hold, no more, until a write fails (held). */
		if (s->cap < s->hold && cap > s->hold)
			cap = s->hold;
		k = realloc(s->keys, cap * s->key_size);
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
	return !s->held && s->n >= s->hold;
}

/* One thread's share of a write: entries [from, from + n) of the stage. */
struct stage_part {
	const struct stage *s;
	stage_sink *sink;
	void *ctx;
	size_t from, n;
	size_t done;  /* written, from the start of the share */
	int err;
};

static void *stage_write_part(void *arg)
{
	struct stage_part *p = arg;
	const struct stage *s = p->s;

	while (p->done < p->n) {
		size_t at = p->from + p->done;
		uint32_t count = p->n - p->done < STAGE_BATCH ? (uint32_t)(p->n - p->done) :
			STAGE_BATCH;
		int err = p->sink(p->ctx, s->keys + at * s->key_size,
				  s->values + at * s->value_size, &count);

		/* count says how many went in, also on an error. */
		p->done += count;
		if (err) {
			p->err = err;
			break;
		}
	}
	return NULL;
}

/* Move what the share did not write to position to; returns the position
 * after it. */
static size_t stage_keep(struct stage *s, const struct stage_part *p, size_t to)
{
	size_t from = p->from + p->done, n = p->n - p->done;

	memmove(s->keys + to * s->key_size, s->keys + from * s->key_size, n * s->key_size);
	memmove(s->values + to * s->value_size, s->values + from * s->value_size,
		n * s->value_size);
	return to + n;
}

int stage_write(struct stage *s, stage_sink *sink, void *ctx)
{
	struct stage_part part[2] = {
		{ .s = s, .sink = sink, .ctx = ctx, .n = s->n },
		{ .s = s, .sink = sink, .ctx = ctx, .from = s->n },
	};
	sigset_t all, mask;
	pthread_t helper;
	bool split = false;

	/* The kernel's inserts are memory-bound, and a hash map's buckets
	 * have locks of their own: two threads write a large stage, half
	 * each, in about half the time. */
	if (s->n >= STAGE_SPLIT) {
		part[0].n = part[1].from = s->n / 2;
		part[1].n = s->n - part[0].n;
		/* Signals are ferryd's loop's: the helper takes none. */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &mask);
		split = pthread_create(&helper, NULL, stage_write_part, &part[1]) == 0;
		pthread_sigmask(SIG_SETMASK, &mask, NULL);
		if (!split)
			part[0].n = s->n;
	}
	stage_write_part(&part[0]);
	if (split)
		pthread_join(helper, NULL);
	if (!part[0].err && !part[1].err) {
		s->n = 0;
		return 0;
	}
	s->n = stage_keep(s, &part[1], stage_keep(s, &part[0], 0));
	s->held = true;
	return part[0].err ? part[0].err : part[1].err;
}

int stage_flush(struct stage *s, stage_sink *sink, void *ctx)
{
	int err = stage_write(s, sink, ctx);

	if (!err)
		stage_free(s);
	return err;
}
