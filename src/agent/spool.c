/* The spool (spool.h). An index in memory (sequence number, size, records,
 * and in memory mode the bytes) mirrors the files; the files are the truth
 * after a restart. */
#include "agent/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/log.h"
#include "core/xmalloc.h"

#define SPOOL_MAGIC "SAGSPOOL"
#define SPOOL_MAGIC_LEN 8
#define SPOOL_SUFFIX ".grp"
#define SPOOL_PATH_MAX 4200
#define SPOOL_NSTRINGS 5

struct spool_entry {
	uint64_t seq, bytes, records;
	char *mem;    /* memory mode: the serialized group */
	bool claimed; /* a sender has it in flight (spool_claim) */
};

struct spool {
	char *dir; /* NULL: memory */
	uint64_t max_bytes, next_seq;
	struct spool_entry *e;
	size_t n, cap;
	struct spool_stats st;
};

/* ---- the format ---- */

struct cursor {
	const uint8_t *p;
	size_t left;
};

static int take(struct cursor *c, size_t n, const uint8_t **out)
{
	if (n > c->left)
		return -1;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static int take_u32(struct cursor *c, uint32_t *v)
{
	const uint8_t *b;
	if (take(c, 4, &b) < 0)
		return -1;
	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

static int take_str(struct cursor *c, struct str *s)
{
	const uint8_t *b, *d;
	if (take(c, 2, &b) < 0)
		return -1;
	size_t n = (size_t)b[0] | (size_t)b[1] << 8;
	if (n > SPOOL_MAX_STRING || take(c, n, &d) < 0)
		return -1;
	*s = (struct str){(const char *)d, n};
	return 0;
}

int spool_parse(const uint8_t *p, size_t n, struct spool_group *g)
{
	struct cursor c = {p, n};
	const uint8_t *h, *body;
	uint32_t body_len, crc;
	memset(g, 0, sizeof(*g));
	if (n < SPOOL_MAGIC_LEN + 4 + 4 || take(&c, SPOOL_MAGIC_LEN + 4, &h) < 0 ||
	    memcmp(h, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != 0 || h[8] != SPOOL_VERSION || h[9] || h[10] ||
	    h[11])
		return -1;
	struct str *strs[SPOOL_NSTRINGS] = {&g->pack_id, &g->project, &g->logstore, &g->url_base,
					    &g->connect_to};
	if (take_u32(&c, &g->records) < 0 || take_u32(&c, &g->raw_len) < 0)
		return -1;
	for (size_t i = 0; i < SPOOL_NSTRINGS; i++)
		if (take_str(&c, strs[i]) < 0)
			return -1;
	if (take_u32(&c, &body_len) < 0 || body_len > SPOOL_MAX_BODY ||
	    take(&c, body_len, &body) < 0)
		return -1;
	size_t covered = n - c.left;
	if (take_u32(&c, &crc) < 0 || c.left != 0)
		return -1;
	if (crc != (uint32_t)crc32(0L, p, (uInt)covered))
		return -1;
	if (g->records == 0 || g->records > SPOOL_MAX_RECORDS || g->raw_len == 0 ||
	    g->raw_len > SPOOL_MAX_RAW || body_len == 0 || g->pack_id.len == 0 ||
	    g->project.len == 0 || g->logstore.len == 0 || g->url_base.len == 0)
		return -1;
	g->body = (struct str){(const char *)body, body_len};
	return 0;
}

static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	buf_add(b, x, 4);
}

static void put_str(struct buf *b, struct str s)
{
	size_t n = s.len > SPOOL_MAX_STRING ? SPOOL_MAX_STRING : s.len;
	uint8_t x[2] = {(uint8_t)n, (uint8_t)(n >> 8)};
	buf_add(b, x, 2);
	buf_add(b, s.p, n);
}

void spool_serialize(const struct spool_group *g, struct buf *out)
{
	size_t start = out->len;
	static const uint8_t ver[4] = {SPOOL_VERSION, 0, 0, 0};
	buf_add(out, SPOOL_MAGIC, SPOOL_MAGIC_LEN);
	buf_add(out, ver, 4);
	put_u32(out, g->records);
	put_u32(out, g->raw_len);
	const struct str strs[SPOOL_NSTRINGS] = {g->pack_id, g->project, g->logstore, g->url_base,
						 g->connect_to};
	for (size_t i = 0; i < SPOOL_NSTRINGS; i++)
		put_str(out, strs[i]);
	put_u32(out, (uint32_t)g->body.len);
	buf_add(out, g->body.p, g->body.len);
	put_u32(out, (uint32_t)crc32(0L, (const Bytef *)out->p + start, (uInt)(out->len - start)));
}

/* ---- files ---- */

static void entry_path(const struct spool *s, uint64_t seq, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%016" PRIx64 SPOOL_SUFFIX, s->dir, seq);
}

static int read_file(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size > (off_t)(SPOOL_MAX_BODY + 4 * SPOOL_MAX_STRING)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf_reserve(b, (size_t)sb.st_size);
	ssize_t r = read(fd, b->p, (size_t)sb.st_size);
	close(fd);
	if (r != sb.st_size)
		return -1;
	b->len = (size_t)r;
	return 0;
}

/* Write, fsync, rename, fsync the directory: the group exists whole or not at all. */
static int write_entry(const struct spool *s, uint64_t seq, const struct buf *b)
{
	char tmp[SPOOL_PATH_MAX], path[SPOOL_PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/.%016" PRIx64 ".tmp", s->dir, seq);
	entry_path(s, seq, path, sizeof(path));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -1 : str_write_fd(fd, b->p, b->len);
	if (fd >= 0 && (fsync(fd) < 0 || close(fd) < 0))
		rc = -1;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	if (rc < 0) {
		log_warn("spool: cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* ---- the index ---- */

static void add_entry(struct spool *s, struct spool_entry e)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->e = xrealloc(s->e, s->cap * sizeof(*s->e));
	}
	s->e[s->n++] = e;
	s->st.groups++;
	s->st.bytes += e.bytes;
	s->st.records += e.records;
}

static void remove_at(struct spool *s, size_t i)
{
	struct spool_entry *e = &s->e[i];
	if (s->dir) {
		char path[SPOOL_PATH_MAX];
		entry_path(s, e->seq, path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("spool: cannot remove %s: %s", path, strerror(errno));
	}
	free(e->mem);
	s->st.groups--;
	s->st.bytes -= e->bytes;
	s->st.records -= e->records;
	memmove(s->e + i, s->e + i + 1, (s->n - i - 1) * sizeof(*s->e));
	s->n--;
}

static int cmp_seq(const void *x, const void *y)
{
	const struct spool_entry *a = x, *b = y;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* A name "<16 hex>.grp": its sequence number. */
static int name_seq(const char *name, uint64_t *seq)
{
	size_t n = strlen(name);
	if (n != 16 + sizeof(SPOOL_SUFFIX) - 1 || strcmp(name + 16, SPOOL_SUFFIX) != 0)
		return -1;
	char *end;
	errno = 0;
	*seq = strtoull(name, &end, 16);
	return errno || end != name + 16 ? -1 : 0;
}

/* Checks one file left by a previous run; a bad one is removed and counted. */
static void load_one(struct spool *s, const char *name)
{
	char path[SPOOL_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	uint64_t seq;
	struct buf b = {0};
	struct spool_group g;
	if (name[0] == '.' && strstr(name, ".tmp")) {
		/* A write the crash interrupted: never renamed, never queued. */
		unlink(path);
		s->st.corrupt++;
		log_warn("spool: removed %s, a group whose write was interrupted", path);
	} else if (name_seq(name, &seq) == 0) {
		if (read_file(path, &b) == 0 && spool_parse((const uint8_t *)b.p, b.len, &g) == 0) {
			add_entry(s, (struct spool_entry){seq, b.len, g.records, NULL, false});
			if (seq >= s->next_seq)
				s->next_seq = seq + 1;
		} else {
			unlink(path);
			s->st.corrupt++;
			log_warn("spool: removed %s: not an intact group (torn or corrupt)", path);
		}
	}
	buf_free(&b);
}

static int load_dir(struct spool *s)
{
	if (mkdir(s->dir, 0700) < 0 && errno != EEXIST) {
		log_err("spool: cannot create %s: %s", s->dir, strerror(errno));
		return -1;
	}
	DIR *d = opendir(s->dir);
	if (!d) {
		log_err("spool: cannot read %s: %s", s->dir, strerror(errno));
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		load_one(s, de->d_name);
	closedir(d);
	if (s->n > 1)
		qsort(s->e, s->n, sizeof(*s->e), cmp_seq);
	if (s->n)
		log_info("spool: %" PRIu64 " groups (%" PRIu64 " records, %" PRIu64
			 " bytes) queued by a previous run in %s",
			 s->st.groups, s->st.records, s->st.bytes, s->dir);
	return 0;
}

struct spool *spool_open(const char *dir, uint64_t max_bytes)
{
	struct spool *s = xcalloc(1, sizeof(*s));
	s->max_bytes = max_bytes;
	if (dir) {
		size_t n = strlen(dir) + sizeof(SPOOL_DIR_NAME) + 1; /* '/' and NUL */
		s->dir = xmalloc(n);
		snprintf(s->dir, n, "%s/%s", dir, SPOOL_DIR_NAME);
		if (load_dir(s) < 0) {
			spool_close(s);
			return NULL;
		}
	}
	return s;
}

void spool_close(struct spool *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->e[i].mem);
	free(s->e);
	free(s->dir);
	free(s);
}

/* The oldest group no sender has in flight: a group being delivered is not
 * dropped, so the bound may be exceeded by the groups in flight. -1 when every
 * group is. */
static int drop_oldest(struct spool *s)
{
	size_t i = 0;
	while (i < s->n && s->e[i].claimed)
		i++;
	if (i == s->n)
		return -1;
	s->st.dropped_groups++;
	s->st.dropped_records += s->e[i].records;
	log_warn("spool: the queue is over %" PRIu64 " bytes: dropped its oldest group (%" PRIu64
		 " records; %" PRIu64 " records dropped in all)",
		 s->max_bytes, s->e[i].records, s->st.dropped_records);
	remove_at(s, i);
	return 0;
}

/* The file of a prepared group is written under a sequence number only the
 * encoder hands out (next_seq), so preparing touches nothing the senders
 * read; spool_commit does the accounting. */
int spool_prepare(struct spool *s, const struct spool_group *g, struct spool_prep *p)
{
	*p = (struct spool_prep){.records = g->records};
	spool_serialize(g, &p->b);
	if (p->b.len > s->max_bytes)
		return p->rc = SPOOL_PREP_TOO_BIG;
	p->seq = s->next_seq++;
	if (s->dir && write_entry(s, p->seq, &p->b) < 0)
		return p->rc = SPOOL_PREP_UNWRITTEN;
	return p->rc = SPOOL_PREP_OK;
}

int spool_commit(struct spool *s, struct spool_prep *p)
{
	if (p->rc == SPOOL_PREP_TOO_BIG)
		log_warn("spool: a group of %zu bytes exceeds the bound of %" PRIu64 " bytes: dropped",
			 p->b.len, s->max_bytes);
	if (p->rc != SPOOL_PREP_OK) {
		s->st.dropped_groups++;
		s->st.dropped_records += p->records;
		buf_free(&p->b);
		return -1;
	}
	while (s->st.bytes + p->b.len > s->max_bytes && drop_oldest(s) == 0)
		;
	struct spool_entry e = {p->seq, p->b.len, p->records, NULL, false};
	if (!s->dir)
		e.mem = buf_steal(&p->b);
	add_entry(s, e);
	buf_free(&p->b);
	return 0;
}

int spool_push(struct spool *s, const struct spool_group *g)
{
	struct spool_prep p;
	spool_prepare(s, g, &p);
	return spool_commit(s, &p);
}

/* Entry i's bytes into *store and parsed into *g: 0, or -1 when they no
 * longer read or parse. */
static int load_entry(const struct spool *s, size_t i, struct buf *store, struct spool_group *g)
{
	store->len = 0;
	int rc = 0;
	if (s->dir) {
		char path[SPOOL_PATH_MAX];
		entry_path(s, s->e[i].seq, path, sizeof(path));
		rc = read_file(path, store);
	} else {
		buf_add(store, s->e[i].mem, s->e[i].bytes);
	}
	return rc == 0 && spool_parse((const uint8_t *)store->p, store->len, g) == 0 ? 0 : -1;
}

int spool_claim(struct spool *s, struct buf *store, struct spool_group *g, uint64_t *seq)
{
	for (size_t i = 0; i < s->n;) {
		if (s->e[i].claimed) {
			i++;
		} else if (load_entry(s, i, store, g) == 0) {
			s->e[i].claimed = true;
			*seq = s->e[i].seq;
			return 0;
		} else {
			s->st.corrupt++;
			log_warn("spool: group %016" PRIx64 " is no longer readable: skipped",
				 s->e[i].seq);
			remove_at(s, i);
		}
	}
	return 1;
}

void spool_finish(struct spool *s, uint64_t seq, bool remove)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].seq == seq) {
			if (remove)
				remove_at(s, i);
			else
				s->e[i].claimed = false;
			return;
		}
}

void spool_get_stats(const struct spool *s, struct spool_stats *out)
{
	*out = s->st;
}

uint64_t spool_records(const struct spool *s)
{
	return s->st.records;
}

bool spool_persistent(const struct spool *s)
{
	return s->dir != NULL;
}
