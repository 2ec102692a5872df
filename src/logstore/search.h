/* The search part of an SLS query (spec log-service.md §2.1, §2.3): what
 * comes before '|'. A hand-written recursive-descent parser, because no
 * library speaks SLS's search syntax:
 *
 *   query   := '*' | or
 *   or      := and ('or' and)*
 *   and     := unary (['and'] unary)*        words side by side are and-ed
 *   unary   := 'not' unary | primary         'a not b' is 'a and not b'
 *   primary := '(' or ')' | '*' | term
 *   term    := key ':' value                 token match, prefix* / ? fuzzy
 *            | key ('>'|'>='|'<'|'<='|'=') number
 *            | key 'in' ('['|'(') number number (']'|')')
 *            | word | "phrase"                full text: any value of the log
 *
 * Keywords are case-insensitive. Values are matched as an SLS text index
 * does: split into tokens at SEARCH_DELIMS, compared case-insensitively; a
 * value of several tokens (a phrase) must appear as consecutive tokens.
 * Comparisons read the log's value as a number; a log whose value is not a
 * number does not match (SLS would need a long/double index on the key; the
 * SAG flow-log fields are numbers, and no index configuration exists here).
 * Every bound is a named constant below; the parser never recurses deeper
 * than SEARCH_MAX_DEPTH. */
#ifndef LOGSTORE_SEARCH_H
#define LOGSTORE_SEARCH_H
#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"
#include "sls/errors.h"

#define SEARCH_MAX_LEN 16384   /* bytes of a search part */
#define SEARCH_MAX_NODES 256   /* terms and operators */
#define SEARCH_MAX_DEPTH 32    /* nested parentheses / not */
#define SEARCH_DEPTH_TEXT "32" /* the same, for messages */
#define SEARCH_MAX_NUMBER 64   /* bytes of a number literal or a value read as one */
#define SEARCH_DETAIL_MAX 160
/* SLS's default tokenizer delimiters for a text index. */
#define SEARCH_DELIMS " \t\r\n,'\";=()[]{}?@&<>/:"

enum search_op {
	SEARCH_ALL,   /* '*' */
	SEARCH_TEXT,  /* full text: value */
	SEARCH_KEY,   /* key:value */
	SEARCH_CMP,   /* key op num */
	SEARCH_RANGE, /* key in [num num2] */
	SEARCH_AND,
	SEARCH_OR,
	SEARCH_NOT,
};

enum search_cmp { SEARCH_LT, SEARCH_LE, SEARCH_GT, SEARCH_GE, SEARCH_EQ };

struct search_node {
	enum search_op op;
	bool phrase;           /* TEXT/KEY: quoted, so '*' and '?' are literal */
	bool any;              /* KEY: key:* (the key is present) */
	enum search_cmp cmp;   /* CMP */
	bool lo_open, hi_open; /* RANGE: '(' / ')' */
	double num, num2;
	struct str key, value; /* unescaped, in the search's arena */
	int a, b;              /* AND/OR: operands; NOT: a */
};

struct search {
	int root;
	size_t n;
	struct search_node node[SEARCH_MAX_NODES];
	char arena[SEARCH_MAX_LEN];
};

/* Parses q (the part before '|'); an empty q is '*'. SLS_ERR_OK, or
 * SLS_ERR_INVALID_QUERY_STRING with detail saying what was not understood. */
enum sls_err search_parse(struct str q, struct search *out, char detail[SEARCH_DETAIL_MAX]);

/* True when the search is '*' (matches every log). */
bool search_is_all(const struct search *s);

/* What the matcher needs of one log: the value of node i's key (the caller
 * resolves keys once per block; .p NULL = absent) and, for full-text nodes,
 * whether any of the log's values matches. */
struct search_row {
	struct str (*value)(const void *row, size_t node);
	bool (*any)(const void *row, const struct search_node *n);
	const void *row;
};

bool search_match(const struct search *s, const struct search_row *r);

/* Whether one value matches a TEXT or KEY node (for search_row.any). */
bool search_text_match(const struct search_node *n, struct str v);

/* A value read as a number (SEARCH_MAX_NUMBER bytes at most); 0 or -1. */
int search_number(struct str v, double *out);

#endif
