#include "export/udp.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/xmalloc.h"

struct udp_sender {
	int fd;
};

struct udp_sender *udp_sender_open(const char *host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s port %s: %s", host, port, gai_strerror(rc));
		return NULL;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return NULL;
	int sndbuf = UDP_SNDBUF_BYTES;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	struct udp_sender *u = xmalloc(sizeof(*u));
	u->fd = fd;
	return u;
}

void udp_sender_close(struct udp_sender *u)
{
	if (u == NULL)
		return;
	close(u->fd);
	free(u);
}

int udp_sender_send(void *ctx, const uint8_t *p, size_t len)
{
	struct udp_sender *u = ctx;
	/* Fire and forget (spec §3): a full buffer or an ICMP-refused port is a
	 * counted error, never a wait. */
	ssize_t n = send(u->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	return n == (ssize_t)len ? 0 : -1;
}
