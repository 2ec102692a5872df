#include "core/str.h"
#include "core/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <unistd.h>

bool str_caseeq(struct str a, const char *b)
{
	size_t n = strlen(b);
	if (a.len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return false;
	}
	return true;
}

struct str str_trim(struct str s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
		s.p++, s.len--;
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

void buf_grow(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

/* Two digits a division: the agent formats eleven numbers a flow record. */
static const char str_digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
					 "25262728293031323334353637383940414243444546474849"
					 "50515253545556575859606162636465666768697071727374"
					 "75767778798081828384858687888990919293949596979899";

char *str_put_u64(char *at, uint64_t v)
{
	size_t n = 1;
	for (uint64_t t = v; t >= 10; t /= 10)
		n++;
	char *end = at + n, *p = end;
	for (; v >= 100; v /= 100) {
		p -= 2;
		p[0] = str_digit_pairs[2 * (v % 100)];
		p[1] = str_digit_pairs[2 * (v % 100) + 1];
	}
	if (v >= 10) {
		p[-2] = str_digit_pairs[2 * v];
		p[-1] = str_digit_pairs[2 * v + 1];
	} else {
		p[-1] = (char)('0' + v);
	}
	return end;
}

static const char str_hex_digits[2][17] = {"0123456789abcdef", "0123456789ABCDEF"};

void str_hex(const void *p, size_t n, char *out, bool upper)
{
	const unsigned char *in = p;
	const char *d = str_hex_digits[upper];
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void str_uuid(const unsigned char b[16], char out[STR_UUID_LEN + 1], bool upper)
{
	static const struct {
		int from, n;
	} groups[] = {{0, 4}, {4, 2}, {6, 2}, {8, 2}, {10, 6}};
	char *o = out;
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		if (g)
			*o++ = '-';
		str_hex(b + groups[g].from, (size_t)groups[g].n, o, upper);
		o += 2 * groups[g].n;
	}
}

void buf_add_u64(struct buf *b, uint64_t v)
{
	char d[STR_U64_MAX];
	buf_add(b, d, (size_t)(str_put_u64(d, v) - d));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

const char *buf_cstr(struct buf *b)
{
	buf_reserve(b, 0);
	b->p[b->len] = '\0';
	return b->p;
}

char *buf_steal(struct buf *b)
{
	buf_cstr(b);
	char *p = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int str_write_fd(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
