/* A fleet of devices against one `sagflow serve` (bench/fleet, docs/benchmarks.md).
 *
 * Every device keeps one keep-alive connection and speaks the device channel
 * (docs/device-protocol.md), signing on its own with OpenSSL (independently of
 * src/device, so a bug there cannot cancel out). Many devices per thread, one
 * epoll each; connections bind to source addresses 127.0.0.(2+k) round robin
 * so 20,000+ connections never run out of ephemeral ports.
 *
 *   fleet_sim --port P --devices FILE (lines "serial secret") --mode once|poll|longpoll
 *             [--threads T] [--seconds S] [--interval S] [--wait S] [--sources K]
 *
 * once: each device syncs one time (its report), then exit. poll: every
 * --interval seconds (starts spread over one interval). longpoll: a plain sync,
 * then syncs with "Wait": --wait, again at once after each answer. Every second
 * a status line goes to stderr ("waiting N" = long-polls outstanding for > 1 s);
 * at the end one JSON line on stdout: syncs, errors by status, latency
 * percentiles of answered syncs (poll), and for changes (Changed: true after
 * the first answer) the realtime of the first and last arrival and the
 * percentiles, and devices that applied one change more than once. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../api/benchutil.h"

#define FS_MAX_DEVICES 200000
#define FS_MAX_THREADS 16
#define FS_REQ_MAX 1024
#define FS_RESP_MAX 4096
#define FS_SERIAL_MAX 64
#define FS_SECRET_MAX 64
#define FS_STATUS_CODES 600

enum fs_mode { FS_ONCE, FS_POLL, FS_LONGPOLL };

struct fs_opts {
	int port, threads, seconds, interval, wait, sources;
	enum fs_mode mode;
	const char *devices;
};

struct fs_dev {
	char serial[FS_SERIAL_MAX + 1], secret[FS_SECRET_MAX + 1];
	char version[17];
	int fd;
	bool busy, first_done, waiting;
	int64_t seq, sent_us, next_us;
	char req[FS_REQ_MAX];
	size_t req_len, req_off;
	char resp[FS_RESP_MAX];
	size_t resp_len;
	int changes;     /* Changed answers after the first */
	int last_port;   /* NetflowServerPort of the last change applied */
	int dup;         /* the same ConfigVersion applied twice */
	int64_t change_rt_ms; /* realtime of the first change after the first answer */
};

struct fs_thread {
	pthread_t tid;
	const struct fs_opts *o;
	struct fs_dev *devs;
	int ndevs, id;
	uint64_t syncs, errors, status[FS_STATUS_CODES];
	int64_t *lat;
	size_t nlat, caplat;
};

static atomic_bool fs_stop;
static int64_t fs_end_us;

static int64_t rt_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hexs(const unsigned char *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The signed sync of docs/device-protocol.md §2-3. */
static void fs_build(const struct fs_opts *o, struct fs_dev *d, int wait)
{
	char body[256], sha[65], sts[512], sig[65], date[32];
	unsigned char md[32];
	unsigned mdlen = 0;
	int blen = snprintf(body, sizeof(body), "{\"Model\":\"sag-1000\",\"SoftwareVersion\":\"1.7.0\"%s%s%s",
			    d->version[0] ? ",\"ConfigVersion\":\"" : "", d->version,
			    d->version[0] ? "\"" : "");
	if (wait > 0)
		blen += snprintf(body + blen, sizeof(body) - (size_t)blen, ",\"Wait\":%d", wait);
	blen += snprintf(body + blen, sizeof(body) - (size_t)blen, "}");
	SHA256((unsigned char *)body, (size_t)blen, md);
	hexs(md, 32, sha);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	int64_t ms = rt_ms();
	d->seq = ms > d->seq ? ms : d->seq + 1;
	snprintf(sts, sizeof(sts), "SAG-HMAC-SHA256\nPOST\n/device/v1/sync\n%s\n%s\n%lld\n%s", d->serial,
		 date, (long long)d->seq, sha);
	HMAC(EVP_sha256(), d->secret, (int)strlen(d->secret), (unsigned char *)sts, strlen(sts), md,
	     &mdlen);
	hexs(md, 32, sig);
	d->req_len = (size_t)snprintf(
	    d->req, sizeof(d->req),
	    "POST /device/v1/sync HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
	    "Content-Length: %d\r\nX-Sag-Serial-Number: %s\r\nX-Sag-Date: %s\r\nX-Sag-Sequence: %lld\r\n"
	    "X-Sag-Content-Sha256: %s\r\nAuthorization: SAG-HMAC-SHA256 Signature=%s\r\n\r\n%s",
	    o->port, blen, d->serial, date, (long long)d->seq, sha, sig, body);
	d->req_off = 0;
	d->resp_len = 0;
	d->busy = true;
	d->waiting = wait > 0;
	d->sent_us = bench_now_us();
}

static int fs_connect(const struct fs_opts *o, int k)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->sources > 0) {
		struct sockaddr_in src = {.sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(k % o->sources))};
		setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			close(fd);
			return -1;
		}
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port),
				 .sin_addr.s_addr = htonl(0x7f000001u)};
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static long fs_resp_len(const char *b, size_t n, int *status)
{
	const char *end = memmem(b, n, "\r\n\r\n", 4);
	if (!end)
		return 0;
	if (n < 12 || memcmp(b, "HTTP/1.", 7))
		return -1;
	*status = atoi(b + 9);
	const char *cl = memmem(b, (size_t)(end - b), "Content-Length:", 15);
	if (!cl)
		cl = memmem(b, (size_t)(end - b), "content-length:", 15);
	if (!cl)
		return -1;
	long clen = atol(cl + 15);
	size_t h = (size_t)(end - b) + 4;
	return n < h + (size_t)clen ? 0 : (long)(h + (size_t)clen);
}

static int json_int(const char *b, const char *key)
{
	const char *p = strstr(b, key);
	return p ? atoi(p + strlen(key)) : -1;
}

static void fs_lat(struct fs_thread *t, int64_t us)
{
	if (t->nlat == t->caplat) {
		t->caplat = t->caplat ? 2 * t->caplat : 65536;
		t->lat = realloc(t->lat, t->caplat * sizeof(*t->lat));
		if (!t->lat)
			abort();
	}
	t->lat[t->nlat++] = us;
}

/* One whole answer: records it and decides the device's next sync. */
static void fs_answer(struct fs_thread *t, struct fs_dev *d, int status, const char *body)
{
	const struct fs_opts *o = t->o;
	int64_t now = bench_now_us();
	t->syncs++;
	t->status[status > 0 && status < FS_STATUS_CODES ? status : 0]++;
	d->busy = false;
	if (!d->waiting)
		fs_lat(t, now - d->sent_us);
	if (status != 200) {
		t->errors++;
		d->next_us = now + 1000000;
		return;
	}
	const char *v = strstr(body, "\"ConfigVersion\":\"");
	bool changed = strstr(body, "\"Changed\":true") != NULL;
	if (v && changed) {
		char nv[17];
		memcpy(nv, v + 17, 16);
		nv[16] = '\0';
		if (d->first_done) {
			if (!strcmp(nv, d->version))
				d->dup++;
			if (!d->changes++)
				d->change_rt_ms = rt_ms();
			d->last_port = json_int(body, "\"NetflowServerPort\":");
		}
		memcpy(d->version, nv, sizeof(nv));
	}
	d->first_done = true;
	int next_s = json_int(body, "\"NextSyncSeconds\":");
	if (o->mode == FS_POLL)
		d->next_us = d->sent_us + (int64_t)o->interval * 1000000;
	else
		d->next_us = now + (next_s > 0 ? (int64_t)next_s * 1000000 : 0);
}

static int fs_wait_of(const struct fs_opts *o, const struct fs_dev *d)
{
	return o->mode == FS_LONGPOLL && d->first_done ? o->wait : 0;
}

static void fs_reconnect(struct fs_thread *t, int ep, struct fs_dev *d, int k)
{
	if (d->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, d->fd, NULL);
		close(d->fd);
	}
	d->fd = fs_connect(t->o, k);
	d->busy = false;
	if (d->fd < 0) {
		t->errors++;
		t->status[0]++;
		d->next_us = bench_now_us() + 1000000;
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = d};
	epoll_ctl(ep, EPOLL_CTL_ADD, d->fd, &ev);
}

static void fs_io(struct fs_thread *t, int ep, struct fs_dev *d, uint32_t events)
{
	int k = (int)(d - t->devs) * t->o->threads + t->id;
	if (d->busy && d->req_off < d->req_len && (events & EPOLLOUT)) {
		ssize_t w = write(d->fd, d->req + d->req_off, d->req_len - d->req_off);
		if (w > 0)
			d->req_off += (size_t)w;
		else if (w < 0 && errno != EAGAIN)
			goto broken;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t r = read(d->fd, d->resp + d->resp_len, sizeof(d->resp) - 1 - d->resp_len);
			if (r > 0) {
				d->resp_len += (size_t)r;
				continue;
			}
			if (r == 0 || (errno != EAGAIN && errno != EINTR))
				goto broken;
			break;
		}
		int status = 0;
		long n = d->busy ? fs_resp_len(d->resp, d->resp_len, &status) : 0;
		if (n < 0)
			goto broken;
		if (n > 0) {
			d->resp[d->resp_len] = '\0';
			fs_answer(t, d, status, d->resp);
			d->resp_len = 0;
		}
	}
	return;
broken:
	if (d->busy) {
		t->errors++;
		t->status[0]++;
	}
	fs_reconnect(t, ep, d, k);
	d->next_us = bench_now_us() + 200000;
}

static void *fs_run(void *arg)
{
	struct fs_thread *t = arg;
	const struct fs_opts *o = t->o;
	int ep = epoll_create1(0);
	int64_t start = bench_now_us();
	for (int i = 0; i < t->ndevs; i++) {
		struct fs_dev *d = &t->devs[i];
		d->fd = -1;
		fs_reconnect(t, ep, d, i * o->threads + t->id);
		/* Spread the first syncs over a second (poll: over an interval). */
		int64_t spread = o->mode == FS_POLL ? (int64_t)o->interval * 1000000 : 1000000;
		d->next_us = start + spread * i / (t->ndevs ? t->ndevs : 1);
	}
	struct epoll_event evs[256];
	while (!atomic_load(&fs_stop) && bench_now_us() < fs_end_us) {
		int n = epoll_wait(ep, evs, 256, 5);
		for (int i = 0; i < n; i++)
			fs_io(t, ep, evs[i].data.ptr, evs[i].events);
		int64_t now = bench_now_us();
		int pending = 0;
		for (int i = 0; i < t->ndevs; i++) {
			struct fs_dev *d = &t->devs[i];
			if (o->mode == FS_ONCE && d->first_done)
				continue;
			pending++;
			if (d->busy || d->fd < 0 || now < d->next_us)
				continue;
			fs_build(o, d, fs_wait_of(o, d));
			fs_io(t, ep, d, EPOLLOUT);
		}
		if (o->mode == FS_ONCE && !pending)
			break;
	}
	for (int i = 0; i < t->ndevs; i++)
		if (t->devs[i].fd >= 0)
			close(t->devs[i].fd);
	close(ep);
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int64_t pct(int64_t *v, size_t n, double p)
{
	if (!n)
		return -1;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

static void on_sig(int s)
{
	(void)s;
	atomic_store(&fs_stop, true);
}

static int load_devices(const char *path, struct fs_dev **out)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return perror(path), -1;
	struct fs_dev *d = calloc(FS_MAX_DEVICES, sizeof(*d));
	int n = 0;
	while (n < FS_MAX_DEVICES && fscanf(f, "%64s %64s", d[n].serial, d[n].secret) == 2)
		n++;
	fclose(f);
	*out = d;
	return n;
}

static void report(struct fs_thread *th, int nt, int ndev, int64_t elapsed_us)
{
	uint64_t syncs = 0, errors = 0, status[FS_STATUS_CODES] = {0};
	size_t nlat = 0;
	for (int i = 0; i < nt; i++) {
		syncs += th[i].syncs;
		errors += th[i].errors;
		for (int c = 0; c < FS_STATUS_CODES; c++)
			status[c] += th[i].status[c];
		nlat += th[i].nlat;
	}
	int64_t *lat = malloc((nlat + 1) * sizeof(*lat)), *chg = malloc(((size_t)ndev + 1) * sizeof(*chg));
	size_t k = 0, nchg = 0;
	int applied = 0, dups = 0, multi = 0;
	for (int i = 0; i < nt; i++) {
		memcpy(lat + k, th[i].lat, th[i].nlat * sizeof(*lat));
		k += th[i].nlat;
		for (int j = 0; j < th[i].ndevs; j++) {
			struct fs_dev *d = &th[i].devs[j];
			if (d->changes) {
				applied++;
				chg[nchg++] = d->change_rt_ms;
			}
			dups += d->dup;
			multi += d->changes > 1;
		}
	}
	qsort(lat, nlat, sizeof(*lat), cmp64);
	qsort(chg, nchg, sizeof(*chg), cmp64);
	printf("{\"devices\":%d,\"seconds\":%.1f,\"syncs\":%llu,\"syncs_per_s\":%.1f,\"errors\":%llu,"
	       "\"status\":{",
	       ndev, (double)elapsed_us / 1e6, (unsigned long long)syncs,
	       (double)syncs * 1e6 / (double)(elapsed_us ? elapsed_us : 1), (unsigned long long)errors);
	int first = 1;
	for (int c = 0; c < FS_STATUS_CODES; c++)
		if (status[c]) {
			printf("%s\"%d\":%llu", first ? "" : ",", c, (unsigned long long)status[c]);
			first = 0;
		}
	printf("},\"latency_us\":{\"p50\":%lld,\"p99\":%lld,\"max\":%lld},"
	       "\"changed\":{\"devices\":%d,\"first_rt_ms\":%lld,\"p50_rt_ms\":%lld,\"p99_rt_ms\":%lld,"
	       "\"last_rt_ms\":%lld,\"duplicates\":%d,\"more_than_once\":%d}}\n",
	       (long long)pct(lat, nlat, 0.5), (long long)pct(lat, nlat, 0.99),
	       (long long)(nlat ? lat[nlat - 1] : -1), applied, (long long)(nchg ? chg[0] : -1),
	       (long long)pct(chg, nchg, 0.5), (long long)pct(chg, nchg, 0.99),
	       (long long)(nchg ? chg[nchg - 1] : -1), dups, multi);
	free(lat);
	free(chg);
}

int main(int argc, char **argv)
{
	struct fs_opts o = {.threads = 2, .seconds = 60, .interval = 5, .wait = 60, .sources = 16,
			    .mode = FS_LONGPOLL};
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--port")) o.port = atoi(v);
		else if (!strcmp(k, "--devices")) o.devices = v;
		else if (!strcmp(k, "--threads")) o.threads = atoi(v);
		else if (!strcmp(k, "--seconds")) o.seconds = atoi(v);
		else if (!strcmp(k, "--interval")) o.interval = atoi(v);
		else if (!strcmp(k, "--wait")) o.wait = atoi(v);
		else if (!strcmp(k, "--sources")) o.sources = atoi(v);
		else if (!strcmp(k, "--mode"))
			o.mode = !strcmp(v, "once") ? FS_ONCE : !strcmp(v, "poll") ? FS_POLL : FS_LONGPOLL;
		else
			return fprintf(stderr, "fleet_sim: unknown option %s\n", k), 2;
	}
	if (!o.port || !o.devices || o.threads < 1 || o.threads > FS_MAX_THREADS)
		return fprintf(stderr, "usage: fleet_sim --port P --devices FILE [--mode once|poll|longpoll] ...\n"), 2;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	struct fs_dev *devs;
	int n = load_devices(o.devices, &devs);
	if (n <= 0)
		return fprintf(stderr, "fleet_sim: no devices in %s\n", o.devices), 1;
	struct fs_thread th[FS_MAX_THREADS] = {0};
	int64_t t0 = bench_now_us();
	fs_end_us = t0 + (int64_t)o.seconds * 1000000;
	for (int i = 0, off = 0; i < o.threads; i++) {
		int cnt = n / o.threads + (i < n % o.threads);
		th[i] = (struct fs_thread){.o = &o, .devs = devs + off, .ndevs = cnt, .id = i};
		off += cnt;
		pthread_create(&th[i].tid, NULL, fs_run, &th[i]);
	}
	/* Status once a second: long-polls outstanding for more than a second. */
	while (!atomic_load(&fs_stop) && bench_now_us() < fs_end_us) {
		sleep(1);
		int waiting = 0, applied = 0;
		int64_t now = bench_now_us();
		for (int i = 0; i < n; i++) {
			waiting += devs[i].busy && devs[i].waiting && now - devs[i].sent_us > 1000000;
			applied += devs[i].changes > 0;
		}
		fprintf(stderr, "fleet_sim: t=%llds waiting %d applied %d\n",
			(long long)((now - t0) / 1000000), waiting, applied);
		if (o.mode == FS_ONCE) {
			int done = 0;
			for (int i = 0; i < n; i++)
				done += devs[i].first_done;
			if (done == n)
				break;
		}
	}
	for (int i = 0; i < o.threads; i++)
		pthread_join(th[i].tid, NULL);
	report(th, o.threads, n, bench_now_us() - t0);
	return 0;
}
