/* sagflow agent: a Smart Access Gateway device that follows the flow log bound
 * to its gateway (docs/agent.md). It syncs over the device channel
 * (src/device/client.c), meters the gateway's traffic with the bound flow
 * log's agings (src/meter) and exports NetFlow/IPFIX to its collector; when the
 * configuration changes, meter_reconfigure closes what was counted under the
 * old settings and continues under the new ones. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/agent_metrics.h"
#include "cli/commands.h"
#include "cli/metrics_listen.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "agent/slsexport.h"
#include "agent/slssend.h"
#include "agent/spool.h"
#include "core/num.h"
#include "device/client.h"
#include "export/exporter.h"
#include "export/udp.h"
#include "http/http.h"
#include "meter/meter.h"

#define AGENT_MODEL "sag-1000"
#define AGENT_POLL_MS 1000	   /* a cheap poll (the version is sent), well inside 5 s */
#define AGENT_BACKOFF_MIN_MS 1000  /* first retry after a failed sync */
#define AGENT_BACKOFF_MAX_MS 16000 /* retries never wait longer than this */
#define AGENT_SNAPLEN 256	   /* headers only: bytes come from the IP header */
#define AGENT_LIVE_TIMEOUT_MS 100  /* a quiet interface still runs timers and polls */
#define AGENT_LIVE_BUFFER (16 << 20)
#define AGENT_STATE_FILE "state.json"
#define AGENT_STATE_MAX (16 << 10) /* bytes of the state file */
#define AGENT_PATH_MAX 4096
#define AGENT_FILTER_MAX 1024	   /* bytes of --filter */
#define AGENT_OBSERVATION_DOMAIN 1 /* V9 source id / IPFIX observation domain / V5 engine id */
#define AGENT_SECRET_ENV "SAGFLOW_DEVICE_SECRET"
#define AGENT_ERR_MAX 512 /* bytes of an error message */
#define AGENT_SPOOL_MIN 4096	  /* bytes: the smallest --sls-spool-max */
#define AGENT_SLS_DRAIN_MS 10000  /* at exit, queued groups get this long to be delivered */

/* Exit codes (also in --help and docs/agent.md). */
enum {
	AGENT_EXIT_OK = 0,
	AGENT_EXIT_FAIL = 1, /* control plane unreachable, capture or file failed */
	AGENT_EXIT_USAGE = 2,
	AGENT_EXIT_REFUSED = 3, /* wrong secret key or serial number not bound */
};

struct agent_opts {
	const char *control_plane, *serial, *iface, *read, *firmware, *ha, *state_dir, *filter;
	const char *ca_file; /* --ca-file: trust these CAs instead of the system's */
	uint64_t spool_max;  /* --sls-spool-max */
	char *secret; /* argv's copy is blanked once the client holds its own */
	bool once;
	bool no_long_poll; /* --no-long-poll: poll every PollIntervalSeconds instead */
	struct cli_metrics_addr metrics; /* --metrics-listen */
};

/* The configuration the agent runs: what the control plane last said. */
struct agent_config {
	bool known; /* from the control plane or the state file */
	char version[DEVICE_CONFIG_VERSION_HEX + 1];
	char sag_id[DOMAIN_ID_MAX + 1];
	bool exports, has_flowlog;
	struct devclient_flowlog fl;
};

struct agent {
	struct agent_opts o;
	struct devclient *dc;
	struct agent_config cfg;
	bool applied;		/* cfg drives the meter (not only loaded from the state file) */
	struct meter *m;	/* NULL while nothing is exported */
	struct udp_sender *udp; /* the meter's exporter sends through it */
	/* The collector udp sends to and the stream it sees: sequence numbers
	 * continue across reconfigures for as long as the collector stays. */
	char collector_ip[DOMAIN_IP_MAX + 1];
	int collector_port;
	struct netflow_stream stream;
	int failures;	      /* syncs failed in a row */
	bool reported_sls;    /* the last accepted report said the sls leg is not delivered */
	int64_t next_sync_us; /* monotonic */
	char state_path[AGENT_PATH_MAX];
	struct agent_metrics am;
	struct slssend *sls; /* the Log Service leg's delivery (not with --once) */
	bool sls_stopped;		/* sls was stopped: sls_last holds its final counts */
	struct slssend_stats sls_last;
	char source_ip[DEVCLIENT_IP_MAX + 1]; /* our address, as the last sync saw it */
};

static volatile sig_atomic_t agent_stop, agent_usr1;
static pcap_t *agent_pcap;

static void agent_on_signal(int sig)
{
	if (sig == SIGUSR1) {
		agent_usr1 = 1;
		return;
	}
	agent_stop = 1;
	if (agent_pcap)
		pcap_breakloop(agent_pcap);
}

static void agent_usage(FILE *f)
{
	fprintf(f,
		"usage: sagflow agent --control-plane URL --serial SN --secret KEY\n"
		"                     (--interface IFACE | --read FILE | --once)\n"
		"                     [--firmware-version V] [--ha-state active|standby]\n"
		"                     [--state-dir DIR] [--filter BPF] [--metrics-listen HOST:PORT]\n"
		"                     [--ca-file FILE] [--sls-spool-max BYTES] [--no-long-poll]\n\n"
		"Runs as the Smart Access Gateway device SN: syncs with the control plane\n"
		"over the device channel (signed with the SecretKey BindSerialNumber made),\n"
		"meters traffic with the bound flow log's ActiveAging/InactiveAging and\n"
		"exports NetFlow V5/V9/IPFIX to its NetflowServerIp:NetflowServerPort.\n"
		"No bound flow log, an Inactive one, or a standby device: no export.\n"
		"Live, it long-polls: the control plane holds each sync until the\n"
		"configuration changes (answered within a second) or up to %d s pass;\n"
		"otherwise changes are picked up within %d s. Records counted under the old settings\n"
		"are closed and exported before the new ones apply.\n\n"
		"  -c, --control-plane URL   http://HOST[:PORT] or https://HOST[:PORT] of\n"
		"                            'sagflow serve'; https is verified against the\n"
		"                            system's CAs or --ca-file. Proxies: http_proxy,\n"
		"                            https_proxy, no_proxy\n"
		"  -C, --ca-file FILE        trust the CAs in this PEM file (the control\n"
		"                            plane and the Log Service endpoint)\n"
		"  -s, --serial SN           this device's serial number\n"
		"  -k, --secret KEY          its SecretKey (or set %s);\n"
		"                            never logged, blanked in argv at start\n"
		"  -i, --interface IFACE     capture live on IFACE until SIGTERM/SIGINT,\n"
		"                            which flush every record and exit 0\n"
		"  -r, --read FILE           sync once, replay a pcap/pcapng file under that\n"
		"                            configuration, flush, exit\n"
		"  -1, --once                sync once, print the effective configuration\n"
		"                            as one JSON line, exit\n"
		"  -f, --firmware-version V  firmware version to report (default %s)\n"
		"  -H, --ha-state STATE      report active or standby (default: not reported)\n"
		"  -d, --state-dir DIR       keep the last configuration in DIR/%s; a\n"
		"                            restarted agent resumes it while the control\n"
		"                            plane is unreachable\n"
		"  -F, --filter BPF          meter only packets matching this pcap filter\n"
		"  -P, --no-long-poll        poll every PollIntervalSeconds instead of\n"
		"                            long-polling (for proxies that cut idle requests)\n"
		"  -M, --metrics-listen HOST:PORT\n"
		"                            serve GET /metrics (Prometheus text format) on\n"
		"                            this address while the agent runs; port 0 picks\n"
		"                            a free port, logged as 'metrics on HOST:PORT'.\n"
		"                            Off by default\n"
		"  -S, --sls-spool-max BYTES groups waiting for the Log Service are queued in\n"
		"                            --state-dir/%s (in memory without it), at most\n"
		"                            BYTES (default %llu); beyond, the oldest are\n"
		"                            dropped and counted\n"
		"  -h, --help                this text\n\n"
		"SIGUSR1 prints the agent's status and the meter's statistics to stderr.\n"
		"Model reported: %s. OutputType sls or all: every record is also written\n"
		"to the flow log's logstore with PutLogs (signed as device.SN), at the\n"
		"endpoint the control plane names; retried with backoff, never doubled.\n"
		"Exit codes: 0 ok, 1 control plane unreachable (or its certificate not\n"
		"trusted) or capture failed, 2 usage,\n"
		"3 refused (wrong SecretKey, or the serial number is not bound).\n",
		DEVICE_MAX_WAIT_S, AGENT_POLL_MS / 1000 + 1, AGENT_SECRET_ENV, SAGFLOW_VERSION,
		AGENT_STATE_FILE, SPOOL_DIR_NAME, (unsigned long long)SPOOL_MAX_BYTES_DEFAULT, AGENT_MODEL);
}

static int agent_parse(int argc, char **argv, struct agent_opts *o)
{
	static const struct option longopts[] = {
	    {"control-plane", required_argument, NULL, 'c'},
	    {"serial", required_argument, NULL, 's'},
	    {"secret", required_argument, NULL, 'k'},
	    {"interface", required_argument, NULL, 'i'},
	    {"read", required_argument, NULL, 'r'},
	    {"once", no_argument, NULL, '1'},
	    {"no-long-poll", no_argument, NULL, 'P'},
	    {"firmware-version", required_argument, NULL, 'f'},
	    {"ha-state", required_argument, NULL, 'H'},
	    {"state-dir", required_argument, NULL, 'd'},
	    {"filter", required_argument, NULL, 'F'},
	    {"metrics-listen", required_argument, NULL, 'M'},
	    {"ca-file", required_argument, NULL, 'C'},
	    {"sls-spool-max", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:s:k:i:r:1Pf:H:d:F:M:C:S:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->control_plane = optarg;
			break;
		case 's':
			o->serial = optarg;
			break;
		case 'k':
			o->secret = optarg;
			break;
		case 'i':
			o->iface = optarg;
			break;
		case 'r':
			o->read = optarg;
			break;
		case 'P':
			o->no_long_poll = true;
			break;
		case '1':
			o->once = true;
			break;
		case 'f':
			o->firmware = optarg;
			break;
		case 'H':
			o->ha = optarg;
			break;
		case 'd':
			o->state_dir = optarg;
			break;
		case 'F':
			o->filter = optarg;
			break;
		case 'C':
			o->ca_file = optarg;
			break;
		case 'S': {
			int64_t n;
			if (num_parse_i64(str_c(optarg), AGENT_SPOOL_MIN, INT64_MAX, &n) < 0) {
				fprintf(stderr,
					"sagflow agent: bad --sls-spool-max '%s' (bytes, at least %d)\n\n",
					optarg, AGENT_SPOOL_MIN);
				agent_usage(stderr);
				return -1;
			}
			o->spool_max = (uint64_t)n;
			break;
		}
		case 'M':
			if (cli_metrics_parse(optarg, &o->metrics) < 0) {
				fprintf(stderr, "sagflow agent: bad --metrics-listen '%s' (HOST:PORT)\n\n",
					optarg);
				agent_usage(stderr);
				return -1;
			}
			break;
		case 'h':
			agent_usage(stdout);
			return 1;
		default:
			agent_usage(stderr);
			return -1;
		}
	}
	if (!o->secret)
		o->secret = getenv(AGENT_SECRET_ENV);
	int modes = (o->iface != NULL) + (o->read != NULL) + o->once;
	const char *why = NULL;
	if (optind != argc)
		why = "unexpected argument";
	else if (!o->control_plane || !o->serial || !o->secret || !o->secret[0])
		why = "--control-plane, --serial and --secret are required";
	else if (modes != 1)
		why = "need exactly one of --interface, --read and --once";
	else if (!domain_version_valid(str_c(o->firmware)))
		why = "--firmware-version must be digits and dots, like 1.7.0";
	else if (o->ha && strcmp(o->ha, "active") && strcmp(o->ha, "standby"))
		why = "--ha-state must be active or standby";
	else if (o->state_dir && strnlen(o->state_dir, AGENT_PATH_MAX) >
				     AGENT_PATH_MAX - sizeof(AGENT_STATE_FILE) - 8)
		why = "--state-dir is too long";
	else if (o->filter && strnlen(o->filter, AGENT_FILTER_MAX + 1) > AGENT_FILTER_MAX)
		why = "--filter is too long";
	if (why) {
		fprintf(stderr, "sagflow agent: %s\n\n", why);
		agent_usage(stderr);
		return -1;
	}
	return 0;
}

/* ---- the state file: the last configuration, so a restart resumes it ---- */

static json_t *flowlog_json(const struct devclient_flowlog *f)
{
	static const char *const versions[] = {[5] = "V5", [9] = "V9", [10] = "V10"};
	json_t *o = json_object();
	json_object_set_new(o, "FlowLogId", json_string(f->id));
	json_object_set_new(o, "OutputType", json_string(f->output));
	if (f->version) {
		json_object_set_new(o, "NetflowServerIp", json_string(f->server_ip));
		json_object_set_new(o, "NetflowServerPort", json_integer(f->server_port));
		json_object_set_new(o, "NetflowVersion", json_string(versions[f->version]));
	}
	json_object_set_new(o, "ActiveAging", json_integer(f->active_aging_s));
	json_object_set_new(o, "InactiveAging", json_integer(f->inactive_aging_s));
	json_object_set_new(o, "ProjectName", json_string(f->project));
	json_object_set_new(o, "LogstoreName", json_string(f->logstore));
	if (strcmp(f->output, "netflow")) {
		json_object_set_new(o, "SlsEndpoint", json_string(f->sls_endpoint));
		json_object_set_new(o, "SlsDomain", json_string(f->sls_domain));
		json_object_set_new(o, "AliUid", json_string(f->ali_uid));
	}
	return o;
}

static bool sls_leg(const struct agent_config *c)
{
	return c->exports && c->has_flowlog && strcmp(c->fl.output, "netflow") != 0;
}

static bool netflow_leg(const struct agent_config *c)
{
	return c->exports && c->has_flowlog && strcmp(c->fl.output, "sls") != 0;
}

/* The effective configuration as JSON: the state file and --once's output. */
static char *config_dump(const struct agent *a)
{
	const struct agent_config *c = &a->cfg;
	json_t *o = json_object();
	json_object_set_new(o, "SerialNumber", json_string(a->o.serial));
	json_object_set_new(o, "SmartAGId", json_string(c->sag_id));
	json_object_set_new(o, "ConfigVersion", json_string(c->version));
	json_object_set_new(o, "Export", json_boolean(c->exports));
	json_object_set_new(o, "FlowLog", c->has_flowlog ? flowlog_json(&c->fl) : json_null());
	json_object_set_new(o, "NetflowLeg", json_string(netflow_leg(c) ? "exporting" : "off"));
	json_object_set_new(o, "SlsLeg", json_string(sls_leg(c) ? "delivering" : "off"));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* Write-then-rename, so a crash leaves the old state or the new, never half. */
static void state_save(struct agent *a)
{
	if (!a->state_path[0])
		return;
	char tmp[AGENT_PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->state_path);
	char *s = config_dump(a);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -1 : str_write_fd(fd, s, strlen(s));
	if (fd >= 0 && (fsync(fd) < 0 || close(fd) < 0))
		rc = -1;
	if (rc < 0 || rename(tmp, a->state_path) < 0)
		log_warn("agent: cannot save the configuration to %s: %s", a->state_path,
			 strerror(errno));
	free(s);
}

static int state_parse(struct agent *a, json_t *o)
{
	struct agent_config c = {.known = true};
	json_t *sn = json_object_get(o, "SerialNumber"), *ver = json_object_get(o, "ConfigVersion");
	json_t *id = json_object_get(o, "SmartAGId"), *exp = json_object_get(o, "Export");
	json_t *fl = json_object_get(o, "FlowLog");
	char err[256];
	if (!json_is_string(sn) || strcmp(json_string_value(sn), a->o.serial) ||
	    !json_is_string(ver) || json_string_length(ver) != DEVICE_CONFIG_VERSION_HEX ||
	    !json_is_string(id) || json_string_length(id) > DOMAIN_ID_MAX || !json_is_boolean(exp))
		return -1;
	memcpy(c.version, json_string_value(ver), DEVICE_CONFIG_VERSION_HEX + 1);
	memcpy(c.sag_id, json_string_value(id), json_string_length(id) + 1);
	c.exports = json_is_true(exp);
	c.has_flowlog = json_is_object(fl);
	if (c.has_flowlog) {
		char *s = json_dumps(fl, JSON_COMPACT);
		int rc = devclient_parse_flowlog(s, strlen(s), &c.fl, err, sizeof(err));
		free(s);
		if (rc < 0)
			return -1;
	}
	a->cfg = c;
	return 0;
}

/* Loads DIR/state.json into a->cfg when it is this device's and valid. */
static void state_load(struct agent *a)
{
	if (!a->o.state_dir)
		return;
	if (mkdir(a->o.state_dir, 0700) < 0 && errno != EEXIST)
		log_warn("agent: cannot create --state-dir %s: %s", a->o.state_dir,
			 strerror(errno));
	snprintf(a->state_path, sizeof(a->state_path), "%s/%s", a->o.state_dir, AGENT_STATE_FILE);
	char buf[AGENT_STATE_MAX + 1];
	ssize_t n = -1;
	int fd = open(a->state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			log_warn("agent: cannot read %s: %s", a->state_path, strerror(errno));
		return;
	}
	/* One read of at most the cap plus one byte: a larger file is refused unread. */
	n = read(fd, buf, sizeof(buf));
	close(fd);
	json_error_t jerr;
	json_t *o = n > 0 && n <= AGENT_STATE_MAX
			? json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr)
			: NULL;
	if (!o || state_parse(a, o) < 0)
		log_warn("agent: ignoring %s: not a valid state of device %s", a->state_path,
			 a->o.serial);
	else
		log_info("agent: loaded the last configuration %s from %s", a->cfg.version,
			 a->state_path);
	json_decref(o);
}

/* ---- following the configuration ---- */

static bool same_netflow(const struct agent_config *x, const struct agent_config *y)
{
	if (netflow_leg(x) != netflow_leg(y))
		return false;
	if (!netflow_leg(x))
		return true;
	return !strcmp(x->fl.server_ip, y->fl.server_ip) &&
	       x->fl.server_port == y->fl.server_port && x->fl.version == y->fl.version &&
	       x->fl.active_aging_s == y->fl.active_aging_s &&
	       x->fl.inactive_aging_s == y->fl.inactive_aging_s;
}

/* Whether the Log Service leg writes the same records to the same place. */
static bool same_sls(const struct agent_config *x, const struct agent_config *y)
{
	if (sls_leg(x) != sls_leg(y))
		return false;
	if (!sls_leg(x))
		return true;
	return !strcmp(x->fl.id, y->fl.id) && !strcmp(x->fl.project, y->fl.project) &&
	       !strcmp(x->fl.logstore, y->fl.logstore) &&
	       !strcmp(x->fl.sls_endpoint, y->fl.sls_endpoint) &&
	       !strcmp(x->fl.sls_domain, y->fl.sls_domain) &&
	       !strcmp(x->fl.ali_uid, y->fl.ali_uid) &&
	       x->fl.active_aging_s == y->fl.active_aging_s &&
	       x->fl.inactive_aging_s == y->fl.inactive_aging_s;
}

static void describe(const struct agent_config *c)
{
	if (!c->exports)
		log_info("agent: config %s: not exporting (this device is not the gateway's "
			 "exporting device; "
			 "a standby device exports only when it reports itself active)",
			 c->version);
	else if (!c->has_flowlog)
		log_info(
		    "agent: config %s: not exporting (no flow log bound to %s, or it is Inactive)",
		    c->version, c->sag_id);
	else if (netflow_leg(c))
		log_info("agent: config %s: flow log %s, NetFlow V%d to %s:%d, ActiveAging %" PRId64
			 " s, InactiveAging %" PRId64 " s",
			 c->version, c->fl.id, c->fl.version, c->fl.server_ip, c->fl.server_port,
			 c->fl.active_aging_s, c->fl.inactive_aging_s);
	else
		log_info("agent: config %s: flow log %s has no NetFlow leg (OutputType sls)",
			 c->version, c->fl.id);
	if (sls_leg(c))
		log_info("agent: config %s: flow log %s, Log Service leg to project '%s' logstore "
			 "'%s' at %s, ActiveAging %" PRId64 " s, InactiveAging %" PRId64 " s",
			 c->version, c->fl.id, c->fl.project, c->fl.logstore,
			 c->fl.sls_endpoint[0] ? c->fl.sls_endpoint : "the control plane's log store",
			 c->fl.active_aging_s, c->fl.inactive_aging_s);
}

static void stop_metering(struct agent *a)
{
	if (!a->m)
		return;
	meter_flush(a->m);
	agent_metrics_retire(&a->am, a->m);
	meter_free(a->m);
	if (a->udp)
		udp_sender_close(a->udp);
	a->m = NULL;
	a->udp = NULL;
	a->collector_ip[0] = '\0';
	a->collector_port = 0;
}

/* The Log Service leg's destination under c (docs/agent.md): the endpoint the
 * control plane named, or the control plane itself; Host <project>.<domain>,
 * the connection to the endpoint's address (CURLOPT_CONNECT_TO). -1 (logged)
 * when the endpoint is unusable. */
static int sls_dest(const struct agent *a, const struct agent_config *c, struct slssend_dest *d)
{
	struct devclient_url ep;
	char err[128];
	if (!c->fl.sls_endpoint[0])
		ep = *devclient_server(a->dc);
	else if (devclient_parse_url(c->fl.sls_endpoint, &ep, err, sizeof(err)) < 0) {
		log_err("agent: flow log %s: unusable SlsEndpoint '%s': %s; the Log Service leg is "
			"off",
			c->fl.id, c->fl.sls_endpoint, err);
		return -1;
	}
	const char *domain = c->fl.sls_domain[0] ? c->fl.sls_domain : ep.host;
	bool v6 = strchr(ep.host, ':') != NULL;
	char host[DEVCLIENT_HOST_MAX + DOMAIN_SLS_NAME_MAX + 2];
	memset(d, 0, sizeof(*d));
	snprintf(host, sizeof(host), "%s.%s", c->fl.project, domain);
	snprintf(d->project, sizeof(d->project), "%s", c->fl.project);
	snprintf(d->logstore, sizeof(d->logstore), "%s", c->fl.logstore);
	snprintf(d->url_base, sizeof(d->url_base), "%s://%s:%s", ep.https ? "https" : "http", host,
		 ep.port);
	snprintf(d->connect_to, sizeof(d->connect_to), "%s:%s:%s%s%s:%s", host, ep.port,
		 v6 ? "[" : "", ep.host, v6 ? "]" : "", ep.port);
	snprintf(d->topic, sizeof(d->topic), "%s", c->fl.id);
	snprintf(d->source, sizeof(d->source), "%s", a->source_ip);
	snprintf(d->instance_id, sizeof(d->instance_id), "%s", c->sag_id);
	snprintf(d->snid, sizeof(d->snid), "%s", a->o.serial);
	snprintf(d->ali_uid, sizeof(d->ali_uid), "%s", c->fl.ali_uid);
	return 0;
}

/* The NetFlow leg's exporter for c, through the kept or a new UDP socket
 * (*u); NULL (logged) when the collector cannot be reached. */
static struct exporter *netflow_for(struct agent *a, const struct agent_config *c,
				    struct udp_sender **u)
{
	char err[256], port[8];
	bool same =
	    !strcmp(a->collector_ip, c->fl.server_ip) && a->collector_port == c->fl.server_port;
	*u = same ? a->udp : NULL;
	snprintf(port, sizeof(port), "%d", c->fl.server_port);
	if (!*u && !(*u = udp_sender_open(c->fl.server_ip, port, err, sizeof(err)))) {
		log_err("agent: cannot export to %s:%s: %s; not exporting", c->fl.server_ip, port,
			err);
		return NULL;
	}
	if (!same) /* a new collector sees a new stream */
		a->stream = (struct netflow_stream){0};
	struct netflow_config nc = {c->fl.version, AGENT_OBSERVATION_DOMAIN, udp_sender_send, *u};
	return netflow_exporter_new_stream(&nc, &a->stream);
}

/* Starts, reconfigures or stops the meter for c: one exporter per leg (the
 * same records go to both under OutputType all). -1 when a leg cannot start
 * (then nothing is exported, and it says so). */
static int start_metering(struct agent *a, const struct agent_config *c)
{
	char err[256];
	struct exporter *ex[2];
	size_t nex = 0;
	struct udp_sender *u = NULL;
	struct slssend_dest d;
	if (netflow_leg(c) && !(ex[nex++] = netflow_for(a, c, &u))) {
		stop_metering(a);
		return -1;
	}
	if (sls_leg(c) && a->sls) {
		if (sls_dest(a, c, &d) < 0) {
			while (nex)
				exporter_free(ex[--nex]);
			if (u != a->udp)
				udp_sender_close(u);
			stop_metering(a);
			return -1;
		}
		ex[nex++] = slsexport_new(a->sls, &d);
	}
	struct meter_config mc = {c->fl.active_aging_s, c->fl.inactive_aging_s,
				  METER_MAX_FLOWS_DEFAULT, 0};
	int rc = a->m ? meter_reconfigure(a->m, &mc, ex, nex, err, sizeof(err))
		      : ((a->m = meter_new(&mc, ex, nex, err, sizeof(err))) ? 0 : -1);
	if (rc < 0) {
		log_err("agent: cannot meter under config %s: %s", c->version, err);
		while (nex)
			exporter_free(ex[--nex]);
		if (u != a->udp)
			udp_sender_close(u);
		return -1;
	}
	/* The old records left through the old sender inside meter_reconfigure. */
	if (u != a->udp && a->udp)
		udp_sender_close(a->udp);
	a->udp = u;
	snprintf(a->collector_ip, sizeof(a->collector_ip), "%s", u ? c->fl.server_ip : "");
	a->collector_port = u ? c->fl.server_port : 0;
	return 0;
}

static bool metered(const struct agent *a, const struct agent_config *c)
{
	return netflow_leg(c) || (sls_leg(c) && a->sls);
}

static void apply(struct agent *a, const struct agent_config *c)
{
	bool changed_leg = !a->applied || !same_netflow(&a->cfg, c) || !same_sls(&a->cfg, c);
	bool ok = true;
	describe(c);
	if (changed_leg && metered(a, c))
		ok = start_metering(a, c) == 0;
	else if (changed_leg)
		stop_metering(a);
	a->cfg = *c;
	/* A leg that could not start is tried again at the next sync. */
	a->applied = ok;
	agent_metrics_config(a->cfg.version);
}

/* ---- syncing ---- */

static void schedule_retry(struct agent *a, const char *why)
{
	if (!a->o.iface) {
		/* --once and --read sync once: no retry to announce. */
		log_err("agent: sync failed: %s", why);
		return;
	}
	int64_t wait = AGENT_BACKOFF_MIN_MS;
	for (int i = 1; i < a->failures && wait < AGENT_BACKOFF_MAX_MS; i++)
		wait *= 2;
	if (wait > AGENT_BACKOFF_MAX_MS)
		wait = AGENT_BACKOFF_MAX_MS;
	a->next_sync_us = time_mono_us() + wait * 1000;
	if (a->cfg.known)
		log_warn("agent: sync failed (%d in a row): %s; keeping config %s (%s); retrying "
			 "in %" PRId64 " ms",
			 a->failures, why, a->cfg.version,
			 netflow_leg(&a->cfg) ? "exporting" : "not exporting", wait);
	else
		log_warn("agent: sync failed (%d in a row): %s; no configuration yet, not "
			 "exporting; retrying in %" PRId64 " ms",
			 a->failures, why, wait);
}

/* The control plane no longer knows this device (its serial number was
 * unbound): whatever it was told to export is no longer its gateway's, so it
 * flushes, stops and forgets the saved configuration. */
static void disown(struct agent *a)
{
	if (!a->cfg.known)
		return;
	bool was_exporting = a->m != NULL;
	stop_metering(a);
	if (a->state_path[0] && unlink(a->state_path) < 0 && errno != ENOENT)
		log_warn("agent: cannot remove %s: %s", a->state_path, strerror(errno));
	if (was_exporting)
		log_warn(
		    "agent: not exporting any more: config %s no longer applies to this device",
		    a->cfg.version);
	a->cfg = (struct agent_config){0};
	a->applied = false;
	agent_metrics_config(NULL);
}

/* What the agent reports at its next sync; version and err (SLSSEND_ERR_MAX)
 * hold the strings it points to. The sender's counts go along whenever it
 * runs or ran (docs/device-protocol.md §2, SlsStats). */
static void report_of(const struct agent *a, struct devclient_report *rep, char *version,
		      char *err)
{
	version[0] = '\0';
	if (a->cfg.known)
		memcpy(version, a->cfg.version, DEVICE_CONFIG_VERSION_HEX + 1);
	*rep = (struct devclient_report){
	    .model = AGENT_MODEL,
	    .software_version = a->o.firmware,
	    .ha_state = a->o.ha,
	    .config_version = version,
	    .sls_delivery = sls_leg(&a->cfg) && (a->sls || a->sls_stopped) ? "delivered" : ""};
	struct slssend_stats st = a->sls_last;
	if (a->sls)
		slssend_get_stats(a->sls, &st);
	memcpy(err, st.last_error, SLSSEND_ERR_MAX);
	rep->has_sls_stats = a->sls || a->sls_stopped;
	rep->sls_delivered = st.delivered;
	rep->sls_queued = st.queued;
	rep->sls_dropped = st.dropped;
	rep->sls_last_error = err;
	rep->sls_last_error_ms = st.last_error_ms;
}

/* Acts on the outcome of one sync: a failure is retried with backoff, a
 * changed configuration is applied and saved. */
static void sync_result(struct agent *a, enum devclient_status st,
			const struct devclient_answer *ans, const char *err, bool sent_sls,
			bool sent_wait)
{
	agent_metrics_sync(st == DEVCLIENT_OK);
	if (st != DEVCLIENT_OK) {
		a->failures++;
		if (st == DEVCLIENT_REFUSED) {
			log_err("agent: the control plane refused device %s: wrong SecretKey, or "
				"the serial number is not bound to a gateway (%s)",
				a->o.serial, err);
			disown(a);
		}
		schedule_retry(a, err);
		return;
	}
	if (a->failures)
		log_info("agent: the control plane answers again after %d failed syncs",
			 a->failures);
	a->failures = 0;
	a->reported_sls = sent_sls;
	if (ans->local_ip[0])
		memcpy(a->source_ip, ans->local_ip, sizeof(a->source_ip));
	int64_t poll = (int64_t)ans->poll_interval_s * 1000;
	a->next_sync_us = time_mono_us() + (poll < AGENT_POLL_MS ? poll : AGENT_POLL_MS) * 1000;
	/* A long-poll answer says when to ask again: 0 is at once (the hold ended
	 * or something changed); a server that could not hold says wait. */
	if (ans->next_sync_s >= 0 && sent_wait)
		a->next_sync_us = time_mono_us() + (int64_t)ans->next_sync_s * 1000000;
	bool same = a->cfg.known && !strcmp(ans->config_version, a->cfg.version);
	if (same && a->applied)
		return;
	struct agent_config c = {
	    .known = true, .exports = ans->exports, .has_flowlog = ans->has_flowlog};
	if (ans->changed) {
		memcpy(c.version, ans->config_version, sizeof(c.version));
		memcpy(c.sag_id, ans->sag_id, sizeof(c.sag_id));
		if (ans->has_flowlog)
			c.fl = ans->flowlog;
	} else if (same) {
		c = a->cfg; /* the state file's configuration is still current */
	} else {
		/* "Unchanged" against a version we do not hold: ask again for all of it. */
		a->cfg.known = false;
		a->next_sync_us = time_mono_us();
		return;
	}
	bool sls_before = sls_leg(&a->cfg) && a->sls;
	apply(a, &c);
	state_save(a);
	if ((sls_leg(&a->cfg) && a->sls) != sls_before)
		a->next_sync_us = time_mono_us(); /* tell the control plane about the sls leg now */
}

/* One sync in this thread (start-up, --once, --read). */
static enum devclient_status sync_once(struct agent *a)
{
	struct devclient_report rep;
	char version[DEVICE_CONFIG_VERSION_HEX + 1], sls_err[SLSSEND_ERR_MAX];
	struct devclient_answer ans;
	char err[AGENT_ERR_MAX];
	report_of(a, &rep, version, sls_err);
	enum devclient_status st = devclient_sync(a->dc, &rep, &ans, err, sizeof(err));
	sync_result(a, st, &ans, err, rep.sls_delivery[0] != '\0', false);
	return st;
}

/* After the sender stopped: its last counts go to the control plane
 * (SlsDelivery), whatever the answer says; nothing is applied any more. */
static void final_report(struct agent *a)
{
	struct devclient_report rep;
	char version[DEVICE_CONFIG_VERSION_HEX + 1], sls_err[SLSSEND_ERR_MAX];
	struct devclient_answer ans;
	char err[AGENT_ERR_MAX];
	report_of(a, &rep, version, sls_err);
	if (devclient_sync(a->dc, &rep, &ans, err, sizeof(err)) != DEVCLIENT_OK)
		log_warn("agent: the last report (the Log Service counts) was not taken: %s", err);
}

/* ---- the sync worker (live mode) ----
 * A control plane that accepts but never answers would stall a sync for up to
 * DEVCLIENT_CONNECT_TIMEOUT_MS + DEVCLIENT_IO_TIMEOUT_MS; in the capture thread
 * that is a stall of metering too, and a busy link overflows the kernel buffer.
 * So live, the exchange runs in this thread: the capture thread posts a report,
 * keeps capturing, and acts on the answer when it is done. All agent state
 * stays in the capture thread; the worker only runs devclient_sync. */
struct sync_worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool posted, done, quit; /* under mu */
	struct devclient *dc;
	struct devclient_report rep;
	char version[DEVICE_CONFIG_VERSION_HEX + 1], sls_err[SLSSEND_ERR_MAX];
	enum devclient_status st;
	struct devclient_answer ans;
	char err[AGENT_ERR_MAX];
};

static void *worker_main(void *arg)
{
	struct sync_worker *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->quit && !(w->posted && !w->done))
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
			break;
		pthread_mutex_unlock(&w->mu);
		enum devclient_status st =
		    devclient_sync(w->dc, &w->rep, &w->ans, w->err, sizeof(w->err));
		pthread_mutex_lock(&w->mu);
		w->st = st;
		w->done = true;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int worker_start(struct sync_worker *w, struct devclient *dc)
{
	memset(w, 0, sizeof(*w));
	w->dc = dc;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	/* The worker inherits a mask without SIGINT/SIGTERM: they always reach the
	 * capture thread, whose poll() they interrupt. */
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	int rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_err("agent: cannot start the sync thread: %s", strerror(rc));
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		return -1;
	}
	return 0;
}

/* Waits for an exchange in flight (at most the client's timeouts) and ends the thread. */
static void worker_stop(struct sync_worker *w)
{
	devclient_cancel(); /* a held sync would keep us up to its Wait */
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	devclient_uncancel(); /* the last report (final_report) is still to be sent */
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* Called each turn of the capture loop: posts a sync when one is due, acts
 * on a finished one. */
static void worker_turn(struct agent *a, struct sync_worker *w)
{
	pthread_mutex_lock(&w->mu);
	bool finished = w->posted && w->done;
	bool idle = !w->posted || finished;
	if (finished)
		w->posted = w->done = false;
	pthread_mutex_unlock(&w->mu);
	if (finished)
		sync_result(a, w->st, &w->ans, w->err, w->rep.sls_delivery[0] != '\0',
			    w->rep.wait_s > 0);
	if (!idle || time_mono_us() < a->next_sync_us)
		return;
	pthread_mutex_lock(&w->mu);
	report_of(a, &w->rep, w->version, w->sls_err);
	/* After a failure one plain sync first: recovery shows at once, and a
	 * control plane that came back is not mistaken for one holding the sync. */
	w->rep.wait_s = a->o.no_long_poll || a->failures ? 0 : DEVICE_MAX_WAIT_S;
	w->posted = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* ---- capture ---- */

static pcap_t *open_capture(const struct agent_opts *o)
{
	char err[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p;
	if (o->read) {
		p = pcap_open_offline_with_tstamp_precision(o->read, PCAP_TSTAMP_PRECISION_MICRO,
							    err);
		if (!p)
			log_err("agent: cannot read %s: %s", o->read, err);
	} else {
		p = pcap_create(o->iface, err);
		if (!p) {
			log_err("agent: cannot open %s: %s", o->iface, err);
			return NULL;
		}
		pcap_set_snaplen(p, AGENT_SNAPLEN);
		pcap_set_timeout(p, AGENT_LIVE_TIMEOUT_MS);
		pcap_set_buffer_size(p, AGENT_LIVE_BUFFER);
		pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);
		if (pcap_activate(p) < 0) {
			log_err("agent: cannot capture on %s: %s", o->iface, pcap_geterr(p));
			pcap_close(p);
			return NULL;
		}
	}
	struct bpf_program prog;
	if (p && o->filter) {
		if (pcap_compile(p, &prog, o->filter, 1, PCAP_NETMASK_UNKNOWN) < 0 ||
		    pcap_setfilter(p, &prog) < 0) {
			log_err("agent: bad --filter: %s", pcap_geterr(p));
			pcap_close(p);
			return NULL;
		}
		pcap_freecode(&prog);
	}
	return p;
}

static int64_t wall_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* A file: its timestamps are the only clock. Reads until the end or a signal. */
static int loop_file(struct agent *a, pcap_t *p)
{
	int link = pcap_datalink(p);
	struct pcap_pkthdr *h;
	const u_char *data;
	uint64_t n = 0;
	while (!agent_stop) {
		int rc = pcap_next_ex(p, &h, &data);
		if (rc != 1) {
			if (rc == PCAP_ERROR) {
				log_err("agent: reading %s failed: %s", a->o.read, pcap_geterr(p));
				return -1;
			}
			break; /* end of file or pcap_breakloop */
		}
		if (a->m)
			meter_packet(a->m, link, (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec,
				     data, h->caplen);
		else
			a->am.unmetered++;
		if (++n % AGENT_METRICS_EVERY == 0) {
			agent_metrics_publish(&a->am, a->m);
			agent_metrics_sls(&a->am, a->sls);
		}
	}
	return 0;
}

struct live_ctx {
	struct agent *a;
	int link;
};

static void live_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
	struct live_ctx *l = (struct live_ctx *)user;
	/* Packets read after a reconfigure count under the new settings: each
	 * packet is counted exactly once, under one configuration. */
	if (l->a->m)
		meter_packet(l->a->m, l->link, (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec,
			     data, h->caplen);
	else
		l->a->am.unmetered++;
}

/* SIGUSR1: where the agent stands, then the meter's statistics. */
static void print_status(const struct agent *a)
{
	log_info("agent: status: config %s, NetFlow leg %s, sls leg %s, %d failed syncs in a row",
		 a->cfg.known ? a->cfg.version : "none", netflow_leg(&a->cfg) ? "exporting" : "off",
		 sls_leg(&a->cfg) ? "delivering" : "off", a->failures);
	if (a->m)
		meter_print_stats(a->m, stderr);
}

/* Packets the kernel dropped before we read them are traffic nobody counted:
 * say so whenever the number grows. */
static unsigned report_drops(pcap_t *p, unsigned before)
{
	struct pcap_stat ps;
	if (pcap_stats(p, &ps) < 0 || ps.ps_drop <= before)
		return before;
	log_warn("agent: the kernel dropped %u packets before they were metered (%u in all)",
		 ps.ps_drop - before, ps.ps_drop);
	return ps.ps_drop;
}

/* An interface: non-blocking reads under our own poll() (as sagflow meter
 * does), because libpcap's read timeout does not fire on Linux while no packet
 * arrives, and both the timers and the polls of the control plane must. */
static int loop_live(struct agent *a, pcap_t *p)
{
	struct live_ctx l = {a, pcap_datalink(p)};
	char err[PCAP_ERRBUF_SIZE] = "";
	int fd = pcap_get_selectable_fd(p);
	if (fd < 0 || pcap_setnonblock(p, 1, err) < 0) {
		log_err("agent: cannot poll the capture: %s", err);
		return -1;
	}
	struct sync_worker w;
	if (worker_start(&w, a->dc) < 0)
		return -1;
	int rc = 0;
	unsigned drops = 0;
	int64_t drops_at = 0;
	while (!agent_stop && rc == 0) {
		worker_turn(a, &w);
		if (agent_usr1) {
			agent_usr1 = 0;
			print_status(a);
		}
		struct pollfd pfd = {fd, POLLIN, 0};
		(void)poll(&pfd, 1, AGENT_LIVE_TIMEOUT_MS);
		if (pcap_dispatch(p, -1, live_packet, (u_char *)&l) == PCAP_ERROR) {
			log_err("agent: capture failed: %s", pcap_geterr(p));
			rc = -1;
		}
		/* Kernel timestamps are wall time, so the timers use it too. */
		if (a->m)
			meter_advance(a->m, wall_us());
		agent_metrics_publish(&a->am, a->m);
		agent_metrics_sls(&a->am, a->sls);
		if (time_mono_us() - drops_at >= AGENT_POLL_MS * 1000LL) {
			drops = report_drops(p, drops);
			drops_at = time_mono_us();
		}
	}
	worker_stop(&w);
	return rc;
}

/* ---- modes ---- */

static int first_sync(struct agent *a)
{
	enum devclient_status st = sync_once(a);
	if (st == DEVCLIENT_REFUSED)
		return AGENT_EXIT_REFUSED;
	/* A certificate that is not trusted is a setting to fix, not an outage
	 * to wait out: every mode stops (the reason was logged). */
	if (st == DEVCLIENT_UNTRUSTED) {
		log_err("agent: not starting: the control plane's TLS certificate is not trusted "
			"(check --control-plane and --ca-file)");
		return AGENT_EXIT_FAIL;
	}
	if (st == DEVCLIENT_OK)
		return AGENT_EXIT_OK;
	if (a->cfg.known && !a->o.once) {
		log_warn("agent: control plane unreachable at start: resuming config %s from %s",
			 a->cfg.version, a->state_path);
		struct agent_config c = a->cfg;
		apply(a, &c);
		return AGENT_EXIT_OK;
	}
	if (a->o.iface)
		return AGENT_EXIT_OK; /* keeps retrying; exports once a configuration arrives */
	return AGENT_EXIT_FAIL;
}

static int run_capture(struct agent *a)
{
	pcap_t *p = open_capture(&a->o);
	if (!p)
		return AGENT_EXIT_FAIL;
	agent_pcap = p;
	/* Tests and operators wait for this line: from here on packets count. */
	log_info("agent: %s %s (link type %d)", a->o.read ? "reading" : "capturing on",
		 a->o.read ? a->o.read : a->o.iface, pcap_datalink(p));
	int rc = a->o.read ? loop_file(a, p) : loop_live(a, p);
	agent_pcap = NULL;
	if (a->m) {
		meter_flush(a->m);
		meter_print_stats(a->m, stderr);
	} else {
		log_info("agent: nothing exported (no NetFlow leg in config %s)",
			 a->cfg.known ? a->cfg.version : "none");
	}
	agent_metrics_publish(&a->am, a->m);
	agent_metrics_sls(&a->am, a->sls);
	stop_metering(a);
	pcap_close(p);
	log_info("agent: %s, every record flushed", a->o.read ? "end of file" : "stopped");
	return rc < 0 ? AGENT_EXIT_FAIL : AGENT_EXIT_OK;
}

/* The metrics endpoint's thread must not take the signals meant for the
 * capture loop: it starts with them blocked. */
static struct http_server *start_metrics(const struct cli_metrics_addr *m)
{
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGUSR1);
	agent_metrics_enable();
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	struct http_server *h = cli_metrics_start(m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (h) {
		char where[CLI_METRICS_MAX_HOST + 16];
		cli_metrics_where(m, h, where, sizeof(where));
		log_info("agent: metrics on %s", where);
	}
	return h;
}

int cmd_agent(int argc, char **argv)
{
	struct agent a = {.o = {.firmware = SAGFLOW_VERSION}};
	int rc = agent_parse(argc, argv, &a.o);
	if (rc != 0)
		return rc > 0 ? AGENT_EXIT_OK : AGENT_EXIT_USAGE;
	char err[512];
	a.dc = devclient_new(a.o.control_plane, a.o.serial, a.o.secret, a.o.ca_file, err,
			     sizeof(err));
	if (!a.dc) {
		fprintf(stderr, "sagflow agent: %s\n", err);
		return AGENT_EXIT_USAGE;
	}
	/* The Log Service leg signs with the same key (device-protocol.md §8). */
	char secret_copy[DOMAIN_SECRET_LEN + 1];
	snprintf(secret_copy, sizeof(secret_copy), "%s", a.o.secret);
	/* The client holds its own copy: blank the one in argv so ps and
	 * /proc/PID/cmdline stop showing it (the environment is the better way). */
	if (a.o.secret != getenv(AGENT_SECRET_ENV))
		memset(a.o.secret, 'x', strlen(a.o.secret));
	a.o.secret = NULL;
	log_info("agent: device %s (model %s, firmware %s%s%s), control plane %s", a.o.serial,
		 AGENT_MODEL, a.o.firmware, a.o.ha ? ", HA state " : "", a.o.ha ? a.o.ha : "",
		 a.o.control_plane);
	struct sigaction sa = {.sa_handler = agent_on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	struct http_server *mh = a.o.metrics.on ? start_metrics(&a.o.metrics) : NULL;
	if (a.o.metrics.on && !mh) {
		OPENSSL_cleanse(secret_copy, sizeof(secret_copy));
		devclient_free(a.dc);
		return AGENT_EXIT_FAIL;
	}
	state_load(&a);
	/* The delivery thread runs whenever records may be metered, with or
	 * without an sls leg now: what a previous run queued goes out too. */
	if (!a.o.once) {
		struct slssend_config sc = {a.o.serial, secret_copy, a.o.ca_file, a.o.state_dir,
					    a.o.spool_max ? a.o.spool_max : SPOOL_MAX_BYTES_DEFAULT};
		if (!(a.sls = slssend_start(&sc))) {
			OPENSSL_cleanse(secret_copy, sizeof(secret_copy));
			http_server_free(mh);
			devclient_free(a.dc);
			return AGENT_EXIT_FAIL;
		}
	}
	OPENSSL_cleanse(secret_copy, sizeof(secret_copy));
	rc = first_sync(&a);
	/* The first report went out before the configuration was known: a
	 * one-shot mode tells the control plane about the sls leg right away. */
	if (rc == AGENT_EXIT_OK && !a.o.iface && a.failures == 0 &&
	    (sls_leg(&a.cfg) && a.sls) != a.reported_sls)
		sync_once(&a);
	if (rc == AGENT_EXIT_OK && a.o.once) {
		char *s = config_dump(&a);
		printf("%s\n", s);
		free(s);
	} else if (rc == AGENT_EXIT_OK) {
		rc = run_capture(&a);
	}
	stop_metering(&a);
	/* Every record is closed now: the queue gets a last chance to drain. */
	slssend_stop(a.sls, AGENT_SLS_DRAIN_MS, &a.sls_last);
	if (a.sls && a.cfg.known && rc == AGENT_EXIT_OK) {
		a.sls = NULL;
		a.sls_stopped = true;
		final_report(&a);
	}
	http_server_free(mh);
	devclient_free(a.dc);
	return rc;
}
