// SPDX-License-Identifier: GPL-2.0
/* The UDP reaper (B21): an object of its own, loaded only when ferryd uses
 * it, on the socket LB's maps (user/datapath/loader.c gives it their
 * descriptors). Apart because of its kfunc: resolving an extern the kernel
 * lacks makes libbpf list the module BTFs, which takes CAP_SYS_ADMIN; in the
 * socket LB's object that failed the whole object on kernels before 6.5.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/revnat.h"
#include "lib/reap.h"

/* Not weak: this object is loaded only where the kernel has it. */
extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

char LICENSE[] SEC("license") = "GPL";

/* Run by ferryd (bpf_iter) in each network namespace after an apply that
 * took a UDP backend out of a service: see lib/reap.h. */
SEC("iter/udp")
int ferry_udp_reap(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp_sk = ctx->udp_sk;
	struct sock_revnat_entry *e;
	struct sock_revnat *st;
	struct sock *sk;
	__u32 addr[4];
	__u16 port;

	if (!udp_sk)
		return 0;
	sk = &udp_sk->inet.sk;
	if (sk->__sk_common.skc_state != SOCK_ESTABLISHED)
		return 0;
	st = bpf_sk_storage_get(&ferry_sk_revnat, sk, NULL, 0);
	reap_peer(sk, addr, &port);
	e = st ? revnat_find_peer(st, addr, port) : NULL;
	if (e ? reap_backend_kept(e) : reap_shared_kept(addr, port))
		return 0;
	if (bpf_sock_destroy((struct sock_common *)sk) == 0)
		stat_inc(STAT_UDP_REAPED);
	return 0;
}
