/* Request parameters: application/x-www-form-urlencoded bodies and raw query
 * strings decoded into (name, value) byte slices.
 *
 * Each parameter remembers where it came from, because the V3 signature covers
 * only the query while V1 covers query and body. A name may appear once across
 * query and body: a duplicate is refused rather than resolved, so the value a
 * handler reads is always the value the signature covered. */
#ifndef RPC_PARAMS_H
#define RPC_PARAMS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"
#include "rpc/errors.h"

#define PARAMS_MAX_COUNT 256     /* parameters per request, query and body together */
#define PARAMS_MAX_NAME 128      /* bytes of a decoded name */
#define PARAMS_MAX_VALUE 65536   /* bytes of a decoded value */
#define PARAMS_MAX_SOURCES 2     /* query and body */
#define PARAMS_DETAIL_MAX 128    /* error detail (a printable copy of a name) */

enum params_src { PARAMS_QUERY, PARAMS_BODY };

struct param {
	struct str name;  /* decoded, NUL-terminated in the arena */
	struct str value; /* decoded, NUL-terminated in the arena */
	enum params_src src;
};

struct params;

struct params *params_new(void);
void params_free(struct params *p); /* NULL is a no-op */

/* Decodes s ('&'-separated name=value pairs, %XX escapes, '+' as space) and
 * appends its parameters. Empty pairs ("a=1&&b=2") are skipped. On error returns
 * ERR_MALFORMED_REQUEST (bad escape, NUL byte, empty name), ERR_REQUEST_TOO_LARGE
 * (a limit) or ERR_INVALID_PARAMETER (a duplicate), with a printable detail for
 * the message written to detail; p keeps what was parsed before the error. */
enum err params_parse(struct params *p, struct str s, enum params_src src,
		      char detail[PARAMS_DETAIL_MAX]);

size_t params_count(const struct params *p);
const struct param *params_at(const struct params *p, size_t i);
/* The parameter with this exact name, or NULL. */
const struct param *params_find(const struct params *p, const char *name);
/* The value, or STR_NULL (p == NULL) when absent; `present` tells the two apart. */
struct str params_get(const struct params *p, const char *name);
bool params_has(const struct params *p, const char *name);

/* Writes a printable, truncated copy of s (non-printable bytes become '?') for
 * error messages and logs. */
void params_printable(struct str s, char *out, size_t cap);

#endif
