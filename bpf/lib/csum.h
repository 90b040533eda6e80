/* Incremental Internet checksums (RFC 1624) without helper calls: a
 * rewrite replaces 32-bit words, so the difference is the ones' complement
 * sum of the old words negated and the new ones. The XDP path applies it to
 * the fields itself; the tc path hands it to bpf_l3/l4_csum_replace, which
 * also know about CHECKSUM_PARTIAL. */
#ifndef FERRY_BPF_CSUM_H
#define FERRY_BPF_CSUM_H

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* The difference of replacing n words old by new, accumulated on sum. Not
 * unrolled: an IPv6 rewrite's 16 words would otherwise all be loaded
 * first and spilled, and the stack is small. */
static __always_inline __u64 csum_diff_words(__u64 sum, const __u32 *old, const __u32 *new, int n)
{
#pragma clang loop unroll(disable)
	for (int i = 0; i < n; i++)
		sum += (__u32)~old[i] + (__u64)new[i];
	return sum;
}

/* A checksum field after a change of difference diff (folded). */
static __always_inline __u16 csum_apply(__u16 check, __u16 diff)
{
	return ~csum_fold((__u64)(__u16)~check + diff);
}

#endif
