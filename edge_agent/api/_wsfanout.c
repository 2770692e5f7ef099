/* One C call writes a message to many TCP sockets with the GIL released.
 *
 * send_each(fds, data, close_fds) -> [(index, sent), ...]
 *
 * fds        list of int file descriptors (non-blocking stream sockets)
 * data       bytes written to every fd, or a list of bytes (one per fd, same length as fds)
 * close_fds  when true, every fd is closed after its write (the caller passes dup()ed fds, so
 *            that a socket closed by the event loop meanwhile cannot hand its number to another)
 *
 * Returns the fds not written whole: (index into fds, bytes the kernel took). The caller hands
 * the rest to the socket's asyncio transport, which buffers it or reports the error exactly as
 * it does for its own writes. EAGAIN (a full send buffer) and any error stop at that fd.
 *
 * Why: a table-wide message costs one send per socket, ~26 us of kernel TCP work each on loopback;
 * 5,000 of them are ~130 ms of one core. Done here, in a worker thread, they run on the other core
 * while the event loop keeps answering decisions. MSG_NOSIGNAL: a peer gone is an error, not SIGPIPE.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static PyObject *
send_each(PyObject *self, PyObject *args)
{
    PyObject *fds_obj, *data_obj;
    int close_fds = 0;
    if (!PyArg_ParseTuple(args, "O!Op", &PyList_Type, &fds_obj, &data_obj, &close_fds))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(fds_obj);
    int per_fd = PyList_Check(data_obj);
    if (per_fd) {
        if (PyList_GET_SIZE(data_obj) != n) {
            PyErr_SetString(PyExc_ValueError, "one data item per fd");
            return NULL;
        }
    } else if (!PyBytes_Check(data_obj)) {
        PyErr_SetString(PyExc_TypeError, "data must be bytes or a list of bytes");
        return NULL;
    }
    int *fds = NULL;
    const char **bufs = NULL;
    Py_ssize_t *lens = NULL, *sent = NULL;
    PyObject *items = NULL; /* a tuple holding the data objects while the GIL is released */
    PyObject *out = NULL;
    if (n == 0)
        return PyList_New(0);
    fds = PyMem_Malloc(sizeof(int) * n);
    bufs = PyMem_Malloc(sizeof(char *) * n);
    lens = PyMem_Malloc(sizeof(Py_ssize_t) * n);
    sent = PyMem_Malloc(sizeof(Py_ssize_t) * n);
    if (!fds || !bufs || !lens || !sent) {
        PyErr_NoMemory();
        goto done;
    }
    items = per_fd ? PyList_AsTuple(data_obj) : NULL;
    if (per_fd && !items)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        long fd = PyLong_AsLong(PyList_GET_ITEM(fds_obj, i));
        if (fd == -1 && PyErr_Occurred())
            goto done;
        if (fd < 0 || fd > 0x7fffffff) {
            PyErr_SetString(PyExc_ValueError, "bad fd");
            goto done;
        }
        fds[i] = (int)fd;
        PyObject *d = per_fd ? PyTuple_GET_ITEM(items, i) : data_obj;
        if (!PyBytes_Check(d)) {
            PyErr_SetString(PyExc_TypeError, "data items must be bytes");
            goto done;
        }
        bufs[i] = PyBytes_AS_STRING(d);
        lens[i] = PyBytes_GET_SIZE(d);
    }
    /* From here on nothing can fail before every fd is written (and closed when asked). */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t off = 0;
        while (off < lens[i]) {
            ssize_t k = send(fds[i], bufs[i] + off, (size_t)(lens[i] - off), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0) {
                off += k;
                continue;
            }
            if (k < 0 && errno == EINTR)
                continue;
            break; /* EAGAIN, an error, or 0: the transport takes the rest */
        }
        sent[i] = off;
        if (close_fds)
            close(fds[i]);
    }
    Py_END_ALLOW_THREADS
    out = PyList_New(0);
    if (!out)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (sent[i] == lens[i])
            continue;
        PyObject *t = Py_BuildValue("(nn)", i, sent[i]);
        if (!t || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(t);
    }
done:
    Py_XDECREF(items);
    PyMem_Free(fds);
    PyMem_Free(bufs);
    PyMem_Free(lens);
    PyMem_Free(sent);
    return out;
}

static PyMethodDef methods[] = {
    {"send_each", send_each, METH_VARARGS,
     "send_each(fds, data, close_fds) -> [(index, sent)] for the fds not written whole (GIL released)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_wsfanout", "One message to many sockets with the GIL released.", -1, methods,
};

PyMODINIT_FUNC
PyInit__wsfanout(void)
{
    return PyModule_Create(&module);
}
