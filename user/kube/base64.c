/* A strict base64 decoder for the kubeconfig's *-data fields: a typo or a
 * PEM pasted without encoding should be an error that says where, not a
 * certificate that curl later refuses with a vague message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kube/kube_priv.h"

/* The value of a character of the standard alphabet, -1 for any other. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int b64_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Describes a bad character: printable as is, others in hex. */
static void b64_bad_char(unsigned char c, size_t at, char *err, size_t err_len)
{
	if (c >= 0x20 && c < 0x7f)
		snprintf(err, err_len, "bad base64: character '%c' at offset %zu", c, at);
	else
		snprintf(err, err_len, "bad base64: byte 0x%02x at offset %zu", c, at);
}

/* The bytes of the last, padded group: 2 characters (12 bits) give one
 * byte, 3 characters (18 bits) give two. */
static size_t b64_tail(uint32_t acc, int n_pad, unsigned char *out)
{
	if (n_pad == 2) {
		out[0] = (unsigned char)(acc >> 4);
		return 1;
	}
	out[0] = (unsigned char)(acc >> 10);
	out[1] = (unsigned char)(acc >> 2);
	return 2;
}

char *kube_base64_decode(const char *in, size_t in_len, size_t *out_len, char *err, size_t err_len)
{
	unsigned char *out = malloc(in_len / 4 * 3 + 3);
	size_t n = 0, chars = 0; /* bytes out, alphabet and '=' characters in */
	uint32_t acc = 0;
	int n_pad = 0, v;

	if (!out) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < in_len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (b64_space(c))
			continue;
		if (c == '=') {
			/* only the 3rd and 4th characters of the last group */
			if (chars % 4 < 2 || n_pad == 2) {
				snprintf(err, err_len, "bad base64: misplaced '=' at offset %zu", i);
				goto fail;
			}
			n_pad++;
			chars++;
			continue;
		}
		v = b64_value(c);
		if (v < 0) {
			b64_bad_char(c, i, err, err_len);
			goto fail;
		}
		if (n_pad) {
			snprintf(err, err_len, "bad base64: data after '=' padding at offset %zu", i);
			goto fail;
		}
		acc = acc << 6 | (uint32_t)v;
		if (++chars % 4 == 0) {
			out[n++] = (unsigned char)(acc >> 16);
			out[n++] = (unsigned char)(acc >> 8);
			out[n++] = (unsigned char)acc;
			acc = 0;
		}
	}
	if (chars % 4) {
		snprintf(err, err_len, "bad base64: %zu characters, not a multiple of 4 (missing padding?)",
			 chars);
		goto fail;
	}
	if (n_pad)
		n += b64_tail(acc, n_pad, out + n);
	out[n] = '\0';
	*out_len = n;
	return (char *)out;
fail:
	free(out);
	return NULL;
}
