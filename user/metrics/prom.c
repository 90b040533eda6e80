#include "metrics/prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void histogram_init(struct histogram *h, const double *bounds, size_t n)
{
	memset(h, 0, sizeof(*h));
	h->n_bounds = n < HISTOGRAM_MAX_BUCKETS ? n : HISTOGRAM_MAX_BUCKETS;
	memcpy(h->bounds, bounds, h->n_bounds * sizeof(*bounds));
}

void histogram_observe(struct histogram *h, double value)
{
	size_t i = 0;

	while (i < h->n_bounds && value > h->bounds[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += value;
}

static void prom_printf(struct prom_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void prom_printf(struct prom_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int attempt = 0; attempt < 2 && !b->failed; attempt++) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->text ? b->text + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
		} else if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		} else {
			size_t cap = b->cap ? b->cap : 4096;
			char *p;

			while (cap < b->len + (size_t)n + 1)
				cap *= 2;
			p = realloc(b->text, cap);
			if (!p)
				b->failed = true;
			b->text = p ? p : b->text;
			b->cap = p ? cap : b->cap;
		}
	}
}

void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	prom_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Integers print as integers; Prometheus reads every form. */
static void prom_value(struct prom_buf *b, double v)
{
	if (isinf(v))
		prom_printf(b, v > 0 ? "+Inf\n" : "-Inf\n");
	else if (v == floor(v) && fabs(v) < 1e15)
		prom_printf(b, "%.0f\n", v);
	else if (fabs(v) >= 1e6) /* timestamps: keep the microseconds */
		prom_printf(b, "%.6f\n", v);
	else
		prom_printf(b, "%.9g\n", v);
}

void prom_sample(struct prom_buf *b, const char *name, const char *labels, double value)
{
	if (labels && *labels)
		prom_printf(b, "%s{%s} ", name, labels);
	else
		prom_printf(b, "%s ", name);
	prom_value(b, value);
}

void prom_histogram(struct prom_buf *b, const char *name, const char *labels,
		    const struct histogram *h)
{
	const char *sep = labels && *labels ? "," : "";
	uint64_t cumulative = 0;

	labels = labels ? labels : "";
	for (size_t i = 0; i < h->n_bounds; i++) {
		cumulative += h->counts[i];
		prom_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->bounds[i],
			    (unsigned long long)cumulative);
	}
	prom_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
		    (unsigned long long)h->count);
	prom_printf(b, "%s_sum%s%s%s %.9g\n", name, *labels ? "{" : "", labels,
		    *labels ? "}" : "", h->sum);
	prom_printf(b, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
		    *labels ? "}" : "", (unsigned long long)h->count);
}

void prom_label_value(char *out, size_t out_len, const char *value)
{
	size_t j = 0;

	for (const char *p = value; *p && j + 3 < out_len; p++) {
		if (*p == '\\' || *p == '"' || *p == '\n') {
			out[j++] = '\\';
			out[j++] = *p == '\n' ? 'n' : *p;
		} else {
			out[j++] = *p;
		}
	}
	if (out_len)
		out[j < out_len ? j : out_len - 1] = '\0';
}

void prom_free(struct prom_buf *b)
{
	free(b->text);
	memset(b, 0, sizeof(*b));
}
