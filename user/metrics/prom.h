/* The Prometheus text exposition format (version 0.0.4), written into a
 * growing buffer: families with HELP and TYPE, samples with labels, and
 * histograms with cumulative buckets. */
#ifndef FERRY_METRICS_PROM_H
#define FERRY_METRICS_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prom_buf {
	char *text;
	size_t len, cap;
	bool failed;              /* out of memory: the text is incomplete */
};

/* 81: kube-proxy's network_programming_duration_seconds buckets */
#define HISTOGRAM_MAX_BUCKETS 81

struct histogram {
	size_t n_bounds;
	double bounds[HISTOGRAM_MAX_BUCKETS]; /* upper bounds, increasing; +Inf implied */
	uint64_t counts[HISTOGRAM_MAX_BUCKETS + 1];
	uint64_t count;
	double sum;
};

/* bounds: n increasing upper bounds (at most HISTOGRAM_MAX_BUCKETS). */
void histogram_init(struct histogram *h, const double *bounds, size_t n);
void histogram_observe(struct histogram *h, double value);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help);
/* One sample; labels is the text inside the braces ("a=\"x\",b=\"y\"") or
 * NULL. Label values must be escaped already (prom_label_value). */
void prom_sample(struct prom_buf *b, const char *name, const char *labels, double value);
/* A histogram's _bucket, _sum and _count samples. */
void prom_histogram(struct prom_buf *b, const char *name, const char *labels,
		    const struct histogram *h);
/* value with \, " and newline escaped, into out (truncated to out_len). */
void prom_label_value(char *out, size_t out_len, const char *value);
void prom_free(struct prom_buf *b);

#endif
