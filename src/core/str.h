/* Byte slices and a growable buffer: every byte pointer travels with its length. */
#ifndef CORE_STR_H
#define CORE_STR_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct str {
	const char *p;
	size_t len;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})
#define STR_NULL ((struct str){NULL, 0})

static inline struct str str_c(const char *s)
{
	return (struct str){s, s ? strlen(s) : 0};
}

static inline bool str_eq(struct str a, struct str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool str_eqc(struct str a, const char *b)
{
	return str_eq(a, str_c(b));
}

bool str_caseeq(struct str a, const char *b); /* ASCII case-insensitive */
struct str str_trim(struct str s);            /* without leading/trailing spaces and tabs */

struct buf {
	char *p;
	size_t len, cap;
};

void buf_grow(struct buf *b, size_t extra); /* the slow path of buf_reserve */

/* Room for extra more bytes and a NUL. Inline: renderers call these per field. */
static inline void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 > b->cap)
		buf_grow(b, extra);
}

/* Appends and keeps the bytes NUL-terminated. */
static inline void buf_add(struct buf *b, const void *p, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static inline void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static inline void buf_addc(struct buf *b, char c)
{
	buf_reserve(b, 1);
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}
void buf_add_u64(struct buf *b, uint64_t v); /* decimal */
#define STR_U64_MAX 20 /* digits of the largest uint64_t */
/* v in decimal at `at` (room for STR_U64_MAX bytes, no NUL); returns the end. */
char *str_put_u64(char *at, uint64_t v);
/* n bytes as 2n hex digits at out (lowercase, or uppercase when upper), NUL added. */
void str_hex(const void *p, size_t n, char *out, bool upper);
#define STR_UUID_LEN 36 /* 8-4-4-4-12 */
/* 16 bytes in a UUID's 8-4-4-4-12 form at out, NUL added. */
void str_uuid(const unsigned char b[16], char out[STR_UUID_LEN + 1], bool upper);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
const char *buf_cstr(struct buf *b); /* NUL-terminates without counting the NUL */
char *buf_steal(struct buf *b);      /* returns the NUL-terminated bytes; b is reset */
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

/* Writes all n bytes to fd, retrying after EINTR and short writes: 0, or -1 (errno set). */
int str_write_fd(int fd, const char *p, size_t n);

#endif
