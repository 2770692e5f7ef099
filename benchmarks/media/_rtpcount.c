/* Benchmark receivers' RTP counter (measurement code, not product): all of one receiver
 * process's viewer sockets are read here with epoll + recvmmsg, RTP is counted from its
 * clear-text header against the kernel's arrival time (SO_TIMESTAMPNS, so the time a datagram
 * waited for this process to poll does not count as lateness), and everything that is not
 * RTP/RTCP (STUN, DTLS) is handed back to Python for aioice / aiortc.
 *
 * Plain C, loaded with ctypes (no Python API). Not thread-safe: one caller per context.
 *
 * With `gro` the sockets take UDP GRO (Linux >= 5.0): a run of datagrams the edge sent as one
 * GSO message stays one buffer through loopback and is cut apart here, by its segment size, so
 * the loopback delivery work that the kernel charges to the *sending* process (the edge) is not
 * multiplied by the datagram count as it would not be on a real network.
 *
 * Late frame: its last packet (RTP marker) arrives more than `late_s` after the arrival time
 * predicted from that viewer's best transit (min over frames of arrival - rtp_ts / 90 kHz).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define BATCH 32
#define MAXPKT 65536
#define EVENTS 256
#define SECONDS 120

typedef struct {
    int fd;            /* -1 once removed */
    int has_ts0, has_base, has_first;
    uint32_t ts0;
    double base;
    int64_t first_d, last_d;
    uint64_t frames, late, packets, bytes;
} viewer_t;

typedef struct {
    int ep;
    int gro;
    int measuring;
    double late_s;
    double t_measure; /* arrival clock when measuring started (first measured datagram) */
    uint64_t late_by_s[SECONDS]; /* late frames by second of the window, all viewers */
    int n, cap;
    viewer_t *v;
    uint64_t nonrtp_dropped;
    uint8_t bufs[BATCH][MAXPKT];
    struct sockaddr_storage names[BATCH];
    char ctrl[BATCH][64];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
} ctx_t;

void *rc_new(int cap, double late_s, int gro)
{
    ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    c->v = calloc((size_t)cap, sizeof(viewer_t));
    if (c->ep < 0 || c->v == NULL) {
        free(c->v);
        free(c);
        return NULL;
    }
    c->cap = cap;
    c->late_s = late_s;
    c->gro = gro;
    return c;
}

int rc_epoll_fd(void *p) { return ((ctx_t *)p)->ep; }

/* Start reading fd here; returns the viewer index or -1. */
int rc_add(void *p, int fd)
{
    ctx_t *c = p;
    if (c->n >= c->cap)
        return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    if (c->gro)
        setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on); /* refused: plain datagrams, also fine */
    int idx = c->n;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)idx};
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    memset(&c->v[idx], 0, sizeof(viewer_t));
    c->v[idx].fd = fd;
    c->n++;
    return idx;
}

/* Stop reading a viewer's socket (before its owner closes it). */
void rc_remove(void *p, int idx)
{
    ctx_t *c = p;
    if (idx < 0 || idx >= c->n || c->v[idx].fd < 0)
        return;
    epoll_ctl(c->ep, EPOLL_CTL_DEL, c->v[idx].fd, NULL);
    c->v[idx].fd = -1;
}

void rc_measure(void *p, int on) { ((ctx_t *)p)->measuring = on; }

/* Late frames per second of the window (n <= SECONDS entries). */
void rc_late_by_second(void *p, uint64_t *out, int n)
{
    ctx_t *c = p;
    for (int i = 0; i < n && i < SECONDS; i++)
        out[i] = c->late_by_s[i];
}

/* frames, late, packets, bytes, first_d, last_d, has_first */
void rc_stats(void *p, int idx, int64_t *out)
{
    viewer_t *v = &((ctx_t *)p)->v[idx];
    out[0] = (int64_t)v->frames;
    out[1] = (int64_t)v->late;
    out[2] = (int64_t)v->packets;
    out[3] = (int64_t)v->bytes;
    out[4] = v->first_d;
    out[5] = v->last_d;
    out[6] = v->has_first;
}

uint64_t rc_nonrtp_dropped(void *p) { return ((ctx_t *)p)->nonrtp_dropped; }

/* Segment size of a GRO'd buffer, or 0 (one datagram). */
static int gro_size(struct msghdr *h)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm != NULL; cm = CMSG_NXTHDR(h, cm)) {
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
            int v;
            memcpy(&v, CMSG_DATA(cm), sizeof v);
            return v;
        }
    }
    return 0;
}

static double arrival(struct msghdr *h)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm != NULL; cm = CMSG_NXTHDR(h, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

static void count_rtp(ctx_t *c, viewer_t *v, const uint8_t *d, size_t len, double now)
{
    if (c->measuring) {
        if (c->t_measure == 0)
            c->t_measure = now;
        v->packets++;
        v->bytes += len;
    }
    if (len < 12 || !(d[1] & 0x80))
        return; /* not the last packet of a frame */
    uint32_t ts = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
    if (!v->has_ts0) {
        v->ts0 = ts;
        v->has_ts0 = 1;
    }
    int64_t dd = (int64_t)(int32_t)(ts - v->ts0); /* signed: tolerate a step back */
    double offset = now - (double)dd / 90000.0;
    if (!v->has_base || offset < v->base) {
        v->base = offset;
        v->has_base = 1;
    }
    if (c->measuring) {
        if (!v->has_first || dd < v->first_d)
            v->first_d = dd;
        if (v->frames == 0 || dd > v->last_d)
            v->last_d = dd;
        v->has_first = 1;
        v->frames++;
        if (offset - v->base > c->late_s) {
            v->late++;
            if (c->t_measure == 0)
                c->t_measure = now;
            int sec = (int)(now - c->t_measure);
            c->late_by_s[sec < 0 ? 0 : sec >= SECONDS ? SECONDS - 1 : sec]++;
        }
    }
}

/* Drain every readable socket. Non-RTP datagrams go to `out` as records
 * [int32 idx][uint16 len][uint16 port (host order)][4 bytes IPv4][data]; returns bytes used. */
int rc_poll(void *p, uint8_t *out, int outcap)
{
    ctx_t *c = p;
    struct epoll_event evs[EVENTS];
    int used = 0;
    int k = epoll_wait(c->ep, evs, EVENTS, 0);
    for (int e = 0; e < k; e++) {
        int idx = (int)evs[e].data.u32;
        viewer_t *v = &c->v[idx];
        if (v->fd < 0)
            continue;
        for (;;) {
            for (int j = 0; j < BATCH; j++) {
                c->iov[j].iov_base = c->bufs[j];
                c->iov[j].iov_len = MAXPKT;
                memset(&c->msgs[j].msg_hdr, 0, sizeof(struct msghdr));
                c->msgs[j].msg_hdr.msg_name = &c->names[j];
                c->msgs[j].msg_hdr.msg_namelen = sizeof c->names[j];
                c->msgs[j].msg_hdr.msg_iov = &c->iov[j];
                c->msgs[j].msg_hdr.msg_iovlen = 1;
                c->msgs[j].msg_hdr.msg_control = c->ctrl[j];
                c->msgs[j].msg_hdr.msg_controllen = sizeof c->ctrl[j];
            }
            int r = recvmmsg(v->fd, c->msgs, BATCH, MSG_DONTWAIT, NULL);
            if (r <= 0)
                break; /* EAGAIN, or an error (ICMP): the next poll tries again */
            for (int j = 0; j < r; j++) {
                size_t total = c->msgs[j].msg_len;
                int seg = gro_size(&c->msgs[j].msg_hdr);
                size_t step = seg > 0 ? (size_t)seg : total;
                double now = arrival(&c->msgs[j].msg_hdr);
                for (size_t off = 0; off < total && step > 0; off += step) {
                    const uint8_t *d = c->bufs[j] + off;
                    size_t len = total - off < step ? total - off : step;
                    if (len >= 2 && d[0] > 127 && d[0] < 192) {
                        if (!(d[1] > 191 && d[1] < 224)) /* RTCP from the edge: not needed */
                            count_rtp(c, v, d, len, now);
                        continue;
                    }
                    struct sockaddr_in *sin = (struct sockaddr_in *)&c->names[j];
                    if (sin->sin_family != AF_INET || used + 12 + (int)len > outcap) {
                        c->nonrtp_dropped++;
                        continue;
                    }
                    uint8_t *o = out + used;
                    int32_t i32 = idx;
                    uint16_t l16 = (uint16_t)len, port = ntohs(sin->sin_port);
                    memcpy(o, &i32, 4);
                    memcpy(o + 4, &l16, 2);
                    memcpy(o + 6, &port, 2);
                    memcpy(o + 8, &sin->sin_addr, 4);
                    memcpy(o + 12, d, len);
                    used += 12 + (int)len;
                }
            }
            if (r < BATCH)
                break;
        }
    }
    return used;
}
