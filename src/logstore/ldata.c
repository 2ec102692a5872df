#include "logstore/ldata.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "sls/body.h"

#define LDATA_PATH_MAX 4096
#define LDATA_BUSY_MS 5000

/* The blocks of one group, encoded by ldata_put on the caller's thread (the
 * HTTP threads, in parallel), so the writer only inserts them. */
struct ldata_enc {
	struct buf data, counts;
	size_t n;
	uint32_t tmin, tmax;
};

enum ldata_kind { JOB_PUT, JOB_DROP, JOB_EXPIRE };

/* A new day file is made whole under its name and this suffix, which no
 * read lists, and then renamed into place (part_create). */
#define LDATA_NEW_SUFFIX "-new"

/* The suffixes of a day file's SQLite companions, removed with it; a
 * half-made new file (a crash before its rename) and its own companions too. */
static const char *const ldata_file_suffixes[] = {
	"", "-wal", "-shm", "-journal",
	LDATA_NEW_SUFFIX, LDATA_NEW_SUFFIX "-wal", LDATA_NEW_SUFFIX "-shm", LDATA_NEW_SUFFIX "-journal"};
#define LDATA_NSUFFIXES (sizeof(ldata_file_suffixes) / sizeof(ldata_file_suffixes[0]))

static const char ldata_schema[] =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS blocks (id INTEGER PRIMARY KEY, t_min INTEGER NOT NULL,"
	" t_max INTEGER NOT NULL, n INTEGER NOT NULL, received_s INTEGER NOT NULL,"
	" topic BLOB, source BLOB, tags BLOB, counts BLOB, data BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS blocks_time ON blocks (t_min);"
	"CREATE TABLE IF NOT EXISTS packs (pack_id BLOB PRIMARY KEY) WITHOUT ROWID;";

struct part {
	int64_t logstore;
	int day;
	sqlite3 *db;
	uint64_t used; /* LRU clock */
	int wal_frames, ckpt_base; /* frames in its WAL, and as of the last checkpoint */
};

struct ldata {
	char *dir;
	pthread_t writer;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ldata_put *head, *tail;
	size_t queued_bytes;
	bool closing;
	struct part open[LDATA_MAX_OPEN]; /* the writer's */
	uint64_t clock;
};

struct job_wait {
	struct ldata_put job;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool finished;
};

/* An expiry job: the writer fills removed. */
struct expire_job {
	struct job_wait w;
	const struct ldata_ttl *t;
	size_t n;
	int64_t now_s;
	int removed;
};

static void part_path(const struct ldata *d, int64_t logstore, int day, char *out, size_t cap)
{
	time_t t = (time_t)day * LDATA_PARTITION_S;
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%s/%lld/%04d%02d%02d.db", d->dir, (long long)logstore,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static int mkdir_0700(const char *path)
{
	return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* A day file written before blocks had rollups gets the column (at the end:
 * its blocks' counts are NULL, and GetHistograms decodes those). */
static int add_counts_column(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	bool has = false;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('blocks') WHERE name = 'counts'",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	has = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (has)
		return 0;
	return sqlite3_exec(db, "ALTER TABLE blocks ADD COLUMN counts BLOB", NULL, NULL, NULL) ==
			       SQLITE_OK ? 0 : -1;
}

/* A day file that exists, read-only, or for the writer (create): then its
 * schema is checked and brought up to date. SQLite never creates the file
 * here (part_create does, whole). */
static sqlite3 *part_db_open(const char *path, bool create)
{
	sqlite3 *db = NULL;
	int flags = create ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
	if (!create && access(path, F_OK) != 0)
		return NULL;
	if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		/* A file retention removed between access() and here is no error. */
		if (create || access(path, F_OK) == 0)
			log_err("logstore: cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, LDATA_BUSY_MS);
	if (create && (sqlite3_exec(db, ldata_schema, NULL, NULL, NULL) != SQLITE_OK ||
		       sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
		       add_counts_column(db) != 0)) {
		log_err("logstore: cannot set up %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static int part_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct part *p = arg;
	p->wal_frames = frames;
	if (frames < p->ckpt_base) /* the WAL started over from the top */
		p->ckpt_base = 0;
	return SQLITE_OK;
}

/* A PASSIVE checkpoint of every file whose WAL grew LDATA_CKPT_FRAMES since
 * the last: it copies what no reader still needs and never waits for one. */
static void part_checkpoints(struct ldata *d)
{
	for (size_t i = 0; i < LDATA_MAX_OPEN; i++) {
		struct part *p = &d->open[i];
		if (!p->db || p->wal_frames - p->ckpt_base < LDATA_CKPT_FRAMES)
			continue;
		int log_frames = 0, done = 0;
		int rc = sqlite3_wal_checkpoint_v2(p->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
						   &done);
		if (rc == SQLITE_OK)
			p->ckpt_base = log_frames;
		else if (rc != SQLITE_BUSY)
			log_warn("logstore: checkpoint: %s", sqlite3_errmsg(p->db));
	}
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static void unlink_new(const char *path)
{
	char f[LDATA_PATH_MAX + 32];
	for (size_t i = 0; i < LDATA_NSUFFIXES; i++)
		if (!strncmp(ldata_file_suffixes[i], LDATA_NEW_SUFFIX, strlen(LDATA_NEW_SUFFIX))) {
			snprintf(f, sizeof(f), "%s%s", path, ldata_file_suffixes[i]);
			unlink(f);
		}
}

/* Creates the day file at path (and its logstore's directory) whole: the
 * schema is written and checkpointed under path + LDATA_NEW_SUFFIX, which no
 * read lists, and only then renamed to path. A read that lists the directory
 * therefore finds no file or one with its tables, never a file whose tables
 * are not there yet (no `blocks`: a failed read, a 500). Closing the only
 * connection checkpoints the WAL into the file and deletes it, so nothing is
 * left under the temporary name. */
static int part_create(struct ldata *d, int64_t logstore, const char *path)
{
	char dir[LDATA_PATH_MAX], tmp[LDATA_PATH_MAX + 8];
	snprintf(dir, sizeof(dir), "%s/%lld", d->dir, (long long)logstore);
	if (mkdir(dir, 0700) == 0 ? fsync_dir(d->dir) != 0 : errno != EEXIST)
		goto fail;
	snprintf(tmp, sizeof(tmp), "%s%s", path, LDATA_NEW_SUFFIX);
	unlink_new(path); /* a crash's leftover, and its -wal that SQLite would replay */
	/* 0600 before SQLite touches it; -wal and -shm inherit the mode. */
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	close(fd);
	sqlite3 *db = part_db_open(tmp, true);
	if (!db || sqlite3_close(db) != SQLITE_OK || rename(tmp, path) != 0 || fsync_dir(dir) != 0)
		goto fail;
	return 0;
fail:
	log_err("logstore: cannot create %s: %s", path, strerror(errno));
	unlink_new(path);
	return -1;
}

/* The writer's handle of a partition, opened (and created whole, when
 * create) on demand. */
static struct part *part_get(struct ldata *d, int64_t logstore, int day, bool create)
{
	struct part *lru = &d->open[0];
	for (size_t i = 0; i < LDATA_MAX_OPEN; i++) {
		struct part *p = &d->open[i];
		if (p->db && p->logstore == logstore && p->day == day) {
			if (!create || sqlite3_db_readonly(p->db, "main") == 0) {
				p->used = ++d->clock;
				return p;
			}
			/* Opened read-only for yesterday's pack ids, and now to be
			 * written: a group received before midnight that was queued
			 * after one received since. Reopened for writing below. */
			sqlite3_close(p->db);
			p->db = NULL;
		}
		if (!p->db || (lru->db && p->used < lru->used))
			lru = p;
	}
	char path[LDATA_PATH_MAX];
	part_path(d, logstore, day, path, sizeof(path));
	if (create && access(path, F_OK) != 0 && part_create(d, logstore, path) != 0)
		return NULL;
	sqlite3 *db = part_db_open(path, create);
	if (!db)
		return NULL;
	sqlite3_close(lru->db);
	*lru = (struct part){logstore, day, db, ++d->clock, 0, 0};
	if (create) {
		/* Checkpoints run between batches, after the acknowledgements
		 * (part_checkpoints), not inside the COMMIT that crosses 1000 frames. */
		sqlite3_exec(db, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL);
		sqlite3_wal_hook(db, part_wal_hook, lru);
	}
	return lru;
}

static void part_close_logstore(struct ldata *d, int64_t logstore)
{
	for (size_t i = 0; i < LDATA_MAX_OPEN; i++)
		if (d->open[i].db && d->open[i].logstore == logstore) {
			sqlite3_close(d->open[i].db);
			d->open[i].db = NULL;
		}
}

static void put_varint(struct buf *b, uint64_t v)
{
	do {
		buf_addc(b, (char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0)));
		v >>= 7;
	} while (v);
}

static void tags_encode(Sls__LogTag *const *t, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		put_varint(out, t[i]->key.len);
		buf_add(out, t[i]->key.data, t[i]->key.len);
		put_varint(out, t[i]->value.len);
		buf_add(out, t[i]->value.data, t[i]->value.len);
	}
}

void ldata_tags_encode(const Sls__LogGroup *g, struct buf *out)
{
	tags_encode(g->logtags, g->n_logtags, out);
}

static int get_varint(const char **p, const char *end, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		unsigned char b = (unsigned char)*(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

int ldata_tags_each(struct str tags, int (*fn)(struct str k, struct str v, void *arg), void *arg)
{
	const char *p = tags.p, *end = tags.p + tags.len;
	while (p < end) {
		uint64_t kl, vl;
		if (get_varint(&p, end, &kl) || kl > (uint64_t)(end - p))
			return -1;
		struct str k = {p, (size_t)kl};
		p += kl;
		if (get_varint(&p, end, &vl) || vl > (uint64_t)(end - p))
			return -1;
		struct str v = {p, (size_t)vl};
		p += vl;
		int rc = fn(k, v, arg);
		if (rc)
			return rc;
	}
	return 0;
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* 1 when the pack id is in this file. */
static int pack_seen(sqlite3 *db, struct str pack)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM packs WHERE pack_id = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_blob(st, 1, pack.p, (int)pack.len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Topic and source of p's group ("" when absent), from either view of it. */
static void put_origin(const struct ldata_put *p, struct str *topic, struct str *source)
{
	const Sls__LogGroupPacked *l = p->g ? NULL : sls_logs_group(p->logs);
	if (p->g) {
		*topic = p->g->has_topic ? sls_pb_str(p->g->topic) : STR_LIT("");
		*source = p->g->has_source ? sls_pb_str(p->g->source) : STR_LIT("");
	} else {
		*topic = l->has_topic ? sls_pb_str(l->topic) : STR_LIT("");
		*source = l->has_source ? sls_pb_str(l->source) : STR_LIT("");
	}
}

static int insert_block(sqlite3 *db, const struct ldata_put *p, const struct ldata_enc *e,
			struct str tags)
{
	static const char sql[] = "INSERT INTO blocks (t_min, t_max, n, received_s, topic, source, "
				  "tags, data, counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		return -1;
	struct str topic, source;
	put_origin(p, &topic, &source);
	sqlite3_bind_int64(st, 1, e->tmin);
	sqlite3_bind_int64(st, 2, e->tmax);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->n);
	sqlite3_bind_int64(st, 4, p->received_s);
	sqlite3_bind_blob(st, 5, topic.p, (int)topic.len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, source.p, (int)source.len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, tags.p ? tags.p : "", (int)tags.len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 8, e->data.p, (int)e->data.len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 9, e->counts.p ? e->counts.p : "", (int)e->counts.len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int store_pack(sqlite3 *db, struct str pack)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "INSERT INTO packs (pack_id) VALUES (?)", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_blob(st, 1, pack.p, (int)pack.len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static struct ldata_enc *enc_next(struct ldata_put *p)
{
	if ((p->nenc & (p->nenc - 1)) == 0) /* 0, 1, 2, 4, ...: full */
		p->enc = xrealloc(p->enc, (p->nenc ? 2 * p->nenc : 1) * sizeof(*p->enc));
	return &p->enc[p->nenc++];
}

static void encode_group(struct ldata_put *p)
{
	for (size_t from = 0, to; from < p->g->n_logs; from = to) {
		struct ldata_enc *e = enc_next(p);
		*e = (struct ldata_enc){0};
		block_encode(p->g, from, &to, &e->data, &e->counts, &e->tmin, &e->tmax);
		e->n = to - from;
	}
}

static void take_block(struct block_out *b, void *arg)
{
	struct ldata_enc *e = enc_next(arg);
	*e = (struct ldata_enc){b->data, b->counts, b->n, b->tmin, b->tmax};
}

void ldata_encoded_free(struct ldata_put *p)
{
	for (size_t i = 0; i < p->nenc; i++) {
		buf_free(&p->enc[i].data);
		buf_free(&p->enc[i].counts);
	}
	free(p->enc);
	p->enc = NULL;
	p->nenc = 0;
}

/* The blocks of one group (inside the caller's savepoint). */
static int write_group(sqlite3 *db, const struct ldata_put *p)
{
	struct buf tags = {0};
	if (p->g)
		ldata_tags_encode(p->g, &tags);
	else
		tags_encode(sls_logs_group(p->logs)->logtags, sls_logs_group(p->logs)->n_logtags, &tags);
	int rc = 0;
	for (size_t i = 0; i < p->nenc && rc == 0; i++)
		rc = insert_block(db, p, &p->enc[i], (struct str){tags.p, tags.len});
	buf_free(&tags);
	return rc;
}

static enum ldata_rc put_one(struct ldata *d, sqlite3 *db, const struct ldata_put *p, int day)
{
	if (p->pack_id.len) {
		struct part *prev = part_get(d, p->logstore, day - 1, false);
		if (pack_seen(db, p->pack_id) == 1 || (prev && pack_seen(prev->db, p->pack_id) == 1))
			return LDATA_DUPLICATE;
	}
	if (exec(db, "SAVEPOINT grp") != 0)
		return LDATA_EIO;
	if ((p->pack_id.len && store_pack(db, p->pack_id) != 0) || write_group(db, p) != 0) {
		log_err("logstore: cannot store a LogGroup: %s", sqlite3_errmsg(db));
		exec(db, "ROLLBACK TO grp");
		exec(db, "RELEASE grp");
		return LDATA_EIO;
	}
	return exec(db, "RELEASE grp") == 0 ? LDATA_STORED : LDATA_EIO;
}

static int day_of(int64_t s)
{
	return (int)(s / LDATA_PARTITION_S);
}

static void finish(struct ldata *d, struct ldata_put *p, enum ldata_rc rc)
{
	pthread_mutex_lock(&d->mu);
	d->queued_bytes -= p->raw_bytes;
	pthread_mutex_unlock(&d->mu);
	ldata_encoded_free(p);
	p->done(p, rc);
}

static void drop_files(struct ldata *d, int64_t logstore)
{
	char path[LDATA_PATH_MAX];
	part_close_logstore(d, logstore);
	snprintf(path, sizeof(path), "%s/%lld", d->dir, (long long)logstore);
	DIR *dir = opendir(path);
	if (!dir)
		return;
	for (struct dirent *e; (e = readdir(dir));) {
		if (e->d_name[0] == '.')
			continue;
		char f[LDATA_PATH_MAX + 256];
		snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
		unlink(f);
	}
	closedir(dir);
	rmdir(path);
}

/* Closes the writer's handle of one day file, if it has one. */
static void part_close(struct ldata *d, int64_t logstore, int day)
{
	for (size_t i = 0; i < LDATA_MAX_OPEN; i++)
		if (d->open[i].db && d->open[i].logstore == logstore && d->open[i].day == day) {
			sqlite3_close(d->open[i].db);
			d->open[i].db = NULL;
		}
}

static int day_of_name(const char *name, int *day);

/* The day of "YYYYMMDD.db" (*db true) or of one of its companions
 * ("YYYYMMDD.db-wal", "-shm", "-journal"); -1 for any other name. */
static int day_of_file(const char *name, int *day, bool *db)
{
	char base[12];
	size_t n = strlen(name);
	if (n < 11)
		return -1;
	memcpy(base, name, 11);
	base[11] = '\0';
	if (day_of_name(base, day) != 0)
		return -1;
	for (size_t i = 0; i < LDATA_NSUFFIXES; i++)
		if (!strcmp(name + 11, ldata_file_suffixes[i])) {
			*db = i == 0;
			return 0;
		}
	return -1;
}

/* Removes one logstore's files of days up to `last`: first every .db (a read
 * that lists the directory afterwards no longer finds it), then the companions.
 * No lock is taken, so neither ingestion nor a read ever waits for retention:
 * a read that opened a file before it went keeps reading it (an unlinked
 * file lives until closed), and may, at worst, re-create an empty -shm
 * beside it, which the next sweep removes with the other companions of
 * expired days. Returns how many .db files went. */
static int expire_logstore(struct ldata *d, int64_t logstore, int last)
{
	char path[LDATA_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%lld", d->dir, (long long)logstore);
	int removed = 0;
	for (int pass = 0; pass < 2; pass++) {
		DIR *dir = opendir(path);
		if (!dir)
			return removed;
		for (struct dirent *e; (e = readdir(dir));) {
			int day;
			bool db;
			if (day_of_file(e->d_name, &day, &db) != 0 || day > last || db != (pass == 0))
				continue;
			char f[LDATA_PATH_MAX + 256];
			snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
			if (db)
				part_close(d, logstore, day);
			if (unlink(f) == 0 && db)
				removed++;
		}
		closedir(dir);
	}
	return removed;
}

static void expire_run(struct ldata *d, struct expire_job *e)
{
	int today = day_of(e->now_s);
	for (size_t i = 0; i < e->n; i++)
		if (e->t[i].ttl_days >= 1)
			e->removed += expire_logstore(d, e->t[i].logstore,
						      today - 1 - (int)e->t[i].ttl_days);
	if (e->removed)
		log_info("logstore: retention removed %d day file(s)", e->removed);
}

/* Jobs of one (logstore, day) in one transaction; rcs[i] for jobs[i]. */
static void write_run(struct ldata *d, struct ldata_put **jobs, size_t n, enum ldata_rc *rcs)
{
	int day = day_of(jobs[0]->received_s);
	struct part *pt = part_get(d, jobs[0]->logstore, day, true);
	sqlite3 *db = pt ? pt->db : NULL;
	bool ok = db && exec(db, "BEGIN IMMEDIATE") == 0;
	for (size_t i = 0; i < n; i++)
		rcs[i] = ok ? put_one(d, db, jobs[i], day) : LDATA_EIO;
	if (ok && exec(db, "COMMIT") != 0) {
		log_err("logstore: COMMIT failed: %s", sqlite3_errmsg(db));
		exec(db, "ROLLBACK");
		for (size_t i = 0; i < n; i++)
			rcs[i] = LDATA_EIO;
	}
}

static int job_cmp(const void *a, const void *b)
{
	const struct ldata_put *x = *(struct ldata_put *const *)a, *y = *(struct ldata_put *const *)b;
	if (x->logstore != y->logstore)
		return x->logstore < y->logstore ? -1 : 1;
	int dx = day_of(x->received_s), dy = day_of(y->received_s);
	return (dx > dy) - (dx < dy);
}

static void write_batch(struct ldata *d, struct ldata_put **jobs, size_t n)
{
	enum ldata_rc *rcs = xcalloc(n, sizeof(*rcs));
	/* Stable enough: qsort may reorder equal keys, and order within a file
	 * does not matter (time order is restored on read). */
	qsort(jobs, n, sizeof(jobs[0]), job_cmp);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && job_cmp(&jobs[i], &jobs[j]) == 0; j++)
			;
		write_run(d, jobs + i, j - i, rcs + i);
	}
	for (size_t i = 0; i < n; i++)
		finish(d, jobs[i], rcs[i]);
	free(rcs);
	part_checkpoints(d);
}

static size_t take_batch(struct ldata *d, struct ldata_put **jobs, bool *stop)
{
	pthread_mutex_lock(&d->mu);
	while (!d->head && !d->closing)
		pthread_cond_wait(&d->cv, &d->mu);
	size_t n = 0;
	while (d->head && n < LDATA_BATCH_MAX) {
		jobs[n++] = d->head;
		d->head = d->head->next;
	}
	if (!d->head)
		d->tail = NULL;
	*stop = d->closing && n == 0;
	pthread_mutex_unlock(&d->mu);
	return n;
}

static void *writer_main(void *arg)
{
	struct ldata *d = arg;
	struct ldata_put **jobs = xcalloc(LDATA_BATCH_MAX, sizeof(*jobs));
	for (bool stop = false; !stop;) {
		size_t n = take_batch(d, jobs, &stop), puts = 0;
		for (size_t i = 0; i < n; i++) {
			if (jobs[i]->kind == JOB_PUT) {
				jobs[puts++] = jobs[i];
				continue;
			}
			/* A drop or expiry waits for the puts queued before it. */
			write_batch(d, jobs, puts);
			puts = 0;
			if (jobs[i]->kind == JOB_DROP)
				drop_files(d, jobs[i]->logstore);
			else
				expire_run(d, (struct expire_job *)jobs[i]);
			finish(d, jobs[i], LDATA_STORED);
		}
		write_batch(d, jobs, puts);
	}
	free(jobs);
	return NULL;
}

struct ldata *ldata_open(const char *dir)
{
	if (mkdir_0700(dir) != 0) {
		log_err("logstore: cannot create the logs directory %s: %s", dir, strerror(errno));
		return NULL;
	}
	struct ldata *d = xcalloc(1, sizeof(*d));
	d->dir = xstrdup(dir);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	if (pthread_create(&d->writer, NULL, writer_main, d) != 0)
		fatal("logstore: cannot start the writer thread");
	return d;
}

void ldata_close(struct ldata *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->closing = true;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->writer, NULL);
	for (size_t i = 0; i < LDATA_MAX_OPEN; i++)
		sqlite3_close(d->open[i].db);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d->dir);
	free(d);
}

/* A cheap early refusal before encoding; enqueue checks again. */
static bool queue_has_room(struct ldata *d, size_t bytes)
{
	pthread_mutex_lock(&d->mu);
	bool ok = !d->closing && d->queued_bytes + bytes <= LDATA_QUEUE_MAX_BYTES;
	pthread_mutex_unlock(&d->mu);
	return ok;
}

static bool enqueue(struct ldata *d, struct ldata_put *p)
{
	pthread_mutex_lock(&d->mu);
	bool ok = !d->closing && (p->kind != JOB_PUT || d->queued_bytes + p->raw_bytes <= LDATA_QUEUE_MAX_BYTES);
	if (ok) {
		p->next = NULL;
		d->queued_bytes += p->raw_bytes;
		if (d->tail)
			d->tail->next = p;
		else
			d->head = p;
		d->tail = p;
		pthread_cond_signal(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
	return ok;
}

enum sls_err ldata_encode(struct ldata_put *p, struct sls_logs *logs, const struct sls_field *f,
			  size_t nf, const char **detail)
{
	p->g = NULL;
	p->logs = logs;
	p->nenc = 0;
	p->enc = NULL;
	enum sls_err e = block_encode_logs(logs, f, nf, take_block, p, detail);
	if (e != SLS_ERR_OK)
		ldata_encoded_free(p);
	return e;
}

void ldata_put(struct ldata *d, struct ldata_put *p)
{
	p->kind = JOB_PUT;
	if (p->g) {
		p->nenc = 0;
		p->enc = NULL;
	}
	if (!queue_has_room(d, p->raw_bytes)) {
		ldata_encoded_free(p);
		p->done(p, LDATA_BUSY);
		return;
	}
	if (p->g)
		encode_group(p);
	if (!enqueue(d, p)) {
		ldata_encoded_free(p);
		p->done(p, LDATA_BUSY);
	}
}

static void wait_done(struct ldata_put *p, enum ldata_rc rc)
{
	struct job_wait *w = (struct job_wait *)p;
	pthread_mutex_lock(&w->mu);
	w->finished = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Queues a writer job and waits for it; false when the writer is closing. */
static bool run_and_wait(struct ldata *d, struct job_wait *w)
{
	w->job.done = wait_done;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	bool queued = enqueue(d, &w->job);
	if (queued) {
		pthread_mutex_lock(&w->mu);
		while (!w->finished)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	return queued;
}

void ldata_drop(struct ldata *d, int64_t logstore)
{
	struct job_wait w = {.job = {.logstore = logstore, .kind = JOB_DROP}};
	run_and_wait(d, &w);
}

int ldata_expire(struct ldata *d, const struct ldata_ttl *t, size_t n, int64_t now_s)
{
	struct expire_job e = {.w = {.job = {.kind = JOB_EXPIRE}}, .t = t, .n = n, .now_s = now_s};
	return run_and_wait(d, &e.w) ? e.removed : 0;
}

static struct str col_blob(sqlite3_stmt *st, int i)
{
	const void *p = sqlite3_column_blob(st, i);
	return (struct str){p ? p : "", (size_t)sqlite3_column_bytes(st, i)};
}

static int emit_rows(sqlite3_stmt *st, int day, int (*fn)(const struct ldata_block *, void *),
		     void *arg)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ldata_block b = {.part = day, .id = sqlite3_column_int64(st, 0),
					.t_min = (uint32_t)sqlite3_column_int64(st, 1),
					.t_max = (uint32_t)sqlite3_column_int64(st, 2),
					.topic = col_blob(st, 3), .source = col_blob(st, 4),
					.tags = col_blob(st, 5), .data = col_blob(st, 6),
					.counts = col_blob(st, 7)};
		int r = fn(&b, arg);
		if (r)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : LDATA_EIO;
}

#define LDATA_BLOCK_COLS "id, t_min, t_max, topic, source, tags, data, counts"
#define LDATA_ROLLUP_COLS "id, t_min, t_max, topic, source, tags, NULL, counts"
#define LDATA_IN_WINDOW " FROM blocks WHERE t_min < ? AND t_max >= ? ORDER BY t_min, id"

/* SELECT cols + tail; in a file older than rollups (no counts column), with
 * NULL for counts instead. */
static int prepare_blocks(sqlite3 *db, const char *cols, const char *tail, sqlite3_stmt **st)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT %s%s", cols, tail);
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	char *c = strstr(sql, "counts");
	if (!c)
		return -1;
	memcpy(c, "NULL  ", 6);
	return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : -1;
}

static int scan_part(struct ldata *d, int64_t logstore, int day, int64_t from, int64_t to,
		     const char *cols, int (*fn)(const struct ldata_block *, void *), void *arg)
{
	char path[LDATA_PATH_MAX];
	part_path(d, logstore, day, path, sizeof(path));
	sqlite3 *db = part_db_open(path, false);
	if (!db)
		return 0; /* gone meanwhile (retention, DeleteLogStore) */
	sqlite3_stmt *st = NULL;
	int rc = LDATA_EIO;
	if (prepare_blocks(db, cols, LDATA_IN_WINDOW, &st) == 0) {
		sqlite3_bind_int64(st, 1, to);
		sqlite3_bind_int64(st, 2, from);
		rc = emit_rows(st, day, fn, arg);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* "YYYYMMDD.db" -> days since the epoch. */
static int day_of_name(const char *name, int *day)
{
	int y, m, dd;
	char tail[8];
	if (strlen(name) != 11 || sscanf(name, "%4d%2d%2d%7s", &y, &m, &dd, tail) != 4 ||
	    strcmp(tail, ".db") != 0)
		return -1;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = dd};
	*day = (int)(timegm(&tm) / LDATA_PARTITION_S);
	return 0;
}

static int int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int scan_cols(struct ldata *d, int64_t logstore, int64_t from, int64_t to, const char *cols,
		     int (*fn)(const struct ldata_block *b, void *arg), void *arg)
{
	char path[LDATA_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%lld", d->dir, (long long)logstore);
	DIR *dir = opendir(path);
	if (!dir)
		return 0;
	int *days = xcalloc(LDATA_MAX_PARTITIONS, sizeof(int)), n = 0;
	for (struct dirent *e; (e = readdir(dir)) && n < LDATA_MAX_PARTITIONS;)
		if (day_of_name(e->d_name, &days[n]) == 0)
			n++;
	closedir(dir);
	qsort(days, (size_t)n, sizeof(int), int_cmp);
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++)
		rc = scan_part(d, logstore, days[i], from, to, cols, fn, arg);
	free(days);
	return rc;
}

int ldata_scan(struct ldata *d, int64_t logstore, int64_t from, int64_t to,
	       int (*fn)(const struct ldata_block *b, void *arg), void *arg)
{
	return scan_cols(d, logstore, from, to, LDATA_BLOCK_COLS, fn, arg);
}

int ldata_scan_rollups(struct ldata *d, int64_t logstore, int64_t from, int64_t to,
		       int (*fn)(const struct ldata_block *b, void *arg), void *arg)
{
	return scan_cols(d, logstore, from, to, LDATA_ROLLUP_COLS, fn, arg);
}

int ldata_fetch(struct ldata *d, int64_t logstore, int part, int64_t id,
		int (*fn)(const struct ldata_block *b, void *arg), void *arg)
{
	char path[LDATA_PATH_MAX];
	part_path(d, logstore, part, path, sizeof(path));
	sqlite3 *db = part_db_open(path, false);
	if (!db)
		return 1;
	sqlite3_stmt *st = NULL;
	int rc = LDATA_EIO;
	if (prepare_blocks(db, LDATA_BLOCK_COLS, " FROM blocks WHERE id = ?", &st) == 0) {
		sqlite3_bind_int64(st, 1, id);
		rc = emit_rows(st, part, fn, arg);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* ---- a pull iterator over the same blocks (the SQL virtual table's) ---- */

struct ldata_iter {
	struct ldata *d;
	int64_t logstore, from, to;
	int *days;
	int ndays, next_day;
	sqlite3 *db;
	sqlite3_stmt *st;
	int day;
};

static int list_days(struct ldata *d, int64_t logstore, int *days)
{
	char path[LDATA_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%lld", d->dir, (long long)logstore);
	DIR *dir = opendir(path);
	int n = 0;
	if (!dir)
		return 0;
	for (struct dirent *e; (e = readdir(dir)) && n < LDATA_MAX_PARTITIONS;)
		if (day_of_name(e->d_name, &days[n]) == 0)
			n++;
	closedir(dir);
	qsort(days, (size_t)n, sizeof(int), int_cmp);
	return n;
}

struct ldata_iter *ldata_iter_open(struct ldata *d, int64_t logstore, int64_t from, int64_t to)
{
	struct ldata_iter *it = xcalloc(1, sizeof(*it));
	*it = (struct ldata_iter){.d = d, .logstore = logstore, .from = from, .to = to,
				  .days = xcalloc(LDATA_MAX_PARTITIONS, sizeof(int))};
	it->ndays = list_days(d, logstore, it->days);
	return it;
}

static void iter_close_part(struct ldata_iter *it)
{
	sqlite3_finalize(it->st);
	sqlite3_close(it->db);
	it->st = NULL;
	it->db = NULL;
}

/* Opens the next day file that exists; 0 at the end, 1 when open, LDATA_EIO. */
static int iter_open_part(struct ldata_iter *it)
{
	char path[LDATA_PATH_MAX];
	while (it->next_day < it->ndays) {
		it->day = it->days[it->next_day++];
		part_path(it->d, it->logstore, it->day, path, sizeof(path));
		if (!(it->db = part_db_open(path, false)))
			continue; /* gone meanwhile */
		if (prepare_blocks(it->db, LDATA_BLOCK_COLS, LDATA_IN_WINDOW, &it->st) != 0) {
			iter_close_part(it);
			return LDATA_EIO;
		}
		sqlite3_bind_int64(it->st, 1, it->to);
		sqlite3_bind_int64(it->st, 2, it->from);
		return 1;
	}
	return 0;
}

int ldata_iter_next(struct ldata_iter *it, struct ldata_block *out)
{
	for (;;) {
		if (!it->st) {
			int rc = iter_open_part(it);
			if (rc <= 0)
				return rc;
		}
		int rc = sqlite3_step(it->st);
		if (rc == SQLITE_ROW) {
			sqlite3_stmt *st = it->st;
			*out = (struct ldata_block){.part = it->day, .id = sqlite3_column_int64(st, 0),
						    .t_min = (uint32_t)sqlite3_column_int64(st, 1),
						    .t_max = (uint32_t)sqlite3_column_int64(st, 2),
						    .topic = col_blob(st, 3), .source = col_blob(st, 4),
						    .tags = col_blob(st, 5), .data = col_blob(st, 6),
						    .counts = col_blob(st, 7)};
			return 1;
		}
		iter_close_part(it);
		if (rc != SQLITE_DONE)
			return LDATA_EIO;
	}
}

void ldata_iter_close(struct ldata_iter *it)
{
	if (!it)
		return;
	iter_close_part(it);
	free(it->days);
	free(it);
}
