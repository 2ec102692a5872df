/* sagflow demo: the control plane and a gateway with live traffic, in one
 * command (issue 12, docs/console.md "The demo"). It starts `sagflow serve`
 * (this same binary), provisions through the public API as a user's SDK would
 * (a flow log `demo` writing to the logstore sagflow-demo/flows, a SAG-1000
 * gateway `demo-gateway` with the device DEMO-SAG-0001), and then every
 * DEMO_TICK_S seconds writes the last tick's generated packets to a pcap and
 * replays it with `sagflow agent --read` — the real agent, metering and
 * delivering to the Log Service. No root, no interface and no Node.js.
 *
 * Two sentences on the design: the children are this binary exec'ed again, so
 * the demo runs exactly the serve and agent a user would; the parent blocks
 * SIGINT, SIGTERM and SIGCHLD and takes them with sigtimedwait, so it never
 * races a handler. On SIGINT or SIGTERM it stops serve and the agent, waits
 * for both, removes its temporary files and exits 0. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/demo_rpc.h"
#include "cli/demo_traffic.h"
#include "cli/opts.h"
#include "core/ids.h"
#include "core/timeutil.h"

#define DEMO_DEFAULT_LISTEN "127.0.0.1:8080"
#define DEMO_DEFAULT_DB "var/sagflow.db"
#define DEMO_DEFAULT_AKID "devkey"
#define DEMO_SECRET_LEN 24  /* characters of a generated development secret */
#define DEMO_READY_MS 30000 /* serve must answer within this */
#define DEMO_READY_STEP_MS 100
#define DEMO_STOP_MS 20000 /* a child gets this long after SIGTERM, then SIGKILL */
#define DEMO_MAX_HOST 256
#define DEMO_MAX_PATH 4096
#define DEMO_ID_MAX 64
#define DEMO_ERR_MAX 512
#define DEMO_LOG_TAIL 400 /* bytes of a failed agent's log shown */
#define DEMO_EXIT_USAGE 2
#define DEMO_SECRET_ENV "SAGFLOW_DEVICE_SECRET"

#define DEMO_FLOWLOG "demo"
#define DEMO_GATEWAY "demo-gateway"
#define DEMO_SERIAL "DEMO-SAG-0001"
#define DEMO_PROJECT "sagflow-demo"
#define DEMO_LOGSTORE "flows"

struct demo {
	char self[DEMO_MAX_PATH];
	char endpoint[DEMO_MAX_HOST + 16];
	char *listen, *db;	      /* argv's, or the defaults */
	char dir[DEMO_MAX_PATH - 64]; /* temporary: the tick's pcap and the agent's log */
	sigset_t sigs, old_mask;
	pid_t serve, agent;
	int agent_status;
	int stopping, serve_gone, serve_status;
	struct demo_rpc *rpc;
	char fl[DEMO_ID_MAX], sag[DEMO_ID_MAX], device_secret[DEMO_ID_MAX];
};

static void demo_usage(FILE *f)
{
	fprintf(f,
		"usage: sagflow demo [--listen HOST:PORT] [--db PATH]\n\n"
		"Starts 'sagflow serve' (console at /console/) and a demo gateway with live\n"
		"traffic, the same demo 'make run' starts: through the API it creates (or\n"
		"reuses) the flow log '" DEMO_FLOWLOG "' (OutputType sls, logstore " DEMO_PROJECT
		"/" DEMO_LOGSTORE ",\n"
		"ActiveAging 60, InactiveAging 10) and the SAG-1000 gateway '" DEMO_GATEWAY
		"' with\n"
		"the device " DEMO_SERIAL ", associates them, and every %d s replays the last\n"
		"%d s of generated traffic (an ebb over %d s, three heavy talkers, a burst for\n"
		"%d s of every minute) with 'sagflow agent --read', which meters it and\n"
		"delivers the records to the logstore. Nothing but this binary is needed.\n\n"
		"  -l, --listen HOST:PORT  serve's address (default " DEMO_DEFAULT_LISTEN ")\n"
		"  -d, --db PATH           serve's SQLite store (default " DEMO_DEFAULT_DB "; its\n"
		"                          directory is created if missing)\n"
		"  -h, --help              this text\n\n"
		"The key: SAGFLOW_ACCESS_KEY_ID and SAGFLOW_ACCESS_KEY_SECRET (both, for the\n"
		"account 'default', as with serve); without them a development key\n"
		"'" DEMO_DEFAULT_AKID
		"' with a random secret is made for this run. The console URL and\n"
		"the key are printed on stdout. The device's SecretKey reaches the agent\n"
		"through " DEMO_SECRET_ENV ", never argv. SIGINT (Ctrl-C) or SIGTERM stops\n"
		"serve and the agent, removes the demo's temporary files and exits 0.\n"
		"Exit codes: 0 stopped by a signal, 1 serve or the demo failed, 2 usage.\n",
		DEMO_TICK_S, DEMO_TICK_S, DEMO_EBB_PERIOD_S, DEMO_BURST_S);
}

static int demo_parse(int argc, char **argv, struct demo *d)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"db", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	d->listen = DEMO_DEFAULT_LISTEN;
	d->db = DEMO_DEFAULT_DB;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "l:d:h", longopts, NULL)) != -1) {
		if (c == 'l')
			d->listen = optarg;
		else if (c == 'd')
			d->db = optarg;
		else if (c == 'h') {
			demo_usage(stdout);
			exit(0);
		} else
			return -1;
	}
	char host[DEMO_MAX_HOST];
	uint16_t port;
	if (optind != argc || cli_parse_hostport(d->listen, host, sizeof(host), &port) < 0 ||
	    !port) {
		fprintf(stderr,
			"sagflow demo: --listen wants HOST:PORT with a port other than 0\n");
		return -1;
	}
	if (strchr(host, ':'))
		snprintf(d->endpoint, sizeof(d->endpoint), "http://[%s]:%u", host, port);
	else
		snprintf(d->endpoint, sizeof(d->endpoint), "http://%s:%u", host, port);
	return 0;
}

/* The development key: the caller's, or one made for this run. */
static int demo_key(const char **akid, const char **secret)
{
	static char made[DEMO_SECRET_LEN + 1];
	*akid = getenv("SAGFLOW_ACCESS_KEY_ID");
	*secret = getenv("SAGFLOW_ACCESS_KEY_SECRET");
	int have_id = *akid && **akid, have_secret = *secret && **secret;
	if (have_id != have_secret) {
		fprintf(stderr, "sagflow demo: set both SAGFLOW_ACCESS_KEY_ID and "
				"SAGFLOW_ACCESS_KEY_SECRET, or neither\n");
		return -1;
	}
	if (!have_id) {
		ids_alnum(made, DEMO_SECRET_LEN);
		setenv("SAGFLOW_ACCESS_KEY_ID", DEMO_DEFAULT_AKID, 1);
		setenv("SAGFLOW_ACCESS_KEY_SECRET", made, 1);
		*akid = DEMO_DEFAULT_AKID;
		*secret = made;
	}
	return 0;
}

/* ---- children ---- */

/* Forks this binary with argv; the child gets the signal mask we started
 * with, stdout/stderr redirected when out/err >= 0, and env_secret (if any)
 * as SAGFLOW_DEVICE_SECRET. */
static pid_t demo_spawn(struct demo *d, char *const argv[], int out, int err,
			const char *env_secret)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	sigprocmask(SIG_SETMASK, &d->old_mask, NULL);
	if (out >= 0)
		dup2(out, STDOUT_FILENO);
	if (err >= 0)
		dup2(err, STDERR_FILENO);
	if (env_secret)
		setenv(DEMO_SECRET_ENV, env_secret, 1);
	execv(d->self, argv);
	_exit(127);
}

static void demo_reap(struct demo *d)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == d->serve) {
			d->serve_gone = 1;
			d->serve_status = st;
			d->serve = 0;
		} else if (pid == d->agent) {
			d->agent_status = st;
			d->agent = 0;
		}
	}
}

/* Waits up to ms for a signal; notes stops and reaps children. */
static void demo_wait(struct demo *d, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	int sig = sigtimedwait(&d->sigs, NULL, &ts);
	if (sig == SIGINT || sig == SIGTERM)
		d->stopping = 1;
	demo_reap(d);
}

/* Sleeps ms unless a stop comes or serve ends. 0, or -1 to stop now. */
static int demo_sleep(struct demo *d, int64_t ms)
{
	int64_t end = time_now_ms() + ms;
	while (!d->stopping && !d->serve_gone && time_now_ms() < end)
		demo_wait(d, end - time_now_ms());
	return d->stopping || d->serve_gone ? -1 : 0;
}

/* SIGTERM to *pid, then SIGKILL after DEMO_STOP_MS; waits until it is reaped. */
static void demo_end_child(struct demo *d, pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	int64_t end = time_now_ms() + DEMO_STOP_MS;
	while (*pid > 0 && time_now_ms() < end)
		demo_wait(d, end - time_now_ms());
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		while (*pid > 0)
			demo_wait(d, DEMO_READY_STEP_MS);
	}
}

static void demo_path(const struct demo *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->dir, name);
}

/* Prints the end of a failed agent run's log (it never holds a secret: the
 * agent logs none). */
static void demo_agent_failed(const struct demo *d, int st)
{
	char path[DEMO_MAX_PATH], tail[DEMO_LOG_TAIL + 1] = "";
	demo_path(d, "agent.log", path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (f) {
		if (fseek(f, -DEMO_LOG_TAIL, SEEK_END) != 0)
			rewind(f);
		tail[fread(tail, 1, DEMO_LOG_TAIL, f)] = '\0';
		fclose(f);
	}
	fprintf(stderr, "demo: agent exited %d: %s\n",
		WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), tail);
}

/* One `sagflow agent` run as the demo device (mode: --once, or --read FILE).
 * Returns its exit code, or -1 when the demo was stopped meanwhile. */
static int demo_agent(struct demo *d, char *mode, char *file)
{
	char log[DEMO_MAX_PATH];
	demo_path(d, "agent.log", log, sizeof(log));
	int err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char *argv[] = {d->self,     "agent",	 "--control-plane",
			d->endpoint, "--serial", DEMO_SERIAL,
			mode,	     file,	 NULL};
	d->agent = demo_spawn(d, argv, devnull, err, d->device_secret);
	if (err >= 0)
		close(err);
	if (devnull >= 0)
		close(devnull);
	if (d->agent < 0) {
		d->agent = 0;
		return 1;
	}
	while (d->agent > 0 && !d->stopping && !d->serve_gone)
		demo_wait(d, DEMO_STOP_MS);
	if (d->agent > 0) {
		demo_end_child(d, &d->agent);
		return -1;
	}
	int st = d->agent_status;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	if (code && !d->stopping)
		demo_agent_failed(d, st);
	return code;
}

/* ---- provisioning, through the API ---- */

static json_t *demo_call(struct demo *d, const char *action, const char *const *kv)
{
	char err[DEMO_ERR_MAX];
	json_t *j = demo_rpc_call(d->rpc, action, kv, err, sizeof(err));
	if (!j)
		fprintf(stderr, "demo: %s: %s\n", action, err);
	return j;
}

/* j.a.b[0].key as a string copied into out; 0, or -1 when absent. */
static int demo_first(json_t *j, const char *a, const char *b, const char *key, char *out,
		      size_t cap)
{
	const char *s = json_string_value(
	    json_object_get(json_array_get(json_object_get(json_object_get(j, a), b), 0), key));
	if (!s || !*s)
		return -1;
	snprintf(out, cap, "%s", s);
	return 0;
}

static int demo_flowlog(struct demo *d)
{
	json_t *j = demo_call(d, "DescribeFlowLogs",
			      (const char *const[]){"FlowLogName", DEMO_FLOWLOG, NULL});
	int found = j && demo_first(j, "FlowLogs", "FlowLogSetType", "FlowLogId", d->fl,
				    sizeof(d->fl)) == 0;
	json_decref(j);
	if (found || !j)
		return found ? 0 : -1;
	const char *kv[] = {"Name",	   DEMO_FLOWLOG, "Description",	  "sagflow demo",
			    "OutputType",  "sls",	 "SlsRegionId",	  DEMO_RPC_REGION,
			    "ProjectName", DEMO_PROJECT, "LogstoreName",  DEMO_LOGSTORE,
			    "ActiveAging", "60",	 "InactiveAging", "10",
			    NULL};
	j = demo_call(d, "CreateFlowLog", kv);
	const char *id = json_string_value(json_object_get(j, "FlowLogId"));
	if (id)
		snprintf(d->fl, sizeof(d->fl), "%s", id);
	json_decref(j);
	return id ? 0 : -1;
}

static int demo_gateway(struct demo *d)
{
	json_t *j = demo_call(d, "DescribeSmartAccessGateways",
			      (const char *const[]){"Name", DEMO_GATEWAY, NULL});
	int found = j && demo_first(j, "SmartAccessGateways", "SmartAccessGateway", "SmartAGId",
				    d->sag, sizeof(d->sag)) == 0;
	json_decref(j);
	if (found || !j)
		return found ? 0 : -1;
	const char *kv[] = {"Name",	 DEMO_GATEWAY, "HardWareSpec", "sag-1000", "HaType",
			    "no_backup", NULL};
	j = demo_call(d, "CreateSmartAccessGateway", kv);
	const char *id = json_string_value(json_object_get(j, "SmartAGId"));
	if (id)
		snprintf(d->sag, sizeof(d->sag), "%s", id);
	json_decref(j);
	return id ? 0 : -1;
}

/* The device's SecretKey (binding the serial number first if it is not) and
 * whether the gateway is already associated with the flow log. */
static int demo_device(struct demo *d, int *associated)
{
	for (int bound = 0; bound < 2; bound++) {
		json_t *j = demo_call(d, "DescribeSmartAccessGatewayAttribute",
				      (const char *const[]){"SmartAGId", d->sag, NULL});
		if (!j)
			return -1;
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(json_object_get(j, "FlowLogIds"), "FlowLogId"),
				   i,
				   v) if (!strcmp(json_string_value(v) ? json_string_value(v) : "",
						  d->fl)) *associated = 1;
		json_array_foreach(json_object_get(json_object_get(j, "Devices"), "Device"), i, v)
		{
			const char *sn = json_string_value(json_object_get(v, "SerialNumber"));
			const char *sk = json_string_value(json_object_get(v, "SecretKey"));
			if (sn && sk && !strcmp(sn, DEMO_SERIAL)) {
				snprintf(d->device_secret, sizeof(d->device_secret), "%s", sk);
				json_decref(j);
				return 0;
			}
		}
		json_decref(j);
		j = demo_call(
		    d, "BindSerialNumber",
		    (const char *const[]){"SmartAGId", d->sag, "SerialNumber", DEMO_SERIAL, NULL});
		json_decref(j);
		if (!j)
			return -1;
	}
	return -1;
}

static int demo_provision(struct demo *d)
{
	int associated = 0;
	if (demo_flowlog(d) < 0 || demo_gateway(d) < 0 || demo_device(d, &associated) < 0)
		return -1;
	if (associated)
		return 0;
	/* A device must have reported before its gateway can be associated. */
	if (demo_agent(d, "--once", NULL) != 0)
		return -1;
	json_t *j = demo_call(d, "AssociateFlowLog",
			      (const char *const[]){"FlowLogId", d->fl, "SmartAGId", d->sag, NULL});
	json_decref(j);
	return j ? 0 : -1;
}

/* Until serve answers a signed call (its /healthz would need a GET client). */
static int demo_ready(struct demo *d)
{
	char err[DEMO_ERR_MAX];
	int64_t end = time_now_ms() + DEMO_READY_MS;
	while (time_now_ms() < end) {
		json_t *j = demo_rpc_call(d->rpc, "DescribeRegions", NULL, err, sizeof(err));
		json_decref(j);
		if (j)
			return 0;
		if (!demo_rpc_unreachable(err)) {
			fprintf(stderr, "demo: DescribeRegions: %s\n", err);
			return -1;
		}
		if (demo_sleep(d, DEMO_READY_STEP_MS) < 0)
			return -1;
	}
	fprintf(stderr, "demo: %s did not answer within %d s\n", d->endpoint, DEMO_READY_MS / 1000);
	return -1;
}

/* ---- the traffic loop ---- */

static int demo_loop(struct demo *d)
{
	static struct demo_packet pk[DEMO_MAX_PACKETS];
	char pcap[DEMO_MAX_PATH], err[DEMO_ERR_MAX];
	demo_path(d, "tick.pcap", pcap, sizeof(pcap));
	/* The first tick is the last few seconds: traffic at once. */
	int64_t t0 = time_now_ms() / 1000 - DEMO_TICK_S;
	while (!d->stopping && !d->serve_gone) {
		size_t n = demo_traffic_tick(t0, pk, DEMO_MAX_PACKETS);
		if (demo_traffic_write(pcap, pk, n, err, sizeof(err)) < 0) {
			fprintf(stderr, "demo: %s\n", err);
			return -1;
		}
		demo_agent(d, "--read",
			   pcap); /* a failed tick is reported, the next one tries again */
		t0 += DEMO_TICK_S;
		demo_sleep(d, (t0 + DEMO_TICK_S) * 1000 - time_now_ms());
	}
	return 0;
}

static void demo_banner(const struct demo *d, const char *akid, const char *secret)
{
	printf("sagflow demo: control plane %s  (store: %s)\n"
	       "console: %s/console/   (sign in with the key below)\n"
	       "development credentials (default account):\n"
	       "  AccessKeyId:     %s\n"
	       "  AccessKeySecret: %s\n"
	       "stop with Ctrl-C.\n",
	       d->endpoint, d->db, d->endpoint, akid, secret);
	fflush(stdout);
}

static void demo_cleanup(struct demo *d)
{
	char p[DEMO_MAX_PATH];
	demo_path(d, "tick.pcap", p, sizeof(p));
	unlink(p);
	demo_path(d, "agent.log", p, sizeof(p));
	unlink(p);
	rmdir(d->dir);
	demo_rpc_free(d->rpc);
}

/* The store's directory and its parents, where missing (mkdir -p); serve
 * then reports anything still wrong with the path. */
static void demo_db_dir(const char *db)
{
	char dir[DEMO_MAX_PATH];
	snprintf(dir, sizeof(dir), "%s", db);
	char *last = strrchr(dir, '/');
	if (!last || last == dir)
		return;
	*last = '\0';
	for (char *p = dir + 1;; p++) {
		char c = *p;
		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			fprintf(stderr, "demo: mkdir %s: %s\n", dir, strerror(errno));
		*p = c;
		if (!c)
			return;
	}
}

static int demo_start(struct demo *d)
{
	ssize_t n = readlink("/proc/self/exe", d->self, sizeof(d->self) - 1);
	const char *tmp = getenv("TMPDIR");
	snprintf(d->dir, sizeof(d->dir), "%s/sagflow-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (n <= 0 || (size_t)n >= sizeof(d->self) - 1 || !mkdtemp(d->dir)) {
		fprintf(stderr, "demo: cannot find this binary or make a temporary directory: %s\n",
			strerror(errno));
		return -1;
	}
	d->self[n] = '\0';
	demo_db_dir(d->db);
	char *argv[] = {d->self, "serve", "--listen", d->listen, "--db", d->db, NULL};
	d->serve = demo_spawn(d, argv, -1, -1, NULL);
	return d->serve > 0 ? 0 : -1;
}

int cmd_demo(int argc, char **argv)
{
	struct demo d = {0};
	const char *akid, *secret;
	if (demo_parse(argc, argv, &d) < 0 || demo_key(&akid, &secret) < 0) {
		demo_usage(stderr);
		return DEMO_EXIT_USAGE;
	}
	sigemptyset(&d.sigs);
	sigaddset(&d.sigs, SIGINT);
	sigaddset(&d.sigs, SIGTERM);
	sigaddset(&d.sigs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &d.sigs, &d.old_mask);
	d.rpc = demo_rpc_new(d.endpoint, akid, secret);
	int rc = 1;
	if (demo_start(&d) == 0) {
		demo_banner(&d, akid, secret);
		if (demo_ready(&d) == 0 && demo_provision(&d) == 0) {
			printf("demo: flow log %s (logstore %s/%s), gateway %s, device %s: traffic "
			       "every %d s\n",
			       d.fl, DEMO_PROJECT, DEMO_LOGSTORE, d.sag, DEMO_SERIAL, DEMO_TICK_S);
			fflush(stdout);
			demo_loop(&d);
		}
		rc = d.stopping ? 0 : 1;
		if (d.serve_gone && !d.stopping)
			fprintf(stderr, "demo: serve ended (status %d)\n", d.serve_status);
	}
	demo_end_child(&d, &d.agent);
	demo_end_child(&d, &d.serve);
	demo_cleanup(&d);
	return rc;
}
