/* The Log Service endpoint of `sagflow serve` (issue 10, docs/logstore.md): a
 * virtual host of the HTTP adapter that claims requests whose Host (port
 * stripped) is the --sls-domain or ends in ".<domain>"; the label before it is
 * the project (spec log-service.md §5.1). Each request is authenticated (LOG
 * signature V1 with hmac-sha1/hmac-sha256, or V4) with the same access keys as
 * the RPC API, then routed by method and path (§5.2). Every answer carries
 * x-log-requestid; errors are {"errorCode","errorMessage"} JSON (§5.4); an
 * empty 200 has no Content-Type (@alicloud/log would parse it). */
#ifndef LOGSTORE_SERVER_H
#define LOGSTORE_SERVER_H
#include "http/http.h"
#include "store/store.h"

#define LOGSTORE_DEFAULT_DOMAIN "sls.localhost"
#define LOGSTORE_MAX_DOMAIN 253
#define LOGSTORE_TIME_WINDOW_S 900 /* Date / x-log-date skew: ±15 minutes */
#define LOGSTORE_MAX_BODY (10u << 20) /* request bytes as sent (compressed or not) */
#define LOGSTORE_SWEEP_INTERVAL_S 3600 /* retention runs at start and this often */
#define LOGSTORE_MAX_URL 512 /* --log-store-at */

struct logstore_server;

/* The node that holds the log store (docs/logstore.md, "Beside N control-plane
 * nodes"): its logs under logs_dir (created when missing), its projects and
 * logstores in st. NULL with a logged reason. */
struct logstore_server *logstore_new(struct store *st, const char *logs_dir, const char *domain);
/* A node that holds no log store: it claims the same requests and answers
 * each with 421 LogStoreNotHere naming url, where the log store is. */
struct logstore_server *logstore_new_elsewhere(const char *domain, const char *url);
void logstore_free(struct logstore_server *s); /* drains its writer; NULL is a no-op */

#define LOGSTORE_PATH_PREFIX "/sls/" /* "/sls/<project>/<path>": the project in the path */

/* For http_config.vhost (arg: the logstore_server): claims the Hosts of
 * logstore_host_project and, on any Host, the paths under LOGSTORE_PATH_PREFIX. */
const struct http_vhost *logstore_vhost(void *arg, struct str host, struct str path);

/* "/sls/<project>/<rest>": 1 with *project and *rest ("/<rest>", "/" when
 * nothing follows) set, else 0. This is how a browser, which cannot choose the
 * Host header, names a project (the console, docs/logstore.md). */
int logstore_path_project(struct str path, struct str *project, struct str *rest);

/* The project named by a Host (or an absolute-form target's authority) for
 * this domain: 1 with *project set (empty: no project), 0 when the host is not
 * the Log Service's. Claimed: "<domain>" and "<project>.<domain>" (port
 * stripped, case-insensitive), "@<any>" and "<project>.@<any>" (sls20201230's
 * endpoint '@IP:PORT'), and "<project>.<IPv4>" (an IP endpoint). */
int logstore_host_project(struct str host, struct str domain, struct str *project);

#endif
