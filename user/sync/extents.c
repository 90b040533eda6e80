#include "sync/extents.h"

#include <stdlib.h>
#include <string.h>

static int ext_reserve(struct extent **v, size_t *cap, size_t want)
{
	struct extent *grown;
	size_t n = *cap ? *cap : 16;

	if (want <= *cap)
		return 0;
	while (n < want)
		n *= 2;
	grown = realloc(*v, n * sizeof(**v));
	if (!grown)
		return -1;
	*v = grown;
	*cap = n;
	return 0;
}

int ext_init(struct extents *x, uint32_t size)
{
	memset(x, 0, sizeof(*x));
	x->size = size;
	if (!size)
		return 0;
	if (ext_reserve(&x->free, &x->cap_free, 1))
		return -1;
	x->free[0] = (struct extent){ 0, size };
	x->n_free = 1;
	return 0;
}

void ext_free_all(struct extents *x)
{
	free(x->free);
	free(x->settling);
	memset(x, 0, sizeof(*x));
}

int64_t ext_alloc(struct extents *x, uint32_t len)
{
	for (size_t i = 0; len && i < x->n_free; i++) {
		struct extent *f = &x->free[i];
		uint32_t start = f->start;

		if (f->len < len)
			continue;
		f->start += len;
		f->len -= len;
		if (!f->len) {
			memmove(f, f + 1, (x->n_free - i - 1) * sizeof(*f));
			x->n_free--;
		}
		x->used += len;
		return start;
	}
	return -1;
}

int ext_claim(struct extents *x, uint32_t start, uint32_t len)
{
	for (size_t i = 0; i < x->n_free; i++) {
		struct extent *f = &x->free[i];
		struct extent tail;

		if (start < f->start || (uint64_t)start + len > (uint64_t)f->start + f->len)
			continue;
		tail = (struct extent){ start + len, f->start + f->len - (start + len) };
		f->len = start - f->start;
		if (tail.len) {
			if (ext_reserve(&x->free, &x->cap_free, x->n_free + 1))
				return -1;
			f = &x->free[i];
			memmove(f + 2, f + 1, (x->n_free - i - 1) * sizeof(*f));
			f[1] = tail;
			x->n_free++;
		}
		if (!f->len) {
			memmove(f, f + 1, (x->n_free - i - 1) * sizeof(*f));
			x->n_free--;
		}
		x->used += len;
		return 0;
	}
	return -1;
}

int ext_put(struct extents *x, uint32_t start, uint32_t len)
{
	if (!len)
		return 0;
	if (ext_reserve(&x->settling, &x->cap_settling, x->n_settling + 1))
		return -1;
	x->settling[x->n_settling++] = (struct extent){ start, len };
	return 0;
}

/* Insert r into the sorted free list, joining its neighbours. */
static int ext_insert(struct extents *x, struct extent r)
{
	size_t i = 0;

	while (i < x->n_free && x->free[i].start < r.start)
		i++;
	if (i > 0 && x->free[i - 1].start + x->free[i - 1].len == r.start) {
		x->free[i - 1].len += r.len;
		if (i < x->n_free && r.start + r.len == x->free[i].start) {
			x->free[i - 1].len += x->free[i].len;
			memmove(&x->free[i], &x->free[i + 1], (x->n_free - i - 1) * sizeof(r));
			x->n_free--;
		}
		return 0;
	}
	if (i < x->n_free && r.start + r.len == x->free[i].start) {
		x->free[i].start = r.start;
		x->free[i].len += r.len;
		return 0;
	}
	if (ext_reserve(&x->free, &x->cap_free, x->n_free + 1))
		return -1;
	memmove(&x->free[i + 1], &x->free[i], (x->n_free - i) * sizeof(r));
	x->free[i] = r;
	x->n_free++;
	return 0;
}

void ext_settle(struct extents *x)
{
	for (size_t i = 0; i < x->n_settling; i++)
		if (ext_insert(x, x->settling[i]) == 0)
			x->used -= x->settling[i].len;
	x->n_settling = 0;
}
