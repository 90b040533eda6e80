/* One line of text per desired service port, for the unit tests to compare:
 * "id PROTO frontend... [ranges P...] [flags] -> backend...". A ClusterIP
 * or NodePort frontend is "addr:port" (a NodePort's addr is the family's
 * wildcard, 0.0.0.0 or ::), an LB IP "lb:addr:port", an externalIP
 * "ext:addr:port". */
#ifndef FERRY_TEST_DESIRED_FMT_H
#define FERRY_TEST_DESIRED_FMT_H

#include <stdio.h>
#include <string.h>

#include "model/model.h"

static void fmt_add(char *buf, size_t len, const char *s)
{
	size_t used = strlen(buf);

	snprintf(buf + used, len - used, "%s", s);
}

static void fmt_prefix(const struct ferry_prefix *p, char *out, size_t len)
{
	char text[ADDR_STR_LEN];
	bool v4 = p->len >= 96 && addr_is_v4(&p->addr);

	snprintf(out, len, "%s/%u", addr_format(&p->addr, text), v4 ? p->len - 96 : p->len);
}

static const char *fmt_desired(const struct desired_svc *s, char *buf, size_t len)
{
	static const char *const kinds[] = { "", "", "lb:", "ext:" };
	char one[96], text[64];

	snprintf(buf, len, "%s %s", s->id, proto_name(s->proto));
	for (size_t i = 0; i < s->n_frontends; i++) {
		addr_format_port(&s->frontends[i].addr, s->frontends[i].port, text, sizeof(text));
		snprintf(one, sizeof(one), " %s%s", s->frontends[i].kind < 4 ? kinds[s->frontends[i].kind] : "?:", text);
		fmt_add(buf, len, one);
	}
	if (s->n_source_ranges)
		fmt_add(buf, len, " ranges");
	for (size_t i = 0; i < s->n_source_ranges; i++) {
		fmt_prefix(&s->source_ranges[i], text, sizeof(text));
		fmt_add(buf, len, " ");
		fmt_add(buf, len, text);
	}
	if (s->external)
		fmt_add(buf, len, " external");
	if (s->ext_local)
		fmt_add(buf, len, " ext-local");
	if (s->health_check_node_port) {
		snprintf(one, sizeof(one), " hc=%u", s->health_check_node_port);
		fmt_add(buf, len, one);
	}
	if (s->fallback)
		fmt_add(buf, len, " (fallback)");
	fmt_add(buf, len, " ->");
	for (size_t b = 0; b < s->n_backends; b++) {
		addr_format_port(&s->backends[b].addr, s->backends[b].port, text, sizeof(text));
		fmt_add(buf, len, " ");
		fmt_add(buf, len, text);
	}
	return buf;
}

#endif
