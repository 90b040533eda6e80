/* Reading a ferry_services4/6 entry's backend set from userspace: a small set
 * rides inline in the entry and has no ferry_slots entries (ferry/maps.h).
 * The engine, adoption and ferryctl agree on which sets those are here. */
#ifndef FERRY_SVC_ENTRY_H
#define FERRY_SVC_ENTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry/maps.h"

/* Whether a set of count backends whose family is addr's (16 bytes,
 * IPv4 v4-mapped) rides inline: then it has no slots. */
bool svc_entry_inline(const __u32 addr[4], uint32_t count);

/* Inline backend i of e, a set of addr's family, as its slot would read. */
void svc_entry_slot(const struct svc_entry *e, const __u32 addr[4], uint32_t i,
		    struct slot_value *out);

/* The name of an enum lb_algorithm, as ferry.io/lb-algorithm spells it. */
const char *svc_entry_algorithm(uint8_t algorithm);

#endif
