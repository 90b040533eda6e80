/* Service lookup. A miss on (VIP, port, proto) is checked against the VIP
 * marker (port 0, proto 0) so an undefined port on a known ClusterIP is
 * refused (B17) instead of reaching whatever listens on the host. */
#ifndef FERRY_BPF_LOOKUP_H
#define FERRY_BPF_LOOKUP_H

#include "lib/maps.h"

enum lookup_result {
	LOOKUP_NOT_SERVICE,
	LOOKUP_UNKNOWN_PORT,
	LOOKUP_FOUND,
};

static __always_inline enum lookup_result
svc_lookup(struct svc_key *key, struct svc_value **out)
{
	struct svc_value *svc = bpf_map_lookup_elem(&ferry_services, key);
	struct svc_key vip = {};

	if (svc) {
		*out = svc;
		return LOOKUP_FOUND;
	}
	vip.addr[0] = key->addr[0];
	vip.addr[1] = key->addr[1];
	vip.addr[2] = key->addr[2];
	vip.addr[3] = key->addr[3];
	if (bpf_map_lookup_elem(&ferry_services, &vip))
		return LOOKUP_UNKNOWN_PORT;
	return LOOKUP_NOT_SERVICE;
}

#endif
