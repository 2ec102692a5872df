/* The Log Service leg's spool (src/agent/spool.c) and group encoder
 * (src/agent/slsgroup.c): the file format round-trips, every torn or flipped
 * byte is refused, the bound drops the oldest and counts, a reopened spool
 * finds what was queued, and a group decodes with the log store's own decoder
 * to the fields of spec §2.2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <lz4.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "agent/slsgroup.h"
#include "agent/spool.h"
#include "sls/body.h"

static struct spool_group group(const char *pack, uint32_t records, struct str body)
{
	return (struct spool_group){str_c(pack), STR_LIT("proj"), STR_LIT("store"),
				    STR_LIT("http://proj.sls.localhost:1"),
				    STR_LIT("proj.sls.localhost:1:127.0.0.1:1"), records, 100, body};
}

static void test_format(void **state)
{
	(void)state;
	struct spool_group g = group("ABC-1", 3, STR_LIT("lz4-bytes")), back;
	struct buf b = {0};
	spool_serialize(&g, &b);
	assert_int_equal(spool_parse((const uint8_t *)b.p, b.len, &back), 0);
	assert_true(str_eq(back.pack_id, g.pack_id) && str_eq(back.body, g.body));
	assert_int_equal(back.records, 3);
	/* Torn anywhere, or any byte flipped: refused. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(spool_parse((const uint8_t *)b.p, n, &back), -1);
	for (size_t i = 0; i < b.len; i++) {
		b.p[i] ^= 0x20;
		assert_int_equal(spool_parse((const uint8_t *)b.p, b.len, &back), -1);
		b.p[i] ^= 0x20;
	}
	buf_free(&b);
}

static void test_bound_and_restart(void **state)
{
	(void)state;
	char dir[] = "/tmp/sagflow-spool-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char body[1000];
	memset(body, 'x', sizeof(body));
	struct spool *s = spool_open(dir, 3500); /* room for three groups of ~1.1 KB */
	assert_non_null(s);
	char pack[16];
	for (int i = 0; i < 5; i++) {
		snprintf(pack, sizeof(pack), "P-%d", i);
		struct spool_group g = group(pack, 10, (struct str){body, sizeof(body)});
		assert_int_equal(spool_push(s, &g), 0);
	}
	struct spool_stats st;
	spool_get_stats(s, &st);
	assert_int_equal(st.groups, 3);
	assert_int_equal(st.records, 30);
	assert_int_equal(st.dropped_groups, 2);
	assert_int_equal(st.dropped_records, 20);
	spool_close(s);
	/* A torn file and an interrupted write are found and counted at open. */
	char path[256];
	snprintf(path, sizeof(path), "%s/" SPOOL_DIR_NAME "/00000000000000ff.grp", dir);
	FILE *f = fopen(path, "wb");
	fputs("SAGSPOOL torn", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/" SPOOL_DIR_NAME "/.0000000000000100.tmp", dir);
	f = fopen(path, "wb");
	fclose(f);
	s = spool_open(dir, 3500);
	spool_get_stats(s, &st);
	assert_int_equal(st.groups, 3);
	assert_int_equal(st.corrupt, 2);
	struct buf store = {0};
	struct spool_group g;
	uint64_t seq;
	for (int i = 2; i < 5; i++) {
		assert_int_equal(spool_claim(s, &store, &g, &seq), 0);
		snprintf(pack, sizeof(pack), "P-%d", i);
		assert_true(str_eqc(g.pack_id, pack)); /* oldest first, the same pack id */
		spool_finish(s, seq, true);
	}
	assert_int_equal(spool_claim(s, &store, &g, &seq), 1);
	buf_free(&store);
	spool_close(s);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

/* spool_push in its halves: after spool_prepare the group's file is on disk
 * but not queued (nothing counted, nothing to claim); spool_commit queues it.
 * A group above the bound is refused at commit and counted dropped. */
static void test_prepare_commit(void **state)
{
	(void)state;
	char dir[] = "/tmp/sagflow-spool-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char body[1000], big[4000];
	memset(body, 'x', sizeof(body));
	memset(big, 'y', sizeof(big));
	struct spool *s = spool_open(dir, 3500);
	assert_non_null(s);
	struct spool_group g = group("P-0", 10, (struct str){body, sizeof(body)}), back;
	struct spool_prep p;
	assert_int_equal(spool_prepare(s, &g, &p), SPOOL_PREP_OK);
	char path[256];
	snprintf(path, sizeof(path), "%s/" SPOOL_DIR_NAME "/%016llx.grp", dir, (unsigned long long)p.seq);
	assert_int_equal(access(path, F_OK), 0);
	struct spool_stats st;
	spool_get_stats(s, &st);
	assert_int_equal(st.groups, 0);
	struct buf store = {0};
	uint64_t seq;
	assert_int_equal(spool_claim(s, &store, &back, &seq), 1);
	assert_int_equal(spool_commit(s, &p), 0);
	spool_get_stats(s, &st);
	assert_int_equal(st.groups, 1);
	assert_int_equal(st.records, 10);
	assert_int_equal(spool_claim(s, &store, &back, &seq), 0);
	assert_true(str_eqc(back.pack_id, "P-0"));
	struct spool_group b = group("P-1", 7, (struct str){big, sizeof(big)});
	assert_int_equal(spool_prepare(s, &b, &p), SPOOL_PREP_TOO_BIG);
	assert_int_equal(spool_commit(s, &p), -1);
	spool_get_stats(s, &st);
	assert_int_equal(st.groups, 1);
	assert_int_equal(st.dropped_groups, 1);
	assert_int_equal(st.dropped_records, 7);
	buf_free(&store);
	spool_close(s);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

/* Two senders: each claim gets the oldest group nobody has in flight; a
 * retried group is handed out again, oldest first; the bound never drops a
 * claimed group. */
static void test_claims(void **state)
{
	(void)state;
	char body[1000], pack[16];
	memset(body, 'x', sizeof(body));
	struct spool *s = spool_open(NULL, 3500); /* three groups of ~1.1 KB */
	for (int i = 0; i < 3; i++) {
		snprintf(pack, sizeof(pack), "P-%d", i);
		struct spool_group g = group(pack, 10, (struct str){body, sizeof(body)});
		assert_int_equal(spool_push(s, &g), 0);
	}
	struct buf b1 = {0}, b2 = {0};
	struct spool_group g1, g2;
	uint64_t s1, s2, s3;
	assert_int_equal(spool_claim(s, &b1, &g1, &s1), 0);
	assert_int_equal(spool_claim(s, &b2, &g2, &s2), 0);
	assert_true(str_eqc(g1.pack_id, "P-0") && str_eqc(g2.pack_id, "P-1"));
	spool_finish(s, s1, false); /* P-0 failed: it comes back first */
	assert_int_equal(spool_claim(s, &b1, &g1, &s3), 0);
	assert_true(str_eqc(g1.pack_id, "P-0") && s3 == s1);
	/* Full, P-0 and P-1 in flight: the push drops P-2, the oldest unclaimed. */
	struct spool_group g = group("P-3", 10, (struct str){body, sizeof(body)});
	assert_int_equal(spool_push(s, &g), 0);
	struct spool_stats st;
	spool_get_stats(s, &st);
	assert_int_equal(st.dropped_groups, 1);
	assert_int_equal(spool_claim(s, &b1, &g1, &s3), 0);
	assert_true(str_eqc(g1.pack_id, "P-3"));
	/* Every group claimed: nothing more to hand out, and pushes exceed the
	 * bound rather than drop a group in flight. */
	assert_int_equal(spool_claim(s, &b1, &g1, &s3), 1);
	assert_int_equal(spool_push(s, &g), 0);
	spool_get_stats(s, &st);
	assert_int_equal(st.groups, 4);
	assert_int_equal(st.dropped_groups, 1);
	spool_finish(s, s1, true);
	spool_finish(s, s2, true);
	spool_finish(s, s2, true); /* no longer there: a no-op */
	spool_get_stats(s, &st);
	assert_int_equal(st.groups, 2);
	buf_free(&b1);
	buf_free(&b2);
	spool_close(s);
}

static void test_group(void **state)
{
	(void)state;
	struct flow_rec r[2] = {0};
	r[0].key.af = 4;
	memcpy(r[0].key.src, "\x0a\x00\x00\x01", 4);
	memcpy(r[0].key.dst, "\x0a\x00\x00\x02", 4);
	r[0].key.proto = 6;
	r[0].key.sport = 40000;
	r[0].key.dport = 443;
	r[0].first_us = 1700000000000000LL;
	r[0].last_us = 1700000005500000LL;
	r[0].packets = 3;
	r[0].bytes = 1500;
	r[1] = r[0];
	r[1].key.af = 6;
	struct slsgroup_meta m = {"fl-1", "192.0.2.9", "PACK-1", "sag-1", "SN1", "123"};
	struct slsgroup_scratch sc = {0};
	struct buf out = {0}, again = {0};
	size_t raw = 0, raw2 = 0;
	assert_int_equal(slsgroup_encode(&m, r, 2, &sc, &out, &raw), 0);
	/* The scratch is reused: the same records give the same bytes. */
	assert_int_equal(slsgroup_encode(&m, r, 2, &sc, &again, &raw2), 0);
	assert_true(raw2 == raw && again.len == out.len && !memcmp(again.p, out.p, out.len));
	buf_free(&again);
	char *plain = malloc(raw);
	assert_int_equal(LZ4_decompress_safe(out.p, plain, (int)out.len, (int)raw), (int)raw);
	Sls__LogGroup *g = NULL;
	const char *detail = NULL;
	assert_int_equal(sls_loggroup_decode((struct str){plain, raw}, &g, &detail), 0);
	assert_int_equal(g->n_logs, 2);
	assert_true(str_eqc(sls_pb_str(g->topic), "fl-1"));
	assert_true(str_eqc(sls_pb_str(g->source), "192.0.2.9"));
	assert_true(str_eqc(sls_pb_str(g->logtags[0]->value), "PACK-1"));
	assert_int_equal(g->logs[0]->time, 1700000005);
	const char *want[][2] = {{"Instance_id", "sag-1"}, {"snid", "SN1"}, {"ali-uid", "123"},
				 {"start", "1700000000"}, {"end", "1700000005"}, {"protocol", "6"},
				 {"srcaddr", "10.0.0.1"}, {"srcport", "40000"}, {"dstaddr", "10.0.0.2"},
				 {"dstport", "443"}, {"packets", "3"}, {"bytes", "1500"},
				 {"tcp-flags", "0"}, {"tos", "0"}, {"inport", "0"}, {"outport", "0"}};
	assert_int_equal(g->logs[0]->n_contents, 16);
	for (size_t i = 0; i < 16; i++) {
		assert_true(str_eqc(sls_pb_str(g->logs[0]->contents[i]->key), want[i][0]));
		assert_true(str_eqc(sls_pb_str(g->logs[0]->contents[i]->value), want[i][1]));
	}
	assert_true(str_eqc(sls_pb_str(g->logs[1]->contents[6]->value), "a00:1::"));
	/* Packed Log by Log (LogGroupPacked), the bytes are those protobuf-c packs
	 * for the LogGroup itself. */
	size_t again_len = sls__log_group__get_packed_size(g);
	uint8_t *repacked = malloc(again_len);
	assert_int_equal(sls__log_group__pack(g, repacked), again_len);
	assert_true(again_len == raw && !memcmp(repacked, plain, raw));
	free(repacked);
	sls_loggroup_free(g);
	free(plain);
	buf_free(&out);
	assert_int_equal(slsgroup_encode(&m, r, 0, &sc, &out, &raw), -1);
	slsgroup_scratch_free(&sc);
}

/* The widest record (IPv6 addresses of 39 characters, 20-digit counters) with
 * the longest identity values, in a full group: it fits the encoder's room
 * (ASan would see it overflow) and decodes whole. */
static void test_group_widest(void **state)
{
	(void)state;
	static struct flow_rec r[SLSGROUP_MAX_LOGS];
	memset(&r[0], 0, sizeof(r[0]));
	r[0].key.af = 6;
	memset(r[0].key.src, 0xff, 16);
	memset(r[0].key.dst, 0xfe, 16);
	r[0].key.proto = 255;
	r[0].key.sport = r[0].key.dport = 65535;
	r[0].first_us = r[0].last_us = INT64_MAX;
	r[0].packets = r[0].bytes = UINT64_MAX;
	for (size_t i = 1; i < SLSGROUP_MAX_LOGS; i++)
		r[i] = r[0];
	char id[SLSGROUP_MAX_ID];
	memset(id, 'i', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	struct slsgroup_meta m = {id, id, id, id, id, id};
	struct slsgroup_scratch sc = {0};
	struct buf out = {0};
	size_t raw = 0;
	assert_int_equal(slsgroup_encode(&m, r, SLSGROUP_MAX_LOGS, &sc, &out, &raw), 0);
	assert_true(raw <= SLSGROUP_MAX_RAW);
	char *plain = malloc(raw);
	assert_int_equal(LZ4_decompress_safe(out.p, plain, (int)out.len, (int)raw), (int)raw);
	Sls__LogGroup *g = NULL;
	const char *detail = NULL;
	assert_int_equal(sls_loggroup_decode((struct str){plain, raw}, &g, &detail), 0);
	assert_int_equal(g->n_logs, SLSGROUP_MAX_LOGS);
	const Sls__Log *l = g->logs[SLSGROUP_MAX_LOGS - 1];
	assert_int_equal(l->n_contents, 16);
	assert_true(str_eqc(sls_pb_str(l->contents[0]->value), id));
	assert_true(str_eqc(sls_pb_str(l->contents[6]->value), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_true(str_eqc(sls_pb_str(l->contents[11]->value), "18446744073709551615"));
	sls_loggroup_free(g);
	free(plain);
	buf_free(&out);
	slsgroup_scratch_free(&sc);
}

/* Values that repeat, change and come back, record after record and group
 * after group, with periods below and above SLSGROUP_WAYS (the encoder reuses
 * one of a field's last packed Contents when its value is theirs): every Log
 * says its own record's values. */
static void test_group_values_change(void **state)
{
	(void)state;
	enum { N = 64 };
	struct flow_rec r[N];
	memset(r, 0, sizeof(r));
	for (size_t i = 0; i < N; i++) {
		r[i].key.af = i % 5 == 4 ? 6 : 4;
		r[i].key.src[0] = 10;
		r[i].key.src[3] = (uint8_t)(i / 3);
		r[i].key.dst[0] = 192;
		r[i].key.proto = i % 2 ? 6 : 17;
		r[i].key.sport = (uint16_t)(1000 + i % (SLSGROUP_WAYS + 2));
		r[i].key.dport = 53;
		r[i].first_us = 1700000000000000LL + (int64_t)(i / 8) * 1000000;
		r[i].last_us = r[i].first_us + 2000000;
		r[i].packets = i % 3;
		r[i].bytes = 100 * (i % 3);
		r[i].tcp_flags = (uint8_t)(i % 2 ? 0x12 : 0);
	}
	struct slsgroup_meta m = {"fl-1", "192.0.2.9", "PACK-1", "sag-1", "SN1", "123"};
	struct slsgroup_scratch sc = {0};
	for (int round = 0; round < 2; round++) {
		struct buf out = {0};
		size_t raw = 0, n = round ? N / 2 : N; /* the second group starts mid-way */
		const struct flow_rec *from = round ? r + N / 2 : r;
		assert_int_equal(slsgroup_encode(&m, from, n, &sc, &out, &raw), 0);
		char *plain = malloc(raw);
		assert_int_equal(LZ4_decompress_safe(out.p, plain, (int)out.len, (int)raw), (int)raw);
		Sls__LogGroup *g = NULL;
		const char *detail = NULL;
		assert_int_equal(sls_loggroup_decode((struct str){plain, raw}, &g, &detail), 0);
		for (size_t i = 0; i < n; i++) {
			const struct flow_rec *x = &from[i];
			char want[8][32];
			snprintf(want[0], 32, "%lld", (long long)(x->first_us / 1000000));
			snprintf(want[1], 32, "%lld", (long long)(x->last_us / 1000000));
			snprintf(want[2], 32, "%u", x->key.proto);
			inet_ntop(x->key.af == 6 ? AF_INET6 : AF_INET, x->key.src, want[3], 32);
			snprintf(want[4], 32, "%u", x->key.sport);
			snprintf(want[5], 32, "%llu", (unsigned long long)x->packets);
			snprintf(want[6], 32, "%llu", (unsigned long long)x->bytes);
			snprintf(want[7], 32, "%u", x->tcp_flags);
			assert_int_equal(g->logs[i]->time, x->last_us / 1000000);
			const size_t at[8] = {3, 4, 5, 6, 7, 10, 11, 12};
			for (size_t k = 0; k < 8; k++)
				assert_true(str_eqc(sls_pb_str(g->logs[i]->contents[at[k]]->value), want[k]));
		}
		/* Laid out from packed pieces (a Time kept while it repeats, Contents
		 * from the ways), the bytes are still protobuf-c's for the LogGroup. */
		size_t len = sls__log_group__get_packed_size(g);
		uint8_t *repacked = malloc(len);
		assert_int_equal(sls__log_group__pack(g, repacked), len);
		assert_true(len == raw && !memcmp(repacked, plain, raw));
		free(repacked);
		sls_loggroup_free(g);
		free(plain);
		buf_free(&out);
	}
	slsgroup_scratch_free(&sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_bound_and_restart),
		cmocka_unit_test(test_prepare_commit),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_group),
		cmocka_unit_test(test_group_widest),
		cmocka_unit_test(test_group_values_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
