/* One decoded block as the queries read it: the value of a key in log i,
 * resolved once per block (a key is a column index, or a constant of the
 * block for __topic__, __source__ and __tag__:*), and the search filter
 * evaluated on a log. Used by GetLogs, GetHistograms and the SQL virtual
 * table alike, so the three agree on what a search matches. */
#ifndef LOGSTORE_LSCAN_H
#define LOGSTORE_LSCAN_H
#include <stdbool.h>
#include <stdint.h>

#include "logstore/block.h"
#include "logstore/ldata.h"
#include "logstore/search.h"

#define LSCAN_TAG_PREFIX "__tag__:"

enum lscan_kind { LSCAN_ABSENT, LSCAN_KEY, LSCAN_TIME, LSCAN_CONST };

struct lscan_col {
	enum lscan_kind kind;
	size_t k;        /* LSCAN_KEY: the block's key index */
	struct str value; /* LSCAN_CONST */
};

struct lscan_block {
	const struct ldata_block *meta; /* topic, source, tags: valid while loaded */
	struct block b;
	bool loaded;
	struct lscan_col slot[SEARCH_MAX_NODES]; /* the search's keys, resolved */
	char tmp[24];                            /* __time__ as text */
};

/* Decodes lb's block and resolves s's keys against it (s may be NULL). -1 if corrupt. */
int lscan_load(struct lscan_block *x, const struct ldata_block *lb, const struct search *s);
void lscan_unload(struct lscan_block *x);

/* A key: exact match first, then ASCII case-insensitive (SQL names are). */
void lscan_resolve(const struct lscan_block *x, struct str key, struct lscan_col *out);
/* The value of a resolved column in log i (.p NULL = absent). __time__ uses x->tmp. */
struct str lscan_value(struct lscan_block *x, const struct lscan_col *c, size_t i);

/* Log i is in [from, to) and matches s. */
bool lscan_match(struct lscan_block *x, const struct search *s, size_t i, int64_t from, int64_t to);

#endif
