/* sagflow meter: capture (file or interface) -> flow meter -> NetFlow/IPFIX
 * collector and/or JSON lines. */
#include <getopt.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdio_ext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cli/commands.h"
#include "core/num.h"
#include "core/str.h"
#include "export/exporter.h"
#include "export/udp.h"
#include "meter/meter.h"

#define METER_SNAPLEN 256               /* headers only: bytes come from the IP header */
#define METER_LIVE_TIMEOUT_MS 100 /* how often a quiet interface still runs the timers */
#define METER_LIVE_BUFFER (16 << 20)
#define METER_FILE_BUFFER (1 << 20)
#define METER_HOSTPORT_MAX 300
#define METER_DEFAULT_PORT "9995"

static volatile sig_atomic_t meter_stop, meter_usr1;
static pcap_t *meter_pcap;

static void meter_on_signal(int sig)
{
	if (sig == SIGUSR1) {
		meter_usr1 = 1;
		return;
	}
	meter_stop = 1;
	if (meter_pcap)
		pcap_breakloop(meter_pcap);
}

static void meter_usage(FILE *f)
{
	fprintf(f,
		"usage: sagflow meter (--read FILE | --interface IFACE) [--collector HOST:PORT]\n"
		"                     [--netflow-version V5|V9|V10] [--active-aging SEC]\n"
		"                     [--inactive-aging SEC] [--max-flows N] [--observation-domain N]\n"
		"                     [--jsonl PATH|-]\n\n"
		"Meters packets into flow records with the Smart Access Gateway aging rules and\n"
		"exports them as NetFlow V5, V9 or IPFIX (V10) over UDP and/or as JSON lines.\n\n"
		"  -r, --read FILE            replay a pcap or pcapng file; its timestamps are the clock\n"
		"  -i, --interface IFACE      capture live on IFACE\n"
		"  -c, --collector HOST:PORT  UDP collector ([v6addr]:port for IPv6; port default %s)\n"
		"  -n, --netflow-version V    V5, V9 (default) or V10 (IPFIX)\n"
		"  -a, --active-aging SEC     report an active flow at least this often, %d-%d (default %d)\n"
		"  -I, --inactive-aging SEC   close a flow silent this long, %d-%d (default %d)\n"
		"  -m, --max-flows N          open records at most; more evicts the least recently seen\n"
		"                             (exported, reason lack-of-resources), %u-%u (default %u)\n"
		"  -o, --observation-domain N V9 source id / IPFIX observation domain / V5 engine id (default 1;\n"
		"                             IPFIX sends its exporter options in domain 0, so 0 omits them)\n"
		"  -j, --jsonl PATH           also write one JSON object per record to PATH ('-' = stdout)\n"
		"  -h, --help                 this text\n\n"
		"At least one of --collector and --jsonl is required. Statistics go to stderr at exit and\n"
		"on SIGUSR1; SIGINT/SIGTERM flush every open record and exit 0.\n",
		METER_DEFAULT_PORT, METER_ACTIVE_MIN, METER_ACTIVE_MAX, METER_ACTIVE_DEFAULT, METER_INACTIVE_MIN,
		METER_INACTIVE_MAX, METER_INACTIVE_DEFAULT, FLOWTABLE_MIN_FLOWS, FLOWTABLE_MAX_FLOWS,
		METER_MAX_FLOWS_DEFAULT);
}

struct meter_opts {
	const char *read, *iface, *collector, *jsonl;
	int version;
	struct meter_config cfg;
	uint32_t domain;
};

static int meter_num(const char *name, const char *arg, int64_t min, int64_t max, int64_t *out)
{
	if (num_parse_i64(str_c(arg), min, max, out) == 0)
		return 0;
	fprintf(stderr, "sagflow meter: %s must be an integer in %lld-%lld, got '%s'\n", name, (long long)min,
		(long long)max, arg);
	return -1;
}

static int meter_version(const char *arg, int *out)
{
	static const struct {
		const char *name;
		int v;
	} names[] = {{"V5", 5}, {"5", 5}, {"V9", 9}, {"9", 9}, {"V10", 10}, {"10", 10}, {"IPFIX", 10}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (str_caseeq(str_c(arg), names[i].name)) {
			*out = names[i].v;
			return 0;
		}
	fprintf(stderr, "sagflow meter: --netflow-version must be V5, V9 or V10, got '%s'\n", arg);
	return -1;
}

/* Splits HOST:PORT or [V6]:PORT; a missing port means the product default. */
static int meter_split_hostport(const char *s, char host[METER_HOSTPORT_MAX], char port[8])
{
	size_t n = strnlen(s, METER_HOSTPORT_MAX);
	const char *colon = memrchr(s, ':', n);
	const char *h = s, *hend = colon ? colon : s + n;
	if (n == METER_HOSTPORT_MAX || n == 0)
		return -1;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || (close + 1 != s + n && close + 1 != colon))
			return -1;
		h = s + 1;
		hend = close;
		colon = close + 1 == s + n ? NULL : colon;
	} else if (colon && memchr(s, ':', (size_t)(colon - s))) {
		return -1; /* a bare IPv6 address needs brackets */
	}
	int64_t p;
	const char *ps = colon ? colon + 1 : METER_DEFAULT_PORT;
	if (num_parse_i64(str_c(ps), 1, 65535, &p) || hend == h)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	snprintf(port, 8, "%d", (int)p);
	return 0;
}

static int meter_parse(int argc, char **argv, struct meter_opts *o)
{
	static const struct option longopts[] = {
		{"read", required_argument, NULL, 'r'},
		{"interface", required_argument, NULL, 'i'},
		{"collector", required_argument, NULL, 'c'},
		{"netflow-version", required_argument, NULL, 'n'},
		{"active-aging", required_argument, NULL, 'a'},
		{"inactive-aging", required_argument, NULL, 'I'},
		{"max-flows", required_argument, NULL, 'm'},
		{"observation-domain", required_argument, NULL, 'o'},
		{"jsonl", required_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int64_t v;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "r:i:c:n:a:I:m:o:j:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o->read = optarg; break;
		case 'i': o->iface = optarg; break;
		case 'c': o->collector = optarg; break;
		case 'j': o->jsonl = optarg; break;
		case 'n':
			if (meter_version(optarg, &o->version))
				return -1;
			break;
		case 'a':
			if (meter_num("--active-aging", optarg, METER_ACTIVE_MIN, METER_ACTIVE_MAX, &v))
				return -1;
			o->cfg.active_aging_s = v;
			break;
		case 'I':
			if (meter_num("--inactive-aging", optarg, METER_INACTIVE_MIN, METER_INACTIVE_MAX, &v))
				return -1;
			o->cfg.inactive_aging_s = v;
			break;
		case 'm':
			if (meter_num("--max-flows", optarg, FLOWTABLE_MIN_FLOWS, FLOWTABLE_MAX_FLOWS, &v))
				return -1;
			o->cfg.max_flows = (uint32_t)v;
			break;
		case 'o':
			if (meter_num("--observation-domain", optarg, 0, UINT32_MAX, &v))
				return -1;
			o->domain = (uint32_t)v;
			break;
		case 'h': meter_usage(stdout); return 1;
		default: meter_usage(stderr); return -1;
		}
	}
	char host[METER_HOSTPORT_MAX], port[8];
	if (o->collector && meter_split_hostport(o->collector, host, port)) {
		fprintf(stderr, "sagflow meter: --collector must be HOST:PORT, got '%s'\n", o->collector);
		return -1;
	}
	if (optind != argc || !o->read == !o->iface || (!o->collector && !o->jsonl)) {
		fprintf(stderr, "sagflow meter: need exactly one of --read and --interface, and --collector "
				"and/or --jsonl\n\n");
		meter_usage(stderr);
		return -1;
	}
	return 0;
}

static pcap_t *meter_open_capture(const struct meter_opts *o)
{
	char err[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p;
	if (o->read) {
		/* libpcap reads through stdio: a large buffer saves a read(2) per 4 KB. */
		FILE *f = fopen(o->read, "rb");
		if (!f) {
			fprintf(stderr, "sagflow meter: cannot read %s: %m\n", o->read);
			return NULL;
		}
		/* glibc ignores the size unless it is given the buffer too. */
		static char buf[METER_FILE_BUFFER];
		setvbuf(f, buf, _IOFBF, sizeof(buf));
		/* One thread reads it: libpcap's two fread(3)s per packet need no lock. */
		__fsetlocking(f, FSETLOCKING_BYCALLER);
		p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_MICRO, err);
		if (!p) {
			fprintf(stderr, "sagflow meter: cannot read %s: %s\n", o->read, err);
			fclose(f);
		}
		return p;
	}
	p = pcap_create(o->iface, err);
	if (!p) {
		fprintf(stderr, "sagflow meter: cannot open %s: %s\n", o->iface, err);
		return NULL;
	}
	pcap_set_snaplen(p, METER_SNAPLEN);
	pcap_set_timeout(p, METER_LIVE_TIMEOUT_MS);
	pcap_set_buffer_size(p, METER_LIVE_BUFFER);
	pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);
	if (pcap_activate(p) < 0) {
		fprintf(stderr, "sagflow meter: cannot capture on %s: %s\n", o->iface, pcap_geterr(p));
		pcap_close(p);
		return NULL;
	}
	return p;
}

static int64_t meter_wall_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void meter_usr1_check(struct meter *m)
{
	if (meter_usr1) {
		meter_usr1 = 0;
		meter_print_stats(m, stderr);
	}
}

/* A file: its timestamps are the only clock. Reads until the end or a signal. */
static int meter_loop_file(pcap_t *p, struct meter *m)
{
	int link = pcap_datalink(p);
	struct pcap_pkthdr *h;
	const u_char *data;
	while (!meter_stop) {
		int rc = pcap_next_ex(p, &h, &data);
		meter_usr1_check(m);
		if (rc != 1) {
			if (rc == PCAP_ERROR) {
				fprintf(stderr, "sagflow meter: reading failed: %s\n", pcap_geterr(p));
				return -1;
			}
			break; /* end of file or pcap_breakloop */
		}
		meter_packet(m, link, (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec, data, h->caplen);
	}
	return 0;
}

struct meter_live {
	struct meter *m;
	int link;
};

static void meter_live_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
	struct meter_live *l = (struct meter_live *)user;
	meter_packet(l->m, l->link, (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec, data, h->caplen);
}

/* An interface: non-blocking reads under our own poll(), because libpcap's
 * read timeout does not fire on Linux while no packet arrives, and the
 * timers must (kernel timestamps are wall time, so the timer uses it too). */
static int meter_loop_live(pcap_t *p, struct meter *m)
{
	struct meter_live l = {m, pcap_datalink(p)};
	char err[PCAP_ERRBUF_SIZE];
	int fd = pcap_get_selectable_fd(p);
	if (fd < 0 || pcap_setnonblock(p, 1, err) < 0) {
		fprintf(stderr, "sagflow meter: cannot poll the capture: %s\n", err);
		return -1;
	}
	while (!meter_stop) {
		struct pollfd pfd = {fd, POLLIN, 0};
		(void)poll(&pfd, 1, METER_LIVE_TIMEOUT_MS);
		meter_usr1_check(m);
		int n = pcap_dispatch(p, -1, meter_live_packet, (u_char *)&l);
		if (n == PCAP_ERROR) {
			fprintf(stderr, "sagflow meter: capture failed: %s\n", pcap_geterr(p));
			return -1;
		}
		meter_advance(m, meter_wall_us());
	}
	return 0;
}

struct meter_run {
	struct udp_sender *udp;
	struct exporter *ex[2];
	size_t nex;
};

static int meter_exporters(const struct meter_opts *o, struct meter_run *r)
{
	if (o->collector) {
		char host[METER_HOSTPORT_MAX], port[8], err[256];
		if (meter_split_hostport(o->collector, host, port)) {
			fprintf(stderr, "sagflow meter: --collector must be HOST:PORT, got '%s'\n", o->collector);
			return -1;
		}
		r->udp = udp_sender_open(host, port, err, sizeof(err));
		if (!r->udp) {
			fprintf(stderr, "sagflow meter: %s\n", err);
			return -1;
		}
		struct netflow_config nc = {
			.version = o->version, .domain = o->domain, .send = udp_sender_send, .send_ctx = r->udp};
		r->ex[r->nex++] = netflow_exporter_new(&nc);
	}
	if (o->jsonl) {
		int stdout_sink = o->jsonl[0] == '-' && o->jsonl[1] == '\0';
		FILE *f = stdout_sink ? stdout : fopen(o->jsonl, "w");
		if (!f) {
			fprintf(stderr, "sagflow meter: cannot write %s: %m\n", o->jsonl);
			return -1;
		}
		r->ex[r->nex++] = jsonl_exporter_new(f, !stdout_sink);
	}
	return 0;
}

int cmd_meter(int argc, char **argv)
{
	struct meter_opts o = {.version = 9, .domain = 1,
			       .cfg = {METER_ACTIVE_DEFAULT, METER_INACTIVE_DEFAULT, METER_MAX_FLOWS_DEFAULT, 0}};
	int rc = meter_parse(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	struct meter_run r = {0};
	if (meter_exporters(&o, &r) < 0) {
		for (size_t i = 0; i < r.nex; i++)
			exporter_free(r.ex[i]);
		udp_sender_close(r.udp);
		return 1;
	}
	char err[256];
	struct meter *m = meter_new(&o.cfg, r.ex, r.nex, err, sizeof(err));
	if (!m) {
		fprintf(stderr, "sagflow meter: %s\n", err);
		return 2;
	}
	pcap_t *p = meter_open_capture(&o);
	if (!p) {
		meter_free(m);
		udp_sender_close(r.udp);
		return 1;
	}
	meter_pcap = p;
	/* Tests and operators wait for this line: from here on packets count. */
	fprintf(stderr, "sagflow meter: %s %s (link type %d)\n", o.read ? "reading" : "capturing on",
		o.read ? o.read : o.iface, pcap_datalink(p));
	struct sigaction sa = {.sa_handler = meter_on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	rc = o.iface ? meter_loop_live(p, m) : meter_loop_file(p, m);
	/* End of file or a stop signal: every open record is closed and sent. */
	meter_flush(m);
	meter_print_stats(m, stderr);
	meter_pcap = NULL;
	pcap_close(p);
	meter_free(m);
	udp_sender_close(r.udp);
	return rc < 0 ? 1 : 0;
}
