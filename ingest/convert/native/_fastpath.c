/*
 * ingest.native._fastpath: span normalization from the protobuf bytes of an OTLP
 * ExportTraceServiceRequest straight into Arrow column buffers.
 *
 * The pure-Python normalizer (ingest/normalize.py) is the reference: this code must produce
 * the very same columns. It therefore does only what it can do exactly and without doubt,
 * and asks Python for everything else:
 *
 *   native      wire walking (with every bounds check), hex ids, attribute values as text
 *               (strings, ints, doubles as Python repr, bools), type codes, duplicate keys,
 *               the per-span first-hit-wins resolution of typed columns, the usage rules of
 *               ingest.routing.Router._usage, linear integer pricing, column buffers.
 *   Python      (callbacks, each memoized here or there) how a key routes (once per distinct
 *               key), odd attribute encodings and routes that need the convention tables
 *               (once per distinct serialized attribute), resources and scopes (once per
 *               distinct one), price plans (once per provider, model and day), spans with
 *               JSON or marker attributes (Langfuse, OpenInference metadata, OpenLLMetry
 *               entity names), events and links, prices that are not linear in integers.
 *
 * Whenever the request is not what this file fully understands (a malformed or truncated
 * message, a known field with an unexpected wire type, a varint beyond 64 bits, invalid
 * UTF-8, a callback raising, a value of an unexpected type), normalize() returns None and the
 * caller runs the Python path on the whole request, which then produces its result or raises
 * its error: the output (or the failure) is the reference's by construction.
 *
 * Nothing here keeps a pointer into the request after normalize() returns; the caches own
 * copies of what they keep. The GIL is held throughout (callbacks run Python code).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------
 * Return codes of the internal functions.
 */
#define OK 0
#define ERR (-1) /* a Python exception is set */
#define ODD 1    /* not for this fast path: run the Python path on the request */

#define MAXCOLS 64     /* sparse (attribute-fed) columns; ingest.normalize has 30 */
#define MAX_KEYS 10000 /* distinct attribute keys cached before the caches are reset */
#define MAX_RAWS 50000 /* distinct serialized attributes cached before the reset */
#define MAX_RAW_BYTES (32 << 20)
#define MAX_PLANS 100000
#define MAX_TOKENS (1LL << 53) /* ingest.usage.MAX_TOKENS */
#define NS_PER_DAY 86400000000000ULL
#define MAX_SPAN_TIME_NS 9214646400000000000ULL /* ingest.validate: 2262-01-01T00:00:00Z */
/* ingest.notes: END_TIME_KEY, KIND_KEY, STATUS_CODE_KEY */
#define END_NOTE "tasklake.end_time_unix_nano"
#define KIND_NOTE "tasklake.kind"
#define STATUS_NOTE "tasklake.status_code"
#define MAX_PICO 1000000000000000000LL /* ingest.price.MAX_PICO */
#define COEF_LIMIT (1LL << 62)

/* ------------------------------------------------------------------------------------------
 * Growable byte buffers (the column builders and scratch space).
 */
typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

static int
buf_grow(Buf *b, Py_ssize_t extra)
{
    Py_ssize_t need = b->len + extra;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return ERR;
        }
        cap *= 2;
    }
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return ERR;
    }
    b->p = p;
    b->cap = cap;
    return OK;
}

static inline int
buf_reserve(Buf *b, Py_ssize_t extra)
{
    return (b->len + extra <= b->cap) ? OK : buf_grow(b, extra);
}

static inline int
buf_put(Buf *b, const void *src, Py_ssize_t n)
{
    if (buf_reserve(b, n) != OK)
        return ERR;
    if (n)
        memcpy(b->p + b->len, src, (size_t)n);
    b->len += n;
    return OK;
}

static inline int
buf_byte(Buf *b, uint8_t v)
{
    if (buf_reserve(b, 1) != OK)
        return ERR;
    b->p[b->len++] = (char)v;
    return OK;
}

static inline int
buf_i32(Buf *b, int32_t v)
{
    return buf_put(b, &v, 4);
}

static void
buf_free(Buf *b)
{
    PyMem_Free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Keep capacity between requests, but not the capacity a giant request needed. */
static void
buf_reset(Buf *b)
{
    b->len = 0;
    if (b->cap > (64 << 20))
        buf_free(b);
}

/* ------------------------------------------------------------------------------------------
 * Hashing and a byte-keyed open-addressing table (the caches).
 */
static uint64_t
hash_bytes(const uint8_t *p, Py_ssize_t n, uint64_t seed)
{
    uint64_t h = seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n)
        memcpy(&w, p, (size_t)n);
    h = (h ^ w) * 0x94D049BB133111EBULL;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;
    return h;
}

/* Every cached object starts with this header: its key bytes (owned) and their hash. */
typedef struct {
    uint64_t hash;
    uint8_t *key;
    Py_ssize_t klen;
} Item;

typedef struct {
    Item **slots;
    size_t cap; /* power of two */
    size_t count;
} Table;

static Item *
table_get(const Table *t, const uint8_t *k, Py_ssize_t n, uint64_t h)
{
    if (t->cap == 0)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        Item *it = t->slots[i];
        if (it == NULL)
            return NULL;
        if (it->hash == h && it->klen == n && memcmp(it->key, k, (size_t)n) == 0)
            return it;
    }
}

static int
table_put(Table *t, Item *item)
{
    if ((t->count + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        Item **slots = PyMem_Calloc(cap, sizeof(Item *));
        if (slots == NULL) {
            PyErr_NoMemory();
            return ERR;
        }
        for (size_t j = 0; j < t->cap; j++) {
            Item *it = t->slots[j];
            if (it == NULL)
                continue;
            size_t i = (size_t)it->hash & (cap - 1);
            while (slots[i] != NULL)
                i = (i + 1) & (cap - 1);
            slots[i] = it;
        }
        PyMem_Free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    size_t mask = t->cap - 1;
    size_t i = (size_t)item->hash & mask;
    while (t->slots[i] != NULL)
        i = (i + 1) & mask;
    t->slots[i] = item;
    t->count++;
    return OK;
}

static void
table_clear(Table *t, void (*free_item)(Item *))
{
    for (size_t j = 0; j < t->cap; j++) {
        if (t->slots[j] != NULL)
            free_item(t->slots[j]);
    }
    PyMem_Free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}

static uint8_t *
dup_bytes(const void *src, Py_ssize_t n)
{
    uint8_t *p = PyMem_Malloc(n ? (size_t)n : 1);
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (n)
        memcpy(p, src, (size_t)n);
    return p;
}

/* ------------------------------------------------------------------------------------------
 * UTF-8: proto3 string fields must be valid UTF-8 (upb refuses the message otherwise), and
 * Python's strict decoder agrees with upb: no overlong forms, no surrogates, nothing past
 * U+10FFFF. Anything invalid sends the request to the Python path (which raises).
 */
static int
utf8_valid(const uint8_t *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
        }
        else if (c < 0xC2) {
            return 0;
        }
        else if (c < 0xE0) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        }
        else if (c < 0xF0) {
            if (i + 2 >= n)
                return 0;
            uint8_t c1 = s[i + 1], c2 = s[i + 2];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80)
                return 0;
            if (c == 0xE0 && c1 < 0xA0) /* overlong */
                return 0;
            if (c == 0xED && c1 >= 0xA0) /* UTF-16 surrogates */
                return 0;
            i += 3;
        }
        else if (c < 0xF5) {
            if (i + 3 >= n)
                return 0;
            uint8_t c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && c1 < 0x90) /* overlong */
                return 0;
            if (c == 0xF4 && c1 >= 0x90) /* past U+10FFFF */
                return 0;
            i += 4;
        }
        else {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------
 * Protobuf wire reading. Every read is bounds-checked against `end`; a read that does not
 * fit returns ODD. Tags are (field number << 3 | wire type) varints.
 */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    const uint8_t *p, *end;
} Rd;

static inline int
rd_varint(Rd *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return ODD;
        uint8_t c = *r->p++;
        /* the tenth byte holds bit 63 only; upb accepts (and drops) more, we do not try */
        if (i == 9 && c > 1)
            return ODD;
        v |= (uint64_t)(c & 0x7F) << (7 * i);
        if (c < 0x80) {
            *out = v;
            return OK;
        }
    }
    return ODD;
}

/* A tag: field number >= 1 and below 2^29, as upb requires. */
static inline int
rd_tag(Rd *r, uint32_t *field, int *wt)
{
    uint64_t t;
    if (r->p < r->end && *r->p < 0x80) { /* one-byte tags: fields 1..15 */
        t = *r->p++;
    }
    else if (rd_varint(r, &t) != OK) {
        return ODD;
    }
    if (t > 0xFFFFFFFFULL || (t >> 3) == 0)
        return ODD;
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    return OK;
}

static inline int
rd_len(Rd *r, const uint8_t **s, Py_ssize_t *n)
{
    uint64_t l;
    if (r->p < r->end && *r->p < 0x80) {
        l = *r->p++;
    }
    else if (rd_varint(r, &l) != OK) {
        return ODD;
    }
    if (l > (uint64_t)(r->end - r->p))
        return ODD;
    *s = r->p;
    *n = (Py_ssize_t)l;
    r->p += l;
    return OK;
}

static inline int
rd_fixed64(Rd *r, uint64_t *out)
{
    if (r->end - r->p < 8)
        return ODD;
    memcpy(out, r->p, 8); /* little-endian on the wire and on every target we build for */
    r->p += 8;
    return OK;
}

static inline int
rd_fixed32(Rd *r, uint32_t *out)
{
    if (r->end - r->p < 4)
        return ODD;
    memcpy(out, r->p, 4);
    r->p += 4;
    return OK;
}

/* Skip an unknown field, as upb does (it keeps it as an unknown field, which no one reads).
 * Groups (wire types 3 and 4, deprecated) and invalid wire types are ODD. */
static int
rd_skip(Rd *r, int wt)
{
    uint64_t v;
    const uint8_t *s;
    Py_ssize_t n;
    switch (wt) {
    case WT_VARINT:
        return rd_varint(r, &v);
    case WT_I64:
        return rd_fixed64(r, &v);
    case WT_LEN:
        return rd_len(r, &s, &n);
    case WT_I32:
        if (r->end - r->p < 4)
            return ODD;
        r->p += 4;
        return OK;
    default:
        return ODD;
    }
}

/* ------------------------------------------------------------------------------------------
 * Attribute routing, as the native side holds it.
 */
enum { V_STR = 1, V_INT = 2, V_DBL = 3 };

/* What one attribute contributes to one typed column: ingest.routing's Contrib, reduced to
 * what resolution reads. */
typedef struct KeyInfo KeyInfo;
typedef struct {
    int32_t col;  /* sparse column index */
    int32_t rank; /* lower wins; ties go to the first attribute */
    int32_t pair; /* Router pair number of (column, source key): source_keys by index */
    uint8_t vtype;
    uint8_t exact;    /* the column holds exactly the attribute: it may leave `attributes` */
    uint8_t model_op; /* operation column only: the value is a leaf model call */
    KeyInfo *src;     /* the source key */
    const char *s;
    Py_ssize_t slen;
    int64_t i;
    double d;
} Contrib;

/* How a route reads its attribute (ingest.routing: STR, TOK, COST), and the value kinds for
 * which this file reproduces Router.routed exactly (others: Python, memoized). */
enum { R_TEXT = 0, R_TOKENS = 1, R_COST = 2 };
enum { C_S = 1, C_I = 2, C_D = 4, C_B = 8 };
static const int route_codes[3] = {C_S | C_I | C_D | C_B, C_I | C_B, C_I | C_D | C_B};

typedef struct {
    int32_t col, rank, pair;
    uint8_t how;
} Route;

enum { K_COLD = 0, K_NATIVE = 1, K_PYTHON = 2 };

/* One distinct attribute key. */
struct KeyInfo {
    Item h;          /* key bytes: UTF-8, validated */
    PyObject *str;   /* the key as str */
    int mode;        /* K_COLD: no typed column reads it; K_NATIVE: routes below; K_PYTHON:
                      * Python routes each distinct value (operation names, providers, JSON) */
    int nroutes;
    Route *routes;
    int codes; /* value kinds every route of the key reads natively (C_* bits) */
    int32_t resp_pair;   /* pair ("response_model", key) for the request-model fallback */
    uint64_t seen_stamp; /* span serial: duplicate-key detection */
    uint64_t drop_stamp, keep_stamp;
};

/* One distinct serialized KeyValue that Python decoded and/or routed. */
typedef struct {
    Item h; /* the serialized KeyValue */
    KeyInfo *ki;
    char *text;
    Py_ssize_t tlen;
    char code;
    uint8_t special; /* routes Python must resolve per span (JSON, markers) */
    int ncontrib;
    Contrib *contribs;
} RawEntry;

enum { P_NONE = 0, P_LINEAR = 1, P_PYTHON = 2 };

/* A price plan per (provider, model, UTC day): ingest.price._Linear in integers. */
typedef struct {
    Item h;
    int kind;
    int nstarts;
    int64_t *starts;
    int64_t (*bands)[6]; /* nstarts + 1 bands of (input, cache read, cache write, output,
                          * reasoning, per request) coefficients in 1e-18 USD */
    PyObject *source, *ref;
    const char *source_s, *ref_s;
    Py_ssize_t source_n, ref_n;
} Plan;

static void
free_key(Item *it)
{
    KeyInfo *k = (KeyInfo *)it;
    Py_XDECREF(k->str);
    PyMem_Free(k->routes);
    PyMem_Free(k->h.key);
    PyMem_Free(k);
}

static void
free_raw(Item *it)
{
    RawEntry *e = (RawEntry *)it;
    for (int i = 0; i < e->ncontrib; i++)
        PyMem_Free((void *)e->contribs[i].s);
    PyMem_Free(e->contribs);
    PyMem_Free(e->text);
    PyMem_Free(e->h.key);
    PyMem_Free(e);
}

static void
free_plan(Item *it)
{
    Plan *p = (Plan *)it;
    Py_XDECREF(p->source);
    Py_XDECREF(p->ref);
    PyMem_Free(p->starts);
    PyMem_Free(p->bands);
    PyMem_Free(p->h.key);
    PyMem_Free(p);
}

/* ------------------------------------------------------------------------------------------
 * Column builders. Validity is one byte per row while building, packed at the end.
 */
typedef struct {
    int width;  /* bytes per value; 0: string (int32 offsets + data) */
    int nullable;
    Buf valid;
    Buf off;
    Buf data;
    Py_ssize_t nulls;
} Col;

static int
col_start(Col *c)
{
    buf_reset(&c->valid);
    buf_reset(&c->off);
    buf_reset(&c->data);
    c->nulls = 0;
    if (c->width == 0)
        return buf_i32(&c->off, 0);
    return OK;
}

static int
col_str(Col *c, const char *s, Py_ssize_t n)
{
    if (c->data.len + n > INT32_MAX) { /* int32 offsets */
        PyErr_SetString(PyExc_OverflowError, "string column over 2 GiB");
        return ERR;
    }
    if (buf_put(&c->data, s, n) != OK)
        return ERR;
    if (c->nullable && buf_byte(&c->valid, 1) != OK)
        return ERR;
    return buf_i32(&c->off, (int32_t)c->data.len);
}

static int
col_fixed(Col *c, const void *v)
{
    if (buf_put(&c->data, v, c->width) != OK)
        return ERR;
    if (c->nullable)
        return buf_byte(&c->valid, 1);
    return OK;
}

static int
col_null(Col *c)
{
    c->nulls++;
    if (buf_byte(&c->valid, 0) != OK)
        return ERR;
    if (c->width == 0)
        return buf_i32(&c->off, (int32_t)c->data.len);
    if (buf_reserve(&c->data, c->width) != OK)
        return ERR;
    memset(c->data.p + c->data.len, 0, (size_t)c->width);
    c->data.len += c->width;
    return OK;
}

static void
col_free(Col *c)
{
    buf_free(&c->valid);
    buf_free(&c->off);
    buf_free(&c->data);
}

/* A Python bytes copy of a buffer. */
static PyObject *
buf_bytes(const Buf *b)
{
    return PyBytes_FromStringAndSize(b->p ? b->p : "", b->len);
}

/* Pack one-byte-per-row flags into an Arrow bitmap. */
static PyObject *
packed_bits(const Buf *flags)
{
    Py_ssize_t n = flags->len;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (n + 7) / 8);
    if (out == NULL)
        return NULL;
    uint8_t *bits = (uint8_t *)PyBytes_AS_STRING(out);
    memset(bits, 0, (size_t)((n + 7) / 8));
    const uint8_t *f = (const uint8_t *)flags->p;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (f[i])
            bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    return out;
}

/* (validity bitmap or None, data buffers..., null count) for pa.Array.from_buffers. */
static PyObject *
col_result(const Col *c)
{
    PyObject *valid;
    if (c->nulls) {
        valid = packed_bits(&c->valid);
        if (valid == NULL)
            return NULL;
    }
    else {
        valid = Py_NewRef(Py_None);
    }
    if (c->width == 0) {
        PyObject *off = buf_bytes(&c->off);
        PyObject *data = buf_bytes(&c->data);
        if (off == NULL || data == NULL) {
            Py_XDECREF(off);
            Py_XDECREF(data);
            Py_DECREF(valid);
            return NULL;
        }
        return Py_BuildValue("(NNNn)", valid, off, data, c->nulls);
    }
    PyObject *data = buf_bytes(&c->data);
    if (data == NULL) {
        Py_DECREF(valid);
        return NULL;
    }
    return Py_BuildValue("(NNn)", valid, data, c->nulls);
}

/* ------------------------------------------------------------------------------------------
 * Per-span scratch.
 */
typedef struct {
    KeyInfo *ki;
    const char *text;
    Py_ssize_t tlen;
    char code;
    char num[40]; /* text of an int or a double */
    RawEntry *re; /* Python-decoded/routed entry, else NULL */
    Py_ssize_t c0, cn; /* natively made contributions in FastState.scratch */
    uint8_t dup;
    const uint8_t *raw;
    Py_ssize_t rawlen;
} Attr;

typedef struct {
    uint8_t have;
    uint8_t vtype;
    const char *s;
    Py_ssize_t slen;
    int64_t i;
    double d;
} Val;

/* The columns with a fixed place in the resolution rules (indexes into the sparse columns). */
typedef struct {
    int op, provider, request_model, response_model;
    int input, output, cache_read, cache_write, reasoning, total;
    int usage_basis, cost_source, price_ref, reported, error_type;
} Roles;

/* ------------------------------------------------------------------------------------------
 * The state: one per Normalizer (its caches and callbacks), not thread-safe.
 */
typedef struct {
    PyObject_HEAD
    /* callbacks into the Python normalizer */
    PyObject *cb_resource, *cb_scope, *cb_entry, *cb_key, *cb_resolve, *cb_plan, *cb_price,
        *cb_exception_type;
    PyObject *colindex;  /* dict: sparse column name -> index */
    PyObject *model_ops; /* frozenset of leaf model call operations */
    PyObject *openlit_exclusive; /* frozenset of providers whose OpenLIT input excludes cache */
    PyObject *str_openlit;
    int ncols;
    char coltype[MAXCOLS]; /* 's', 'i', 'd' */
    Roles r;
    uint64_t seed;

    Table keys, raws, plans;
    Py_ssize_t raw_bytes;
    uint64_t serial;
    int busy;

    /* per request */
    Py_ssize_t n;
    Col trace_id, span_id, parent_span_id, trace_state, name, status_message;
    Col flags, kind, status_code, start_time, duration, cost, is_model_call;
    Col attr_types, dropped_attrs, dropped_events, dropped_links;
    Col sparse[MAXCOLS];
    Buf src_off, src_pairs, attr_off;
    Col attr_keys, attr_vals;
    PyObject *blocks, *sizes, *nested; /* lists */

    /* per span */
    Attr *attrs;
    Py_ssize_t attrs_cap;
    Buf slices;  /* (const uint8_t *, Py_ssize_t) of the span's attributes */
    Buf scratch; /* Contrib: natively made contributions */
    Buf codes;
    Buf plankey;
    PyObject *keep[4]; /* Python objects whose strings a span's values point into */
    int nkeep;

    /* counters */
    Py_ssize_t st_requests, st_native, st_odd, st_errors, st_spans, st_py_spans, st_py_prices,
        st_entry_calls, st_key_calls, st_plan_calls, st_resets;
    const char *reason; /* why the last request fell back */
} FastState;

#define FALLBACK(s, why) ((s)->reason = (why), ODD)

static int
keep(FastState *s, PyObject *obj)
{
    if (s->nkeep >= (int)(sizeof(s->keep) / sizeof(s->keep[0]))) {
        PyErr_SetString(PyExc_SystemError, "keep overflow");
        Py_DECREF(obj);
        return ERR;
    }
    s->keep[s->nkeep++] = obj; /* steals */
    return OK;
}

static void
release_kept(FastState *s)
{
    while (s->nkeep > 0) {
        s->nkeep--;
        Py_CLEAR(s->keep[s->nkeep]);
    }
}

/* The UTF-8 of a str the caller keeps alive; ODD (with no exception) when it has none
 * (lone surrogates, which Arrow would refuse too). */
static int
utf8_of(FastState *s, PyObject *str, const char **p, Py_ssize_t *n)
{
    if (!PyUnicode_Check(str))
        return FALLBACK(s, "non-str where text was expected");
    *p = PyUnicode_AsUTF8AndSize(str, n);
    if (*p == NULL) {
        PyErr_Clear();
        return FALLBACK(s, "str without UTF-8");
    }
    return OK;
}

/* ------------------------------------------------------------------------------------------
 * Text of values, exactly as schemas.attributes.encode_value writes them.
 */
static Py_ssize_t
int_text(int64_t v, char *out)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + (u % 10));
        u /= 10;
    } while (u);
    Py_ssize_t len = 0;
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

/* Python's repr() of a float; NaN, Infinity and -Infinity as OTLP/JSON spells them. */
static int
double_text(double x, char *out, Py_ssize_t *len)
{
    if (x != x) {
        memcpy(out, "NaN", 3);
        *len = 3;
        return OK;
    }
    if (x == HUGE_VAL || x == -HUGE_VAL) {
        const char *t = x > 0 ? "Infinity" : "-Infinity";
        *len = (Py_ssize_t)strlen(t);
        memcpy(out, t, (size_t)*len);
        return OK;
    }
    char *r = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (r == NULL)
        return ERR;
    size_t n = strlen(r);
    if (n >= 40) {
        PyMem_Free(r);
        PyErr_SetString(PyExc_SystemError, "float repr too long");
        return ERR;
    }
    memcpy(out, r, n);
    PyMem_Free(r);
    *len = (Py_ssize_t)n;
    return OK;
}

static const char HEX[] = "0123456789abcdef";

static int
col_hex(Col *c, const uint8_t *id, Py_ssize_t n)
{
    if (n == 0)
        return col_null(c);
    if (c->data.len + 2 * n > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "string column over 2 GiB");
        return ERR;
    }
    if (buf_reserve(&c->data, 2 * n) != OK)
        return ERR;
    char *o = c->data.p + c->data.len;
    for (Py_ssize_t i = 0; i < n; i++) {
        o[2 * i] = HEX[id[i] >> 4];
        o[2 * i + 1] = HEX[id[i] & 15];
    }
    c->data.len += 2 * n;
    if (buf_byte(&c->valid, 1) != OK)
        return ERR;
    return buf_i32(&c->off, (int32_t)c->data.len);
}

/* ------------------------------------------------------------------------------------------
 * Keys and their routes.
 */

/* The KeyInfo of key bytes known to be valid UTF-8 (`str` may be NULL: made here). */
static int
key_info(FastState *s, const uint8_t *k, Py_ssize_t n, PyObject *str, KeyInfo **out)
{
    uint64_t h = hash_bytes(k, n, s->seed);
    KeyInfo *ki = (KeyInfo *)table_get(&s->keys, k, n, h);
    if (ki != NULL) {
        *out = ki;
        return OK;
    }
    PyObject *key = str ? Py_NewRef(str) : PyUnicode_DecodeUTF8((const char *)k, n, "strict");
    if (key == NULL)
        return ERR;
    s->st_key_calls++;
    /* None: cold; (routes or None, response-model pair) where routes is a tuple of
     * (column index, rank, is token count, pair), None when Python routes each value */
    PyObject *res = PyObject_CallOneArg(s->cb_key, key);
    if (res == NULL) {
        Py_DECREF(key);
        return ERR;
    }
    ki = PyMem_Calloc(1, sizeof(KeyInfo));
    if (ki == NULL) {
        Py_DECREF(res);
        Py_DECREF(key);
        PyErr_NoMemory();
        return ERR;
    }
    ki->str = key;
    ki->resp_pair = -1;
    ki->h.hash = h;
    ki->h.klen = n;
    ki->h.key = dup_bytes(k, n);
    if (ki->h.key == NULL)
        goto fail;
    if (res == Py_None) {
        ki->mode = K_COLD;
    }
    else {
        PyObject *routes, *resp;
        if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
            PyErr_SetString(PyExc_TypeError, "key callback: want (routes, pair)");
            goto fail;
        }
        routes = PyTuple_GET_ITEM(res, 0);
        resp = PyTuple_GET_ITEM(res, 1);
        ki->resp_pair = (int32_t)PyLong_AsLong(resp);
        if (ki->resp_pair == -1 && PyErr_Occurred())
            goto fail;
        if (routes == Py_None) {
            ki->mode = K_PYTHON;
        }
        else {
            if (!PyTuple_Check(routes)) {
                PyErr_SetString(PyExc_TypeError, "key callback: routes must be a tuple");
                goto fail;
            }
            Py_ssize_t nr = PyTuple_GET_SIZE(routes);
            ki->mode = K_NATIVE;
            ki->codes = C_S | C_I | C_D | C_B;
            ki->nroutes = (int)nr;
            ki->routes = PyMem_Calloc((size_t)(nr ? nr : 1), sizeof(Route));
            if (ki->routes == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            for (Py_ssize_t i = 0; i < nr; i++) {
                int col, rank, how, pair;
                if (!PyArg_ParseTuple(PyTuple_GET_ITEM(routes, i), "iiii", &col, &rank, &how,
                                      &pair))
                    goto fail;
                if (col < 0 || col >= s->ncols || how < R_TEXT || how > R_COST) {
                    PyErr_SetString(PyExc_ValueError, "key callback: bad route");
                    goto fail;
                }
                ki->routes[i] = (Route){col, rank, pair, (uint8_t)how};
                ki->codes &= route_codes[how];
            }
        }
    }
    Py_DECREF(res);
    if (table_put(&s->keys, &ki->h) != OK) {
        free_key(&ki->h);
        return ERR;
    }
    *out = ki;
    return OK;
fail:
    Py_DECREF(res);
    free_key(&ki->h);
    return ERR;
}

/* A Python Contrib tuple (column, rank, value, exact, key, special, extra, pair) as a native
 * one with an owned copy of its text. */
static int
contrib_from_py(FastState *s, PyObject *t, Contrib *c)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 8)
        return FALLBACK(s, "contribution shape");
    PyObject *colname = PyTuple_GET_ITEM(t, 0);
    PyObject *idx = PyDict_GetItemWithError(s->colindex, colname);
    if (idx == NULL) {
        if (PyErr_Occurred())
            return ERR;
        return FALLBACK(s, "contribution to an unknown column");
    }
    memset(c, 0, sizeof(*c));
    c->col = (int32_t)PyLong_AsLong(idx);
    long rank = PyLong_AsLong(PyTuple_GET_ITEM(t, 1));
    long pair = PyLong_AsLong(PyTuple_GET_ITEM(t, 7));
    if (PyErr_Occurred())
        return ERR;
    if (rank < INT32_MIN || rank > INT32_MAX || pair < 0 || pair > INT32_MAX)
        return FALLBACK(s, "contribution rank or pair");
    c->rank = (int32_t)rank;
    c->pair = (int32_t)pair;
    int exact = PyObject_IsTrue(PyTuple_GET_ITEM(t, 3));
    if (exact < 0)
        return ERR;
    c->exact = (uint8_t)exact;
    PyObject *v = PyTuple_GET_ITEM(t, 2);
    char type = s->coltype[c->col];
    if (type == 's' && PyUnicode_Check(v)) {
        const char *p;
        Py_ssize_t n;
        int rc = utf8_of(s, v, &p, &n);
        if (rc != OK)
            return rc;
        c->vtype = V_STR;
        c->s = (const char *)dup_bytes(p, n);
        if (c->s == NULL)
            return ERR;
        c->slen = n;
        if (c->col == s->r.op) {
            int m = PySet_Contains(s->model_ops, v);
            if (m < 0)
                return ERR;
            c->model_op = (uint8_t)m;
        }
    }
    else if (type == 'i' && PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || (x == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return FALLBACK(s, "token count beyond int64");
        }
        c->vtype = V_INT;
        c->i = x;
    }
    else if (type == 'd' && PyFloat_CheckExact(v)) {
        c->vtype = V_DBL;
        c->d = PyFloat_AS_DOUBLE(v);
    }
    else {
        return FALLBACK(s, "contribution value of an unexpected type");
    }
    return OK;
}

/* The native form of a Python Entry (key, text, code, routing) of serialized KeyValue `raw`. */
static int
raw_entry_from_py(FastState *s, const uint8_t *raw, Py_ssize_t rawlen, uint64_t h,
                  PyObject *entry, RawEntry **out)
{
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 4)
        return FALLBACK(s, "entry shape");
    PyObject *key = PyTuple_GET_ITEM(entry, 0), *text = PyTuple_GET_ITEM(entry, 1),
             *code = PyTuple_GET_ITEM(entry, 2), *routing = PyTuple_GET_ITEM(entry, 3);
    const char *kp, *tp, *cp;
    Py_ssize_t kn, tn, cn;
    int rc;
    if ((rc = utf8_of(s, key, &kp, &kn)) != OK || (rc = utf8_of(s, text, &tp, &tn)) != OK ||
        (rc = utf8_of(s, code, &cp, &cn)) != OK)
        return rc;
    if (cn != 1)
        return FALLBACK(s, "type code");
    KeyInfo *ki;
    if (key_info(s, (const uint8_t *)kp, kn, key, &ki) != OK)
        return ERR;
    RawEntry *e = PyMem_Calloc(1, sizeof(RawEntry));
    if (e == NULL) {
        PyErr_NoMemory();
        return ERR;
    }
    e->ki = ki;
    e->code = cp[0];
    e->h.hash = h;
    e->h.klen = rawlen;
    e->h.key = dup_bytes(raw, rawlen);
    e->text = (char *)dup_bytes(tp, tn);
    e->tlen = tn;
    if (e->h.key == NULL || e->text == NULL)
        goto fail;
    if (routing != Py_None) {
        if (!PyTuple_Check(routing) || PyTuple_GET_SIZE(routing) != 2 ||
            !PyTuple_Check(PyTuple_GET_ITEM(routing, 0))) {
            rc = FALLBACK(s, "routing shape");
            goto fail_rc;
        }
        PyObject *plain = PyTuple_GET_ITEM(routing, 0);
        e->special = PyTuple_GET_ITEM(routing, 1) != Py_None;
        Py_ssize_t np = PyTuple_GET_SIZE(plain);
        e->contribs = PyMem_Calloc((size_t)(np ? np : 1), sizeof(Contrib));
        if (e->contribs == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t i = 0; i < np; i++) {
            rc = contrib_from_py(s, PyTuple_GET_ITEM(plain, i), &e->contribs[i]);
            e->ncontrib = (int)i + 1; /* free what was copied, even on failure */
            if (rc != OK)
                goto fail_rc;
            /* routes name their own key as the source; look it up for drop/keep marks */
            PyObject *src = PyTuple_GET_ITEM(PyTuple_GET_ITEM(plain, i), 4);
            if (src == key) {
                e->contribs[i].src = ki;
            }
            else {
                const char *sp;
                Py_ssize_t sn;
                if ((rc = utf8_of(s, src, &sp, &sn)) != OK)
                    goto fail_rc;
                if (key_info(s, (const uint8_t *)sp, sn, src, &e->contribs[i].src) != OK)
                    goto fail;
            }
        }
    }
    if (table_put(&s->raws, &e->h) != OK)
        goto fail;
    s->raw_bytes += rawlen + tn;
    *out = e;
    return OK;
fail:
    free_raw(&e->h);
    return ERR;
fail_rc:
    free_raw(&e->h);
    return rc;
}

/* The cached entry of serialized KeyValue `raw`, asking Python on a miss. */
static int
raw_entry(FastState *s, const uint8_t *raw, Py_ssize_t n, RawEntry **out)
{
    uint64_t h = hash_bytes(raw, n, s->seed ^ 0x5bd1e995ULL);
    RawEntry *e = (RawEntry *)table_get(&s->raws, raw, n, h);
    if (e != NULL) {
        *out = e;
        return OK;
    }
    PyObject *b = PyBytes_FromStringAndSize((const char *)raw, n);
    if (b == NULL)
        return ERR;
    s->st_entry_calls++;
    PyObject *entry = PyObject_CallOneArg(s->cb_entry, b);
    Py_DECREF(b);
    if (entry == NULL)
        return ERR;
    int rc = raw_entry_from_py(s, raw, n, h, entry, out);
    Py_DECREF(entry);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * One attribute: decode it (canonical encodings natively, the rest by Python) and make its
 * contributions.
 *
 * The canonical KeyValue is   0x0A <len> key   0x12 <len> AnyValue
 * and its AnyValue holds exactly one of   0x0A <len> string | 0x10 bool | 0x18 int varint |
 * 0x21 double (8 bytes). Anything else (arrays, kvlists, bytes, no value, repeated or
 * reordered fields, trailing bytes) is decoded by Python (ingest.wire / upb), memoized.
 */
static int
decode_attr(FastState *s, Attr *a)
{
    const uint8_t *raw = a->raw;
    Py_ssize_t n = a->rawlen;
    Rd r = {raw, raw + n};
    const uint8_t *k = NULL, *v = NULL;
    Py_ssize_t kn = 0, vn = 0;
    int canonical = 0;
    char code = 0;
    int64_t ival = 0;
    double dval = 0;
    if (n >= 2 && raw[0] == 0x0A) {
        r.p++;
        if (rd_len(&r, &k, &kn) == OK && r.p < r.end && *r.p == 0x12) {
            r.p++;
            if (rd_len(&r, &v, &vn) == OK && r.p == r.end && vn >= 2) {
                Rd a2 = {v + 1, v + vn};
                uint64_t u;
                switch (v[0]) {
                case 0x0A: { /* string_value */
                    const uint8_t *t;
                    Py_ssize_t tn;
                    if (rd_len(&a2, &t, &tn) == OK && a2.p == a2.end) {
                        if (!utf8_valid(t, tn))
                            return FALLBACK(s, "attribute value is not UTF-8");
                        a->text = (const char *)t;
                        a->tlen = tn;
                        code = 's';
                        canonical = 1;
                    }
                    break;
                }
                case 0x10: /* bool_value: one byte, 0 or 1 */
                    if (vn == 2 && v[1] < 2) {
                        a->text = v[1] ? "true" : "false";
                        a->tlen = v[1] ? 4 : 5;
                        code = 'b';
                        canonical = 1;
                    }
                    break;
                case 0x18: /* int_value */
                    if (rd_varint(&a2, &u) == OK && a2.p == a2.end) {
                        ival = (int64_t)u;
                        a->tlen = int_text(ival, a->num);
                        a->text = a->num;
                        code = 'i';
                        canonical = 1;
                    }
                    break;
                case 0x21: /* double_value */
                    if (vn == 9) {
                        memcpy(&dval, v + 1, 8);
                        if (double_text(dval, a->num, &a->tlen) != OK)
                            return ERR;
                        a->text = a->num;
                        code = 'd';
                        canonical = 1;
                    }
                    break;
                }
            }
        }
    }
    if (canonical) {
        uint64_t h = hash_bytes(k, kn, s->seed);
        KeyInfo *ki = (KeyInfo *)table_get(&s->keys, k, kn, h);
        if (ki == NULL) {
            if (!utf8_valid(k, kn))
                return FALLBACK(s, "attribute key is not UTF-8");
            if (key_info(s, k, kn, NULL, &ki) != OK)
                return ERR;
        }
        a->code = code;
        if (ki->mode == K_COLD) {
            a->ki = ki;
            return OK;
        }
        int bit = code == 's' ? C_S : code == 'i' ? C_I : code == 'd' ? C_D : C_B;
        if (ki->mode == K_NATIVE && (ki->codes & bit)) {
            /* ingest.routing.Router.routed for text, token-count and cost routes */
            a->ki = ki;
            if (buf_reserve(&s->scratch, (Py_ssize_t)ki->nroutes * (Py_ssize_t)sizeof(Contrib)) !=
                OK)
                return ERR;
            a->c0 = s->scratch.len / (Py_ssize_t)sizeof(Contrib);
            Contrib *out = (Contrib *)s->scratch.p + a->c0;
            Py_ssize_t m = 0;
            for (int i = 0; i < ki->nroutes; i++) {
                const Route *rt = &ki->routes[i];
                Contrib *c = &out[m];
                if (rt->how == R_TOKENS) {
                    /* an int in [0, 2^53] is a count, exactly the attribute; any other value
                     * is Python's to route (flagged: ingest.routing, usage_basis invalid:) */
                    if (code != 'i' || ival < 0 || ival > MAX_TOKENS) {
                        m = -1;
                        break;
                    }
                    *c = (Contrib){.col = rt->col, .rank = rt->rank, .pair = rt->pair,
                                   .vtype = V_INT, .exact = 1, .src = ki, .i = ival};
                }
                else if (rt->how == R_COST) {
                    /* ingest.usage.money: a finite, non-negative number (a bool is none);
                     * exactly the attribute only when it was a double */
                    if (code == 'b')
                        continue;
                    double x = code == 'd' ? dval : (double)ival;
                    if (!isfinite(x) || x < 0)
                        continue;
                    *c = (Contrib){.col = rt->col, .rank = rt->rank, .pair = rt->pair,
                                   .vtype = V_DBL, .exact = code == 'd', .src = ki, .d = x};
                }
                else {
                    if (a->tlen == 0)
                        continue;
                    *c = (Contrib){.col = rt->col, .rank = rt->rank, .pair = rt->pair,
                                   .vtype = V_STR, .exact = code == 's', .src = ki,
                                   .s = a->text, .slen = a->tlen};
                }
                m++;
            }
            if (m >= 0) {
                a->cn = m;
                s->scratch.len += m * (Py_ssize_t)sizeof(Contrib);
                return OK;
            }
        }
    }
    /* odd encodings and values Python must route: memoized per serialized KeyValue */
    RawEntry *e;
    int rc = raw_entry(s, raw, n, &e);
    if (rc != OK)
        return rc;
    a->re = e;
    a->ki = e->ki;
    a->text = e->text;
    a->tlen = e->tlen;
    a->code = e->code;
    return OK;
}

/* ------------------------------------------------------------------------------------------
 * Pricing: ingest.price.Pricer.price_pico for linear integer plans; Python for the rest.
 */
typedef struct {
    uint8_t in_set, out_set;
    int64_t inp, out, read, write, reasoning; /* read/write/reasoning: 0 when absent */
    uint8_t read_set, write_set, reasoning_set;
} Counts;

typedef struct {
    uint8_t have_cost;
    int64_t pico;
    const char *source, *ref;
    Py_ssize_t source_n, ref_n; /* ref NULL: null */
} Priced;

static PyObject *
opt_int(uint8_t set, int64_t v)
{
    if (!set)
        return Py_NewRef(Py_None);
    return PyLong_FromLongLong(v);
}

static PyObject *
opt_str(const Contrib *c)
{
    if (c == NULL)
        return Py_NewRef(Py_None);
    return PyUnicode_DecodeUTF8(c->s, c->slen, "strict");
}

/* (pico or None, source, ref or None) from Python into `pr` (the tuple kept for the span). */
static int
priced_from_py(FastState *s, PyObject *res, Priced *pr)
{
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 3) {
        Py_DECREF(res);
        return FALLBACK(s, "price result shape");
    }
    if (keep(s, res) != OK)
        return ERR;
    PyObject *pico = PyTuple_GET_ITEM(res, 0), *source = PyTuple_GET_ITEM(res, 1),
             *ref = PyTuple_GET_ITEM(res, 2);
    int rc;
    memset(pr, 0, sizeof(*pr));
    if (pico != Py_None) {
        if (!PyLong_CheckExact(pico))
            return FALLBACK(s, "price is not an int");
        int overflow;
        long long p = PyLong_AsLongLongAndOverflow(pico, &overflow);
        if (overflow || p < 0 || p >= MAX_PICO) {
            PyErr_Clear();
            return FALLBACK(s, "price out of range");
        }
        pr->have_cost = 1;
        pr->pico = p;
    }
    if ((rc = utf8_of(s, source, &pr->source, &pr->source_n)) != OK)
        return rc;
    if (ref != Py_None && (rc = utf8_of(s, ref, &pr->ref, &pr->ref_n)) != OK)
        return rc;
    return OK;
}

static int
price_by_python(FastState *s, const Contrib *provider, const Contrib *model, uint64_t start,
                const Counts *k, const Contrib *reported, Priced *pr)
{
    s->st_py_prices++;
    PyObject *counts = Py_BuildValue(
        "(NNNNN)", opt_int(k->in_set, k->inp), opt_int(k->out_set, k->out),
        opt_int(k->read_set, k->read), opt_int(k->write_set, k->write),
        opt_int(k->reasoning_set, k->reasoning));
    if (counts == NULL)
        return ERR;
    PyObject *rep = reported ? PyFloat_FromDouble(reported->d) : Py_NewRef(Py_None);
    PyObject *res = PyObject_CallFunction(s->cb_price, "NNKNN", opt_str(provider),
                                          opt_str(model), (unsigned long long)start, counts,
                                          rep);
    if (res == NULL)
        return ERR;
    return priced_from_py(s, res, pr);
}

static int
plan_for(FastState *s, const Contrib *provider, const Contrib *model, uint64_t day, Plan **out)
{
    /* key: provider flag, provider length, provider, model, day */
    Buf *kb = &s->plankey;
    kb->len = 0;
    uint8_t flag = provider != NULL;
    int64_t plen = provider ? provider->slen : 0;
    if (buf_byte(kb, flag) != OK || buf_put(kb, &plen, 8) != OK ||
        (provider && buf_put(kb, provider->s, provider->slen) != OK) ||
        buf_put(kb, model->s, model->slen) != OK || buf_put(kb, &day, 8) != OK)
        return ERR;
    uint64_t h = hash_bytes((const uint8_t *)kb->p, kb->len, s->seed ^ 0x27d4eb2fULL);
    Plan *p = (Plan *)table_get(&s->plans, (const uint8_t *)kb->p, kb->len, h);
    if (p != NULL) {
        *out = p;
        return OK;
    }
    s->st_plan_calls++;
    /* None: no price; ("linear", starts, bands, source, ref); anything else: ask per call */
    PyObject *res = PyObject_CallFunction(s->cb_plan, "NNK", opt_str(provider), opt_str(model),
                                          (unsigned long long)day);
    if (res == NULL)
        return ERR;
    p = PyMem_Calloc(1, sizeof(Plan));
    if (p == NULL) {
        Py_DECREF(res);
        PyErr_NoMemory();
        return ERR;
    }
    p->h.hash = h;
    p->h.klen = kb->len;
    p->h.key = dup_bytes(kb->p, kb->len);
    if (p->h.key == NULL)
        goto fail;
    if (res == Py_None) {
        p->kind = P_NONE;
    }
    else if (PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 5) {
        PyObject *starts = PyTuple_GET_ITEM(res, 1), *bands = PyTuple_GET_ITEM(res, 2);
        if (!PyTuple_Check(starts) || !PyTuple_Check(bands) ||
            PyTuple_GET_SIZE(bands) != PyTuple_GET_SIZE(starts) + 1) {
            PyErr_SetString(PyExc_TypeError, "plan callback: bad linear plan");
            goto fail;
        }
        Py_ssize_t ns = PyTuple_GET_SIZE(starts);
        p->kind = P_LINEAR;
        p->nstarts = (int)ns;
        p->starts = PyMem_Calloc((size_t)(ns ? ns : 1), sizeof(int64_t));
        p->bands = PyMem_Calloc((size_t)(ns + 1), sizeof(*p->bands));
        if (p->starts == NULL || p->bands == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t i = 0; i < ns; i++) {
            p->starts[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(starts, i));
            if (p->starts[i] == -1 && PyErr_Occurred())
                goto fail;
        }
        for (Py_ssize_t b = 0; b <= ns; b++) {
            PyObject *band = PyTuple_GET_ITEM(bands, b);
            if (!PyTuple_Check(band) || PyTuple_GET_SIZE(band) != 6) {
                PyErr_SetString(PyExc_TypeError, "plan callback: bad band");
                goto fail;
            }
            for (int j = 0; j < 6; j++) {
                int64_t c = PyLong_AsLongLong(PyTuple_GET_ITEM(band, j));
                if (c == -1 && PyErr_Occurred())
                    goto fail;
                if (c >= COEF_LIMIT || c <= -COEF_LIMIT) {
                    PyErr_SetString(PyExc_ValueError, "plan callback: coefficient too large");
                    goto fail;
                }
                p->bands[b][j] = c;
            }
        }
        p->source = Py_NewRef(PyTuple_GET_ITEM(res, 3));
        p->ref = Py_NewRef(PyTuple_GET_ITEM(res, 4));
        p->source_s = PyUnicode_AsUTF8AndSize(p->source, &p->source_n);
        if (p->source_s == NULL)
            goto fail;
        p->ref_s = PyUnicode_AsUTF8AndSize(p->ref, &p->ref_n);
        if (p->ref_s == NULL)
            goto fail;
    }
    else {
        p->kind = P_PYTHON;
    }
    Py_DECREF(res);
    if (table_put(&s->plans, &p->h) != OK) {
        free_plan(&p->h);
        return ERR;
    }
    *out = p;
    return OK;
fail:
    Py_DECREF(res);
    free_plan(&p->h);
    return ERR;
}

/* Floor division by 10^6 rounding half to even: ingest.price.to_pico. */
static __int128
to_pico(__int128 atto)
{
    __int128 q = atto / 1000000, r = atto % 1000000;
    if (r < 0) {
        r += 1000000;
        q -= 1;
    }
    if (r > 500000 || (r == 500000 && (q & 1)))
        q += 1;
    return q;
}

static const char UNPRICED[] = "unpriced";

static int
price_call(FastState *s, const Contrib *provider, const Contrib *model, uint64_t start,
           const Counts *k, const Contrib *reported, Priced *pr)
{
    memset(pr, 0, sizeof(*pr));
    if (model != NULL && model->slen > 0 && (k->in_set || k->out_set)) {
        Plan *plan;
        if (plan_for(s, provider, model, start / NS_PER_DAY, &plan) != OK)
            return ERR;
        if (plan->kind == P_PYTHON)
            return price_by_python(s, provider, model, start, k, reported, pr);
        if (plan->kind == P_LINEAR) {
            int64_t inp = k->inp, out = k->out, cr = k->read, cw = k->write, rs = k->reasoning;
            if (cr + cw > inp)
                inp += cr + cw;
            if (rs > out)
                out += rs;
            int band = 0; /* bisect_left(starts, inp) */
            while (band < plan->nstarts && plan->starts[band] < inp)
                band++;
            const int64_t *c = plan->bands[band];
            __int128 atto = (__int128)inp * c[0] + (__int128)cr * c[1] + (__int128)cw * c[2] +
                            (__int128)out * c[3] + (__int128)rs * c[4] + c[5];
            __int128 pico = to_pico(atto);
            if (pico < 0 || pico >= MAX_PICO) /* Python says why (price_ref overflow:...) */
                return price_by_python(s, provider, model, start, k, reported, pr);
            pr->have_cost = 1;
            pr->pico = (int64_t)pico;
            pr->source = plan->source_s;
            pr->source_n = plan->source_n;
            pr->ref = plan->ref_s;
            pr->ref_n = plan->ref_n;
            return OK;
        }
    }
    if (reported != NULL) /* Pricer._reported: decimal rounding of the reported cost */
        return price_by_python(s, provider, model, start, k, reported, pr);
    pr->source = UNPRICED;
    pr->source_n = (Py_ssize_t)strlen(UNPRICED);
    return OK;
}

/* ------------------------------------------------------------------------------------------
 * Per-span resolution: ingest.routing.Router.resolve for spans without JSON or marker
 * attributes (those go to Python whole).
 */
typedef struct {
    Val vals[MAXCOLS];
    uint8_t model_call;
    Priced priced;
} SpanOut;

static void
set_val_contrib(Val *v, const Contrib *c)
{
    v->have = 1;
    v->vtype = c->vtype;
    v->s = c->s;
    v->slen = c->slen;
    v->i = c->i;
    v->d = c->d;
}

static const char INCLUSIVE[] = "inclusive";

static int
resolve_native(FastState *s, Attr *attrs, Py_ssize_t na, int openlit, uint64_t start,
               SpanOut *o)
{
    const Roles *R = &s->r;
    Contrib best[MAXCOLS];
    uint8_t have[MAXCOLS];
    int order[MAXCOLS];
    int norder = 0;
    memset(have, 0, sizeof(have));
    const Contrib *scratch = (const Contrib *)s->scratch.p;
    for (Py_ssize_t j = 0; j < na; j++) {
        const Attr *a = &attrs[j];
        if (a->dup)
            continue;
        const Contrib *cs;
        Py_ssize_t cn;
        if (a->re != NULL) {
            cs = a->re->contribs;
            cn = a->re->ncontrib;
        }
        else {
            cs = scratch + a->c0;
            cn = a->cn;
        }
        for (Py_ssize_t i = 0; i < cn; i++) {
            const Contrib *c = &cs[i];
            int col = c->col;
            if (!have[col]) {
                have[col] = 1;
                best[col] = *c;
                order[norder++] = col;
            }
            else if (c->rank < best[col].rank) {
                best[col] = *c;
            }
        }
    }
    /* the response model falls back to the request model */
    if (!have[R->response_model] && have[R->request_model]) {
        Contrib c = best[R->request_model];
        if (c.src->resp_pair < 0)
            return FALLBACK(s, "request model without a response-model pair");
        c.col = R->response_model;
        c.rank = 1000;
        c.pair = c.src->resp_pair;
        best[R->response_model] = c;
        have[R->response_model] = 1;
        order[norder++] = R->response_model;
    }
    int tokens = have[R->input] || have[R->output] || have[R->cache_read] ||
                 have[R->cache_write] || have[R->reasoning] || have[R->total];
    int model_call = have[R->op] ? best[R->op].model_op : (have[R->request_model] && tokens);
    memset(o->vals, 0, sizeof(Val) * (size_t)s->ncols);
    o->model_call = (uint8_t)model_call;
    if (model_call) {
        /* Router._usage, without Langfuse usage JSON (a special: Python) */
        Contrib *c_in = have[R->input] ? &best[R->input] : NULL;
        Contrib *c_out = have[R->output] ? &best[R->output] : NULL;
        const Contrib *c_read = have[R->cache_read] ? &best[R->cache_read] : NULL;
        const Contrib *c_write = have[R->cache_write] ? &best[R->cache_write] : NULL;
        const Contrib *c_reason = have[R->reasoning] ? &best[R->reasoning] : NULL;
        Counts k = {0};
        k.read_set = c_read != NULL;
        k.read = c_read ? c_read->i : 0;
        k.write_set = c_write != NULL;
        k.write = c_write ? c_write->i : 0;
        k.reasoning_set = c_reason != NULL;
        k.reasoning = c_reason ? c_reason->i : 0;
        if (c_in != NULL || c_out != NULL || have[R->total]) {
            int64_t parts = k.read + k.write;
            int w_openlit = 0, w_cache = 0, w_reason = 0;
            if (c_in != NULL) {
                int64_t inp = c_in->i;
                int exclusive_provider = 0;
                if (openlit && have[R->provider] && best[R->provider].vtype == V_STR) {
                    PyObject *p = PyUnicode_DecodeUTF8(best[R->provider].s,
                                                       best[R->provider].slen, "strict");
                    if (p == NULL)
                        return ERR;
                    exclusive_provider = PySet_Contains(s->openlit_exclusive, p);
                    Py_DECREF(p);
                    if (exclusive_provider < 0)
                        return ERR;
                }
                if (exclusive_provider) {
                    w_openlit = 1;
                    inp += parts;
                }
                else if (parts > inp) {
                    w_cache = 1;
                    inp += parts;
                }
                if (inp != c_in->i) {
                    c_in->i = inp;
                    c_in->exact = 0;
                }
                k.in_set = 1;
                k.inp = inp;
            }
            if (c_out != NULL) {
                int64_t out = c_out->i;
                if (c_reason != NULL && c_reason->i > out) {
                    w_reason = 1;
                    out += c_reason->i;
                    c_out->i = out;
                    c_out->exact = 0;
                }
                k.out_set = 1;
                k.out = out;
            }
            Val *ub = &o->vals[R->usage_basis];
            ub->have = 1;
            ub->vtype = V_STR;
            if (!(w_openlit || w_cache || w_reason)) {
                ub->s = INCLUSIVE;
                ub->slen = (Py_ssize_t)strlen(INCLUSIVE);
            }
            else {
                static const char *const names[8] = {
                    NULL,
                    "exclusive:openlit-anthropic",
                    "exclusive:cache>input",
                    "exclusive:openlit-anthropic+cache>input",
                    "exclusive:reasoning>output",
                    "exclusive:openlit-anthropic+reasoning>output",
                    "exclusive:cache>input+reasoning>output",
                    "exclusive:openlit-anthropic+cache>input+reasoning>output",
                };
                ub->s = names[w_openlit | (w_cache << 1) | (w_reason << 2)];
                ub->slen = (Py_ssize_t)strlen(ub->s);
            }
            if (!have[R->total] && (k.in_set || k.out_set)) {
                Val *t = &o->vals[R->total];
                t->have = 1;
                t->vtype = V_INT;
                t->i = (k.in_set ? k.inp : 0) + (k.out_set ? k.out : 0);
            }
        }
        const Contrib *prov = have[R->provider] ? &best[R->provider] : NULL;
        const Contrib *model = have[R->response_model] ? &best[R->response_model] : NULL;
        const Contrib *rep = have[R->reported] ? &best[R->reported] : NULL;
        if ((prov && prov->vtype != V_STR) || (model && model->vtype != V_STR) ||
            (rep && rep->vtype != V_DBL))
            return FALLBACK(s, "price arguments of an unexpected type");
        int rc = price_call(s, prov, model, start, &k, rep, &o->priced);
        if (rc != OK)
            return rc;
    }
    else {
        /* tokens and reported cost count on leaf model calls only */
        const int only[7] = {R->input,     R->output,    R->cache_read, R->cache_write,
                             R->reasoning, R->total,     R->reported};
        for (int i = 0; i < 7; i++)
            have[only[i]] = 0;
        int m = 0;
        for (int i = 0; i < norder; i++) {
            if (have[order[i]])
                order[m++] = order[i];
        }
        norder = m;
    }
    /* values, source_keys pairs in first-set order, and the keys whose every use is exact */
    uint64_t serial = s->serial;
    for (int i = 0; i < norder; i++) {
        const Contrib *c = &best[order[i]];
        set_val_contrib(&o->vals[order[i]], c);
        if (buf_i32(&s->src_pairs, c->pair) != OK)
            return ERR;
        if (c->exact)
            c->src->drop_stamp = serial;
    }
    for (int i = 0; i < norder; i++) {
        const Contrib *c = &best[order[i]];
        if (!c->exact)
            c->src->keep_stamp = serial;
    }
    return OK;
}

/* A span with JSON or marker attributes: Router.resolve and pricing in Python, given the
 * span's (deduplicated) routed attributes as serialized. */
static int
resolve_python(FastState *s, Attr *attrs, Py_ssize_t na, int openlit, uint64_t start,
               SpanOut *o)
{
    s->st_py_spans++;
    PyObject *raws = PyList_New(0);
    if (raws == NULL)
        return ERR;
    for (Py_ssize_t j = 0; j < na; j++) {
        const Attr *a = &attrs[j];
        int hot = a->re ? (a->re->ncontrib > 0 || a->re->special) : a->cn > 0;
        if (a->dup || !hot)
            continue;
        PyObject *b = PyBytes_FromStringAndSize((const char *)a->raw, a->rawlen);
        if (b == NULL || PyList_Append(raws, b) != 0) {
            Py_XDECREF(b);
            Py_DECREF(raws);
            return ERR;
        }
        Py_DECREF(b);
    }
    /* -> (values: [(column index, value)], pairs: [int], priced or None, drop: set[str]) */
    PyObject *res = PyObject_CallFunction(s->cb_resolve, "NOK", raws,
                                          openlit ? Py_True : Py_False,
                                          (unsigned long long)start);
    if (res == NULL)
        return ERR;
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 4 ||
        !PyList_Check(PyTuple_GET_ITEM(res, 0)) || !PyList_Check(PyTuple_GET_ITEM(res, 1)) ||
        !PyAnySet_Check(PyTuple_GET_ITEM(res, 3))) {
        Py_DECREF(res);
        return FALLBACK(s, "resolve result shape");
    }
    if (keep(s, res) != OK)
        return ERR;
    memset(o->vals, 0, sizeof(Val) * (size_t)s->ncols);
    PyObject *values = PyTuple_GET_ITEM(res, 0), *pairs = PyTuple_GET_ITEM(res, 1),
             *priced = PyTuple_GET_ITEM(res, 2), *drop = PyTuple_GET_ITEM(res, 3);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *item = PyList_GET_ITEM(values, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2)
            return FALLBACK(s, "resolve value shape");
        long col = PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
        if (col == -1 && PyErr_Occurred())
            return ERR;
        if (col < 0 || col >= s->ncols)
            return FALLBACK(s, "resolve column out of range");
        PyObject *v = PyTuple_GET_ITEM(item, 1);
        Val *out = &o->vals[col];
        char type = s->coltype[col];
        if (type == 's' && PyUnicode_Check(v)) {
            int rc = utf8_of(s, v, &out->s, &out->slen);
            if (rc != OK)
                return rc;
            out->vtype = V_STR;
        }
        else if (type == 'i' && PyLong_CheckExact(v)) {
            int overflow;
            out->i = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow)
                return FALLBACK(s, "count beyond int64");
            out->vtype = V_INT;
        }
        else if (type == 'd' && PyFloat_CheckExact(v)) {
            out->d = PyFloat_AS_DOUBLE(v);
            out->vtype = V_DBL;
        }
        else {
            return FALLBACK(s, "resolved value of an unexpected type");
        }
        out->have = 1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pairs); i++) {
        long p = PyLong_AsLong(PyList_GET_ITEM(pairs, i));
        if (p == -1 && PyErr_Occurred())
            return ERR;
        if (p < 0 || p > INT32_MAX)
            return FALLBACK(s, "pair out of range");
        if (buf_i32(&s->src_pairs, (int32_t)p) != OK)
            return ERR;
    }
    o->model_call = priced != Py_None;
    if (priced != Py_None) {
        int rc = priced_from_py(s, Py_NewRef(priced), &o->priced);
        if (rc != OK)
            return rc;
    }
    /* keys to drop from `attributes` */
    for (Py_ssize_t j = 0; j < na; j++) {
        Attr *a = &attrs[j];
        if (a->dup)
            continue;
        int d = PySet_Contains(drop, a->ki->str);
        if (d < 0)
            return ERR;
        if (d)
            a->ki->drop_stamp = s->serial;
    }
    return OK;
}

/* ------------------------------------------------------------------------------------------
 * One span.
 */
typedef struct {
    const uint8_t *trace_id, *span_id, *parent, *trace_state, *name, *status;
    Py_ssize_t trace_id_n, span_id_n, parent_n, trace_state_n, name_n, status_n;
    int32_t kind;
    uint64_t start, end;
    uint32_t dropped_attrs, dropped_events, dropped_links, flags;
    Py_ssize_t nevents, nlinks;
} SpanF;

typedef struct {
    const uint8_t *p;
    Py_ssize_t n;
} Slice;

/* Status: message (2, string), code (3, enum). Last occurrence wins, unknown fields skipped. */
static int
parse_status(FastState *s, const uint8_t *p, Py_ssize_t n, int32_t *code, const uint8_t **msg,
             Py_ssize_t *msg_n)
{
    Rd r = {p, p + n};
    *code = 0;
    *msg = NULL;
    *msg_n = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        uint64_t v;
        if (rd_tag(&r, &f, &wt) != OK)
            return FALLBACK(s, "status: bad tag");
        if (f == 2) {
            if (wt != WT_LEN || rd_len(&r, msg, msg_n) != OK)
                return FALLBACK(s, "status: message");
            if (!utf8_valid(*msg, *msg_n))
                return FALLBACK(s, "status: message is not UTF-8");
        }
        else if (f == 3) {
            if (wt != WT_VARINT || rd_varint(&r, &v) != OK)
                return FALLBACK(s, "status: code");
            *code = (int32_t)(uint32_t)v;
        }
        else if (rd_skip(&r, wt) != OK) {
            return FALLBACK(s, "status: unknown field");
        }
    }
    return OK;
}

static int
parse_span(FastState *s, const uint8_t *p, Py_ssize_t n, SpanF *f)
{
    Rd r = {p, p + n};
    memset(f, 0, sizeof(*f));
    s->slices.len = 0;
    while (r.p < r.end) {
        uint32_t field;
        int wt;
        uint64_t v;
        const uint8_t *b;
        Py_ssize_t bn;
        if (rd_tag(&r, &field, &wt) != OK)
            return FALLBACK(s, "span: bad tag");
        /* expected wire type of each Span field; a mismatch makes upb treat the field as
         * unknown: we leave such requests to it */
        static const int8_t want[17] = {-1,     WT_LEN, WT_LEN,    WT_LEN, WT_LEN,    WT_LEN,
                                        WT_VARINT, WT_I64, WT_I64, WT_LEN, WT_VARINT, WT_LEN,
                                        WT_VARINT, WT_LEN, WT_VARINT, WT_LEN, WT_I32};
        if (field > 16) {
            if (rd_skip(&r, wt) != OK)
                return FALLBACK(s, "span: unknown field");
            continue;
        }
        if (wt != want[field])
            return FALLBACK(s, "span: unexpected wire type");
        switch (field) {
        case 1:
            if (rd_len(&r, &f->trace_id, &f->trace_id_n) != OK)
                return FALLBACK(s, "span: trace_id");
            break;
        case 2:
            if (rd_len(&r, &f->span_id, &f->span_id_n) != OK)
                return FALLBACK(s, "span: span_id");
            break;
        case 3:
            if (rd_len(&r, &f->trace_state, &f->trace_state_n) != OK ||
                !utf8_valid(f->trace_state, f->trace_state_n))
                return FALLBACK(s, "span: trace_state");
            break;
        case 4:
            if (rd_len(&r, &f->parent, &f->parent_n) != OK)
                return FALLBACK(s, "span: parent_span_id");
            break;
        case 5:
            if (rd_len(&r, &f->name, &f->name_n) != OK || !utf8_valid(f->name, f->name_n))
                return FALLBACK(s, "span: name");
            break;
        case 6:
            if (rd_varint(&r, &v) != OK)
                return FALLBACK(s, "span: kind");
            f->kind = (int32_t)(uint32_t)v; /* int32: the low 32 bits */
            break;
        case 7:
            if (rd_fixed64(&r, &f->start) != OK)
                return FALLBACK(s, "span: start");
            break;
        case 8:
            if (rd_fixed64(&r, &f->end) != OK)
                return FALLBACK(s, "span: end");
            break;
        case 9: {
            if (rd_len(&r, &b, &bn) != OK)
                return FALLBACK(s, "span: attribute");
            Slice sl = {b, bn};
            if (buf_put(&s->slices, &sl, sizeof(sl)) != OK)
                return ERR;
            break;
        }
        case 10:
            if (rd_varint(&r, &v) != OK)
                return FALLBACK(s, "span: dropped_attributes_count");
            f->dropped_attrs = (uint32_t)v;
            break;
        case 11:
            if (rd_len(&r, &b, &bn) != OK)
                return FALLBACK(s, "span: event");
            f->nevents++;
            break;
        case 12:
            if (rd_varint(&r, &v) != OK)
                return FALLBACK(s, "span: dropped_events_count");
            f->dropped_events = (uint32_t)v;
            break;
        case 13:
            if (rd_len(&r, &b, &bn) != OK)
                return FALLBACK(s, "span: link");
            f->nlinks++;
            break;
        case 14:
            if (rd_varint(&r, &v) != OK)
                return FALLBACK(s, "span: dropped_links_count");
            f->dropped_links = (uint32_t)v;
            break;
        case 15:
            if (rd_len(&r, &f->status, &f->status_n) != OK)
                return FALLBACK(s, "span: status");
            break;
        case 16:
            if (rd_fixed32(&r, &f->flags) != OK)
                return FALLBACK(s, "span: flags");
            break;
        }
    }
    return OK;
}

static int
append_val(FastState *s, int col, const Val *v)
{
    Col *c = &s->sparse[col];
    if (!v->have)
        return col_null(c);
    switch (s->coltype[col]) {
    case 's':
        if (v->vtype != V_STR)
            return FALLBACK(s, "text column given a number");
        return col_str(c, v->s, v->slen);
    case 'i':
        if (v->vtype != V_INT)
            return FALLBACK(s, "int column given another type");
        return col_fixed(c, &v->i);
    default:
        if (v->vtype != V_DBL)
            return FALLBACK(s, "double column given another type");
        return col_fixed(c, &v->d);
    }
}

/* A value kept adjusted and noted as sent, as an int attribute (ingest.notes). */
typedef struct {
    const char *key;
    Py_ssize_t klen;
    int64_t value;
} Note;

/* Whether an attribute named `key` gives way to one of the span's notes. */
static int
gives_way(const Note *notes, int nnotes, const uint8_t *key, Py_ssize_t klen)
{
    for (int j = 0; j < nnotes; j++) {
        if (notes[j].klen == klen && memcmp(notes[j].key, key, (size_t)klen) == 0)
            return 1;
    }
    return 0;
}

static int
process_span(FastState *s, const uint8_t *p, Py_ssize_t n, int openlit)
{
    SpanF f;
    int rc = parse_span(s, p, n, &f);
    if (rc != OK)
        return rc;
    uint64_t serial = ++s->serial;
    Py_ssize_t row = s->n;

    /* identity, timing, status */
    if (col_hex(&s->trace_id, f.trace_id, f.trace_id_n) != OK ||
        col_hex(&s->span_id, f.span_id, f.span_id_n) != OK ||
        col_hex(&s->parent_span_id, f.parent, f.parent_n) != OK)
        return ERR;
    if ((f.trace_state_n ? col_str(&s->trace_state, (const char *)f.trace_state, f.trace_state_n)
                         : col_null(&s->trace_state)) != OK)
        return ERR;
    if (col_str(&s->name, (const char *)f.name, f.name_n) != OK)
        return ERR;
    if ((f.flags ? col_fixed(&s->flags, &f.flags) : col_null(&s->flags)) != OK)
        return ERR;
    /* what does not fit is kept adjusted and noted as sent (ingest.notes.span_notes) */
    Note notes[3];
    int nnotes = 0;
    int8_t k8 = (int8_t)f.kind;
    if (f.kind < -128 || f.kind > 127)
        notes[nnotes++] = (Note){KIND_NOTE, (Py_ssize_t)strlen(KIND_NOTE), f.kind};
    if ((f.kind >= -128 && f.kind <= 127 ? col_fixed(&s->kind, &k8) : col_null(&s->kind)) != OK)
        return ERR;
    /* an end before the start (or 0): duration 0, the end as sent noted */
    int noted = f.end < f.start;
    if (noted && f.end > (uint64_t)INT64_MAX)
        return FALLBACK(s, "noted end time past int64");
    /* times past int64 are clamped (ingest.columns.int64_array) */
    int64_t st = f.start > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)f.start;
    int64_t en = noted ? st : f.end > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)f.end;
    if (col_fixed(&s->start_time, &st) != OK)
        return ERR;
    int64_t dur = en - st; /* both in [0, 2^63) and en >= st: no overflow */
    if (col_fixed(&s->duration, &dur) != OK)
        return ERR;
    int32_t scode = 0;
    const uint8_t *smsg = NULL;
    Py_ssize_t smsg_n = 0;
    if (f.status_n) {
        rc = parse_status(s, f.status, f.status_n, &scode, &smsg, &smsg_n);
        if (rc != OK)
            return rc;
    }
    int8_t sc8 = (int8_t)scode;
    if ((scode >= -128 && scode <= 127 ? col_fixed(&s->status_code, &sc8)
                                       : col_null(&s->status_code)) != OK)
        return ERR;
    /* in the order of span_notes: end, kind, status code */
    if (noted) {
        memmove(notes + 1, notes, (size_t)nnotes * sizeof(Note));
        notes[0] = (Note){END_NOTE, (Py_ssize_t)strlen(END_NOTE), (int64_t)f.end};
        nnotes++;
    }
    if (scode < -128 || scode > 127)
        notes[nnotes++] = (Note){STATUS_NOTE, (Py_ssize_t)strlen(STATUS_NOTE), scode};
    if ((smsg_n ? col_str(&s->status_message, (const char *)smsg, smsg_n)
                : col_null(&s->status_message)) != OK)
        return ERR;
    if (col_fixed(&s->dropped_events, &f.dropped_events) != OK ||
        col_fixed(&s->dropped_links, &f.dropped_links) != OK)
        return ERR;

    /* attributes: decode every one (a duplicate that does not decode fails the request in
     * the reference too), then the first occurrence of each key wins */
    Py_ssize_t na = s->slices.len / (Py_ssize_t)sizeof(Slice);
    if (na > s->attrs_cap) {
        Py_ssize_t cap = na < 64 ? 64 : na * 2;
        Attr *a = PyMem_Realloc(s->attrs, (size_t)cap * sizeof(Attr));
        if (a == NULL) {
            PyErr_NoMemory();
            return ERR;
        }
        s->attrs = a;
        s->attrs_cap = cap;
    }
    Attr *attrs = s->attrs;
    const Slice *sl = (const Slice *)s->slices.p;
    s->scratch.len = 0;
    int hot = 0, special = 0;
    uint32_t dups = 0;
    for (Py_ssize_t j = 0; j < na; j++) {
        Attr *a = &attrs[j];
        a->ki = NULL;
        a->re = NULL;
        a->c0 = a->cn = 0;
        a->raw = sl[j].p;
        a->rawlen = sl[j].n;
        rc = decode_attr(s, a);
        if (rc != OK)
            return rc;
        a->dup = a->ki->seen_stamp == serial;
        if (a->dup) {
            dups++;
            continue;
        }
        a->ki->seen_stamp = serial;
        if (a->re != NULL) {
            hot |= a->re->ncontrib > 0 || a->re->special;
            special |= a->re->special;
        }
        else {
            hot |= a->cn > 0;
        }
    }

    /* typed columns */
    SpanOut o;
    o.model_call = 0;
    memset(&o.priced, 0, sizeof(o.priced));
    memset(o.vals, 0, sizeof(Val) * (size_t)s->ncols);
    if (hot) {
        rc = special ? resolve_python(s, attrs, na, openlit, f.start, &o)
                     : resolve_native(s, attrs, na, openlit, f.start, &o);
        if (rc != OK)
            return rc;
    }
    if (o.model_call) {
        Val *cs = &o.vals[s->r.cost_source];
        cs->have = 1;
        cs->vtype = V_STR;
        cs->s = o.priced.source;
        cs->slen = o.priced.source_n;
        if (o.priced.ref != NULL) {
            Val *pr = &o.vals[s->r.price_ref];
            pr->have = 1;
            pr->vtype = V_STR;
            pr->s = o.priced.ref;
            pr->slen = o.priced.ref_n;
        }
    }
    /* error type from an `exception` event of an ERROR span (ingest.normalize) */
    if (scode == 2 && !o.vals[s->r.error_type].have && f.nevents) {
        PyObject *span = PyBytes_FromStringAndSize((const char *)p, n);
        if (span == NULL)
            return ERR;
        PyObject *err = PyObject_CallOneArg(s->cb_exception_type, span);
        Py_DECREF(span);
        if (err == NULL)
            return ERR;
        if (err != Py_None) {
            Val *v = &o.vals[s->r.error_type];
            if (keep(s, err) != OK)
                return ERR;
            rc = utf8_of(s, err, &v->s, &v->slen);
            if (rc != OK)
                return rc;
            v->have = 1;
            v->vtype = V_STR;
        }
        else {
            Py_DECREF(err);
        }
    }
    for (int col = 0; col < s->ncols; col++) {
        rc = append_val(s, col, &o.vals[col]);
        if (rc != OK)
            return rc;
    }
    uint8_t mc = o.model_call;
    if (col_fixed(&s->is_model_call, &mc) != OK)
        return ERR;
    if (o.model_call && o.priced.have_cost) {
        int64_t words[2] = {o.priced.pico, 0}; /* decimal128: little-endian, high word 0 */
        rc = col_fixed(&s->cost, words);
    }
    else {
        rc = col_null(&s->cost);
    }
    if (rc != OK)
        return rc;
    if (buf_i32(&s->src_off, (int32_t)(s->src_pairs.len / 4)) != OK)
        return ERR;

    /* the attributes that stay: not duplicates, not moved exactly into a typed column */
    s->codes.len = 0;
    int all_strings = 1;
    for (Py_ssize_t j = 0; j < na; j++) {
        const Attr *a = &attrs[j];
        if (a->dup || (a->ki->drop_stamp == serial && a->ki->keep_stamp != serial))
            continue;
        if (nnotes && gives_way(notes, nnotes, a->ki->h.key, a->ki->h.klen)) {
            dups++; /* an attribute named like a note gives way to it, counted as dropped */
            continue;
        }
        if (col_str(&s->attr_keys, (const char *)a->ki->h.key, a->ki->h.klen) != OK ||
            col_str(&s->attr_vals, a->text, a->tlen) != OK || buf_byte(&s->codes, (uint8_t)a->code) != OK)
            return ERR;
        all_strings &= a->code == 's';
    }
    for (int j = 0; j < nnotes; j++) {
        char num[24];
        int len = int_text(notes[j].value, num);
        if (col_str(&s->attr_keys, notes[j].key, notes[j].klen) != OK ||
            col_str(&s->attr_vals, num, len) != OK || buf_byte(&s->codes, 'i') != OK)
            return ERR;
        all_strings = 0;
    }
    /* as sent plus duplicates, saturating at the column's maximum (ingest.columns.uint32_array):
     * the one place this path saturates */
    uint64_t dropped = (uint64_t)f.dropped_attrs + dups;
    uint32_t dropped32 = dropped > UINT32_MAX ? UINT32_MAX : (uint32_t)dropped;
    if (s->attr_keys.data.len > INT32_MAX || s->attr_keys.off.len / 4 > INT32_MAX)
        return FALLBACK(s, "attributes beyond int32 offsets");
    if (buf_i32(&s->attr_off, (int32_t)(s->attr_keys.off.len / 4 - 1)) != OK)
        return ERR;
    if ((all_strings ? col_null(&s->attr_types) : col_str(&s->attr_types, s->codes.p, s->codes.len)) !=
        OK)
        return ERR;
    if (col_fixed(&s->dropped_attrs, &dropped32) != OK)
        return ERR;

    /* events and links: Python builds their columns from the span's bytes */
    if (f.nevents || f.nlinks) {
        PyObject *item = Py_BuildValue("(ny#)", row, (const char *)p, n);
        if (item == NULL || PyList_Append(s->nested, item) != 0) {
            Py_XDECREF(item);
            return ERR;
        }
        Py_DECREF(item);
    }
    release_kept(s);
    s->n++;
    return OK;
}

/* ------------------------------------------------------------------------------------------
 * Requests, resource spans, scope spans. Singular fields: the last occurrence wins (upb).
 */
static int
truthy_attr(PyObject *obj, PyObject *name, int *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return ERR;
    int t = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (t < 0)
        return ERR;
    *out = t;
    return OK;
}

static int
walk_scope_spans(FastState *s, const uint8_t *p, Py_ssize_t n, PyObject *res, PyObject *rs_url)
{
    Rd r = {p, p + n};
    const uint8_t *scope = (const uint8_t *)"", *url = (const uint8_t *)"";
    Py_ssize_t scope_n = 0, url_n = 0, nspans = 0;
    while (r.p < r.end) { /* pass 1: scope, schema_url, span count */
        uint32_t f;
        int wt;
        const uint8_t *b;
        Py_ssize_t bn;
        if (rd_tag(&r, &f, &wt) != OK)
            return FALLBACK(s, "scope spans: bad tag");
        if (f >= 1 && f <= 3) {
            if (wt != WT_LEN || rd_len(&r, &b, &bn) != OK)
                return FALLBACK(s, "scope spans: field");
            if (f == 1) {
                scope = b;
                scope_n = bn;
            }
            else if (f == 2) {
                nspans++;
            }
            else {
                if (!utf8_valid(b, bn))
                    return FALLBACK(s, "scope spans: schema_url is not UTF-8");
                url = b;
                url_n = bn;
            }
        }
        else if (rd_skip(&r, wt) != OK) {
            return FALLBACK(s, "scope spans: unknown field");
        }
    }
    if (nspans == 0)
        return OK;
    PyObject *sc = PyObject_CallFunction(s->cb_scope, "y#", (const char *)scope, scope_n);
    if (sc == NULL)
        return ERR;
    int openlit_res, openlit_scope;
    if (truthy_attr(res, s->str_openlit, &openlit_res) != OK ||
        truthy_attr(sc, s->str_openlit, &openlit_scope) != OK) {
        Py_DECREF(sc);
        return ERR;
    }
    PyObject *block = Py_BuildValue("(OOOs#)", res, sc, rs_url, (const char *)url, url_n);
    Py_DECREF(sc);
    if (block == NULL)
        return ERR;
    int fail = PyList_Append(s->blocks, block);
    Py_DECREF(block);
    if (fail)
        return ERR;
    PyObject *size = PyLong_FromSsize_t(nspans);
    if (size == NULL)
        return ERR;
    fail = PyList_Append(s->sizes, size);
    Py_DECREF(size);
    if (fail)
        return ERR;
    r.p = p;
    while (r.p < r.end) { /* pass 2: the spans (pass 1 checked the framing) */
        uint32_t f;
        int wt;
        const uint8_t *b;
        Py_ssize_t bn;
        if (rd_tag(&r, &f, &wt) != OK)
            return FALLBACK(s, "scope spans: bad tag");
        if (f == 2) {
            if (rd_len(&r, &b, &bn) != OK)
                return FALLBACK(s, "scope spans: span");
            int rc = process_span(s, b, bn, openlit_res || openlit_scope);
            if (rc != OK)
                return rc;
        }
        else if (rd_skip(&r, wt) != OK) {
            return FALLBACK(s, "scope spans: field");
        }
    }
    return OK;
}

static int
walk_resource_spans(FastState *s, const uint8_t *p, Py_ssize_t n)
{
    Rd r = {p, p + n};
    const uint8_t *res = (const uint8_t *)"", *url = (const uint8_t *)"";
    Py_ssize_t res_n = 0, url_n = 0;
    while (r.p < r.end) { /* pass 1: resource and schema_url */
        uint32_t f;
        int wt;
        const uint8_t *b;
        Py_ssize_t bn;
        if (rd_tag(&r, &f, &wt) != OK)
            return FALLBACK(s, "resource spans: bad tag");
        if (f >= 1 && f <= 3) {
            if (wt != WT_LEN || rd_len(&r, &b, &bn) != OK)
                return FALLBACK(s, "resource spans: field");
            if (f == 1) {
                res = b;
                res_n = bn;
            }
            else if (f == 3) {
                if (!utf8_valid(b, bn))
                    return FALLBACK(s, "resource spans: schema_url is not UTF-8");
                url = b;
                url_n = bn;
            }
        }
        else if (rd_skip(&r, wt) != OK) {
            return FALLBACK(s, "resource spans: unknown field");
        }
    }
    PyObject *resource = PyObject_CallFunction(s->cb_resource, "y#", (const char *)res, res_n);
    if (resource == NULL)
        return ERR;
    PyObject *rs_url = PyUnicode_DecodeUTF8((const char *)url, url_n, "strict");
    if (rs_url == NULL) {
        Py_DECREF(resource);
        return ERR;
    }
    int rc = OK;
    r.p = p;
    while (r.p < r.end && rc == OK) { /* pass 2: scope spans */
        uint32_t f;
        int wt;
        const uint8_t *b;
        Py_ssize_t bn;
        if (rd_tag(&r, &f, &wt) != OK) {
            rc = FALLBACK(s, "resource spans: bad tag");
        }
        else if (f == 2) {
            if (rd_len(&r, &b, &bn) != OK)
                rc = FALLBACK(s, "resource spans: scope spans");
            else
                rc = walk_scope_spans(s, b, bn, resource, rs_url);
        }
        else if (rd_skip(&r, wt) != OK) {
            rc = FALLBACK(s, "resource spans: field");
        }
    }
    Py_DECREF(rs_url);
    Py_DECREF(resource);
    return rc;
}

static int
walk_request(FastState *s, const uint8_t *p, Py_ssize_t n)
{
    Rd r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        const uint8_t *b;
        Py_ssize_t bn;
        if (rd_tag(&r, &f, &wt) != OK)
            return FALLBACK(s, "request: bad tag");
        if (f == 1) {
            if (wt != WT_LEN || rd_len(&r, &b, &bn) != OK)
                return FALLBACK(s, "request: resource spans");
            int rc = walk_resource_spans(s, b, bn);
            if (rc != OK)
                return rc;
        }
        else if (rd_skip(&r, wt) != OK) {
            return FALLBACK(s, "request: unknown field");
        }
    }
    return OK;
}

/* ------------------------------------------------------------------------------------------
 * The receiver's check (ingest.validate): every span of a request has a 16-byte non-zero trace
 * id, an 8-byte non-zero span id, an empty or 8-byte parent, 0 < start <= MAX_SPAN_TIME_NS and
 * end <= MAX_SPAN_TIME_NS. Over the raw bytes of a request upb already parsed, so only the
 * framing of the fields read matters; anything unexpected (a wrong wire type, which upb reads
 * as an unknown field) leaves the decision to the Python check.
 */
static int
check_span(const uint8_t *p, Py_ssize_t n)
{
    static const int8_t want[17] = {-1,     WT_LEN, WT_LEN,    WT_LEN, WT_LEN,    WT_LEN,
                                    WT_VARINT, WT_I64, WT_I64, WT_LEN, WT_VARINT, WT_LEN,
                                    WT_VARINT, WT_LEN, WT_VARINT, WT_LEN, WT_I32};
    Rd r = {p, p + n};
    const uint8_t *tid = NULL, *sid = NULL, *b;
    Py_ssize_t tid_n = 0, sid_n = 0, parent_n = 0;
    uint64_t start = 0, end = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        if (rd_tag(&r, &f, &wt) != OK)
            return ODD;
        if (f > 16) {
            if (rd_skip(&r, wt) != OK)
                return ODD;
            continue;
        }
        if (wt != want[f])
            return ODD;
        switch (f) {
        case 1:
            if (rd_len(&r, &tid, &tid_n) != OK)
                return ODD;
            break;
        case 2:
            if (rd_len(&r, &sid, &sid_n) != OK)
                return ODD;
            break;
        case 4:
            if (rd_len(&r, &b, &parent_n) != OK)
                return ODD;
            break;
        case 7:
            if (rd_fixed64(&r, &start) != OK)
                return ODD;
            break;
        case 8:
            if (rd_fixed64(&r, &end) != OK)
                return ODD;
            break;
        default:
            if (rd_skip(&r, wt) != OK)
                return ODD;
        }
    }
    static const uint8_t zeros[16] = {0};
    if (tid_n != 16 || memcmp(tid, zeros, 16) == 0 || sid_n != 8 || memcmp(sid, zeros, 8) == 0)
        return ODD;
    if ((parent_n != 0 && parent_n != 8) || start == 0 || start > MAX_SPAN_TIME_NS ||
        end > MAX_SPAN_TIME_NS)
        return ODD;
    return OK;
}

/* Walk request -> resource spans (1) -> scope spans (2) -> spans (2), counting valid spans. */
static int
check_level(const uint8_t *p, Py_ssize_t n, uint32_t field, int depth, Py_ssize_t *count)
{
    Rd r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        const uint8_t *b;
        Py_ssize_t bn;
        if (rd_tag(&r, &f, &wt) != OK)
            return ODD;
        if (f != field) {
            if (rd_skip(&r, wt) != OK)
                return ODD;
            continue;
        }
        if (wt != WT_LEN || rd_len(&r, &b, &bn) != OK)
            return ODD;
        int rc;
        if (depth == 2) {
            rc = check_span(b, bn);
            (*count)++;
        }
        else {
            rc = check_level(b, bn, 2, depth + 1, count);
        }
        if (rc != OK)
            return rc;
    }
    return OK;
}

PyDoc_STRVAR(count_valid_spans_doc,
             "count_valid_spans(data) -> int | None\n\n"
             "The number of spans of a serialized ExportTraceServiceRequest when every one passes\n"
             "ingest.validate's checks; None when any does not (or the bytes are unexpected).");

static PyObject *
count_valid_spans(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0)
        return NULL;
    Py_ssize_t count = 0;
    int rc = check_level((const uint8_t *)view.buf, view.len, 1, 0, &count);
    PyBuffer_Release(&view);
    if (rc != OK)
        Py_RETURN_NONE;
    return PyLong_FromSsize_t(count);
}

static PyMethodDef module_methods[] = {
    {"count_valid_spans", count_valid_spans, METH_O, count_valid_spans_doc},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------------------------------
 * The Python type.
 */
static Col *
fixed_cols(FastState *s, int i)
{
    Col *all[] = {&s->trace_id,      &s->span_id,        &s->parent_span_id, &s->trace_state,
                  &s->name,          &s->status_message, &s->flags,          &s->kind,
                  &s->status_code,   &s->start_time,     &s->duration,       &s->cost,
                  &s->is_model_call, &s->attr_types,     &s->dropped_attrs,  &s->dropped_events,
                  &s->dropped_links, &s->attr_keys,      &s->attr_vals};
    return i < (int)(sizeof(all) / sizeof(all[0])) ? all[i] : NULL;
}

static void
clear_caches(FastState *s)
{
    table_clear(&s->raws, free_raw);
    table_clear(&s->keys, free_key);
    table_clear(&s->plans, free_plan);
    s->raw_bytes = 0;
}

static int
FastState_traverse(FastState *s, visitproc visit, void *arg)
{
    Py_VISIT(s->cb_resource);
    Py_VISIT(s->cb_scope);
    Py_VISIT(s->cb_entry);
    Py_VISIT(s->cb_key);
    Py_VISIT(s->cb_resolve);
    Py_VISIT(s->cb_plan);
    Py_VISIT(s->cb_price);
    Py_VISIT(s->cb_exception_type);
    Py_VISIT(s->colindex);
    Py_VISIT(s->model_ops);
    Py_VISIT(s->openlit_exclusive);
    return 0;
}

static int
FastState_clear(FastState *s)
{
    Py_CLEAR(s->cb_resource);
    Py_CLEAR(s->cb_scope);
    Py_CLEAR(s->cb_entry);
    Py_CLEAR(s->cb_key);
    Py_CLEAR(s->cb_resolve);
    Py_CLEAR(s->cb_plan);
    Py_CLEAR(s->cb_price);
    Py_CLEAR(s->cb_exception_type);
    Py_CLEAR(s->colindex);
    Py_CLEAR(s->model_ops);
    Py_CLEAR(s->openlit_exclusive);
    return 0;
}

static void
FastState_dealloc(FastState *s)
{
    PyObject_GC_UnTrack(s);
    FastState_clear(s);
    Py_CLEAR(s->str_openlit);
    Py_CLEAR(s->blocks);
    Py_CLEAR(s->sizes);
    Py_CLEAR(s->nested);
    release_kept(s);
    clear_caches(s);
    for (int i = 0; fixed_cols(s, i); i++)
        col_free(fixed_cols(s, i));
    for (int i = 0; i < MAXCOLS; i++)
        col_free(&s->sparse[i]);
    buf_free(&s->src_off);
    buf_free(&s->src_pairs);
    buf_free(&s->attr_off);
    buf_free(&s->slices);
    buf_free(&s->scratch);
    buf_free(&s->codes);
    buf_free(&s->plankey);
    PyMem_Free(s->attrs);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static int
role(FastState *s, const char *name, int *out)
{
    PyObject *idx = PyDict_GetItemString(s->colindex, name);
    if (idx == NULL) {
        PyErr_Format(PyExc_ValueError, "column %s missing", name);
        return ERR;
    }
    *out = (int)PyLong_AsLong(idx);
    return PyErr_Occurred() ? ERR : OK;
}

static int
FastState_init(FastState *s, PyObject *args, PyObject *kw)
{
    static char *names[] = {"resource", "scope", "entry", "key", "resolve", "plan", "price",
                            "exception_type", "columns", "model_ops", "openlit_exclusive",
                            NULL};
    PyObject *columns;
    PyObject *cbs[8];
    PyObject *model_ops, *excl;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOO!O!O!", names, &cbs[0], &cbs[1],
                                     &cbs[2], &cbs[3], &cbs[4], &cbs[5], &cbs[6], &cbs[7],
                                     &PyTuple_Type, &columns, &PyFrozenSet_Type, &model_ops,
                                     &PyFrozenSet_Type, &excl))
        return -1;
    for (int i = 0; i < 8; i++) {
        if (!PyCallable_Check(cbs[i])) {
            PyErr_SetString(PyExc_TypeError, "callbacks must be callable");
            return -1;
        }
    }
    FastState_clear(s);
    Py_CLEAR(s->str_openlit);
    clear_caches(s);
    s->cb_resource = Py_NewRef(cbs[0]);
    s->cb_scope = Py_NewRef(cbs[1]);
    s->cb_entry = Py_NewRef(cbs[2]);
    s->cb_key = Py_NewRef(cbs[3]);
    s->cb_resolve = Py_NewRef(cbs[4]);
    s->cb_plan = Py_NewRef(cbs[5]);
    s->cb_price = Py_NewRef(cbs[6]);
    s->cb_exception_type = Py_NewRef(cbs[7]);
    s->model_ops = Py_NewRef(model_ops);
    s->openlit_exclusive = Py_NewRef(excl);
    s->str_openlit = PyUnicode_InternFromString("openlit");
    s->colindex = PyDict_New();
    if (s->str_openlit == NULL || s->colindex == NULL)
        return -1;
    /* columns: ((name, 's' | 'i' | 'd'), ...) in the order of ingest.normalize.SPARSE_COLUMNS */
    Py_ssize_t nc = PyTuple_GET_SIZE(columns);
    if (nc > MAXCOLS) {
        PyErr_SetString(PyExc_ValueError, "too many columns");
        return -1;
    }
    s->ncols = (int)nc;
    for (Py_ssize_t i = 0; i < nc; i++) {
        PyObject *name;
        const char *type;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(columns, i), "Us", &name, &type))
            return -1;
        if (strlen(type) != 1 || strchr("sid", type[0]) == NULL) {
            PyErr_SetString(PyExc_ValueError, "column type must be s, i or d");
            return -1;
        }
        s->coltype[i] = type[0];
        s->sparse[i].width = type[0] == 's' ? 0 : 8;
        s->sparse[i].nullable = 1;
        PyObject *idx = PyLong_FromSsize_t(i);
        if (idx == NULL || PyDict_SetItem(s->colindex, name, idx) != 0) {
            Py_XDECREF(idx);
            return -1;
        }
        Py_DECREF(idx);
    }
    Roles *R = &s->r;
    if (role(s, "operation", &R->op) || role(s, "provider", &R->provider) ||
        role(s, "request_model", &R->request_model) ||
        role(s, "response_model", &R->response_model) || role(s, "input_tokens", &R->input) ||
        role(s, "output_tokens", &R->output) || role(s, "cache_read_tokens", &R->cache_read) ||
        role(s, "cache_write_tokens", &R->cache_write) ||
        role(s, "reasoning_tokens", &R->reasoning) || role(s, "total_tokens", &R->total) ||
        role(s, "usage_basis", &R->usage_basis) || role(s, "cost_source", &R->cost_source) ||
        role(s, "price_ref", &R->price_ref) || role(s, "reported_cost_usd", &R->reported) ||
        role(s, "error_type", &R->error_type))
        return -1;
    /* the fixed columns: (width, nullable) */
    struct {
        Col *c;
        int width, nullable;
    } fixed[] = {
        {&s->trace_id, 0, 1},      {&s->span_id, 0, 1},       {&s->parent_span_id, 0, 1},
        {&s->trace_state, 0, 1},   {&s->name, 0, 0},          {&s->status_message, 0, 1},
        {&s->flags, 4, 1},         {&s->kind, 1, 1},          {&s->status_code, 1, 1},
        {&s->start_time, 8, 0},    {&s->duration, 8, 1},      {&s->cost, 16, 1},
        {&s->is_model_call, 1, 0}, {&s->attr_types, 0, 1},    {&s->dropped_attrs, 4, 0},
        {&s->dropped_events, 4, 0}, {&s->dropped_links, 4, 0}, {&s->attr_keys, 0, 0},
        {&s->attr_vals, 0, 0},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        fixed[i].c->width = fixed[i].width;
        fixed[i].c->nullable = fixed[i].nullable;
    }
    s->seed = (uint64_t)(uintptr_t)s ^ 0x2545F4914F6CDD1DULL;
    return 0;
}

static PyObject *
build_result(FastState *s)
{
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    struct {
        const char *name;
        Col *c;
    } cols[] = {
        {"trace_id", &s->trace_id},
        {"span_id", &s->span_id},
        {"parent_span_id", &s->parent_span_id},
        {"trace_state", &s->trace_state},
        {"name", &s->name},
        {"status_message", &s->status_message},
        {"flags", &s->flags},
        {"kind", &s->kind},
        {"status_code", &s->status_code},
        {"start_time", &s->start_time},
        {"duration_ns", &s->duration},
        {"cost_usd", &s->cost},
        {"attribute_types", &s->attr_types},
        {"dropped_attributes_count", &s->dropped_attrs},
        {"dropped_events_count", &s->dropped_events},
        {"dropped_links_count", &s->dropped_links},
        {"attribute_keys", &s->attr_keys},
        {"attribute_values", &s->attr_vals},
    };
    PyObject *v;
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        v = col_result(cols[i].c);
        if (v == NULL || PyDict_SetItemString(d, cols[i].name, v) != 0)
            goto fail;
        Py_DECREF(v);
    }
    v = packed_bits(&s->is_model_call.data);
    if (v == NULL || PyDict_SetItemString(d, "is_model_call", v) != 0)
        goto fail;
    Py_DECREF(v);
    PyObject *sparse = PyTuple_New(s->ncols);
    if (sparse == NULL || PyDict_SetItemString(d, "sparse", sparse) != 0) {
        Py_XDECREF(sparse);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(sparse);
    for (int i = 0; i < s->ncols; i++) {
        v = col_result(&s->sparse[i]);
        if (v == NULL) {
            Py_DECREF(d);
            return NULL;
        }
        PyTuple_SET_ITEM(sparse, i, v);
    }
    struct {
        const char *name;
        Buf *b;
    } bufs[] = {{"source_offsets", &s->src_off},
                {"source_pairs", &s->src_pairs},
                {"attribute_offsets", &s->attr_off}};
    for (size_t i = 0; i < 3; i++) {
        v = buf_bytes(bufs[i].b);
        if (v == NULL || PyDict_SetItemString(d, bufs[i].name, v) != 0)
            goto fail;
        Py_DECREF(v);
    }
    v = PyLong_FromSsize_t(s->n);
    if (v == NULL || PyDict_SetItemString(d, "rows", v) != 0)
        goto fail;
    Py_DECREF(v);
    if (PyDict_SetItemString(d, "blocks", s->blocks) != 0 ||
        PyDict_SetItemString(d, "sizes", s->sizes) != 0 ||
        PyDict_SetItemString(d, "nested", s->nested) != 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
fail:
    Py_XDECREF(v);
    Py_DECREF(d);
    return NULL;
}

static int
start_request(FastState *s)
{
    if (s->keys.count > MAX_KEYS || s->raws.count > MAX_RAWS || s->raw_bytes > MAX_RAW_BYTES ||
        s->plans.count > MAX_PLANS) {
        clear_caches(s);
        s->st_resets++;
    }
    s->n = 0;
    for (int i = 0; fixed_cols(s, i); i++) {
        if (col_start(fixed_cols(s, i)) != OK)
            return ERR;
    }
    for (int i = 0; i < s->ncols; i++) {
        if (col_start(&s->sparse[i]) != OK)
            return ERR;
    }
    buf_reset(&s->src_off);
    buf_reset(&s->src_pairs);
    buf_reset(&s->attr_off);
    if (buf_i32(&s->src_off, 0) != OK || buf_i32(&s->attr_off, 0) != OK)
        return ERR;
    Py_XSETREF(s->blocks, PyList_New(0));
    Py_XSETREF(s->sizes, PyList_New(0));
    Py_XSETREF(s->nested, PyList_New(0));
    if (s->blocks == NULL || s->sizes == NULL || s->nested == NULL)
        return ERR;
    s->reason = NULL;
    return OK;
}

PyDoc_STRVAR(normalize_doc,
             "normalize(data) -> dict | None\n\n"
             "The column buffers of one serialized ExportTraceServiceRequest, or None when the\n"
             "request must take the Python path (see ingest.native).");

static PyObject *
FastState_normalize(FastState *s, PyObject *arg)
{
    if (s->cb_resource == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "FastState not initialized");
        return NULL;
    }
    if (s->busy) {
        PyErr_SetString(PyExc_RuntimeError, "FastState.normalize is not reentrant");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0)
        return NULL;
    s->busy = 1;
    s->st_requests++;
    int rc = start_request(s);
    if (rc == OK)
        rc = walk_request(s, (const uint8_t *)view.buf, view.len);
    PyObject *result = NULL;
    if (rc == OK) {
        result = build_result(s);
        if (result == NULL)
            rc = ERR;
    }
    release_kept(s);
    Py_CLEAR(s->blocks);
    Py_CLEAR(s->sizes);
    Py_CLEAR(s->nested);
    s->busy = 0;
    PyBuffer_Release(&view);
    if (rc == OK) {
        s->st_native++;
        s->st_spans += s->n;
        return result;
    }
    if (rc == ERR) {
        /* a callback raised: the Python path will say why, or succeed. Out of memory, and
         * what is not an Exception (KeyboardInterrupt, SystemExit), propagate at once. */
        if (PyErr_ExceptionMatches(PyExc_MemoryError) ||
            !PyErr_ExceptionMatches(PyExc_Exception))
            return NULL;
        s->st_errors++;
        PyErr_Clear();
        s->reason = "a callback raised";
    }
    else {
        s->st_odd++;
    }
    Py_RETURN_NONE;
}

static PyObject *
FastState_stats(FastState *s, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue(
        "{s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:s}", "requests",
        s->st_requests, "native", s->st_native, "odd", s->st_odd, "errors", s->st_errors,
        "spans", s->st_spans, "python_spans", s->st_py_spans, "python_prices", s->st_py_prices,
        "entry_calls", s->st_entry_calls, "key_calls", s->st_key_calls, "plan_calls",
        s->st_plan_calls, "resets", s->st_resets, "keys", (Py_ssize_t)s->keys.count, "raws",
        (Py_ssize_t)s->raws.count, "plans", (Py_ssize_t)s->plans.count, "last_fallback",
        s->reason ? s->reason : "");
}

static PyObject *
FastState_reset(FastState *s, PyObject *Py_UNUSED(ignored))
{
    if (s->busy) {
        PyErr_SetString(PyExc_RuntimeError, "FastState is busy");
        return NULL;
    }
    clear_caches(s);
    Py_RETURN_NONE;
}

static PyMethodDef FastState_methods[] = {
    {"normalize", (PyCFunction)FastState_normalize, METH_O, normalize_doc},
    {"stats", (PyCFunction)FastState_stats, METH_NOARGS, "Counters, for diagnostics and tests."},
    {"reset", (PyCFunction)FastState_reset, METH_NOARGS, "Drop every cached key, value, plan."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FastStateType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ingest.native._fastpath.FastState",
    .tp_basicsize = sizeof(FastState),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Native span normalization bound to one Normalizer's callbacks and caches.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FastState_init,
    .tp_dealloc = (destructor)FastState_dealloc,
    .tp_traverse = (traverseproc)FastState_traverse,
    .tp_clear = (inquiry)FastState_clear,
    .tp_methods = FastState_methods,
};

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ingest.native._fastpath",
    .m_doc = "Compiled fast path of ingest.normalize (see ingest/native/__init__.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    if (PyType_Ready(&FastStateType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fastpath_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "FastState", (PyObject *)&FastStateType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
