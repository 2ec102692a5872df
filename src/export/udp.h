/* The one UDP sender: a connected non-blocking socket. */
#ifndef EXPORT_UDP_H
#define EXPORT_UDP_H
#include <stddef.h>
#include <stdint.h>

#define UDP_SNDBUF_BYTES (4 << 20) /* replays send in bursts */

struct udp_sender;

/* host is a name or address, port 1-65535; NULL with a message in err on failure. */
struct udp_sender *udp_sender_open(const char *host, const char *port, char *err, size_t errlen);
void udp_sender_close(struct udp_sender *u);
/* export_send_fn: 0, or -1 on a send error (counted by the caller). */
int udp_sender_send(void *u, const uint8_t *p, size_t len);

#endif
