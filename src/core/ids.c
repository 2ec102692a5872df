#include "core/ids.h"
#include "core/log.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

void ids_random(void *p, size_t n)
{
	if (RAND_bytes(p, (int)n) != 1)
		fatal("RAND_bytes failed");
}

/* Rejection sampling keeps every character equally likely. */
static void ids_from_alphabet(char *out, size_t n, const char *alpha, unsigned alen)
{
	unsigned limit = 256 - (256 % alen);
	size_t i = 0;
	while (i < n) {
		unsigned char r[32];
		ids_random(r, sizeof(r));
		for (size_t j = 0; j < sizeof(r) && i < n; j++)
			if (r[j] < limit)
				out[i++] = alpha[r[j] % alen];
	}
	out[n] = '\0';
}

void ids_resource(char *out, size_t cap, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (cap < pl + IDS_RESOURCE_SUFFIX + 1)
		fatal("ids_resource: buffer too small");
	memcpy(out, prefix, pl);
	ids_from_alphabet(out + pl, IDS_RESOURCE_SUFFIX, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
}

void ids_alnum(char *out, size_t n)
{
	ids_from_alphabet(out, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
			  62);
}

void ids_hex(char *out, size_t nbytes)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char r[64];
	size_t o = 0;
	while (nbytes) {
		size_t k = nbytes < sizeof(r) ? nbytes : sizeof(r);
		ids_random(r, k);
		for (size_t i = 0; i < k; i++) {
			out[o++] = hx[r[i] >> 4];
			out[o++] = hx[r[i] & 15];
		}
		nbytes -= k;
	}
	out[o] = '\0';
}

void ids_uuid_upper(char out[IDS_UUID_LEN + 1])
{
	unsigned char b[16];
	ids_random(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, IDS_UUID_LEN + 1,
		 "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}
