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
 *
 * Sender(threads, nice, batch): the same sends done by threads of its own that never take the GIL
 * (at `nice`; SCHED_BATCH when `batch`: woken by the loop, they do not preempt it).
 *   submit(fds, data, urgent=False) -> job id   queue a batch (called by the event loop); urgent
 *                                   batches (replies: a few sockets each) go before the others
 *                                   (a broadcast's), oldest first within each queue
 *   completed() -> [(job id, [(index, sent), ...]), ...]   batches done since the last call
 *   fileno() -> an eventfd, readable once a batch is done (the loop's add_reader)
 *   close()                         finish what is queued, stop the threads
 * Python threads need the GIL to take a batch and to hand it back: at a table of 5,000 players the
 * event loop then waits for a core behind the very threads it woke (both cores busy sending), in
 * the middle of claiming the sockets of the next batch. These threads can also run at a lower
 * priority (`nice`) or as SCHED_BATCH threads (`batch`), so that a thread the loop has just woken
 * does not take the loop's core from it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Write bufs[i] to fds[i] for every i; sent[i]: what the kernel took. No Python API. */
static void
send_all(Py_ssize_t n, const int *fds, const char *const *bufs, const Py_ssize_t *lens, Py_ssize_t *sent,
         int close_fds)
{
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
}

/* The fds and buffers of one call, read from Python objects (GIL held). On failure an exception
 * is set and everything is freed. `keep` holds the data objects while the buffers are in use. */
typedef struct batch {
    struct batch *next;
    long id;
    Py_ssize_t n;
    int *fds;
    const char **bufs;
    Py_ssize_t *lens;
    Py_ssize_t *sent;
    PyObject *keep;
} batch_t;

static void
batch_free(batch_t *b)
{
    if (!b)
        return;
    Py_XDECREF(b->keep);
    PyMem_RawFree(b->fds);
    PyMem_RawFree(b->bufs);
    PyMem_RawFree(b->lens);
    PyMem_RawFree(b->sent);
    PyMem_RawFree(b);
}

static batch_t *
batch_new(PyObject *fds_obj, PyObject *data_obj)
{
    if (!PyList_Check(fds_obj)) {
        PyErr_SetString(PyExc_TypeError, "fds must be a list of int");
        return NULL;
    }
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
    batch_t *b = PyMem_RawCalloc(1, sizeof(batch_t));
    if (!b)
        return (batch_t *)PyErr_NoMemory();
    size_t m = n > 0 ? (size_t)n : 1;
    b->n = n;
    b->fds = PyMem_RawMalloc(sizeof(int) * m);
    b->bufs = PyMem_RawMalloc(sizeof(char *) * m);
    b->lens = PyMem_RawMalloc(sizeof(Py_ssize_t) * m);
    b->sent = PyMem_RawMalloc(sizeof(Py_ssize_t) * m);
    if (!b->fds || !b->bufs || !b->lens || !b->sent) {
        batch_free(b);
        return (batch_t *)PyErr_NoMemory();
    }
    b->keep = per_fd ? PyList_AsTuple(data_obj) : Py_NewRef(data_obj);
    if (!b->keep) {
        batch_free(b);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long fd = PyLong_AsLong(PyList_GET_ITEM(fds_obj, i));
        if (fd == -1 && PyErr_Occurred()) {
            batch_free(b);
            return NULL;
        }
        if (fd < 0 || fd > 0x7fffffff) {
            PyErr_SetString(PyExc_ValueError, "bad fd");
            batch_free(b);
            return NULL;
        }
        b->fds[i] = (int)fd;
        PyObject *d = per_fd ? PyTuple_GET_ITEM(b->keep, i) : b->keep;
        if (!PyBytes_Check(d)) {
            PyErr_SetString(PyExc_TypeError, "data items must be bytes");
            batch_free(b);
            return NULL;
        }
        b->bufs[i] = PyBytes_AS_STRING(d);
        b->lens[i] = PyBytes_GET_SIZE(d);
    }
    return b;
}

/* [(index, sent)] for the fds of `b` not written whole. */
static PyObject *
batch_left(const batch_t *b)
{
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        if (b->sent[i] == b->lens[i])
            continue;
        PyObject *t = Py_BuildValue("(nn)", i, b->sent[i]);
        if (!t || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(t);
    }
    return out;
}

static PyObject *
send_each(PyObject *self, PyObject *args)
{
    PyObject *fds_obj, *data_obj;
    int close_fds = 0;
    if (!PyArg_ParseTuple(args, "O!Op", &PyList_Type, &fds_obj, &data_obj, &close_fds))
        return NULL;
    batch_t *b = batch_new(fds_obj, data_obj);
    if (!b)
        return NULL;
    /* From here on nothing can fail before every fd is written (and closed when asked). */
    Py_BEGIN_ALLOW_THREADS
    send_all(b->n, b->fds, b->bufs, b->lens, b->sent, close_fds);
    Py_END_ALLOW_THREADS
    PyObject *out = batch_left(b);
    batch_free(b);
    return out;
}

/* --- Sender -------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch_t *todo, *todo_tail; /* queued, oldest first */
    batch_t *soon, *soon_tail; /* urgent batches, taken before todo's */
    batch_t *done, *done_tail; /* sent, not yet collected */
    pthread_t *threads;
    int nthreads;
    int nice;
    int batch; /* SCHED_BATCH threads */
    int efd;
    int stopping;
    int started; /* threads running (their nice value set) */
    int inited;  /* mu and cv initialised */
    pid_t pid;   /* the process whose threads these are: a fork()ed child has none of them */
    long next_id;
} Sender;

static void *
sender_worker(void *arg)
{
    Sender *s = arg;
    if (s->nice > 0) /* Linux: a thread's nice value is its own (setpriority on its tid) */
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), s->nice);
    if (s->batch) { /* woken by the loop, the thread does not preempt it (same share of the CPU) */
        struct sched_param sp = {0};
        (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    }
    pthread_mutex_lock(&s->mu);
    s->started++;
    pthread_cond_broadcast(&s->cv);
    for (;;) {
        while (!s->todo && !s->soon && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);  /* shared with Sender_init's wait: spurious wake-ups are fine */
        batch_t *b;
        if (s->soon) {
            b = s->soon;
            s->soon = b->next;
            if (!s->soon)
                s->soon_tail = NULL;
        } else if (s->todo) {
            b = s->todo;
            s->todo = b->next;
            if (!s->todo)
                s->todo_tail = NULL;
        } else {
            break; /* stopping, and nothing left to send */
        }
        pthread_mutex_unlock(&s->mu);
        send_all(b->n, b->fds, b->bufs, b->lens, b->sent, 0);
        pthread_mutex_lock(&s->mu);
        b->next = NULL;
        if (s->done_tail)
            s->done_tail->next = b;
        else
            s->done = b;
        s->done_tail = b;
        uint64_t one = 1;
        (void)!write(s->efd, &one, sizeof one);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void sender_stop(Sender *s);

static int
Sender_init(Sender *s, PyObject *args, PyObject *kw)
{
    int threads = 2, nice = 0, batch = 0;
    static char *names[] = {"threads", "nice", "batch", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|iip", names, &threads, &nice, &batch))
        return -1;
    if (s->inited) {
        PyErr_SetString(PyExc_RuntimeError, "Sender already started");
        return -1;
    }
    if (threads < 1 || threads > 64) {
        PyErr_SetString(PyExc_ValueError, "threads must be 1..64");
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->inited = 1;
    s->pid = getpid();
    s->nice = nice;
    s->batch = batch;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    s->threads = PyMem_RawCalloc((size_t)threads, sizeof(pthread_t));
    if (!s->threads) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < threads; i++) {
        int err = pthread_create(&s->threads[i], NULL, sender_worker, s);
        if (err) {
            sender_stop(s);
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        s->nthreads = i + 1;
    }
    /* Every thread runs (at its nice value) before the first batch can be queued. */
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&s->mu);
    while (s->started < s->nthreads)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    Py_END_ALLOW_THREADS
    return 0;
}

/* Let the threads finish what is queued, then join them (GIL released meanwhile). */
static void
sender_stop(Sender *s)
{
    if (!s->threads)
        return;
    if (s->pid != getpid()) { /* a fork()ed child: the threads (and maybe the lock) are the parent's */
        s->threads = NULL;
        s->nthreads = 0;
        s->stopping = 1;
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(s->threads);
    s->threads = NULL;
    s->nthreads = 0;
}

static PyObject *
Sender_submit(Sender *s, PyObject *args)
{
    PyObject *fds_obj, *data_obj;
    int urgent = 0;
    if (!PyArg_ParseTuple(args, "OO|p", &fds_obj, &data_obj, &urgent))
        return NULL;
    if (!s->threads || s->stopping || s->pid != getpid()) {
        PyErr_SetString(PyExc_RuntimeError, "Sender is closed (or is the parent process's)");
        return NULL;
    }
    batch_t *b = batch_new(fds_obj, data_obj);
    if (!b)
        return NULL;
    pthread_mutex_lock(&s->mu);
    b->id = ++s->next_id;
    batch_t **head = urgent ? &s->soon : &s->todo, **tail = urgent ? &s->soon_tail : &s->todo_tail;
    if (*tail)
        (*tail)->next = b;
    else
        *head = b;
    *tail = b;
    pthread_cond_broadcast(&s->cv);  /* the cv is shared with start-up: wake every waiter */
    pthread_mutex_unlock(&s->mu);
    return PyLong_FromLong(b->id);
}

static PyObject *
Sender_completed(Sender *s, PyObject *Py_UNUSED(ignored))
{
    uint64_t count;
    if (s->pid != getpid()) /* a fork()ed child: the batches are the parent's */
        return PyList_New(0);
    if (s->efd >= 0)
        (void)!read(s->efd, &count, sizeof count); /* reset readiness; the list below is the truth */
    pthread_mutex_lock(&s->mu);
    batch_t *b = s->done;
    s->done = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    PyObject *out = PyList_New(0);
    while (b) {
        batch_t *next = b->next;
        if (out) {
            PyObject *left = batch_left(b);
            PyObject *t = left ? Py_BuildValue("(lN)", b->id, left) : NULL;
            if (!t || PyList_Append(out, t) < 0)
                Py_CLEAR(out); /* the batches are freed all the same */
            Py_XDECREF(t);
        }
        batch_free(b);
        b = next;
    }
    return out;
}

static PyObject *
Sender_fileno(Sender *s, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(s->efd);
}

static PyObject *
Sender_close(Sender *s, PyObject *Py_UNUSED(ignored))
{
    sender_stop(s);
    Py_RETURN_NONE;
}

static void
Sender_dealloc(Sender *s)
{
    sender_stop(s);
    for (batch_t *lists[3] = {s->soon, s->todo, s->done}, **l = lists; l < lists + 3; l++)
        for (batch_t *b = *l, *next; b; b = next) {
            next = b->next;
            batch_free(b);
        }
    if (s->efd >= 0)
        close(s->efd);
    if (s->inited && s->pid == getpid()) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
    }
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *
Sender_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    Sender *s = (Sender *)type->tp_alloc(type, 0);
    if (s)
        s->efd = -1;
    return (PyObject *)s;
}

static PyMethodDef sender_methods[] = {
    {"submit", (PyCFunction)Sender_submit, METH_VARARGS, "submit(fds, data, urgent=False) -> batch id (sent by the threads; urgent ones first)."},
    {"completed", (PyCFunction)Sender_completed, METH_NOARGS,
     "completed() -> [(batch id, [(index, sent), ...])] for the batches sent since the last call."},
    {"fileno", (PyCFunction)Sender_fileno, METH_NOARGS, "fileno() -> the eventfd, readable once a batch is done."},
    {"close", (PyCFunction)Sender_close, METH_NOARGS, "close(): send what is queued, stop the threads."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "edge_agent.api._wsfanout.Sender",
    .tp_basicsize = sizeof(Sender),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Sender(threads=2, nice=0): batches of sends by threads that never take the GIL.",
    .tp_new = Sender_new,
    .tp_init = (initproc)Sender_init,
    .tp_dealloc = (destructor)Sender_dealloc,
    .tp_methods = sender_methods,
};

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
    if (PyType_Ready(&SenderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddObjectRef(m, "Sender", (PyObject *)&SenderType) < 0)
        Py_CLEAR(m);
    return m;
}
