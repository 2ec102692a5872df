/* The PutLogs body: decompression by x-log-compresstype and the LogGroup
 * protobuf (sls_logs.proto, decoded by protobuf-c), with every limit checked
 * before memory is committed to it. */
#ifndef SLS_BODY_H
#define SLS_BODY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "sls/errors.h"
#include "sls/sls_logs.pb-c.h"

#define SLS_MAX_RAW_BODY (10u << 20)     /* raw (decompressed) PutLogs bytes: SLS's 10 MB */
#define SLS_MAX_LOGS_PER_GROUP 4096      /* logs in one LogGroup (SLS's PutLogs limit) */
#define SLS_MAX_CONTENTS_PER_LOG 1024    /* key/value pairs in one log */
#define SLS_MAX_TAGS_PER_GROUP 256       /* LogTags of a LogGroup */
#define SLS_MAX_KEY_LEN 256              /* bytes of a key (content or tag) */
#define SLS_MAX_VALUE_LEN (1u << 20)     /* bytes of a value */
#define SLS_MAX_TOPIC_LEN 1024           /* bytes of Topic / Source */
/* protobuf-c's objects for one body may take at most this much: a hostile
 * message of tiny fields costs ~10x its size in structs. */
#define SLS_DECODE_MEMORY_MAX (96u << 20)
#define SLS_DECODE_CHUNK (1u << 20) /* arena chunk of a decoded LogGroup (body.c) */
#define SLS_LOGS_SLOTS 64         /* indexes of a Log whose Contents are kept (sls_logs_get) ... */
#define SLS_LOGS_WAYS 4           /* ... this many at each index ... */
#define SLS_LOGS_SLOT_BYTES 128   /* ... when their packed bytes are at most this long */
#define SLS_LOGS_COLD 8           /* misses in a row after which an index skips its ways ... */
#define SLS_LOGS_PROBE 32         /* ... but for one Log in this many, which tries them again */

enum sls_compress { SLS_COMPRESS_NONE, SLS_COMPRESS_LZ4, SLS_COMPRESS_DEFLATE, SLS_COMPRESS_ZSTD };

/* x-log-compresstype: absent/empty -> NONE; "lz4", "deflate", "zstd"; -1 otherwise. */
int sls_compress_parse(struct str value, enum sls_compress *out);

/* The raw body. For NONE it is body itself (*owned NULL); otherwise rawsize
 * (x-log-bodyrawsize, required) is checked against SLS_MAX_RAW_BODY before
 * anything is allocated, the body is decompressed into exactly that many
 * bytes, and *owned is the malloc'd result for the caller to free. On error,
 * *detail says what (static text). */
enum sls_err sls_body_raw(enum sls_compress c, struct str body, struct str rawsize,
			  struct str *raw, char **owned, const char **detail);

/* Decodes and bounds-checks a LogGroup; free with sls_loggroup_free. */
enum sls_err sls_loggroup_decode(struct str raw, Sls__LogGroup **out, const char **detail);
void sls_loggroup_free(Sls__LogGroup *g); /* NULL is a no-op */

/* One key and value the server writes into records. */
struct sls_field {
	struct str key, value;
};

/* Sets the n fields in every log of g (decoded by sls_loggroup_decode): every
 * content whose key is one of theirs is removed, wherever it was and however
 * often, and the fields are appended with the given values; a log that
 * carries each of them exactly once with its value already is left as it is
 * (the common case, and no copy). n <= 64. A log may then hold n more
 * contents than SLS_MAX_CONTENTS_PER_LOG. The device identity of
 * records a gateway writes (docs/device-protocol.md §8) goes through here. */
void sls_loggroup_stamp(Sls__LogGroup *g, const struct sls_field *f, size_t n);

/* What sls_log_stamped found of each Content of the Log before (the first
 * SLS_LOGS_SLOTS), so that a Content sls_logs_same says is that Log's own,
 * unchanged, is not looked at again. Zero-initialise; one memo for one
 * sequence of Logs and one set of fields. */
struct sls_stamp_memo {
	uint8_t field[SLS_LOGS_SLOTS]; /* the stamped field its key is, or n: none */
	bool value_eq[SLS_LOGS_SLOTS]; /* and its value is that field's */
	bool as_is;		       /* the Log came out as it was (no stamped key moved) */
};

/* The contents of l as sls_loggroup_stamp would leave them, as slices into
 * l and f: k and v have room for l->n_contents + n; returns how many.
 * same (sls_logs_same; 0 when m is NULL): bit i when Content i is that of
 * the Log stamped before through m, key and value byte for byte. */
size_t sls_log_stamped(const Sls__Log *l, const struct sls_field *f, size_t n, uint64_t same,
		       struct sls_stamp_memo *m, struct str *k, struct str *v);

/* A LogGroup decoded a Log at a time, for the log store's ingest: the group
 * is unpacked with each Log still packed (LogGroupPacked, the same wire
 * format), its limits checked, and sls_logs_get unpacks and checks Log i
 * into memory reused for the next one, Content by Content, a Content whose
 * packed bytes equal one kept at its index from the Logs before taken from
 * there without decoding it again (body.c, logs_slot). A decoded group of 4,096 logs was
 * ~200,000 objects, walked four times after unpack and not in cache for any
 * of them (docs/logstore.md "Ingest"). The same decode budget
 * (SLS_DECODE_MEMORY_MAX) bounds the group and its largest Log together. */
struct sls_logs;
enum sls_err sls_logs_open(struct str raw, struct sls_logs **out, const char **detail);
const Sls__LogGroupPacked *sls_logs_group(const struct sls_logs *s); /* topic, source, tags */
size_t sls_logs_count(const struct sls_logs *s);
/* Log i, valid until the next call or sls_logs_free; on error, *detail says why. */
enum sls_err sls_logs_get(struct sls_logs *s, size_t i, const Sls__Log **out, const char **detail);
/* Of the Log the last sls_logs_get returned: bit k (k < SLS_LOGS_SLOTS) when
 * its Content k is Content k of the Log got just before it (Log i - 1, got
 * by the call before), key and value byte for byte, because both came from
 * the same way and nothing rewrote it between; 0 for the other Contents, and
 * for all of them after a failed or out-of-order call. Those Contents need
 * no comparison with the previous Log's (sls_log_stamped, block_enc_add). */
uint64_t sls_logs_same(const struct sls_logs *s);
void sls_logs_free(struct sls_logs *s); /* NULL is a no-op */

/* A value of a LogGroup as a slice (protobuf-c bytes fields). */
static inline struct str sls_pb_str(ProtobufCBinaryData b)
{
	return (struct str){(const char *)b.data, b.len};
}

#endif
