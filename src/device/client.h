/* The device channel, client side (docs/device-protocol.md, docs/agent.md):
 * the signed POST /device/v1/sync a gateway's agent sends, over the agent's
 * transport (device/transport.h: libcurl, http:// or https://, timeouts and
 * size limits), with its answer parsed into the effective flow-log
 * configuration.
 *
 *   struct devclient *c = devclient_new(url, serial, secret, ca_file, err, sizeof(err));
 *   struct devclient_answer a;
 *   enum devclient_status st = devclient_sync(c, &report, &a, err, sizeof(err));
 *   devclient_free(c); */
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
#define DEVCLIENT_PORT_MAX 5		  /* digits */
#define DEVCLIENT_MAX_RESPONSE (64 << 10) /* bytes of an answer's body */
#define DEVCLIENT_CONNECT_TIMEOUT_MS 2000
#define DEVCLIENT_IO_TIMEOUT_MS 3000 /* the whole exchange after connecting */
#define DEVCLIENT_ERR_CODE_MAX 64
#define DEVCLIENT_UID_MAX 20 /* digits of an account id */
#define DEVCLIENT_IP_MAX 45  /* text of an IPv6 address */

/* What one exchange came to; the agent acts on the class, the log shows err. */
enum devclient_status {
	DEVCLIENT_OK,
	DEVCLIENT_REFUSED,     /* 401 Device.AuthFailed: wrong SecretKey or unknown serial */
	DEVCLIENT_REJECTED,    /* another 4xx: the request or the clock is wrong */
	DEVCLIENT_UNREACHABLE, /* connect, timeout, 5xx, a broken answer: retry later */
	DEVCLIENT_UNTRUSTED,   /* TLS: the control plane's certificate is not trusted */
};

/* A parsed http(s)://HOST[:PORT] (no path). */
struct devclient_url {
	bool https;
	char host[DEVCLIENT_HOST_MAX + 1]; /* a name or an address, IPv6 without brackets */
	char port[DEVCLIENT_PORT_MAX + 1];
	char authority[DEVCLIENT_HOST_MAX + DEVCLIENT_PORT_MAX + 4]; /* host:port, [v6]:port */
};

/* What the device reports (the JSON body of a sync). */
struct devclient_report {
	const char *model, *software_version;
	const char *ha_state;	    /* "active", "standby" or NULL (not reported) */
	const char *config_version; /* the version the device runs, "" for none */
	const char *sls_delivery;   /* SlsDelivery: "delivered", "not-delivered", "" (no sls leg) */
	int wait_s;		    /* long-poll: let the server hold the sync up to this long */
	/* SlsStats, sent when has_sls_stats: the Log Service sender's counts. */
	bool has_sls_stats;
	uint64_t sls_delivered, sls_queued, sls_dropped;
	const char *sls_last_error; /* "" for none */
	int64_t sls_last_error_ms;  /* wall clock, 0 for none */
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
	/* The Log Service leg's endpoint (§5): a URL, or "" for the control
	 * plane's own log store under sls_domain; the owner's account id. */
	char sls_endpoint[DEVCLIENT_URL_MAX + 1];
	char sls_domain[DEVCLIENT_HOST_MAX + 1];
	char ali_uid[DEVCLIENT_UID_MAX + 1];
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
	char local_ip[DEVCLIENT_IP_MAX + 1];   /* this device's address on the exchange */
	int64_t last_sequence; /* LastSequence of a 409 Device.SequenceStale, else 0 */
};

struct devclient;

/* url is http(s)://HOST[:PORT][/]; ca_file a PEM bundle to trust instead of
 * the system's (or NULL). NULL with a message in err otherwise. */
struct devclient *devclient_new(const char *url, const char *serial, const char *secret,
				const char *ca_file, char *err, size_t errlen);
/* The control plane's address, as parsed from the URL. */
const struct devclient_url *devclient_server(const struct devclient *c);
void devclient_free(struct devclient *c); /* NULL is a no-op */
/* Makes every exchange in progress, in any thread, end at once (the agent's
 * shutdown during a long-poll), and every later one fail until
 * devclient_uncancel (after the cancelled threads have ended). */
void devclient_cancel(void);
void devclient_uncancel(void);
/* One signed sync. The secret never appears in err. A report with wait_s may
 * take that long more than a plain sync. */
enum devclient_status devclient_sync(struct devclient *c, const struct devclient_report *rep,
				     struct devclient_answer *out, char *err, size_t errlen);

/* ---- the parsers, exposed for unit tests and fuzz targets ---- */

/* http(s)://HOST[:PORT][/]: 0, or -1 with a message in err. */
int devclient_parse_url(const char *url, struct devclient_url *out, char *err, size_t errlen);
/* The JSON of a 200 answer into out. 0, or -1 with a message in err. */
int devclient_parse_answer(struct str body, struct devclient_answer *out, char *err, size_t errlen);
/* The FlowLog object alone (also what the agent keeps in its state file). */
int devclient_parse_flowlog(const char *json, size_t len, struct devclient_flowlog *out, char *err,
			    size_t errlen);

#endif
