#include "datapath/svc_entry.h"

#include <arpa/inet.h>
#include <string.h>

static bool addr_v4_mapped(const __u32 addr[4])
{
	return addr[0] == 0 && addr[1] == 0 && addr[2] == htonl(0xffff);
}

bool svc_entry_inline(const __u32 addr[4], uint32_t count)
{
	return count <= (addr_v4_mapped(addr) ? FERRY_SVC_INLINE_V4 : FERRY_SVC_INLINE_V6);
}

void svc_entry_slot(const struct svc_entry *e, const __u32 addr[4], uint32_t i,
		    struct slot_value *out)
{
	const struct svc_inline_v4 *b;

	memset(out, 0, sizeof(*out));
	if (!addr_v4_mapped(addr)) {
		if (i < FERRY_SVC_INLINE_V6)
			*out = e->in.v6[i];
		return;
	}
	if (i >= FERRY_SVC_INLINE_V4)
		return;
	b = &e->in.v4[i];
	out->backend_id = e->in.v4_backend_id[i];
	out->port = b->port;
	out->flags = b->flags;
	out->addr[2] = htonl(0xffff);
	out->addr[3] = b->addr;
}

const char *svc_entry_algorithm(uint8_t algorithm)
{
	static const char *const names[LB_ALGORITHM__COUNT] = {
		[LB_RANDOM] = "random",
		[LB_ROUND_ROBIN] = "round-robin",
		[LB_MAGLEV] = "maglev",
		[LB_LEAST_CONN] = "least-conn",
	};

	return algorithm < LB_ALGORITHM__COUNT ? names[algorithm] : "unknown";
}
