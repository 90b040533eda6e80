#include "common/intern.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"

struct intern_entry {
	struct hmap_node node;
	uint32_t refs;
	uint32_t index;
	char text[];
};

static struct hmap intern_table;
/* The entries by number (slot 0 unused), and the numbers free for reuse:
 * both have room for cap_index, so that freeing never allocates. */
static struct intern_entry **intern_by_index;
static uint32_t *intern_free;
static uint32_t intern_n_index = 1, intern_n_free, intern_cap_index;

static struct intern_entry *intern_entry_of(const char *text)
{
	return (struct intern_entry *)(text - offsetof(struct intern_entry, text));
}

/* A number for e: a free one, or the next. -1 when out of memory. */
static int intern_number(struct intern_entry *e)
{
	uint32_t cap = intern_cap_index ? intern_cap_index * 2 : 64;
	void *p;

	if (intern_n_free) {
		e->index = intern_free[--intern_n_free];
	} else {
		if (intern_n_index >= intern_cap_index) {
			p = realloc(intern_by_index, cap * sizeof(*intern_by_index));
			if (!p)
				return -1;
			intern_by_index = p;
			p = realloc(intern_free, cap * sizeof(*intern_free));
			if (!p)
				return -1;
			intern_free = p;
			intern_cap_index = cap;
		}
		e->index = intern_n_index++;
	}
	intern_by_index[e->index] = e;
	return 0;
}

const char *intern_get(const char *s)
{
	return intern_get_len(s, strlen(s));
}

const char *intern_get_len(const char *s, size_t len)
{
	struct hmap_node *n;
	struct intern_entry *e;

	if (!intern_table.buckets && hmap_init(&intern_table, 64) < 0)
		return NULL;
	n = hmap_get(&intern_table, s, len);
	if (n) {
		e = hmap_entry(n, struct intern_entry, node);
		e->refs++;
		return e->text;
	}
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	if (intern_number(e) < 0) {
		free(e);
		return NULL;
	}
	memcpy(e->text, s, len);
	e->text[len] = '\0';
	e->refs = 1;
	hmap_put(&intern_table, &e->node, e->text, len);
	return e->text;
}

const char *intern_ref(const char *s)
{
	intern_entry_of(s)->refs++;
	return s;
}

void intern_put(const char *s)
{
	struct intern_entry *e;

	if (!s)
		return;
	e = intern_entry_of(s);
	if (--e->refs)
		return;
	hmap_remove(&intern_table, &e->node);
	intern_by_index[e->index] = NULL;
	intern_free[intern_n_free++] = e->index;
	free(e);
}

uint32_t intern_index(const char *s)
{
	return intern_entry_of(s)->index;
}

const char *intern_at(uint32_t index)
{
	return index ? intern_by_index[index]->text : NULL;
}
