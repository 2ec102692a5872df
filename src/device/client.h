/* The device channel, client side (docs/device-protocol.md, docs/agent.md): a
 * small blocking HTTP/1.1 client (http:// only, timeouts and size limits) and
 * the signed POST /device/v1/sync a gateway's agent sends, with its answer
 * parsed into the effective flow-log configuration.
 *
 *   struct devclient *c = devclient_new(url, serial, secret, err, sizeof(err));
 *   struct devclient_answer a;
 *   enum devclient_status st = devclient_sync(c, &report, &a, err, sizeof(err));
 *   devclient_free(c);
 *
 * TLS is out of scope: put the control plane behind a TLS-terminating proxy on
 * the same host, or on a network the devices trust. */
#ifndef DEVICE_CLIENT_H
#define DEVICE_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "device/device.h"
#include "domain/domain.h"

#define DEVCLIENT_URL_MAX 512		  /* bytes of --control-plane */
#define DEVCLIENT_HOST_MAX 255		  /* DNS name or address */
#define DEVCLIENT_MAX_RESPONSE (64 << 10) /* status line, headers and body */
#define DEVCLIENT_MAX_HEADER_LINES 64
#define DEVCLIENT_CONNECT_TIMEOUT_MS 2000
#define DEVCLIENT_IO_TIMEOUT_MS 3000 /* the whole exchange after connecting */
#define DEVCLIENT_ERR_CODE_MAX 64

/* What one exchange came to; the agent acts on the class, the log shows err. */
enum devclient_status {
	DEVCLIENT_OK,
	DEVCLIENT_REFUSED,     /* 401 Device.AuthFailed: wrong SecretKey or unknown serial */
	DEVCLIENT_REJECTED,    /* another 4xx: the request or the clock is wrong */
	DEVCLIENT_UNREACHABLE, /* connect, timeout, 5xx, a broken answer: retry later */
};

/* What the device reports (the JSON body of a sync). */
struct devclient_report {
	const char *model, *software_version;
	const char *ha_state;	    /* "active", "standby" or NULL (not reported) */
	const char *config_version; /* the version the device runs, "" for none */
	bool sls_not_delivered;	    /* the Log Service leg is configured but not delivered */
	int wait_s;		    /* long-poll: let the server hold the sync up to this long */
};

/* The flow-log configuration of an answer (FlowLog), as the device applies it. */
struct devclient_flowlog {
	char id[DOMAIN_ID_MAX + 1];
	char output[8]; /* "sls", "netflow" or "all" */
	char server_ip[DOMAIN_IP_MAX + 1];
	int server_port; /* 1-65535, 0 when there is no NetFlow leg */
	int version;	 /* 5, 9 or 10, 0 when there is no NetFlow leg */
	int64_t active_aging_s, inactive_aging_s;
	char project[DOMAIN_SLS_NAME_MAX + 1], logstore[DOMAIN_SLS_NAME_MAX + 1];
};

struct devclient_answer {
	char sag_id[DOMAIN_ID_MAX + 1];
	char config_version[DEVICE_CONFIG_VERSION_HEX + 1];
	bool changed; /* when false, flowlog is not sent: keep the one you have */
	bool exports; /* this device is the one that exports (HA: the active one) */
	bool has_flowlog;
	struct devclient_flowlog flowlog;
	int poll_interval_s;
	int next_sync_s; /* NextSyncSeconds: when to sync again (0 at once); -1 not sent */
	int http_status;
	char code[DEVCLIENT_ERR_CODE_MAX + 1]; /* the error Code of a non-200 answer */
	int64_t last_sequence; /* LastSequence of a 409 Device.SequenceStale, else 0 */
};

struct devclient;

/* url is http://HOST[:PORT][/]; NULL with a message in err otherwise. */
struct devclient *devclient_new(const char *url, const char *serial, const char *secret, char *err,
				size_t errlen);
void devclient_free(struct devclient *c); /* NULL is a no-op */
/* Makes every exchange in progress, in any thread, fail at once (shutdown of a
 * long-poll), and every later one too. */
void devclient_cancel(void);
/* One signed sync. The secret never appears in err. A report with wait_s may
 * take that long plus DEVCLIENT_IO_TIMEOUT_MS. */
enum devclient_status devclient_sync(struct devclient *c, const struct devclient_report *rep,
				     struct devclient_answer *out, char *err, size_t errlen);

/* ---- the parsers, exposed for unit tests and fuzz targets ---- */

/* Splits an HTTP/1.x response: status code and body (Content-Length, or the
 * rest when the server closes). 0, or -1 with a message in err. */
int devclient_parse_response(struct str resp, bool complete, int *status, struct str *body,
			     char *err, size_t errlen);
/* Whether resp holds a whole response yet (headers and Content-Length bytes). */
bool devclient_response_complete(struct str resp);
/* The JSON of a 200 answer into out. 0, or -1 with a message in err. */
int devclient_parse_answer(struct str body, struct devclient_answer *out, char *err, size_t errlen);
/* The FlowLog object alone (also what the agent keeps in its state file). */
int devclient_parse_flowlog(const char *json, size_t len, struct devclient_flowlog *out, char *err,
			    size_t errlen);

#endif
