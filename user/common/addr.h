/* IP addresses as the maps hold them: 16 bytes, network order, IPv4
 * v4-mapped. Parsing rejects anything that is not a plain IP literal. */
#ifndef FERRY_ADDR_H
#define FERRY_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADDR_STR_LEN 46 /* INET6_ADDRSTRLEN */

struct ferry_ip {
	uint32_t w[4];
};

/* Returns 4 or 6 (the family of the literal), or -1 when it is not an IP. */
int addr_parse(const char *text, struct ferry_ip *out);
bool addr_is_v4(const struct ferry_ip *ip);
bool addr_equal(const struct ferry_ip *a, const struct ferry_ip *b);
int addr_compare(const struct ferry_ip *a, const struct ferry_ip *b);
/* IPv4 as dotted quad, IPv6 as RFC 5952 text. */
const char *addr_format(const struct ferry_ip *ip, char buf[ADDR_STR_LEN]);
/* "addr:port", IPv6 in brackets. */
const char *addr_format_port(const struct ferry_ip *ip, uint16_t port, char *buf, size_t len);
const char *proto_name(uint8_t proto);
/* "TCP", "UDP", "SCTP" (case as Kubernetes writes them) -> IPPROTO_*, or 0. */
uint8_t proto_parse(const char *name);

#endif
