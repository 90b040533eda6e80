#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int addr_parse(const char *text, struct ferry_ip *out)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (!text)
		return -1;
	if (inet_pton(AF_INET, text, &v4) == 1) {
		out->w[0] = 0;
		out->w[1] = 0;
		out->w[2] = htonl(0xffff);
		out->w[3] = v4.s_addr;
		return 4;
	}
	if (inet_pton(AF_INET6, text, &v6) == 1) {
		memcpy(out->w, &v6, sizeof(out->w));
		/* A v4-mapped literal is an IPv4 address written as IPv6. */
		return addr_is_v4(out) ? 4 : 6;
	}
	return -1;
}

bool addr_is_v4(const struct ferry_ip *ip)
{
	return ip->w[0] == 0 && ip->w[1] == 0 && ip->w[2] == htonl(0xffff);
}

bool addr_equal(const struct ferry_ip *a, const struct ferry_ip *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

int addr_compare(const struct ferry_ip *a, const struct ferry_ip *b)
{
	return memcmp(a, b, sizeof(*a));
}

const char *addr_format(const struct ferry_ip *ip, char buf[ADDR_STR_LEN])
{
	if (addr_is_v4(ip))
		inet_ntop(AF_INET, &ip->w[3], buf, ADDR_STR_LEN);
	else
		inet_ntop(AF_INET6, ip->w, buf, ADDR_STR_LEN);
	return buf;
}

const char *addr_format_port(const struct ferry_ip *ip, uint16_t port, char *buf, size_t len)
{
	char text[ADDR_STR_LEN];

	addr_format(ip, text);
	snprintf(buf, len, addr_is_v4(ip) ? "%s:%u" : "[%s]:%u", text, port);
	return buf;
}

const char *proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP: return "TCP";
	case IPPROTO_UDP: return "UDP";
	case IPPROTO_SCTP: return "SCTP";
	default: return "?";
	}
}

uint8_t proto_parse(const char *name)
{
	if (strcmp(name, "TCP") == 0)
		return IPPROTO_TCP;
	if (strcmp(name, "UDP") == 0)
		return IPPROTO_UDP;
	if (strcmp(name, "SCTP") == 0)
		return IPPROTO_SCTP;
	return 0;
}
