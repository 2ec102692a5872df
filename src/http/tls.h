/* TLS material for the HTTP server: a certificate chain and its private key,
 * read from PEM files and checked at start.
 *
 * The checks use GnuTLS, the library Debian's libmicrohttpd does HTTPS with,
 * so what passes here is exactly what the daemon will accept; doing them
 * ourselves (rather than letting MHD_start_daemon fail) lets every refusal
 * name the file and the reason. Key material is never logged. */
#ifndef HTTP_TLS_H
#define HTTP_TLS_H
#include <stddef.h>

/* Upper bound of either PEM file: a leaf with a few intermediates is 2-10 KiB;
 * anything near this is not a certificate chain. */
#define HTTP_TLS_MAX_FILE (64u * 1024)

/* GnuTLS priorities (libmicrohttpd's MHD_OPTION_HTTPS_PRIORITIES): GnuTLS's
 * NORMAL cipher set, TLS 1.2 and 1.3 only. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct http_tls {
	char *cert; /* PEM, NUL-terminated: the server's certificate first, then its issuers */
	char *key;  /* PEM, NUL-terminated; wiped by http_tls_clear */
	unsigned chain_len; /* certificates in cert */
};

/* Reads and checks both files: sizes, the key file's mode (no access for group
 * or others), the PEM contents, the chain's order, and that the key belongs to
 * the first certificate. 0, or -1 with the reason logged. */
int http_tls_load(struct http_tls *t, const char *cert_path, const char *key_path);

/* Wipes and frees the key, frees the chain. Safe on a zeroed struct. */
void http_tls_clear(struct http_tls *t);

/* Whether this libmicrohttpd was built with HTTPS support. */
int http_tls_supported(void);

#endif
