/* Moving addresses between the hook context and the maps' 16-byte form.
 * The v6 flag is a compile-time constant at every call site, so each
 * program touches only the context fields its attach type allows. */
#ifndef FERRY_BPF_SOCKADDR_H
#define FERRY_BPF_SOCKADDR_H

#include <bpf/bpf_endian.h>

static __always_inline void addr_map_v4(__u32 addr[4], __u32 ip4)
{
	addr[0] = 0;
	addr[1] = 0;
	addr[2] = bpf_htonl(0xffff);
	addr[3] = ip4;
}

static __always_inline void sockaddr_load(const struct bpf_sock_addr *ctx, bool v6,
					  __u32 addr[4], __u16 *port)
{
	if (v6) {
		addr[0] = ctx->user_ip6[0];
		addr[1] = ctx->user_ip6[1];
		addr[2] = ctx->user_ip6[2];
		addr[3] = ctx->user_ip6[3];
	} else {
		addr_map_v4(addr, ctx->user_ip4);
	}
	*port = (__u16)ctx->user_port;
}

static __always_inline void sockaddr_store(struct bpf_sock_addr *ctx, bool v6,
					   const __u32 addr[4], __u16 port)
{
	if (v6) {
		ctx->user_ip6[0] = addr[0];
		ctx->user_ip6[1] = addr[1];
		ctx->user_ip6[2] = addr[2];
		ctx->user_ip6[3] = addr[3];
	} else {
		ctx->user_ip4 = addr[3];
	}
	ctx->user_port = port;
}

static __always_inline bool addr_eq(const __u32 a[4], const __u32 b[4])
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static __always_inline void addr_copy(__u32 dst[4], const __u32 src[4])
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

static __always_inline bool addr_is_v4_mapped(const __u32 addr[4])
{
	return addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff);
}

#endif
