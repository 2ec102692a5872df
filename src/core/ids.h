/* Identifiers and secrets from the CSPRNG (OpenSSL RAND_bytes). */
#ifndef CORE_IDS_H
#define CORE_IDS_H
#include <stddef.h>

#define IDS_RESOURCE_SUFFIX 18 /* "fl-" / "sag-" + 18 lowercase alnum, spec §1 */
#define IDS_UUID_LEN 36

void ids_random(void *p, size_t n);                      /* fatal if the CSPRNG fails */
void ids_resource(char *out, size_t cap, const char *prefix); /* prefix + 18 [a-z0-9] */
void ids_uuid_upper(char out[IDS_UUID_LEN + 1]);         /* RequestId: uppercase UUIDv4 */
void ids_alnum(char *out, size_t n);                     /* n chars of [A-Za-z0-9], NUL added */
void ids_hex(char *out, size_t nbytes);                  /* 2*nbytes lowercase hex, NUL added */

#endif
