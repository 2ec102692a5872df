/* A bounds-checked write cursor for the encoders: a write that does not fit
 * sets the error flag and writes nothing, so an encoder checks once at the end. */
#ifndef EXPORT_WIRE_H
#define EXPORT_WIRE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wbuf {
	uint8_t *p;
	size_t cap, len;
	bool err;
};

static inline bool wbuf_room(struct wbuf *w, size_t n)
{
	if (w->err || w->cap - w->len < n) {
		w->err = true;
		return false;
	}
	return true;
}

static inline void wbuf_u8(struct wbuf *w, uint8_t v)
{
	if (wbuf_room(w, 1))
		w->p[w->len++] = v;
}

static inline void wbuf_u16(struct wbuf *w, uint16_t v)
{
	if (!wbuf_room(w, 2))
		return;
	w->p[w->len++] = (uint8_t)(v >> 8);
	w->p[w->len++] = (uint8_t)v;
}

static inline void wbuf_u32(struct wbuf *w, uint32_t v)
{
	wbuf_u16(w, (uint16_t)(v >> 16));
	wbuf_u16(w, (uint16_t)v);
}

static inline void wbuf_u64(struct wbuf *w, uint64_t v)
{
	wbuf_u32(w, (uint32_t)(v >> 32));
	wbuf_u32(w, (uint32_t)v);
}

static inline void wbuf_bytes(struct wbuf *w, const void *p, size_t n)
{
	if (wbuf_room(w, n)) {
		memcpy(w->p + w->len, p, n);
		w->len += n;
	}
}

static inline void wbuf_put16_at(struct wbuf *w, size_t at, uint16_t v)
{
	if (!w->err && at + 2 <= w->len) {
		w->p[at] = (uint8_t)(v >> 8);
		w->p[at + 1] = (uint8_t)v;
	}
}

#endif
