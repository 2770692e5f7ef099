/* One C call per frame per viewer: RTP header + SRTP protect + sendmmsg.
 *
 * send_frame(payloads, pt, seq, ts, ssrc, protect_fn, srtp_ctx, fd, host, port, history)
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
 * history     list used as a ring indexed by seq % len(history) for NACK retransmission, or None;
 *             it receives the SRTP-protected packets (bytes), exactly what went on the wire.
 *
 * unsent is None when every packet went out, else the list of protected packets that sendmmsg
 * did not take (EAGAIN, an error): the caller hands them to the asyncio transport, which buffers
 * or reports them exactly as it does for its own sendto.
 *
 * The GIL is released around sendmmsg; the packets are bytes objects this call owns meanwhile.
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

/* SRTP_MAX_TAG_LEN + SRTP_MAX_MKI_LEN, as pylibsrtp reserves. */
#define SRTP_MAX_TRAILER_LEN (16 + 128)
#define RTP_HDR_LEN 12
#define BATCH 64

typedef int (*srtp_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);

static PyObject *SrtpError;

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

    if (!PyArg_ParseTuple(args, "OiIkkKKisiO:send_frame", &payloads, &pt, &seq, &ts, &ssrc,
                          &protect_addr, &ctx_addr, &fd, &host, &port, &history))
        return NULL;
    if (pt < 0 || pt > 127) {
        PyErr_SetString(PyExc_ValueError, "payload type out of range");
        return NULL;
    }
    if (!protect_addr || !ctx_addr) {
        PyErr_SetString(PyExc_ValueError, "null SRTP function or context");
        return NULL;
    }
    if (history != Py_None && (!PyList_Check(history) || PyList_GET_SIZE(history) == 0)) {
        PyErr_SetString(PyExc_TypeError, "history must be a non-empty list or None");
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

    PyObject *pkts_stack[BATCH];
    PyObject **pkts = n <= BATCH ? pkts_stack : PyMem_Malloc(sizeof(PyObject *) * n);
    if (pkts == NULL) {
        Py_DECREF(seqobj);
        return PyErr_NoMemory();
    }
    Py_ssize_t made = 0;
    unsigned long long octets = 0;
    uint16_t s = (uint16_t)seq;

    /* 1. Build and protect every packet (GIL held: touches Python objects). */
    for (Py_ssize_t i = 0; i < n; i++, s++) {
        PyObject *p = items[i];
        if (!PyBytes_Check(p)) {
            PyErr_SetString(PyExc_TypeError, "payloads must be bytes");
            goto fail;
        }
        Py_ssize_t plen = PyBytes_GET_SIZE(p);
        if (plen > 65535 - RTP_HDR_LEN - SRTP_MAX_TRAILER_LEN) {
            PyErr_SetString(PyExc_ValueError, "payload too long");
            goto fail;
        }
        PyObject *pkt = PyBytes_FromStringAndSize(NULL, RTP_HDR_LEN + plen + SRTP_MAX_TRAILER_LEN);
        if (pkt == NULL)
            goto fail;
        uint8_t *b = (uint8_t *)PyBytes_AS_STRING(pkt);
        b[0] = 0x80;
        b[1] = i == n - 1 ? (uint8_t)(0x80 | pt_byte) : pt_byte;
        b[2] = (uint8_t)(s >> 8);
        b[3] = (uint8_t)s;
        memcpy(b + 4, &ts_n, 4);
        memcpy(b + 8, &ssrc_n, 4);
        memcpy(b + RTP_HDR_LEN, PyBytes_AS_STRING(p), plen);
        int len = (int)(RTP_HDR_LEN + plen);
        int rc = protect(ctx, b, &len);
        if (rc != 0 || len < 0 || len > RTP_HDR_LEN + plen + SRTP_MAX_TRAILER_LEN) {
            Py_DECREF(pkt);
            PyErr_Format(SrtpError, "srtp_protect failed (status %d)", rc);
            goto fail;
        }
        if (_PyBytes_Resize(&pkt, len) < 0)
            goto fail;
        pkts[made++] = pkt;
        octets += (unsigned long long)plen;
    }

    /* 2. Send them, BATCH at a time, without the GIL. */
    Py_ssize_t sent = 0;
    unsigned long long wire = 0;
    if (fd >= 0) {
        struct mmsghdr msgs[BATCH];
        struct iovec iov[BATCH];
        while (sent < made) {
            int k = (int)(made - sent < BATCH ? made - sent : BATCH);
            for (int j = 0; j < k; j++) {
                PyObject *pkt = pkts[sent + j];
                iov[j].iov_base = PyBytes_AS_STRING(pkt);
                iov[j].iov_len = (size_t)PyBytes_GET_SIZE(pkt);
                memset(&msgs[j].msg_hdr, 0, sizeof msgs[j].msg_hdr);
                msgs[j].msg_hdr.msg_name = &dst;
                msgs[j].msg_hdr.msg_namelen = sizeof dst;
                msgs[j].msg_hdr.msg_iov = &iov[j];
                msgs[j].msg_hdr.msg_iovlen = 1;
                msgs[j].msg_len = 0;
            }
            int r;
            Py_BEGIN_ALLOW_THREADS
            do {
                r = sendmmsg(fd, msgs, (unsigned int)k, MSG_DONTWAIT);
            } while (r < 0 && errno == EINTR);
            Py_END_ALLOW_THREADS
            if (r <= 0)
                break; /* EAGAIN or an error: the rest goes back to the caller */
            for (int j = 0; j < r; j++)
                wire += iov[j].iov_len;
            sent += r;
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
            Py_INCREF(pkts[i]);
            PyList_SET_ITEM(unsent, i - sent, pkts[i]);
        }
    }
    if (history != Py_None) {
        Py_ssize_t hl = PyList_GET_SIZE(history);
        uint16_t hs = (uint16_t)seq;
        for (Py_ssize_t i = 0; i < made; i++, hs++) {
            PyObject *old = PyList_GET_ITEM(history, hs % hl);
            PyList_SET_ITEM(history, hs % hl, pkts[i]); /* steals */
            pkts[i] = NULL;
            Py_XDECREF(old);
        }
    }
    release(pkts, 0, made);
    if (pkts != pkts_stack)
        PyMem_Free(pkts);
    Py_DECREF(seqobj);
    return Py_BuildValue("(IKKN)", (unsigned int)s, wire, octets, unsent);

fail:
    release(pkts, 0, made);
    if (pkts != pkts_stack)
        PyMem_Free(pkts);
    Py_DECREF(seqobj);
    return NULL;
}

static PyMethodDef methods[] = {
    {"send_frame", send_frame, METH_VARARGS,
     "send_frame(payloads, pt, seq, ts, ssrc, protect_fn, srtp_ctx, fd, host, port, history)"
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
    PyModule_AddIntConstant(m, "BATCH", BATCH);
    return m;
}
