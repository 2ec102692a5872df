/* The device channel, server side (docs/device-protocol.md): a gateway's device
 * proves who it is with its serial number and SecretKey (HMAC-SHA256 over the
 * request, a ±15 minute timestamp window, a per-device sequence that must grow,
 * persisted so replays stay refused across restarts), reports its
 * model, firmware version and HA state, and gets back the effective flow-log
 * configuration of its gateway with a ConfigVersion to poll against. */
#ifndef DEVICE_DEVICE_H
#define DEVICE_DEVICE_H
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "domain/domain.h"

#define DEVICE_PATH_PREFIX "/device/"
#define DEVICE_SYNC_PATH "/device/v1/sync"
#define DEVICE_AUTH_ALGORITHM "SAG-HMAC-SHA256"
#define DEVICE_TIME_WINDOW_S (15 * 60)   /* accepted clock skew, either way */
#define DEVICE_MAX_BODY 4096              /* bytes of a report */
#define DEVICE_SEQUENCE_MAX_LEN 19        /* decimal digits of X-Sag-Sequence (1..2^63-1) */
#define DEVICE_POLL_INTERVAL_S 5          /* what the server asks devices to use, at most */
#define DEVICE_REPORT_REFRESH_MS (30 * 1000) /* an unchanged report is stored this often, at most */
#define DEVICE_MAX_WAIT_S 60            /* the longest "Wait" a sync may ask (long-poll) */
#define DEVICE_REREAD_BATCH 256         /* woken syncs re-read in one read transaction */
#define DEVICE_MAX_HELD 3072            /* default bound of syncs held at once (3/4 of connections) */
#define DEVICE_HEX_SHA256 64
#define DEVICE_CONFIG_VERSION_HEX 16      /* 64 bits of SHA-256 of the configuration */

struct http_server;
struct store;
struct device_server;

/* What a device reports in its sync body (docs/device-protocol.md §2). */
struct device_report {
	char model[33];           /* DOMAIN_MODEL_MAX + 1 */
	char version[33];         /* DOMAIN_VERSION_MAX + 1 */
	int ha;                   /* enum device_ha */
	char have[DEVICE_CONFIG_VERSION_HEX + 1]; /* the device's ConfigVersion, or "" */
	char sls_delivery[16];    /* DOMAIN_SLS_DELIVERY_MAX + 1: "", "delivered", "not-delivered" */
	int wait_s;               /* "Wait": hold the sync up to this long for a change (0: no) */
	struct device_sls_stats sls; /* SlsStats, all zero when absent */
};

/* Parses and validates a report body: 0, or -1 (Device.InvalidReport). */
int device_report_parse(struct str body, struct device_report *out);

/* online_ms: how long a gateway counts as online after a report (domain.h's
 * DEVICE_ONLINE_MS, or `serve --device-offline-after`). Devices are asked to
 * poll, and unchanged reports are stored, at least three times within it. */
struct ratelimit;
/* budgets: a request budget per serial number (checked after the signature),
 * owned by the caller, or NULL for none. max_held: syncs held at once
 * (long-poll); past it a sync is answered at once. */
struct device_server *device_server_new(struct store *st, int64_t online_ms,
					struct ratelimit *budgets, unsigned max_held);
/* Answers every held sync now and holds no more (shutdown); returns when done. */
void device_server_drain(struct device_server *d);
/* The account's data changed (api_config.account_changed): its held syncs
 * are read again and answered when their configuration changed. */
void device_server_account_changed(void *d, int64_t account);
/* Syncs held now, and the bound (metrics). */
unsigned device_held(struct device_server *d, unsigned *max);
void device_server_free(struct device_server *d); /* NULL is a no-op */
/* Where devices write the Log Service leg (docs/device-protocol.md §5): the
 * endpoint URL of a region (`serve --sls-endpoint REGION=URL`), else
 * default_url (`serve --log-store-at URL`: the node holding the log store),
 * or with default_url NULL the control plane's own log store under domain
 * (--sls-domain). The strings must outlive d. Call before http_server_start. */
#define DEVICE_MAX_SLS_ENDPOINTS 64
struct device_sls_endpoint {
	const char *region, *url;
};
void device_server_set_sls(struct device_server *d, const char *domain,
			   const struct device_sls_endpoint *eps, size_t n, const char *default_url);
/* Adds the /device/ routes; call before http_server_start. */
int device_routes_add(struct http_server *h, struct device_server *d);

/* The string a device signs (docs/device-protocol.md §3), and the lowercase hex
 * HMAC-SHA256 of it under the device's SecretKey. Exposed for tests and for
 * device implementations in C. */
void device_string_to_sign(struct buf *out, struct str method, struct str path, struct str serial,
			   struct str date, struct str sequence, struct str content_sha256);
void device_sign(struct str secret, struct str sts, char out[DEVICE_HEX_SHA256 + 1]);
/* Lowercase hex SHA-256 of body. */
void device_body_sha256(struct str body, char out[DEVICE_HEX_SHA256 + 1]);

#endif
