/* The demo's traffic (`sagflow demo`, docs/console.md "The demo"): a looping
 * pattern with a slow ebb, a burst and a few heavy talkers, written tick by
 * tick to a pcap file that `sagflow agent --read` replays. Deterministic for a
 * given tick start, so a tick's traffic can be checked. */
#ifndef CLI_DEMO_TRAFFIC_H
#define CLI_DEMO_TRAFFIC_H
#include <stddef.h>
#include <stdint.h>

#define DEMO_TICK_S 3	      /* seconds of traffic per replay */
#define DEMO_EBB_PERIOD_S 180 /* the rate ebbs and flows over 3 minutes */
#define DEMO_BASE_RATE 160    /* packets a second at the middle of the ebb */
#define DEMO_BURST_RATE 120   /* packets a second of the burst... */
#define DEMO_BURST_S 8	      /* ...for the first 8 s of every minute */
#define DEMO_MAX_PACKETS 1024 /* a tick's packets, at most (840 at the peak) */

struct demo_packet {
	int64_t ts_us;
	uint8_t src[4], dst[4];
	uint8_t proto; /* 6 TCP or 17 UDP */
	uint16_t sport, dport;
	uint16_t ip_len; /* IPv4 total length */
};

/* The packets of [t0_s, t0_s + DEMO_TICK_S), sorted by time; returns how many. */
size_t demo_traffic_tick(int64_t t0_s, struct demo_packet *out, size_t cap);
/* Writes them to path as a pcap (LINKTYPE_RAW, headers only: the IP total
 * length carries the size). 0, or -1 with err set. */
int demo_traffic_write(const char *path, const struct demo_packet *p, size_t n, char *err,
		       size_t errlen);

#endif
