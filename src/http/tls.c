/* Loading and checking the TLS certificate chain and key: see tls.h. */
#include "http/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"

/* One buffer size for either file: the bound, one byte to notice a file past
 * it, and the NUL. */
#define TLS_BUF_SIZE (HTTP_TLS_MAX_FILE + 2)

struct tls_file {
	const char *what; /* "certificate file", "key file" */
	const char *path;
	bool secret;      /* refuse group/other access, wipe the buffer */
	char *data;
	size_t len;
};

int http_tls_supported(void)
{
	return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

/* fstat on the open descriptor, so the file checked is the file read. */
static int file_check(const struct tls_file *f, int fd, size_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		log_err("tls: cannot stat %s '%s': %s", f->what, f->path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("tls: %s '%s' is not a regular file", f->what, f->path);
		return -1;
	}
	if (f->secret && (st.st_mode & 077)) {
		log_err("tls: %s '%s' is accessible by group or others (mode %04o); make it private "
			"with: chmod 600 '%s'", f->what, f->path, (unsigned)(st.st_mode & 07777), f->path);
		return -1;
	}
	if (st.st_size > (off_t)HTTP_TLS_MAX_FILE) {
		log_err("tls: %s '%s' is larger than %u bytes; it is not a PEM certificate chain or key",
			f->what, f->path, HTTP_TLS_MAX_FILE);
		return -1;
	}
	*size = (size_t)st.st_size;
	return 0;
}

/* Reads at most HTTP_TLS_MAX_FILE bytes (a file that grew past its stat size
 * is read to the bound and refused) into f->data, NUL-terminated. */
static int file_read_all(struct tls_file *f, int fd)
{
	size_t cap = TLS_BUF_SIZE - 1;
	f->data = xmalloc(TLS_BUF_SIZE);
	f->len = 0;
	while (f->len < cap) {
		ssize_t n = read(fd, f->data + f->len, cap - f->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_err("tls: cannot read %s '%s': %s", f->what, f->path, strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		f->len += (size_t)n;
	}
	f->data[f->len] = '\0';
	if (f->len > HTTP_TLS_MAX_FILE) {
		log_err("tls: %s '%s' is larger than %u bytes", f->what, f->path, HTTP_TLS_MAX_FILE);
		return -1;
	}
	/* libmicrohttpd takes the PEM as a C string: what we check must be all of it. */
	if (memchr(f->data, '\0', f->len)) {
		log_err("tls: %s '%s' is not PEM text (it holds a NUL byte)", f->what, f->path);
		return -1;
	}
	return 0;
}

static int file_load(struct tls_file *f)
{
	/* O_NONBLOCK: a FIFO given by mistake must not hang the start. */
	int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		log_err("tls: cannot open %s '%s': %s", f->what, f->path, strerror(errno));
		return -1;
	}
	size_t size;
	int rc = file_check(f, fd, &size);
	if (rc == 0)
		rc = file_read_all(f, fd);
	close(fd);
	return rc;
}

static void file_free(struct tls_file *f)
{
	if (f->data && f->secret)
		explicit_bzero(f->data, TLS_BUF_SIZE);
	free(f->data);
	f->data = NULL;
}

static gnutls_datum_t datum(const struct tls_file *f)
{
	return (gnutls_datum_t){(unsigned char *)f->data, (unsigned)f->len};
}

/* An operator's clock or renewal mistake, not a reason to refuse: warn. */
static void chain_warn_dates(const struct tls_file *f, gnutls_x509_crt_t leaf)
{
	time_t now = time(NULL), from = gnutls_x509_crt_get_activation_time(leaf),
	       until = gnutls_x509_crt_get_expiration_time(leaf);
	char when[32] = "?";
	struct tm tm;
	if (until != (time_t)-1 && until < now && gmtime_r(&until, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	else if (from != (time_t)-1 && from > now && gmtime_r(&from, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		return;
	log_warn("tls: the certificate in '%s' is %s %s; clients will refuse it", f->path,
		 until < now ? "expired since" : "not valid before", when);
}

/* The chain parses, is in order (the server's certificate first, each next
 * one its issuer), and is not empty. */
static int chain_check(const struct tls_file *f, unsigned *chain_len)
{
	gnutls_datum_t d = datum(f);
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = 0;
	int rc = gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM,
					      GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	if (rc == GNUTLS_E_CERTIFICATE_LIST_UNSORTED) {
		log_err("tls: the certificates in '%s' are out of order: the server's certificate "
			"must come first, then the certificate that issued it, and so on", f->path);
		return -1;
	}
	if (rc < 0 || n == 0) {
		log_err("tls: certificate file '%s' holds no usable PEM certificate (%s)", f->path,
			rc < 0 ? gnutls_strerror(rc) : "none found");
		gnutls_free(crts);
		return -1;
	}
	chain_warn_dates(f, crts[0]);
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	*chain_len = n;
	return 0;
}

/* PKCS#8 "ENCRYPTED PRIVATE KEY" and OpenSSL's legacy "Proc-Type: 4,ENCRYPTED"
 * both say so in the clear: a better message than GnuTLS's decryption error. */
static bool key_encrypted(const struct tls_file *f)
{
	return strstr(f->data, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
	       strstr(f->data, "Proc-Type: 4,ENCRYPTED");
}

static int key_check(const struct tls_file *f)
{
	if (key_encrypted(f)) {
		log_err("tls: key file '%s' is encrypted; serve needs it unencrypted (openssl pkey "
			"-in ENCRYPTED -out '%s'), protected by mode 0600", f->path, f->path);
		return -1;
	}
	gnutls_x509_privkey_t key;
	if (gnutls_x509_privkey_init(&key) < 0)
		fatal("tls: out of memory");
	gnutls_datum_t d = datum(f);
	int rc = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_x509_privkey_deinit(key);
	if (rc < 0) {
		log_err("tls: key file '%s' holds no usable PEM private key (%s)", f->path,
			gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

/* The same call libmicrohttpd makes with the pair: it refuses a key that does
 * not belong to the first certificate. */
static int pair_check(const struct tls_file *cert, const struct tls_file *key)
{
	gnutls_certificate_credentials_t cred;
	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		fatal("tls: out of memory");
	gnutls_datum_t c = datum(cert), k = datum(key);
	int rc = gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(cred);
	if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
		log_err("tls: the key in '%s' does not belong to the first certificate in '%s'",
			key->path, cert->path);
		return -1;
	}
	if (rc < 0) {
		log_err("tls: cannot use certificate '%s' with key '%s' (%s)", cert->path, key->path,
			gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

int http_tls_load(struct http_tls *t, const char *cert_path, const char *key_path)
{
	*t = (struct http_tls){0};
	struct tls_file cert = {.what = "certificate file", .path = cert_path},
			key = {.what = "key file", .path = key_path, .secret = true};
	unsigned n = 0;
	int rc = -1;
	if (!http_tls_supported()) {
		log_err("tls: this libmicrohttpd was built without HTTPS support (MHD_FEATURE_TLS); "
			"install one built with GnuTLS, as Debian's libmicrohttpd12 is");
		return -1;
	}
	if (file_load(&key) < 0 || file_load(&cert) < 0 || chain_check(&cert, &n) < 0 ||
	    key_check(&key) < 0 || pair_check(&cert, &key) < 0)
		goto out;
	t->cert = cert.data;
	t->key = key.data;
	t->chain_len = n;
	cert.data = key.data = NULL;
	rc = 0;
out:
	file_free(&cert);
	file_free(&key);
	return rc;
}

void http_tls_clear(struct http_tls *t)
{
	if (t->key)
		explicit_bzero(t->key, TLS_BUF_SIZE);
	free(t->key);
	free(t->cert);
	*t = (struct http_tls){0};
}
