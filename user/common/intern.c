#include "common/intern.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"

struct intern_entry {
	struct hmap_node node;
	size_t refs;
	char text[];
};

static struct hmap intern_table;

static struct intern_entry *intern_entry_of(const char *text)
{
	return (struct intern_entry *)(text - offsetof(struct intern_entry, text));
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
	free(e);
}
