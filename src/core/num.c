#include "core/num.h"

#define NUM_MAX_DIGITS 19

int num_parse_i64(struct str s, int64_t min, int64_t max, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (s.len && s.p[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == s.len || s.len - i > NUM_MAX_DIGITS)
		return -1;
	uint64_t v = 0;
	for (; i < s.len; i++) {
		char c = s.p[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (uint64_t)(c - '0');
	}
	/* 19 digits fit in uint64_t; now check the signed range. */
	if (!neg && v > (uint64_t)INT64_MAX)
		return -1;
	if (neg && v > (uint64_t)INT64_MAX + 1)
		return -1;
	int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;
	if (r < min || r > max)
		return -1;
	*out = r;
	return 0;
}

#define NUM_VERSION_MAX_PARTS 8
#define NUM_VERSION_MAX_PART 9999999

static int num_version_parts(struct str s, int64_t parts[NUM_VERSION_MAX_PARTS], int *n)
{
	size_t i = 0, start = 0;
	*n = 0;
	if (s.len == 0)
		return -1;
	for (i = 0; i <= s.len; i++) {
		if (i == s.len || s.p[i] == '.') {
			if (*n == NUM_VERSION_MAX_PARTS)
				return -1;
			struct str part = {s.p + start, i - start};
			if (part.len && part.p[0] == '-')
				return -1;
			if (num_parse_i64(part, 0, NUM_VERSION_MAX_PART, &parts[*n]) < 0)
				return -1;
			(*n)++;
			start = i + 1;
		}
	}
	return 0;
}

int num_version_cmp(struct str a, struct str b, bool *ok)
{
	int64_t pa[NUM_VERSION_MAX_PARTS], pb[NUM_VERSION_MAX_PARTS];
	int na, nb;
	*ok = num_version_parts(a, pa, &na) == 0 && num_version_parts(b, pb, &nb) == 0;
	if (!*ok)
		return 0;
	for (int i = 0; i < na || i < nb; i++) {
		int64_t x = i < na ? pa[i] : 0, y = i < nb ? pb[i] : 0;
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}
