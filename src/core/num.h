/* Bounded number parsing over (ptr, len): no strtol/atoi on untrusted input. */
#ifndef CORE_NUM_H
#define CORE_NUM_H
#include <stdbool.h>
#include <stdint.h>
#include "core/str.h"

/* Decimal integer, optional leading '-', no spaces, no '+'; value must be in
 * [min, max]. Returns 0 on success, -1 otherwise (out untouched). */
int num_parse_i64(struct str s, int64_t min, int64_t max, int64_t *out);
/* Version strings like "1.7.0" or "2.3.0.0": compares numerically part by part,
 * missing parts count as 0. Returns -1/0/1; *ok=false when either is not a version. */
int num_version_cmp(struct str a, struct str b, bool *ok);

#endif
