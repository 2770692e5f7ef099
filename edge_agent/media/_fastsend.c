/* One C call per frame per viewer: RTP header + SRTP protect + sendmmsg.
 *
 * send_frame(payloads, pt, seq, ts, ssrc, protect_fn, srtp_ctx, fd, host, port, history[, ext])
 *     -> (new_seq, wire_bytes_sent, payload_octets, unsent)
 *
 * payloads    list/tuple of bytes (one RTP payload each, already packetized)
 * pt          RTP payload type; the marker bit is set on the last packet
 * seq         sequence number of the first packet (16 bit)
 * ts, ssrc    RTP timestamp and SSRC (32 bit)
 * protect_fn  address of libsrtp 2.x `srtp_protect(srtp_t, void *rtp, int *len)`
 *             (pylibsrtp's bundled copy, taken from its cffi `lib`)
 * srtp_ctx    the `srtp_t` of the sending session (pylibsrtp.Session._srtp[0])
 * fd          an IPv4 UDP socket, or -1 to send nothing (all packets come back in `unsent`)
 * host, port  IPv4 destination
 * history     a History (below), or a list used as a ring indexed by seq % len(history), or None:
 *             the NACK retransmission store; it receives the SRTP-protected packets exactly as
 *             they went on the wire.
 * ext         optional RTP header extension block (RFC 8285: profile, length, elements; a
 *             multiple of 4 bytes, at most 64), put in every packet with the X bit set; b"" = none
 *
 * unsent is None when every packet went out, else the list of protected packets that sendmmsg
 * did not take (EAGAIN, an error): the caller hands them to the asyncio transport, which buffers
 * or reports them exactly as it does for its own sendto.
 *
 * The GIL is released around sendmmsg; the packets are bytes objects this call owns meanwhile.
 *
 * History(slots[, slot_size]) is a ring of fixed-size slots in one allocation, indexed by
 * seq % slots: with it each packet is built, protected and sent straight from its slot, so a
 * frame costs no allocation at all (with a list every packet is a new bytes object and the one it
 * evicts is freed: malloc/free were ~1/8 of the fan-out's CPU). history.get(seq) returns the
 * packet last stored under exactly that sequence number (bytes), or None. A packet that does not
 * fit a slot (slot_size < header + payload + SRTP trailer reserve), and the packets of a frame
 * longer than the ring before its last `slots` ones, are built in bytes objects as with a list and
 * are not kept (their seq answers None).
 *
 * UDP GSO (Linux >= 4.18): runs of equal-sized packets (the last of a run may be shorter) go as
 * one message with a UDP_SEGMENT control message, so the kernel walks its send path once per run
 * instead of once per packet and cuts the datagrams apart at the end (in the NIC, or in software
 * on loopback); on the wire nothing changes. The first time the kernel refuses a GSO message
 * (EINVAL/EIO/ENOPROTOOPT/EOPNOTSUPP: no UDP_SEGMENT, no checksum offload) GSO is switched off
 * for the process and the same packets are sent one per message. set_gso(False) forces that.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define GSO_MAX_SEGS 64
#define GSO_MAX_BYTES 60000

/* SRTP_MAX_TAG_LEN + SRTP_MAX_MKI_LEN, as pylibsrtp reserves. */
#define SRTP_MAX_TRAILER_LEN (16 + 128)
#define RTP_HDR_LEN 12
#define BATCH 64

typedef int (*srtp_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);

static PyObject *SrtpError;
static int gso_on = 1;

typedef struct {
    PyObject_HEAD
    Py_ssize_t slots;
    Py_ssize_t size; /* bytes per slot */
    uint8_t *buf;    /* slots * size */
    int32_t *len;    /* per slot: packet length, -1 = empty */
    int32_t *seq;    /* per slot: the 16-bit sequence number stored there */
} History;

static void
history_dealloc(History *h)
{
    PyMem_RawFree(h->buf);
    PyMem_RawFree(h->len);
    PyMem_RawFree(h->seq);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static int
history_init(History *h, PyObject *args, PyObject *kw)
{
    static char *names[] = {"slots", "slot_size", NULL};
    Py_ssize_t slots, size = 1536;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|n:History", names, &slots, &size))
        return -1;
    if (slots < 1 || slots > 65536 || size < RTP_HDR_LEN + SRTP_MAX_TRAILER_LEN + 1 || size > 65536) {
        PyErr_SetString(PyExc_ValueError, "History: 1 <= slots <= 65536, header + trailer < slot_size <= 65536");
        return -1;
    }
    if (h->buf != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "History already initialized");
        return -1;
    }
    h->buf = PyMem_RawMalloc((size_t)(slots * size));
    h->len = PyMem_RawMalloc(sizeof(int32_t) * (size_t)slots);
    h->seq = PyMem_RawMalloc(sizeof(int32_t) * (size_t)slots);
    if (h->buf == NULL || h->len == NULL || h->seq == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < slots; i++)
        h->len[i] = -1;
    h->slots = slots;
    h->size = size;
    return 0;
}

static PyObject *
history_get(History *h, PyObject *arg)
{
    long seq = PyLong_AsLong(arg);
    if (seq == -1 && PyErr_Occurred())
        return NULL;
    if (h->buf == NULL || seq < 0 || seq > 0xFFFF)
        Py_RETURN_NONE;
    Py_ssize_t slot = (Py_ssize_t)seq % h->slots;
    if (h->len[slot] < 0 || h->seq[slot] != (int32_t)seq)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)h->buf + slot * h->size, h->len[slot]);
}

static PyObject *
history_clear(History *h, PyObject *unused)
{
    for (Py_ssize_t i = 0; i < h->slots; i++)
        h->len[i] = -1;
    Py_RETURN_NONE;
}

static Py_ssize_t
history_length(History *h)
{
    return h->slots;
}

static PyMethodDef history_methods[] = {
    {"get", (PyCFunction)history_get, METH_O, "get(seq) -> the SRTP packet sent under seq, or None"},
    {"clear", (PyCFunction)history_clear, METH_NOARGS, "forget every packet"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods history_as_sequence = {
    .sq_length = (lenfunc)history_length,
};

static PyTypeObject HistoryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "edge_agent.media._fastsend.History",
    .tp_doc = "History(slots, slot_size=1536): NACK ring of SRTP packets, filled by send_frame",
    .tp_basicsize = sizeof(History),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)history_init,
    .tp_dealloc = (destructor)history_dealloc,
    .tp_methods = history_methods,
    .tp_as_sequence = &history_as_sequence,
};

/* Messages for packets [from..made): up to BATCH of them, each a GSO run (or one packet when GSO
 * is off). Fills msgs/iov/ctrl and segs[m] = packets in message m; returns the message count. */
static int
build_msgs(uint8_t **bufs, const int *lens, Py_ssize_t from, Py_ssize_t made, struct sockaddr_in *dst, int gso,
           struct mmsghdr *msgs, struct iovec *iov, char (*ctrl)[CMSG_SPACE(sizeof(uint16_t))], int *segs)
{
    int m = 0, v = 0;
    Py_ssize_t i = from;
    while (i < made && m < BATCH && v < BATCH) {
        size_t seg = (size_t)lens[i], total = 0;
        int k = 0;
        while (i + k < made && v + k < BATCH && k < (gso ? GSO_MAX_SEGS : 1)) {
            size_t len = (size_t)lens[i + k];
            if (k > 0 && (len > seg || total + len > GSO_MAX_BYTES))
                break;
            iov[v + k].iov_base = bufs[i + k];
            iov[v + k].iov_len = len;
            total += len;
            k++;
            if (len < seg)
                break; /* a shorter packet ends the run */
        }
        struct msghdr *h = &msgs[m].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = dst;
        h->msg_namelen = sizeof *dst;
        h->msg_iov = &iov[v];
        h->msg_iovlen = (size_t)k;
        if (k > 1) {
            h->msg_control = ctrl[m];
            h->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
            struct cmsghdr *cm = CMSG_FIRSTHDR(h);
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t gs = (uint16_t)seg;
            memcpy(CMSG_DATA(cm), &gs, sizeof gs);
        }
        msgs[m].msg_len = 0;
        segs[m] = k;
        m++;
        v += k;
        i += k;
    }
    return m;
}

static void
release(PyObject **pkts, Py_ssize_t from, Py_ssize_t to)
{
    for (Py_ssize_t i = from; i < to; i++)
        Py_CLEAR(pkts[i]);
}

static PyObject *
send_frame(PyObject *self, PyObject *args)
{
    PyObject *payloads, *history;
    int pt, fd, port;
    unsigned int seq;
    unsigned long ts, ssrc;
    unsigned long long protect_addr, ctx_addr;
    const char *host;
    const char *ext = NULL;
    Py_ssize_t ext_len = 0;

    if (!PyArg_ParseTuple(args, "OiIkkKKisiO|y#:send_frame", &payloads, &pt, &seq, &ts, &ssrc,
                          &protect_addr, &ctx_addr, &fd, &host, &port, &history, &ext, &ext_len))
        return NULL;
    if (ext_len % 4 != 0 || ext_len > 64) {
        PyErr_SetString(PyExc_ValueError, "header extension must be a multiple of 4 bytes, at most 64");
        return NULL;
    }
    const Py_ssize_t hdr_len = RTP_HDR_LEN + ext_len;
    if (pt < 0 || pt > 127) {
        PyErr_SetString(PyExc_ValueError, "payload type out of range");
        return NULL;
    }
    if (!protect_addr || !ctx_addr) {
        PyErr_SetString(PyExc_ValueError, "null SRTP function or context");
        return NULL;
    }
    History *ring = NULL;
    if (PyObject_TypeCheck(history, &HistoryType)) {
        ring = (History *)history;
        if (ring->buf == NULL) {
            PyErr_SetString(PyExc_ValueError, "History not initialized");
            return NULL;
        }
    } else if (history != Py_None && (!PyList_Check(history) || PyList_GET_SIZE(history) == 0)) {
        PyErr_SetString(PyExc_TypeError, "history must be a History, a non-empty list or None");
        return NULL;
    }
    struct sockaddr_in dst;
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    if (fd >= 0 && inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
        PyErr_Format(PyExc_ValueError, "not an IPv4 address: %s", host);
        return NULL;
    }

    PyObject *seqobj = PySequence_Fast(payloads, "payloads must be a list or tuple");
    if (seqobj == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seqobj);
    PyObject **items = PySequence_Fast_ITEMS(seqobj);
    srtp_protect_fn protect = (srtp_protect_fn)(uintptr_t)protect_addr;
    void *ctx = (void *)(uintptr_t)ctx_addr;
    const uint8_t pt_byte = (uint8_t)pt;
    const uint32_t ts_n = htonl((uint32_t)ts), ssrc_n = htonl((uint32_t)ssrc);

    /* Per packet: its bytes (in a ring slot, or in pkts[i], a bytes object this call owns). */
    PyObject *pkts_stack[BATCH];
    uint8_t *bufs_stack[BATCH];
    int lens_stack[BATCH];
    PyObject **pkts = pkts_stack;
    uint8_t **bufs = bufs_stack;
    int *lens = lens_stack;
    if (n > BATCH) {
        pkts = PyMem_Malloc(sizeof(PyObject *) * n);
        bufs = PyMem_Malloc(sizeof(uint8_t *) * n);
        lens = PyMem_Malloc(sizeof(int) * n);
        if (pkts == NULL || bufs == NULL || lens == NULL) {
            PyErr_NoMemory();
            goto fail_alloc;
        }
    }
    Py_ssize_t made = 0;
    unsigned long long octets = 0;
    uint16_t s = (uint16_t)seq;
    /* Ring slots are used for the frame's last `slots` packets only: no slot twice in one call. */
    const Py_ssize_t ring_from = ring != NULL ? (n > ring->slots ? n - ring->slots : 0) : n;

    /* 1. Build and protect every packet (GIL held: touches Python objects). */
    for (Py_ssize_t i = 0; i < n; i++, s++) {
        PyObject *p = items[i];
        if (!PyBytes_Check(p)) {
            PyErr_SetString(PyExc_TypeError, "payloads must be bytes");
            goto fail;
        }
        Py_ssize_t plen = PyBytes_GET_SIZE(p);
        if (plen > 65535 - hdr_len - SRTP_MAX_TRAILER_LEN) {
            PyErr_SetString(PyExc_ValueError, "payload too long");
            goto fail;
        }
        const Py_ssize_t cap = hdr_len + plen + SRTP_MAX_TRAILER_LEN;
        Py_ssize_t slot = -1;
        uint8_t *b;
        PyObject *pkt = NULL;
        if (ring != NULL) {
            slot = (Py_ssize_t)s % ring->slots;
            ring->len[slot] = -1; /* whatever it held is gone; set again once this packet is made */
            if (i < ring_from || cap > ring->size)
                slot = -1;
        }
        if (slot >= 0) {
            b = ring->buf + slot * ring->size;
        } else {
            pkt = PyBytes_FromStringAndSize(NULL, cap);
            if (pkt == NULL)
                goto fail;
            b = (uint8_t *)PyBytes_AS_STRING(pkt);
        }
        b[0] = ext_len ? 0x90 : 0x80;
        b[1] = i == n - 1 ? (uint8_t)(0x80 | pt_byte) : pt_byte;
        b[2] = (uint8_t)(s >> 8);
        b[3] = (uint8_t)s;
        memcpy(b + 4, &ts_n, 4);
        memcpy(b + 8, &ssrc_n, 4);
        if (ext_len)
            memcpy(b + RTP_HDR_LEN, ext, (size_t)ext_len);
        memcpy(b + hdr_len, PyBytes_AS_STRING(p), plen);
        int len = (int)(hdr_len + plen);
        int rc = protect(ctx, b, &len);
        if (rc != 0 || len < 0 || len > cap) {
            Py_XDECREF(pkt);
            PyErr_Format(SrtpError, "srtp_protect failed (status %d)", rc);
            goto fail;
        }
        if (pkt != NULL) {
            if (_PyBytes_Resize(&pkt, len) < 0)
                goto fail;
            b = (uint8_t *)PyBytes_AS_STRING(pkt);
        } else {
            ring->len[slot] = len;
            ring->seq[slot] = (int32_t)s;
        }
        pkts[made] = pkt;
        bufs[made] = b;
        lens[made] = len;
        made++;
        octets += (unsigned long long)plen;
    }

    /* 2. Send them, BATCH messages at a time, without the GIL. */
    Py_ssize_t sent = 0;
    unsigned long long wire = 0;
    if (fd >= 0) {
        struct mmsghdr msgs[BATCH];
        struct iovec iov[BATCH];
        char ctrl[BATCH][CMSG_SPACE(sizeof(uint16_t))] __attribute__((aligned(8)));
        int segs[BATCH];
        while (sent < made) {
            int gso = gso_on && made - sent > 1;
            int k = build_msgs(bufs, lens, sent, made, &dst, gso, msgs, iov, ctrl, segs);
            int r, err;
            Py_BEGIN_ALLOW_THREADS
            do {
                r = sendmmsg(fd, msgs, (unsigned int)k, MSG_DONTWAIT);
            } while (r < 0 && errno == EINTR);
            err = errno;
            Py_END_ALLOW_THREADS
            if (r < 0 && gso && (err == EINVAL || err == EIO || err == ENOPROTOOPT || err == EOPNOTSUPP)) {
                gso_on = 0; /* this kernel/route cannot: one packet per message from now on */
                continue;
            }
            if (r <= 0)
                break; /* EAGAIN or an error: the rest goes back to the caller */
            for (int j = 0; j < r; j++) {
                for (int q = 0; q < segs[j]; q++)
                    wire += (unsigned long long)lens[sent + q];
                sent += segs[j];
            }
            if (r < k)
                break;
        }
    }

    /* 3. History (NACK) and the unsent rest. */
    PyObject *unsent = Py_None;
    Py_INCREF(Py_None);
    if (sent < made) {
        Py_DECREF(Py_None);
        unsent = PyList_New(made - sent);
        if (unsent == NULL)
            goto fail;
        for (Py_ssize_t i = sent; i < made; i++) {
            PyObject *u = pkts[i];
            if (u != NULL)
                Py_INCREF(u);
            else if ((u = PyBytes_FromStringAndSize((const char *)bufs[i], lens[i])) == NULL) {
                Py_DECREF(unsent);
                goto fail;
            }
            PyList_SET_ITEM(unsent, i - sent, u);
        }
    }
    if (PyList_Check(history)) {
        Py_ssize_t hl = PyList_GET_SIZE(history);
        uint16_t hs = (uint16_t)seq;
        for (Py_ssize_t i = 0; i < made; i++, hs++) {
            PyObject *old = PyList_GET_ITEM(history, hs % hl);
            PyList_SET_ITEM(history, hs % hl, pkts[i]); /* steals (a list history: all are bytes) */
            pkts[i] = NULL;
            Py_XDECREF(old);
        }
    }
    release(pkts, 0, made);
    if (pkts != pkts_stack) {
        PyMem_Free(pkts);
        PyMem_Free(bufs);
        PyMem_Free(lens);
    }
    Py_DECREF(seqobj);
    return Py_BuildValue("(IKKN)", (unsigned int)s, wire, octets, unsent);

fail:
    if (ring != NULL) { /* nothing of a failed call stays resendable */
        uint16_t fs = (uint16_t)seq;
        for (Py_ssize_t i = 0; i < n && i < ring->slots; i++, fs++)
            ring->len[(Py_ssize_t)fs % ring->slots] = -1;
    }
    release(pkts, 0, made);
fail_alloc:
    if (pkts != pkts_stack) {
        PyMem_Free(pkts);
        PyMem_Free(bufs);
        PyMem_Free(lens);
    }
    Py_DECREF(seqobj);
    return NULL;
}

static PyObject *
set_gso(PyObject *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    gso_on = on;
    Py_RETURN_NONE;
}

static PyObject *
gso_enabled(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(gso_on);
}

static PyMethodDef methods[] = {
    {"set_gso", set_gso, METH_O, "set_gso(on): use UDP GSO for runs of equal-sized packets"},
    {"gso_enabled", gso_enabled, METH_NOARGS, "True while UDP GSO is used (it turns itself off if refused)"},
    {"send_frame", send_frame, METH_VARARGS,
     "send_frame(payloads, pt, seq, ts, ssrc, protect_fn, srtp_ctx, fd, host, port, history[, ext])"
     " -> (new_seq, wire_bytes_sent, payload_octets, unsent)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastsend", "RTP + SRTP + sendmmsg per frame per viewer.", -1, methods,
};

PyMODINIT_FUNC
PyInit__fastsend(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    SrtpError = PyErr_NewException("edge_agent.media._fastsend.SrtpError", NULL, NULL);
    if (SrtpError == NULL || PyModule_AddObject(m, "SrtpError", SrtpError) < 0) {
        Py_XDECREF(SrtpError);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(SrtpError);
    if (PyType_Ready(&HistoryType) < 0)
        return NULL;
    Py_INCREF(&HistoryType);
    if (PyModule_AddObject(m, "History", (PyObject *)&HistoryType) < 0) {
        Py_DECREF(&HistoryType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "BATCH", BATCH);
    return m;
}
