/* http_tls_load on real files: a pair made here with GnuTLS loads; a key file
 * open to group or others, a mismatched key, a NUL byte, an oversized file, a
 * directory, a missing file and an out-of-order chain are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "http/tls.h"

#define PEM_MAX 4096

struct pem {
	char key[PEM_MAX], cert[PEM_MAX];
};

static char dir[] = "/tmp/sagflow-test-tls-XXXXXX";

static void export(gnutls_datum_t d, char *out)
{
	assert_true(d.size < PEM_MAX);
	memcpy(out, d.data, d.size);
	out[d.size] = '\0';
	gnutls_free(d.data);
}

/* A P-256 key and a self-signed certificate for it, as PEM. */
static void make_pair(struct pem *p, const char *cn)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_datum_t d;
	unsigned char serial[8];
	assert_int_equal(gnutls_x509_privkey_init(&key), 0);
	assert_int_equal(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
						      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	serial[0] &= 0x7f;
	gnutls_x509_crt_set_version(crt, 3);
	gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
	gnutls_x509_crt_set_activation_time(crt, time(NULL) - 60);
	gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 86400);
	gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn));
	gnutls_x509_crt_set_key(crt, key);
	assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d), 0);
	export(d, p->cert);
	assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d), 0);
	export(d, p->key);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

static const char *put(const char *name, const void *data, size_t len, mode_t mode)
{
	static char path[8][256];
	static unsigned next;
	char *p = path[next++ % 8];
	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	unlink(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return p;
}

static const char *put_str(const char *name, const char *s, mode_t mode)
{
	return put(name, s, strlen(s), mode);
}

static struct pem a, b;

static void test_pair_loads(void **state)
{
	struct http_tls t;
	assert_int_equal(http_tls_load(&t, put_str("a.pem", a.cert, 0644),
				       put_str("a.key", a.key, 0600)), 0);
	assert_int_equal(t.chain_len, 1);
	assert_string_equal(t.cert, a.cert);
	assert_string_equal(t.key, a.key);
	http_tls_clear(&t);
	assert_null(t.key);
	assert_null(t.cert);
	http_tls_clear(&t); /* twice is harmless */
	/* Read-only for the owner is private too. */
	assert_int_equal(http_tls_load(&t, put_str("a.pem", a.cert, 0644),
				       put_str("a.key", a.key, 0400)), 0);
	http_tls_clear(&t);
}

static void test_key_mode(void **state)
{
	static const mode_t open_modes[] = {0644, 0640, 0604, 0660, 0602, 0610};
	for (size_t i = 0; i < sizeof(open_modes) / sizeof(open_modes[0]); i++) {
		struct http_tls t;
		assert_int_equal(http_tls_load(&t, put_str("a.pem", a.cert, 0644),
					       put_str("a.key", a.key, open_modes[i])), -1);
		assert_null(t.key);
	}
}

static void test_mismatch(void **state)
{
	struct http_tls t;
	assert_int_equal(http_tls_load(&t, put_str("a.pem", a.cert, 0644),
				       put_str("b.key", b.key, 0600)), -1);
	assert_null(t.cert);
}

static void test_bad_files(void **state)
{
	struct http_tls t;
	const char *key = put_str("a.key", a.key, 0600);
	/* A NUL byte would hide the rest of the file from libmicrohttpd. */
	char with_nul[2 * PEM_MAX];
	size_t n = strlen(a.cert);
	memcpy(with_nul, a.cert, n);
	with_nul[n] = '\0';
	memcpy(with_nul + n + 1, b.cert, strlen(b.cert));
	assert_int_equal(http_tls_load(&t, put("nul.pem", with_nul, n + 1 + strlen(b.cert), 0644), key), -1);
	/* One byte past the bound, made of valid certificates. */
	char *big = malloc(HTTP_TLS_MAX_FILE + 1);
	for (size_t i = 0; i < HTTP_TLS_MAX_FILE + 1; i += n)
		memcpy(big + i, a.cert, i + n <= HTTP_TLS_MAX_FILE + 1 ? n : HTTP_TLS_MAX_FILE + 1 - i);
	assert_int_equal(http_tls_load(&t, put("big.pem", big, HTTP_TLS_MAX_FILE + 1, 0644), key), -1);
	free(big);
	assert_int_equal(http_tls_load(&t, dir, key), -1);
	assert_int_equal(http_tls_load(&t, "/nonexistent/sagflow.pem", key), -1);
	assert_int_equal(http_tls_load(&t, put_str("empty.pem", "", 0644), key), -1);
	assert_int_equal(http_tls_load(&t, put_str("junk.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n"
							      "-----END CERTIFICATE-----\n", 0644), key), -1);
	/* The key file holding a certificate, and the certificate file a key. */
	assert_int_equal(http_tls_load(&t, put_str("a.pem", a.cert, 0644),
				       put_str("cert-as.key", a.cert, 0600)), -1);
	assert_int_equal(http_tls_load(&t, put_str("key-as.pem", a.key, 0644), key), -1);
}

/* b's certificate did not issue a's: not a chain in order. */
static void test_unsorted_chain(void **state)
{
	struct http_tls t;
	char chain[2 * PEM_MAX];
	snprintf(chain, sizeof(chain), "%s%s", a.cert, b.cert);
	assert_int_equal(http_tls_load(&t, put_str("ab.pem", chain, 0644),
				       put_str("a.key", a.key, 0600)), -1);
}

int main(void)
{
	assert_non_null(mkdtemp(dir));
	make_pair(&a, "a.test");
	make_pair(&b, "b.test");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pair_loads),
		cmocka_unit_test(test_key_mode),
		cmocka_unit_test(test_mismatch),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_unsorted_chain),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
