/* h5format.c - our own reader of the HDF5 subset Keras weight files use (see
 * h5format.h for what is supported and why).
 *
 * The structures follow the "HDF5 File Format Specification" (version 3.0):
 * the superblock, object headers and their messages (dataspace, link info,
 * datatype, link, external files, data layout, filter pipeline, attribute,
 * continuation, symbol table, attribute info), symbol tables (v1 B-tree,
 * local heap, symbol nodes), the global heap, fractal heaps and v2 B-trees
 * (dense links and attributes), and the fixed-array chunk index.
 *
 * Sections, in reading order: errors, file access, a byte cursor, checksums,
 * superblock, object headers, datatypes and dataspaces, groups (symbol tables,
 * link messages, dense storage, the cached link lists), attributes, datasets
 * (contiguous, compact, chunked).
 *
 * Every parse goes through a cursor that stops at the end of its buffer, and
 * every file read through fetch(), which checks the range against the file
 * size. Metadata reads draw on a per-file budget, and B-tree walks on a node
 * budget, so loops in a crafted file end in an error. Version 2 metadata and
 * fletcher32 chunks are checked against their checksums. */
#define _DEFAULT_SOURCE /* flock */
#include "h5format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "alloc.h"
#include "error.h"

#define UNDEF UINT64_MAX            /* an undefined address */
#define MAX_HEADER_BLOCKS 1024      /* continuation blocks of one object header */
#define MAX_BLOCK_BYTES (16u << 20) /* one header block, local heap, global heap collection */
#define MAX_BTREE_NODES 100000      /* nodes visited by one B-tree walk */
#define MAX_BTREE_LEVEL 64
#define MAX_FILTERS 32
#define MAX_CHUNK_BYTES ((size_t)1 << 31)
#define MAX_LINKS 1000000                /* links of one group */
#define LINK_CACHE 4                     /* groups whose links are kept */
#define META_BUDGET_BASE ((uint64_t)256 << 20) /* plus 4x the file size */

/* A group's links, listed once and kept sorted by name (fn_hdf caches a few). */
typedef struct hlink {
    char *name;
    uint64_t addr;
    unsigned type; /* 0 hard, 1 soft, 64 external */
} hlink;

typedef struct linklist {
    uint64_t group; /* UNDEF: an empty cache slot */
    uint64_t used;  /* when last looked in, for least-recently-used eviction */
    hlink *v;
    size_t n, cap;
} linklist;

struct fn_hdf {
    char *path;
    int fd;             /* -1 for a file in memory */
    uint8_t *mem;       /* the bytes of a file in memory (owned) */
    uint64_t window;    /* where the HDF5 file starts in fd (a stored zip entry; 0 for a plain file) */
    uint64_t size; /* file size */
    uint64_t base; /* absolute address of relative address 0 */
    int so, sl;    /* size of offsets, size of lengths, in bytes */
    fn_hdf_obj root;
    uint64_t meta_left; /* metadata bytes we may still read */
    linklist links[LINK_CACHE]; /* groups whose links were listed */
    uint64_t clock;
    uint64_t gcol_addr; /* the cached global heap collection */
    uint8_t *gcol;
    size_t gcol_len;
};

/* ---- errors ---------------------------------------------------------------- */

/* One call's context: the first failure is recorded in err and sticks.
 *
 * Every function that can fail returns a fusenet_status, FUSENET_OK or the
 * (sticky) status of the first failure, as the rest of the library does;
 * FN_CHECKED makes ignoring one a compile error, and TRY passes a failure up.
 * Functions returning a pointer return NULL on failure, with c->st set. */
typedef struct ctx {
    fn_hdf *h;
    const char *what;
    fusenet_error *err;
    fusenet_status st;
} ctx;

/* Records the first failure of the call; returns it (never FUSENET_OK). */
__attribute__((format(printf, 3, 4))) static fusenet_status fail(ctx *c, fusenet_status st, const char *fmt, ...) {
    if (c->st != FUSENET_OK) return c->st;
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    c->st = fusenet__error(c->err, st, "%s: %s: %s", c->h->path, c->what, detail);
    return c->st;
}

#define TRY(call)                                                                                                      \
    do {                                                                                                               \
        fusenet_status try_st_ = (call);                                                                               \
        if (try_st_ != FUSENET_OK) return try_st_;                                                                     \
    } while (0)

#define CORRUPT(c, ...) fail(c, FUSENET_ERR_FORMAT, "corrupt HDF5 file: " __VA_ARGS__)
#define UNSUPPORTED(c, ...) fail(c, FUSENET_ERR_UNSUPPORTED, "not supported: " __VA_ARGS__)
#define NOMEM(c) fail(c, FUSENET_ERR_NOMEM, "out of memory")

static fusenet_status finish(ctx *c) {
    if (c->st == FUSENET_OK) fusenet__ok(c->err);
    return c->st;
}

/* ---- reading the file ------------------------------------------------------ */

static FN_CHECKED fusenet_status fetch_raw(ctx *c, uint64_t addr, void *buf, size_t n, const char *thing) {
    fn_hdf *h = c->h;
    uint64_t abs = h->base + addr;
    if (addr == UNDEF || abs < addr || abs > h->size || n > h->size - abs)
        return CORRUPT(c, "%s at byte %llu (+%zu) lies past the end of the file (%llu bytes)", thing,
                       (unsigned long long)addr, n, (unsigned long long)h->size);
    uint8_t *p = buf;
    if (h->mem) {
        memcpy(p, h->mem + abs, n);
        return FUSENET_OK;
    }
    while (n > 0) {
        ssize_t r = pread(h->fd, p, n, (off_t)(h->window + abs));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return fail(c, FUSENET_ERR_IO, "cannot read %s at byte %llu: %s", thing, (unsigned long long)abs,
                        r < 0 ? strerror(errno) : "file shrank while reading");
        p += r;
        n -= (size_t)r;
        abs += (uint64_t)r;
    }
    return FUSENET_OK;
}

static FN_CHECKED fusenet_status fetch(ctx *c, uint64_t addr, void *buf, size_t n, const char *thing) {
    if (n > c->h->meta_left)
        return CORRUPT(c, "metadata too large or cyclic (reading %s at byte %llu)", thing,
                       (unsigned long long)addr);
    c->h->meta_left -= n;
    return fetch_raw(c, addr, buf, n, thing);
}

/* Reads n bytes of metadata into a new block. */
static uint8_t *fetch_block(ctx *c, uint64_t addr, uint64_t n, const char *thing) {
    if (n > MAX_BLOCK_BYTES || n > c->h->size) {
        CORRUPT(c, "%s at byte %llu claims %llu bytes", thing, (unsigned long long)addr, (unsigned long long)n);
        return NULL;
    }
    uint8_t *b = fusenet__malloc(n ? (size_t)n : 1);
    if (!b) {
        NOMEM(c);
        return NULL;
    }
    if (fetch(c, addr, b, (size_t)n, thing) != FUSENET_OK) {
        fusenet__free(b);
        return NULL;
    }
    return b;
}

/* ---- a cursor over bytes ------------------------------------------------- */

typedef struct cur {
    const uint8_t *p;
    size_t n, i;
    int over; /* a read went past the end */
} cur;

static cur cur_of(const uint8_t *p, size_t n) { return (cur){p, n, 0, 0}; }

static uint64_t u(cur *k, size_t bytes) {
    if (bytes > 8 || k->n - k->i < bytes) {
        k->over = 1;
        k->i = k->n;
        return 0;
    }
    uint64_t v = 0;
    for (size_t b = 0; b < bytes; b++) v |= (uint64_t)k->p[k->i + b] << (8 * b);
    k->i += bytes;
    return v;
}

static const uint8_t *take(cur *k, size_t n) {
    if (k->n - k->i < n) {
        k->over = 1;
        k->i = k->n;
        return NULL;
    }
    const uint8_t *p = k->p + k->i;
    k->i += n;
    return p;
}

static void skip(cur *k, size_t n) { (void)take(k, n); }

static uint64_t addr_of(cur *k, const fn_hdf *h) {
    uint64_t v = u(k, (size_t)h->so);
    if (h->so < 8 && v == (((uint64_t)1 << (8 * h->so)) - 1)) return UNDEF;
    return v;
}

static uint64_t len_of(cur *k, const fn_hdf *h) { return u(k, (size_t)h->sl); }

static int has_sig(const uint8_t *p, const char *sig) { return memcmp(p, sig, 4) == 0; }

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* ---- checksums --------------------------------------------------------------- */

/* Bob Jenkins' lookup3 hash (hashlittle, byte by byte), which version 2
 * metadata of HDF5 carries as its checksum. */
#define ROT(x, k) (((x) << (k)) ^ ((x) >> (32 - (k))))
static uint32_t lookup3(const uint8_t *k, size_t length) {
    uint32_t a, b, c;
    a = b = c = 0xdeadbeef + (uint32_t)length;
    while (length > 12) {
        a += k[0] + ((uint32_t)k[1] << 8) + ((uint32_t)k[2] << 16) + ((uint32_t)k[3] << 24);
        b += k[4] + ((uint32_t)k[5] << 8) + ((uint32_t)k[6] << 16) + ((uint32_t)k[7] << 24);
        c += k[8] + ((uint32_t)k[9] << 8) + ((uint32_t)k[10] << 16) + ((uint32_t)k[11] << 24);
        a -= c, a ^= ROT(c, 4), c += b;
        b -= a, b ^= ROT(a, 6), a += c;
        c -= b, c ^= ROT(b, 8), b += a;
        a -= c, a ^= ROT(c, 16), c += b;
        b -= a, b ^= ROT(a, 19), a += c;
        c -= b, c ^= ROT(b, 4), b += a;
        length -= 12;
        k += 12;
    }
    if (length == 0) return c;
    uint32_t w[3] = {0, 0, 0};
    for (size_t i = 0; i < length; i++) w[i / 4] += (uint32_t)k[i] << (8 * (i % 4));
    a += w[0], b += w[1], c += w[2];
    c ^= b, c -= ROT(b, 14);
    a ^= c, a -= ROT(c, 11);
    b ^= a, b -= ROT(a, 25);
    c ^= b, c -= ROT(b, 16);
    a ^= c, a -= ROT(c, 4);
    b ^= a, b -= ROT(a, 14);
    c ^= b, c -= ROT(b, 24);
    return c;
}
#undef ROT

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The checksum stored right after b[0..n) must match. */
static FN_CHECKED fusenet_status check_sum(ctx *c, const uint8_t *b, size_t n, const char *thing, uint64_t addr) {
    if (lookup3(b, n) == le32(b + n)) return FUSENET_OK;
    return CORRUPT(c, "%s at byte %llu fails its checksum", thing, (unsigned long long)addr);
}

/* HDF5's Fletcher-32 over 16-bit big-endian words (filter 3). */
static uint32_t fletcher32(const uint8_t *data, size_t len) {
    uint32_t sum1 = 0, sum2 = 0;
    for (size_t words = len / 2; words > 0;) {
        size_t t = words > 360 ? 360 : words;
        words -= t;
        for (; t > 0; t--, data += 2) {
            sum1 += (uint32_t)data[0] << 8 | data[1];
            sum2 += sum1;
        }
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    if (len % 2) {
        sum1 += (uint32_t)data[0] << 8;
        sum2 += sum1;
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    return sum2 << 16 | sum1;
}

/* ---- open / close ------------------------------------------------------------ */

static const uint8_t SIGNATURE[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static FN_CHECKED fusenet_status read_superblock(ctx *c) {
    fn_hdf *h = c->h;
    uint8_t b[128];
    uint64_t at = 0;
    for (;; at = at ? 2 * at : 512) { /* the superblock sits at 0, 512, 1024, 2048, ... */
        if (at >= h->size || h->size - at < 8)
            return fail(c, FUSENET_ERR_FORMAT, "not an HDF5 file (no HDF5 signature)");
        TRY(fetch_raw(c, at, b, 8, "the signature"));
        if (memcmp(b, SIGNATURE, 8) == 0) break;
    }
    size_t n = h->size - at < sizeof b ? (size_t)(h->size - at) : sizeof b;
    TRY(fetch_raw(c, at, b, n, "the superblock"));
    cur k = cur_of(b, n);
    skip(&k, 8);
    int version = (int)u(&k, 1);
    if (version <= 1) {
        skip(&k, 4); /* free-space, root symbol table, reserved, shared header versions */
        h->so = (int)u(&k, 1);
        h->sl = (int)u(&k, 1);
        skip(&k, 1 + 2 + 2 + 4 + (version == 1 ? 4 : 0));
    } else if (version <= 3) {
        h->so = (int)u(&k, 1);
        h->sl = (int)u(&k, 1);
        skip(&k, 1);
    } else {
        return UNSUPPORTED(c, "superblock version %d", version);
    }
    if (k.over) return CORRUPT(c, "truncated superblock");
    if (!(h->so == 2 || h->so == 4 || h->so == 8) || !(h->sl == 2 || h->sl == 4 || h->sl == 8))
        return CORRUPT(c, "superblock gives sizes of offsets %d and lengths %d", h->so, h->sl);
    uint64_t base = u(&k, (size_t)h->so);
    uint64_t eof;
    if (version <= 1) {
        skip(&k, (size_t)h->so); /* free space address */
        eof = addr_of(&k, h);
        skip(&k, (size_t)h->so); /* driver info address */
        skip(&k, (size_t)h->so); /* root symbol table entry: link name offset */
        h->root = addr_of(&k, h);
    } else {
        skip(&k, (size_t)h->so); /* superblock extension address */
        eof = addr_of(&k, h);
        h->root = addr_of(&k, h);
        if (!k.over && k.n - k.i < 4) k.over = 1;
        if (!k.over) TRY(check_sum(c, b, k.i, "the superblock", at));
    }
    if (k.over) return CORRUPT(c, "truncated superblock");
    if (eof == UNDEF) return CORRUPT(c, "the superblock has no end-of-file address");
    if (eof > h->size) /* libhdf5 writes it counting the user block: compare with the whole size */
        return CORRUPT(c, "truncated file: %llu bytes, the superblock says %llu", (unsigned long long)h->size,
                       (unsigned long long)eof);
    (void)base; /* addresses count from the superblock, wherever it sits (as libhdf5 reads them) */
    h->base = at;
    if (h->root == UNDEF) return CORRUPT(c, "no root group");
    return FUSENET_OK;
}

static fusenet_status open_common(const char *path, int fd, uint8_t *mem, uint64_t window, uint64_t size,
                                  fn_hdf **out, fusenet_error *err);

fusenet_status fusenet__hdf_open(const char *path, fn_hdf **out, fusenet_error *err) {
    if (out) *out = NULL;
    if (!path || !out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__hdf_open: NULL argument");
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot open: %s", path,
                        S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file");
    }
    if (sb.st_size == 0) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: empty file, not an HDF5 file", path);
    }
    /* libhdf5 writers hold an exclusive flock() while they write: a file being
     * written is half-made, not corrupt. Where locks are not supported, read on. */
    if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot open: the file is locked by a program writing it", path);
    }
    return open_common(path, fd, NULL, 0, (uint64_t)sb.st_size, out, err);
}

fusenet_status fusenet__hdf_open_mem(const char *name, uint8_t *data, size_t size, fn_hdf **out, fusenet_error *err) {
    if (out) *out = NULL;
    if (!name || !data || !out) {
        fusenet__free(data);
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__hdf_open_mem: NULL argument");
    }
    if (size == 0) {
        fusenet__free(data);
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: empty, not an HDF5 file", name);
    }
    return open_common(name, -1, data, 0, (uint64_t)size, out, err);
}

fusenet_status fusenet__hdf_open_window(const char *name, int fd, uint64_t offset, uint64_t size, fn_hdf **out,
                                        fusenet_error *err) {
    if (out) *out = NULL;
    if (!name || fd < 0 || !out) {
        if (fd >= 0) close(fd);
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__hdf_open_window: NULL argument");
    }
    if (size == 0 || offset > (uint64_t)INT64_MAX || size > (uint64_t)INT64_MAX - offset) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s, not an HDF5 file", name,
                              size == 0 ? "empty" : "past any file's end");
    }
    return open_common(name, fd, NULL, offset, size, out, err);
}

/* The rest of an open, on a file (fd, from byte `window` on; owned: closed
 * on failure) or bytes in memory (mem, owned: freed on failure). */
static fusenet_status open_common(const char *path, int fd, uint8_t *mem, uint64_t window, uint64_t size,
                                  fn_hdf **out, fusenet_error *err) {
    fn_hdf *h = fusenet__calloc(1, sizeof *h);
    char *p = fusenet__strdup(path);
    if (!h || !p) {
        fusenet__free(h);
        fusenet__free(p);
        fusenet__free(mem);
        if (fd >= 0) close(fd);
        return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory", path);
    }
    h->path = p;
    h->fd = fd;
    h->mem = mem;
    h->window = window;
    h->size = size;
    h->meta_left = META_BUDGET_BASE + 4 * h->size;
    h->gcol_addr = UNDEF;
    for (int i = 0; i < LINK_CACHE; i++) h->links[i].group = UNDEF;
    ctx c = {h, "superblock", err, FUSENET_OK};
    if (read_superblock(&c) != FUSENET_OK) {
        /* "not an HDF5 file" reads better without the "superblock: " context */
        if (c.st == FUSENET_ERR_FORMAT && err && strstr(err->message, "no HDF5 signature"))
            fusenet__error(err, FUSENET_ERR_FORMAT, "%s: not an HDF5 file (no HDF5 signature)", path);
        fusenet__hdf_close(h);
        return c.st;
    }
    *out = h;
    return fusenet__ok(err);
}

static void linklist_free(linklist *l);

void fusenet__hdf_close(fn_hdf *h) {
    if (!h) return;
    if (h->fd >= 0) close(h->fd);
    fusenet__free(h->mem);
    for (int i = 0; i < LINK_CACHE; i++) linklist_free(&h->links[i]);
    fusenet__free(h->gcol);
    fusenet__free(h->path);
    fusenet__free(h);
}

const char *fusenet__hdf_path(const fn_hdf *h) { return h ? h->path : NULL; }

fn_hdf_obj fusenet__hdf_root(const fn_hdf *h) { return h ? h->root : UNDEF; }

/* ---- object headers ------------------------------------------------------------ */

enum {
    MSG_DATASPACE = 0x01,
    MSG_LINK_INFO = 0x02,
    MSG_DATATYPE = 0x03,
    MSG_LINK = 0x06,
    MSG_EXTERNAL = 0x07,
    MSG_LAYOUT = 0x08,
    MSG_FILTERS = 0x0B,
    MSG_ATTRIBUTE = 0x0C,
    MSG_CONTINUATION = 0x10,
    MSG_SYMBOL_TABLE = 0x11,
    MSG_ATTRIBUTE_INFO = 0x15,
};

typedef struct msg {
    unsigned type, flags;
    const uint8_t *p;
    size_t n;
} msg;

typedef struct hdr {
    uint64_t addr;
    uint8_t *blocks[MAX_HEADER_BLOCKS];
    int nblocks;
    msg *m;
    size_t nm, cap;
} hdr;

static void hdr_free(hdr *o) {
    for (int i = 0; i < o->nblocks; i++) fusenet__free(o->blocks[i]);
    fusenet__free(o->m);
    o->nblocks = 0;
    o->m = NULL;
    o->nm = o->cap = 0;
}

static FN_CHECKED fusenet_status add_msg(ctx *c, hdr *o, unsigned type, unsigned flags, const uint8_t *p, size_t n) {
    msg *m = fusenet__grow(o->m, o->nm, &o->cap, sizeof *m, 32);
    if (!m) return NOMEM(c);
    o->m = m;
    o->m[o->nm++] = (msg){type, flags, p, n};
    return FUSENET_OK;
}

/* Splits one block of messages. v1 messages: type(2) size(2) flags(1) reserved(3);
 * v2: type(1) size(2) flags(1) [creation order(2)]. A v2 block may end in a gap
 * shorter than a message prefix. */
static FN_CHECKED fusenet_status parse_messages(ctx *c, hdr *o, const uint8_t *b, size_t n, int v2, int with_order) {
    cur k = cur_of(b, n);
    size_t prefix = v2 ? 4 + (with_order ? 2 : 0) : 8;
    while (k.n - k.i >= prefix) {
        unsigned type = (unsigned)u(&k, v2 ? 1 : 2);
        size_t size = (size_t)u(&k, 2);
        unsigned flags = (unsigned)u(&k, 1);
        skip(&k, v2 ? (with_order ? 2 : 0) : 3);
        const uint8_t *p = take(&k, size);
        if (!p)
            return CORRUPT(c, "object header at byte %llu: a message of %zu bytes runs past its block",
                           (unsigned long long)o->addr, size);
        TRY(add_msg(c, o, type, flags, p, size));
    }
    return FUSENET_OK;
}

static FN_CHECKED fusenet_status load_block(ctx *c, hdr *o, uint64_t addr, uint64_t n) {
    if (o->nblocks == MAX_HEADER_BLOCKS)
        return CORRUPT(c, "object header at byte %llu has more than %d continuation blocks",
                       (unsigned long long)o->addr, MAX_HEADER_BLOCKS);
    uint8_t *b = fetch_block(c, addr, n, "an object header block");
    if (!b) return c->st;
    o->blocks[o->nblocks++] = b;
    return FUSENET_OK;
}

/* Reads the object header at addr with all its continuation blocks. */
static FN_CHECKED fusenet_status load_header(ctx *c, uint64_t addr, hdr *o) {
    memset(o, 0, sizeof *o);
    o->addr = addr;
    uint8_t pre[40];
    TRY(fetch(c, addr, pre, 16, "an object header"));
    int v2 = has_sig(pre, "OHDR");
    int with_order = 0;
    if (v2) {
        if (pre[4] != 2)
            return UNSUPPORTED(c, "object header version %u at byte %llu", pre[4], (unsigned long long)addr);
        unsigned flags = pre[5];
        with_order = (flags & 0x04) != 0;
        size_t at = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
        size_t width = (size_t)1 << (flags & 3);
        TRY(fetch(c, addr, pre, at + width, "an object header"));
        cur k = cur_of(pre + at, width);
        uint64_t size = u(&k, width);
        if (size > MAX_BLOCK_BYTES)
            return CORRUPT(c, "object header at byte %llu of %llu bytes", (unsigned long long)addr,
                           (unsigned long long)size);
        size_t whole = at + width + (size_t)size; /* the checksum follows */
        TRY(load_block(c, o, addr, whole + 4));
        TRY(check_sum(c, o->blocks[0], whole, "object header", addr));
        TRY(parse_messages(c, o, o->blocks[0] + at + width, (size_t)size, 1, with_order));
    } else {
        if (pre[0] != 1)
            return CORRUPT(c, "no object header at byte %llu (version %u)", (unsigned long long)addr, pre[0]);
        cur k = cur_of(pre + 8, 4);
        uint64_t size = u(&k, 4);
        TRY(load_block(c, o, addr + 16, size));
        TRY(parse_messages(c, o, o->blocks[0], (size_t)size, 0, 0));
    }
    for (size_t i = 0; i < o->nm; i++) { /* o->nm grows as continuation blocks are read */
        if (o->m[i].type != MSG_CONTINUATION) continue;
        cur k = cur_of(o->m[i].p, o->m[i].n);
        uint64_t at = addr_of(&k, c->h), size = len_of(&k, c->h);
        if (k.over)
            return CORRUPT(c, "object header at byte %llu: short continuation message", (unsigned long long)addr);
        TRY(load_block(c, o, at, size));
        const uint8_t *b = o->blocks[o->nblocks - 1];
        if (v2) {
            if (size < 8 || !has_sig(b, "OCHK"))
                return CORRUPT(c, "object header at byte %llu: bad continuation block at byte %llu",
                               (unsigned long long)addr, (unsigned long long)at);
            TRY(check_sum(c, b, (size_t)size - 4, "object header continuation", at));
            TRY(parse_messages(c, o, b + 4, (size_t)size - 8, 1, with_order));
        } else {
            TRY(parse_messages(c, o, b, (size_t)size, 0, 0));
        }
    }
    return FUSENET_OK;
}

static const msg *find_msg(const hdr *o, unsigned type) {
    for (size_t i = 0; i < o->nm; i++)
        if (o->m[i].type == type) return &o->m[i];
    return NULL;
}

/* A message we must decode cannot be shared (stored in another object). */
static FN_CHECKED fusenet_status check_not_shared(ctx *c, const msg *m, const char *kind) {
    if (m->flags & 0x02) return UNSUPPORTED(c, "shared %s message", kind);
    return FUSENET_OK;
}

/* ---- datatypes and dataspaces -------------------------------------------------- */

typedef struct dtype {
    int raw_class;
    fn_hdf_class cls;
    uint32_t size;
    int big_endian;
    int ieee;   /* float: standard IEEE 754 field layout */
    int strpad; /* fixed string: 0 NUL-terminated, 1 NUL-padded, 2 space-padded */
} dtype;

static const char *const CLASS_NAMES[] = {"integer",  "float",     "time", "string",          "bitfield", "opaque",
                                          "compound", "reference", "enum", "variable-length", "array"};

const char *fusenet__hdf_class_name(int raw_class) {
    if (raw_class >= 0 && raw_class < (int)(sizeof CLASS_NAMES / sizeof CLASS_NAMES[0]))
        return CLASS_NAMES[raw_class];
    return "unknown";
}

static FN_CHECKED fusenet_status parse_dtype(ctx *c, cur *k, dtype *t) {
    memset(t, 0, sizeof *t);
    unsigned b0 = (unsigned)u(k, 1);
    unsigned bits = (unsigned)u(k, 3);
    t->size = (uint32_t)u(k, 4);
    t->raw_class = (int)(b0 & 15);
    t->cls = FN_HDF_UNSUPPORTED;
    switch (t->raw_class) {
    case 0: /* integer: offset(2) precision(2) */
        skip(k, 4);
        t->cls = FN_HDF_INTEGER;
        break;
    case 1: { /* float */
        unsigned off = (unsigned)u(k, 2), prec = (unsigned)u(k, 2), eloc = (unsigned)u(k, 1),
                 esize = (unsigned)u(k, 1), mloc = (unsigned)u(k, 1), msize = (unsigned)u(k, 1);
        uint32_t bias = (uint32_t)u(k, 4);
        unsigned sign = (bits >> 8) & 0xff, norm = (bits >> 4) & 3;
        static const struct {
            uint32_t size, eloc, esize, msize, bias;
        } ieee[] = {{2, 10, 5, 10, 15}, {4, 23, 8, 23, 127}, {8, 52, 11, 52, 1023}};
        for (size_t i = 0; i < 3; i++)
            if (t->size == ieee[i].size && off == 0 && prec == 8 * t->size && eloc == ieee[i].eloc &&
                esize == ieee[i].esize && mloc == 0 && msize == ieee[i].msize && bias == ieee[i].bias &&
                sign == 8 * t->size - 1 && norm == 2 && (bits & 0x4e) == 0)
                t->ieee = 1;
        t->big_endian = bits & 1;
        t->cls = FN_HDF_FLOAT;
        break;
    }
    case 3:
        t->strpad = (int)(bits & 15);
        t->cls = FN_HDF_STRING;
        break;
    case 9: /* variable-length: a sequence or a string of a base type */
        if ((bits & 15) == 1) t->cls = FN_HDF_VLEN_STRING;
        break; /* the base type that follows is not needed */
    default: break;
    }
    if (k->over) return CORRUPT(c, "truncated datatype");
    if (t->size == 0) return CORRUPT(c, "datatype of size 0");
    if (t->cls == FN_HDF_VLEN_STRING && t->size != (uint32_t)(8 + c->h->so))
        return CORRUPT(c, "variable-length string of element size %u", t->size);
    return FUSENET_OK;
}

static FN_CHECKED fusenet_status parse_space(ctx *c, cur *k, fn_hdf_shape *s) {
    unsigned version = (unsigned)u(k, 1);
    int rank = (int)u(k, 1);
    skip(k, 1); /* flags: maximum dims and permutation follow the dims; not needed */
    int type = 1;
    if (version == 1) {
        skip(k, 5);
        type = rank == 0 ? 0 : 1;
    } else if (version == 2) {
        type = (int)u(k, 1);
    } else {
        return k->over ? CORRUPT(c, "truncated dataspace") : UNSUPPORTED(c, "dataspace version %u", version);
    }
    if (rank > FN_HDF_MAX_RANK || type > 2) return CORRUPT(c, "dataspace of rank %d, type %d", rank, type);
    s->is_null = type == 2;
    s->rank = type == 1 ? rank : 0;
    s->count = s->is_null ? 0 : 1;
    for (int i = 0; i < s->rank; i++) {
        s->dims[i] = len_of(k, c->h);
        if (s->dims[i] != 0 && s->count > UINT64_MAX / s->dims[i]) return CORRUPT(c, "dataspace too large");
        s->count *= s->dims[i];
    }
    if (k->over) return CORRUPT(c, "truncated dataspace");
    return FUSENET_OK;
}

static void set_type(fn_hdf_shape *s, const dtype *t) {
    s->cls = t->cls;
    s->raw_class = t->raw_class;
    s->size = t->size;
}

/* ---- groups ---------------------------------------------------------------------- */

typedef struct heap {
    uint8_t *data;
    uint64_t size;
} heap;

static FN_CHECKED fusenet_status load_local_heap(ctx *c, uint64_t addr, heap *hp) {
    uint8_t b[40];
    size_t n = 8 + 2 * (size_t)c->h->sl + (size_t)c->h->so;
    TRY(fetch(c, addr, b, n, "a local heap"));
    if (!has_sig(b, "HEAP") || b[4] != 0)
        return CORRUPT(c, "no local heap at byte %llu", (unsigned long long)addr);
    cur k = cur_of(b + 8, n - 8);
    hp->size = len_of(&k, c->h);
    (void)len_of(&k, c->h); /* free list */
    uint64_t at = addr_of(&k, c->h);
    hp->data = fetch_block(c, at, hp->size, "a local heap's data");
    return hp->data ? FUSENET_OK : c->st;
}

/* The NUL-terminated name at offset off of the heap, or NULL. */
static const char *heap_name(const heap *hp, uint64_t off) {
    if (off >= hp->size) return NULL;
    const char *s = (const char *)hp->data + off;
    return memchr(s, '\0', (size_t)(hp->size - off)) ? s : NULL;
}

/* A walk of a version 1 B-tree: type 0 (group nodes) or 1 (raw data chunks). */
typedef struct bwalk {
    ctx *c;
    int type;
    size_t key_size;
    long nodes;
    fusenet_status (*leaf)(struct bwalk *w, const uint8_t *key, uint64_t child); /* may set stopped */
    void *arg;
    int stopped;
} bwalk;

static FN_CHECKED fusenet_status walk_node(bwalk *w, uint64_t addr, int want_level) {
    ctx *c = w->c;
    fn_hdf *h = c->h;
    if (++w->nodes > MAX_BTREE_NODES)
        return CORRUPT(c, "B-tree has more than %d nodes or a cycle", MAX_BTREE_NODES);
    uint8_t b[32];
    size_t pre = 8 + 2 * (size_t)h->so;
    TRY(fetch(c, addr, b, pre, "a B-tree node"));
    if (!has_sig(b, "TREE") || b[4] != w->type)
        return CORRUPT(c, "no B-tree node of type %d at byte %llu", w->type, (unsigned long long)addr);
    int level = b[5];
    size_t entries = (size_t)b[6] | (size_t)b[7] << 8;
    if ((want_level >= 0 && level != want_level) || level > MAX_BTREE_LEVEL)
        return CORRUPT(c, "B-tree node at byte %llu has level %d", (unsigned long long)addr, level);
    size_t n = entries * (w->key_size + (size_t)h->so) + w->key_size;
    uint8_t *body = fetch_block(c, addr + pre, n, "a B-tree node");
    if (!body) return c->st;
    cur k = cur_of(body, n);
    fusenet_status st = FUSENET_OK;
    for (size_t i = 0; st == FUSENET_OK && i < entries && !w->stopped; i++) {
        const uint8_t *key = take(&k, w->key_size);
        uint64_t child = addr_of(&k, h);
        st = level > 0 ? walk_node(w, child, level - 1) : w->leaf(w, key, child);
    }
    fusenet__free(body);
    return st;
}

static void linklist_free(linklist *l) {
    for (size_t i = 0; i < l->n; i++) fusenet__free(l->v[i].name);
    fusenet__free(l->v);
    memset(l, 0, sizeof *l);
    l->group = UNDEF;
}

typedef struct symbols {
    linklist *l;
    heap hp;
} symbols;

static FN_CHECKED fusenet_status add_link(ctx *c, linklist *l, const uint8_t *name, size_t len, uint64_t addr,
                                          unsigned type) {
    if (l->n == MAX_LINKS) return CORRUPT(c, "a group of more than %d links", MAX_LINKS);
    hlink *v = fusenet__grow(l->v, l->n, &l->cap, sizeof *v, 64);
    if (!v) return NOMEM(c);
    l->v = v;
    char *p = fusenet__malloc(len + 1);
    if (!p) return NOMEM(c);
    memcpy(p, name, len);
    p[len] = '\0';
    l->v[l->n++] = (hlink){p, addr, type};
    return FUSENET_OK;
}

/* A leaf of a group B-tree: a symbol table node of link entries. */
static FN_CHECKED fusenet_status symbol_node(bwalk *w, const uint8_t *key, uint64_t addr) {
    (void)key;
    ctx *c = w->c;
    symbols *sy = w->arg;
    uint8_t b[8];
    TRY(fetch(c, addr, b, 8, "a symbol table node"));
    if (!has_sig(b, "SNOD") || b[4] != 1)
        return CORRUPT(c, "no symbol table node at byte %llu", (unsigned long long)addr);
    size_t count = (size_t)b[6] | (size_t)b[7] << 8, entry = 2 * (size_t)c->h->so + 24;
    uint8_t *body = fetch_block(c, addr + 8, (uint64_t)count * entry, "a symbol table node");
    if (!body) return c->st;
    cur k = cur_of(body, count * entry);
    fusenet_status st = FUSENET_OK;
    for (size_t i = 0; i < count && st == FUSENET_OK; i++) {
        uint64_t name_off = len_of(&k, c->h), obj = addr_of(&k, c->h);
        uint32_t cache_type = (uint32_t)u(&k, 4);
        skip(&k, 20); /* reserved, scratch pad */
        const char *name = heap_name(&sy->hp, name_off);
        if (!name)
            st = CORRUPT(c, "symbol table entry with a bad name offset %llu", (unsigned long long)name_off);
        else /* cache type 2: a soft link, its value in the scratch pad and no object */
            st = add_link(c, sy->l, (const uint8_t *)name, strlen(name), obj, cache_type == 2 ? 1 : 0);
    }
    fusenet__free(body);
    return st;
}

static FN_CHECKED fusenet_status list_symbol_table(ctx *c, const msg *m, linklist *l) {
    cur k = cur_of(m->p, m->n);
    uint64_t btree = addr_of(&k, c->h), heap_addr = addr_of(&k, c->h);
    if (k.over) return CORRUPT(c, "short symbol table message");
    symbols sy = {l, {NULL, 0}};
    TRY(load_local_heap(c, heap_addr, &sy.hp));
    bwalk w = {c, 0, (size_t)c->h->sl, 0, symbol_node, &sy, 0};
    fusenet_status st = walk_node(&w, btree, -1);
    fusenet__free(sy.hp.data);
    return st;
}

/* A link message (new-style groups, compact or dense). */
static FN_CHECKED fusenet_status link_message(ctx *c, const msg *m, void *arg, int *stop) {
    (void)stop;
    linklist *l = arg;
    cur k = cur_of(m->p, m->n);
    unsigned version = (unsigned)u(&k, 1), flags = (unsigned)u(&k, 1);
    if (version != 1)
        return k.over ? CORRUPT(c, "short link message") : UNSUPPORTED(c, "link message version %u", version);
    unsigned type = (flags & 0x08) ? (unsigned)u(&k, 1) : 0;
    if (flags & 0x04) skip(&k, 8); /* creation order */
    if (flags & 0x10) skip(&k, 1); /* character set */
    size_t len = (size_t)u(&k, (size_t)1 << (flags & 3));
    const uint8_t *name = take(&k, len);
    uint64_t addr = type == 0 ? addr_of(&k, c->h) : UNDEF;
    if (!name || k.over) return CORRUPT(c, "short link message");
    return add_link(c, l, name, len, addr, type);
}

/* ---- dense storage: fractal heaps and version 2 B-trees --------------------- */

/* Groups and objects with many links or attributes (libver="latest") keep
 * them as heap objects in a fractal heap, indexed by name in a version 2
 * B-tree. We walk every record of the index and decode each object. */

typedef struct fheap {
    unsigned id_len, off_size, len_size;
    uint64_t huge_btree;
    unsigned width, max_direct_rows, first_row_bits;
    uint64_t start, max_direct;
    uint64_t root;
    unsigned cur_rows;
    int checksummed; /* direct blocks end their header with a checksum */
} fheap;

static unsigned log2_floor(uint64_t v) {
    unsigned r = 0;
    while (v >>= 1) r++;
    return r;
}

static unsigned enc_size(uint64_t v) { return log2_floor(v) / 8 + 1; } /* bytes to store 0..v */

static FN_CHECKED fusenet_status load_fheap(ctx *c, uint64_t addr, fheap *fh) {
    fn_hdf *h = c->h;
    size_t O = (size_t)h->so, L = (size_t)h->sl;
    size_t n = 4 + 1 + 2 + 2 + 1 + 4 + 12 * L + 3 * O + 2 + 2 + 2 + 2;
    uint8_t b[256];
    TRY(fetch(c, addr, b, n + 4, "a fractal heap"));
    cur k = cur_of(b, n);
    if (!has_sig(b, "FRHP") || b[4] != 0)
        return CORRUPT(c, "no fractal heap at byte %llu", (unsigned long long)addr);
    if (b[7] == 0 && b[8] == 0) TRY(check_sum(c, b, n, "fractal heap", addr)); /* unfiltered */
    skip(&k, 5);
    memset(fh, 0, sizeof *fh);
    fh->id_len = (unsigned)u(&k, 2);
    unsigned filter_len = (unsigned)u(&k, 2), flags = (unsigned)u(&k, 1);
    uint32_t max_man = (uint32_t)u(&k, 4);
    skip(&k, L); /* next huge object id */
    fh->huge_btree = addr_of(&k, h);
    skip(&k, L + O + 3 * L + L + 4 * L); /* free space, managed space, object counts */
    fh->width = (unsigned)u(&k, 2);
    fh->start = len_of(&k, h);
    fh->max_direct = len_of(&k, h);
    unsigned max_heap_bits = (unsigned)u(&k, 2);
    skip(&k, 2); /* starting rows of the root indirect block */
    fh->root = addr_of(&k, h);
    fh->cur_rows = (unsigned)u(&k, 2);
    if (k.over) return CORRUPT(c, "short fractal heap header");
    if (filter_len) return UNSUPPORTED(c, "a compressed fractal heap");
    fh->checksummed = (flags & 2) != 0;
    if (fh->width == 0 || (fh->width & (fh->width - 1)) || fh->start == 0 || (fh->start & (fh->start - 1)) ||
        fh->max_direct < fh->start || (fh->max_direct & (fh->max_direct - 1)) || max_heap_bits == 0 ||
        max_heap_bits > 64 || fh->id_len < 2 || fh->id_len > 64 || fh->cur_rows > 64)
        return CORRUPT(c, "fractal heap at byte %llu with a bad table", (unsigned long long)addr);
    fh->off_size = (max_heap_bits + 7) / 8;
    unsigned max_direct_bits = log2_floor(fh->max_direct);
    fh->len_size = (max_direct_bits + 7) / 8;
    if (enc_size(max_man) < fh->len_size) fh->len_size = enc_size(max_man);
    fh->first_row_bits = log2_floor(fh->start) + log2_floor(fh->width);
    fh->max_direct_rows = max_direct_bits - log2_floor(fh->start) + 2;
    return FUSENET_OK;
}

static uint64_t row_block_size(const fheap *fh, unsigned r) { return r == 0 ? fh->start : fh->start << (r - 1); }

/* Finds the direct block holding heap offset `off`, below the indirect block
 * at addr of nrows rows starting at heap offset block_off. */
static FN_CHECKED fusenet_status find_direct(ctx *c, const fheap *fh, uint64_t addr, unsigned nrows, uint64_t block_off,
                                             uint64_t off, int depth, uint64_t *daddr, uint64_t *dsize,
                                             uint64_t *doff) {
    fn_hdf *h = c->h;
    if (depth > 16 || nrows > 64) return CORRUPT(c, "fractal heap too deep");
    size_t pre = 4 + 1 + (size_t)h->so + fh->off_size, entries = (size_t)nrows * fh->width;
    uint8_t *b = fetch_block(c, addr, pre + entries * (size_t)h->so + 4, "a fractal heap indirect block");
    if (!b) return c->st;
    fusenet_status st;
    if (!has_sig(b, "FHIB"))
        st = CORRUPT(c, "no fractal heap indirect block at byte %llu", (unsigned long long)addr);
    else
        st = check_sum(c, b, pre + entries * (size_t)h->so, "fractal heap indirect block", addr);
    cur k = cur_of(b + pre, entries * (size_t)h->so);
    uint64_t pos = block_off;
    int done = 0;
    for (unsigned r = 0; st == FUSENET_OK && !done && r < nrows; r++) {
        uint64_t size = row_block_size(fh, r);
        if (r >= 62 || size == 0) {
            st = CORRUPT(c, "fractal heap row %u too large", r);
            break;
        }
        for (unsigned col = 0; st == FUSENET_OK && !done && col < fh->width; col++, pos += size) {
            uint64_t child = addr_of(&k, h);
            if (off < pos || off - pos >= size) continue;
            done = 1;
            if (child == UNDEF)
                st = CORRUPT(c, "fractal heap object in an unallocated block");
            else if (r < fh->max_direct_rows) {
                *daddr = child;
                *dsize = size;
                *doff = pos;
            } else {
                unsigned child_rows = log2_floor(size) - fh->first_row_bits + 1;
                st = find_direct(c, fh, child, child_rows, pos, off, depth + 1, daddr, dsize, doff);
            }
        }
    }
    if (st == FUSENET_OK && !done)
        st = CORRUPT(c, "fractal heap offset %llu outside the heap", (unsigned long long)off);
    fusenet__free(b);
    return st;
}

static FN_CHECKED fusenet_status b2_find_huge(ctx *c, const fheap *fh, uint64_t id, uint64_t *addr, uint64_t *len);

/* Copies the object with heap ID `id` into a new buffer *out of *len bytes. */
static FN_CHECKED fusenet_status heap_object(ctx *c, const fheap *fh, const uint8_t *id, uint8_t **out, size_t *len) {
    fn_hdf *h = c->h;
    unsigned type = (id[0] >> 4) & 3;
    *out = NULL;
    if ((id[0] >> 6) != 0) return UNSUPPORTED(c, "fractal heap ID version %u", id[0] >> 6);
    if (type == 2) { /* tiny: inside the ID */
        size_t n = fh->id_len <= 18 ? (size_t)(id[0] & 15) + 1 : (((size_t)(id[0] & 15) << 8) | id[1]) + 1;
        const uint8_t *p = id + (fh->id_len <= 18 ? 1 : 2);
        if (n > fh->id_len - (size_t)(p - id)) return CORRUPT(c, "tiny heap object of %zu bytes", n);
        if (!(*out = fusenet__malloc(n))) return NOMEM(c);
        memcpy(*out, p, n);
        *len = n;
        return FUSENET_OK;
    }
    uint64_t at = UNDEF, n = 0;
    if (type == 0) { /* managed: offset and length in the heap's address space */
        cur k = cur_of(id + 1, fh->id_len - 1);
        uint64_t off = u(&k, fh->off_size);
        n = u(&k, fh->len_size);
        if (k.over) return CORRUPT(c, "short fractal heap ID");
        uint64_t daddr = fh->root, dsize = fh->start, doff = 0;
        if (fh->cur_rows > 0) TRY(find_direct(c, fh, fh->root, fh->cur_rows, 0, off, 0, &daddr, &dsize, &doff));
        size_t pre = 4 + 1 + (size_t)h->so + fh->off_size + (fh->checksummed ? 4 : 0);
        uint8_t sig[4];
        TRY(fetch(c, daddr, sig, 4, "a fractal heap direct block"));
        if (!has_sig(sig, "FHDB"))
            return CORRUPT(c, "no fractal heap direct block at byte %llu", (unsigned long long)daddr);
        if (off - doff < pre || n > dsize || off - doff > dsize - n)
            return CORRUPT(c, "fractal heap object at %llu (+%llu) outside its block", (unsigned long long)off,
                           (unsigned long long)n);
        at = daddr + (off - doff);
    } else if (type == 1) { /* huge: its own storage, found directly or through a B-tree */
        cur k = cur_of(id + 1, fh->id_len - 1);
        if (fh->id_len >= 1 + (unsigned)h->so + (unsigned)h->sl) {
            at = addr_of(&k, h);
            n = len_of(&k, h);
        } else {
            unsigned width = fh->id_len - 1 < (unsigned)h->sl ? fh->id_len - 1 : (unsigned)h->sl;
            TRY(b2_find_huge(c, fh, u(&k, width), &at, &n));
        }
    } else {
        return CORRUPT(c, "fractal heap ID of type %u", type);
    }
    if (n > MAX_BLOCK_BYTES) return CORRUPT(c, "heap object of %llu bytes", (unsigned long long)n);
    if (!(*out = fetch_block(c, at, n, "a fractal heap object"))) return c->st;
    *len = (size_t)n;
    return FUSENET_OK;
}

/* A walk over every record of a version 2 B-tree. */
typedef struct b2walk {
    ctx *c;
    unsigned rec_size, depth, max_nrec_size;
    uint64_t node_size;
    uint64_t max_nrec[17];
    unsigned cum_size[17];
    long nodes;
    fusenet_status (*record)(struct b2walk *w, const uint8_t *rec); /* may set stopped */
    void *arg;
    int stopped;
} b2walk;

static FN_CHECKED fusenet_status b2_node(b2walk *w, uint64_t addr, uint64_t nrec, unsigned depth) {
    ctx *c = w->c;
    fn_hdf *h = c->h;
    if (++w->nodes > MAX_BTREE_NODES)
        return CORRUPT(c, "B-tree has more than %d nodes or a cycle", MAX_BTREE_NODES);
    if (nrec > w->max_nrec[depth])
        return CORRUPT(c, "B-tree node at byte %llu holds %llu records", (unsigned long long)addr,
                       (unsigned long long)nrec);
    uint8_t *b = fetch_block(c, addr, w->node_size, "a B-tree node");
    if (!b) return c->st;
    fusenet_status st = has_sig(b, depth ? "BTIN" : "BTLF")
                            ? FUSENET_OK
                            : CORRUPT(c, "no B-tree node at byte %llu", (unsigned long long)addr);
    uint64_t ptr = depth ? (uint64_t)h->so + w->max_nrec_size + (depth > 1 ? w->cum_size[depth - 1] : 0) : 0;
    uint64_t end = 6 + nrec * w->rec_size + (depth ? (nrec + 1) * ptr : 0); /* the checksum follows */
    if (st == FUSENET_OK && end + 4 > w->node_size)
        st = CORRUPT(c, "B-tree node at byte %llu overflows", (unsigned long long)addr);
    if (st == FUSENET_OK) st = check_sum(c, b, (size_t)end, "B-tree node", addr);
    cur k = cur_of(b + 6, (size_t)w->node_size - 6);
    const uint8_t *recs = take(&k, (size_t)nrec * w->rec_size);
    if (st == FUSENET_OK && !recs) st = CORRUPT(c, "B-tree node at byte %llu overflows", (unsigned long long)addr);
    for (uint64_t i = 0; st == FUSENET_OK && i < nrec && !w->stopped; i++)
        st = w->record(w, recs + i * w->rec_size);
    for (uint64_t i = 0; st == FUSENET_OK && depth > 0 && i <= nrec && !w->stopped; i++) {
        uint64_t child = addr_of(&k, h), child_nrec = u(&k, w->max_nrec_size);
        if (depth > 1) skip(&k, w->cum_size[depth - 1]);
        if (k.over)
            st = CORRUPT(c, "B-tree node at byte %llu overflows", (unsigned long long)addr);
        else
            st = b2_node(w, child, child_nrec, depth - 1);
    }
    fusenet__free(b);
    return st;
}

static FN_CHECKED fusenet_status b2_walk(ctx *c, uint64_t addr, unsigned type, b2walk *w) {
    fn_hdf *h = c->h;
    size_t n = 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + (size_t)h->so + 2 + (size_t)h->sl;
    uint8_t b[64];
    TRY(fetch(c, addr, b, n + 4, "a B-tree header"));
    if (!has_sig(b, "BTHD") || b[4] != 0 || b[5] != type)
        return CORRUPT(c, "no B-tree of type %u at byte %llu", type, (unsigned long long)addr);
    TRY(check_sum(c, b, n, "B-tree header", addr));
    cur k = cur_of(b + 6, n - 6);
    w->c = c;
    w->node_size = u(&k, 4);
    w->rec_size = (unsigned)u(&k, 2);
    w->depth = (unsigned)u(&k, 2);
    skip(&k, 2);
    uint64_t root = addr_of(&k, h), root_nrec = u(&k, 2);
    if (w->node_size < 16 || w->node_size > MAX_BLOCK_BYTES || w->rec_size == 0 || w->depth > 16)
        return CORRUPT(c, "B-tree at byte %llu with nodes of %llu bytes, depth %u", (unsigned long long)addr,
                       (unsigned long long)w->node_size, w->depth);
    /* the record counts per node and the widths of the counts, as libhdf5 computes them */
    w->max_nrec[0] = (w->node_size - 10) / w->rec_size;
    w->max_nrec_size = enc_size(w->max_nrec[0]);
    uint64_t cum = w->max_nrec[0];
    w->cum_size[0] = 0;
    for (unsigned d = 1; d <= w->depth; d++) {
        uint64_t ptr = (uint64_t)h->so + w->max_nrec_size + w->cum_size[d - 1];
        w->max_nrec[d] = w->node_size > 10 + ptr ? (w->node_size - 10 - ptr) / (w->rec_size + ptr) : 0;
        cum = (w->max_nrec[d] + 1) * cum + w->max_nrec[d]; /* may wrap for absurd trees: only sizes a field */
        w->cum_size[d] = enc_size(cum);
    }
    if (root == UNDEF || root_nrec == 0) return FUSENET_OK;
    return b2_node(w, root, root_nrec, w->depth);
}

typedef struct huge_find {
    uint64_t id, addr, len;
    int found;
} huge_find;

static FN_CHECKED fusenet_status huge_record(b2walk *w, const uint8_t *rec) {
    huge_find *f = w->arg;
    fn_hdf *h = w->c->h;
    cur k = cur_of(rec, w->rec_size);
    uint64_t at = addr_of(&k, h), n = len_of(&k, h), id = len_of(&k, h);
    if (k.over) return CORRUPT(w->c, "short huge-object record");
    if (id != f->id) return FUSENET_OK;
    f->addr = at;
    f->len = n;
    f->found = 1;
    w->stopped = 1;
    return FUSENET_OK;
}

static FN_CHECKED fusenet_status b2_find_huge(ctx *c, const fheap *fh, uint64_t id, uint64_t *addr, uint64_t *len) {
    huge_find f = {id, 0, 0, 0};
    b2walk w = {0};
    w.record = huge_record;
    w.arg = &f;
    if (fh->huge_btree == UNDEF) return CORRUPT(c, "huge heap object without an index");
    TRY(b2_walk(c, fh->huge_btree, 1, &w));
    if (!f.found) return CORRUPT(c, "huge heap object %llu not found", (unsigned long long)id);
    *addr = f.addr;
    *len = f.len;
    return FUSENET_OK;
}

/* Dense links or attributes: each record of the name index names a heap
 * object holding a link or attribute message, handed to `each`. */
typedef struct dense {
    fheap fh;
    unsigned id_at;                               /* where the heap ID sits in a record */
    int attributes;                               /* records carry message flags (shared messages) */
    fusenet_status (*each)(ctx *c, const msg *m, void *arg, int *stop); /* sets *stop to end the walk */
    void *arg;
} dense;

static FN_CHECKED fusenet_status dense_record(b2walk *w, const uint8_t *rec) {
    dense *d = w->arg;
    if (d->id_at + d->fh.id_len + (d->attributes ? 1 : 0) > w->rec_size)
        return CORRUPT(w->c, "short name index record");
    if (d->attributes && (rec[d->fh.id_len] & 0x02)) return UNSUPPORTED(w->c, "a shared attribute message");
    uint8_t *obj = NULL;
    size_t n = 0;
    TRY(heap_object(w->c, &d->fh, rec + d->id_at, &obj, &n));
    msg m = {d->attributes ? MSG_ATTRIBUTE : MSG_LINK, 0, obj, n};
    fusenet_status st = d->each(w->c, &m, d->arg, &w->stopped);
    fusenet__free(obj);
    return st;
}

/* Walks the dense storage an info message (link info or attribute info)
 * points at; *used is 0 when the object keeps them in its header instead. */
static FN_CHECKED fusenet_status walk_dense(ctx *c, const msg *info, int attributes,
                                            fusenet_status (*each)(ctx *, const msg *, void *, int *), void *arg,
                                            int *used) {
    cur k = cur_of(info->p, info->n);
    skip(&k, 1);
    unsigned flags = (unsigned)u(&k, 1);
    if (flags & 1) skip(&k, attributes ? 2 : 8); /* maximum creation index */
    uint64_t heap_addr = addr_of(&k, c->h), index = addr_of(&k, c->h);
    *used = 0;
    if (k.over) return CORRUPT(c, "short %s info message", attributes ? "attribute" : "link");
    if (heap_addr == UNDEF) return FUSENET_OK;
    *used = 1;
    dense d = {{0}, attributes ? 0 : 4, attributes, each, arg};
    TRY(load_fheap(c, heap_addr, &d.fh));
    b2walk w = {0};
    w.record = dense_record;
    w.arg = &d;
    return b2_walk(c, index, attributes ? 8 : 5, &w);
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const hlink *)a)->name, ((const hlink *)b)->name);
}

/* Lists the links of `group` into l. */
static FN_CHECKED fusenet_status list_links(ctx *c, uint64_t group, linklist *l) {
    hdr o;
    fusenet_status st = load_header(c, group, &o);
    if (st == FUSENET_OK) {
        const msg *tab = find_msg(&o, MSG_SYMBOL_TABLE), *li = find_msg(&o, MSG_LINK_INFO);
        int stop = 0, used = 0; /* a listing never stops early */
        if (tab) {
            st = list_symbol_table(c, tab, l);
        } else if (li || find_msg(&o, MSG_LINK)) {
            for (size_t i = 0; st == FUSENET_OK && i < o.nm; i++)
                if (o.m[i].type == MSG_LINK) st = link_message(c, &o.m[i], l, &stop);
            if (st == FUSENET_OK && li) st = walk_dense(c, li, 0, link_message, l, &used);
        } else {
            st = CORRUPT(c, "object at byte %llu is not a group", (unsigned long long)group);
        }
    }
    hdr_free(&o);
    if (st == FUSENET_OK && l->n > 1) qsort(l->v, l->n, sizeof *l->v, by_name);
    return st;
}

/* The links of `group`, from the cache or listed now (lookups in it are then
 * a binary search). NULL on failure, with c->st set. */
static linklist *links_of(ctx *c, uint64_t group) {
    fn_hdf *h = c->h;
    linklist *l = NULL;
    for (int i = 0; i < LINK_CACHE && !l; i++)
        if (h->links[i].group == group) l = &h->links[i];
    if (!l) {
        l = &h->links[0];
        for (int i = 1; i < LINK_CACHE; i++)
            if (h->links[i].used < l->used) l = &h->links[i];
        linklist_free(l);
        if (list_links(c, group, l) != FUSENET_OK) {
            linklist_free(l);
            return NULL;
        }
        l->group = group;
    }
    l->used = ++h->clock;
    return l;
}

fusenet_status fusenet__hdf_children(fn_hdf *h, fn_hdf_obj group, const char *what, char ***names, size_t *n,
                                     fusenet_error *err) {
    ctx c = {h, what, err, FUSENET_OK};
    *names = NULL;
    *n = 0;
    linklist *l = links_of(&c, group);
    if (!l) return c.st;
    size_t bytes;
    char **v = fusenet__mul_size(l->n ? l->n : 1, sizeof *v, &bytes) ? fusenet__calloc(1, bytes) : NULL;
    if (!v) return NOMEM(&c);
    for (size_t i = 0; i < l->n; i++) {
        if (!(v[i] = fusenet__strdup(l->v[i].name))) {
            fusenet__hdf_names_free(v, i);
            return NOMEM(&c);
        }
    }
    *names = v;
    *n = l->n;
    return finish(&c);
}

void fusenet__hdf_names_free(char **names, size_t n) {
    for (size_t i = 0; names && i < n; i++) fusenet__free(names[i]);
    fusenet__free(names);
}

fusenet_status fusenet__hdf_lookup(fn_hdf *h, fn_hdf_obj group, const char *name, const char *what, fn_hdf_obj *child,
                             int *found, fusenet_error *err) {
    ctx c = {h, what, err, FUSENET_OK};
    *found = 0;
    linklist *l = links_of(&c, group);
    if (!l) return c.st;
    hlink key = {(char *)name, 0, 0};
    const hlink *hit = l->n ? bsearch(&key, l->v, l->n, sizeof *l->v, by_name) : NULL; /* an empty group */
    if (hit && hit->type != 0)
        return fail(&c, FUSENET_ERR_UNSUPPORTED, "not supported: link '%s' is a %s link", name,
                    hit->type == 1 ? "soft" : "external");
    if (hit) {
        *child = hit->addr;
        *found = 1;
    }
    return finish(&c);
}

fusenet_status fusenet__hdf_kind_of(fn_hdf *h, fn_hdf_obj obj, const char *what, fn_hdf_kind *kind, fusenet_error *err) {
    ctx c = {h, what, err, FUSENET_OK};
    hdr o;
    *kind = FN_HDF_OTHER;
    if (load_header(&c, obj, &o) == FUSENET_OK) {
        if (find_msg(&o, MSG_SYMBOL_TABLE) || find_msg(&o, MSG_LINK_INFO) || find_msg(&o, MSG_LINK))
            *kind = FN_HDF_GROUP;
        else if (find_msg(&o, MSG_LAYOUT))
            *kind = FN_HDF_DATASET;
    }
    hdr_free(&o);
    return finish(&c);
}

/* ---- attributes ------------------------------------------------------------------- */

struct fn_hdf_attr {
    fn_hdf_shape shape;
    dtype type;
    uint8_t *data;
    size_t nbytes;
};

/* Decodes an attribute message if its name is `name`: 1 with *out set, 1 with
 * *out NULL for another name, 0 on error. */
static FN_CHECKED fusenet_status attribute_message(ctx *c, const msg *m, const char *name, fn_hdf_attr **out) {
    *out = NULL;
    cur k = cur_of(m->p, m->n);
    unsigned version = (unsigned)u(&k, 1), flags = (unsigned)u(&k, 1);
    size_t nsize = (size_t)u(&k, 2), tsize = (size_t)u(&k, 2), ssize = (size_t)u(&k, 2);
    if (version == 3) skip(&k, 1); /* name character set */
    if (k.over) return CORRUPT(c, "short attribute message");
    if (version < 1 || version > 3) return UNSUPPORTED(c, "attribute message version %u", version);
    int padded = version == 1;
    const uint8_t *aname = take(&k, padded ? pad8(nsize) : nsize);
    if (!aname || nsize == 0) return CORRUPT(c, "attribute message with a bad name");
    size_t len = strnlen((const char *)aname, nsize);
    if (len != strlen(name) || memcmp(aname, name, len) != 0) return FUSENET_OK;
    if (flags & 3) return UNSUPPORTED(c, "attribute %s with a shared datatype or dataspace", name);
    const uint8_t *tp = take(&k, padded ? pad8(tsize) : tsize), *sp = take(&k, padded ? pad8(ssize) : ssize);
    if (!tp || !sp) return CORRUPT(c, "short attribute message");
    fn_hdf_attr *a = fusenet__calloc(1, sizeof *a);
    if (!a) return NOMEM(c);
    cur tk = cur_of(tp, tsize), sk = cur_of(sp, ssize);
    if (parse_dtype(c, &tk, &a->type) != FUSENET_OK || parse_space(c, &sk, &a->shape) != FUSENET_OK) {
        fusenet__free(a);
        return c->st;
    }
    set_type(&a->shape, &a->type);
    uint64_t bytes = a->shape.count * a->type.size;
    if (a->shape.count > UINT32_MAX || bytes > k.n - k.i) {
        unsigned long long count = (unsigned long long)a->shape.count;
        unsigned size = a->type.size;
        fusenet__free(a);
        return CORRUPT(c, "attribute %s holds %llu elements of %u bytes in a message of %zu bytes", name, count,
                       size, m->n);
    }
    a->nbytes = (size_t)bytes;
    a->data = fusenet__malloc(a->nbytes ? a->nbytes : 1);
    if (!a->data) {
        fusenet__free(a);
        return NOMEM(c);
    }
    memcpy(a->data, k.p + k.i, a->nbytes);
    *out = a;
    return FUSENET_OK;
}

typedef struct find_attr {
    const char *name;
    fn_hdf_attr **out;
} find_attr;

static FN_CHECKED fusenet_status attribute_each(ctx *c, const msg *m, void *arg, int *stop) {
    find_attr *f = arg;
    TRY(attribute_message(c, m, f->name, f->out));
    if (*f->out) *stop = 1;
    return FUSENET_OK;
}

fusenet_status fusenet__hdf_attr_find(fn_hdf *h, fn_hdf_obj obj, const char *name, const char *what, fn_hdf_attr **out,
                                fusenet_error *err) {
    ctx c = {h, what, err, FUSENET_OK};
    *out = NULL;
    hdr o;
    fusenet_status st = load_header(&c, obj, &o);
    if (st == FUSENET_OK) {
        find_attr f = {name, out};
        int stop = 0, used = 0;
        for (size_t i = 0; i < o.nm && !stop && st == FUSENET_OK; i++)
            if (o.m[i].type == MSG_ATTRIBUTE) st = attribute_each(&c, &o.m[i], &f, &stop);
        const msg *ai = find_msg(&o, MSG_ATTRIBUTE_INFO);
        if (st == FUSENET_OK && !stop && ai) st = walk_dense(&c, ai, 1, attribute_each, &f, &used);
    }
    hdr_free(&o);
    return finish(&c);
}

const fn_hdf_shape *fusenet__hdf_attr_shape(const fn_hdf_attr *a) { return &a->shape; }

void fusenet__hdf_attr_free(fn_hdf_attr *a) {
    if (!a) return;
    fusenet__free(a->data);
    fusenet__free(a);
}

/* The object of a global heap collection, copied into buf. */
static FN_CHECKED fusenet_status global_heap_object(ctx *c, uint64_t addr, uint32_t index, size_t len, char *buf) {
    fn_hdf *h = c->h;
    size_t sl = (size_t)h->sl;
    if (h->gcol_addr != addr) {
        fusenet__free(h->gcol);
        h->gcol = NULL;
        h->gcol_addr = UNDEF;
        uint8_t b[16];
        TRY(fetch(c, addr, b, 8 + sl, "a global heap"));
        if (!has_sig(b, "GCOL") || b[4] != 1)
            return CORRUPT(c, "no global heap at byte %llu", (unsigned long long)addr);
        cur k = cur_of(b + 8, sl);
        uint64_t size = len_of(&k, h);
        if (size < 8 + sl)
            return CORRUPT(c, "global heap at byte %llu of %llu bytes", (unsigned long long)addr,
                           (unsigned long long)size);
        if (!(h->gcol = fetch_block(c, addr, size, "a global heap"))) return c->st;
        h->gcol_addr = addr;
        h->gcol_len = (size_t)size;
    }
    cur k = cur_of(h->gcol, h->gcol_len);
    skip(&k, 8 + sl);
    while (k.n - k.i >= 8 + sl) {
        uint32_t idx = (uint32_t)u(&k, 2);
        skip(&k, 6); /* reference count, reserved */
        uint64_t size = len_of(&k, h);
        if (idx == 0) break; /* free space: the end of the objects */
        if (size > k.n - k.i) break;
        if (idx == index) {
            if (size < len)
                return CORRUPT(c, "global heap object %u holds %llu bytes, not %zu", index,
                               (unsigned long long)size, len);
            memcpy(buf, k.p + k.i, len);
            return FUSENET_OK;
        }
        skip(&k, pad8((size_t)size));
    }
    return CORRUPT(c, "global heap at byte %llu has no object %u", (unsigned long long)addr, index);
}

fusenet_status fusenet__hdf_attr_string(fn_hdf *h, const fn_hdf_attr *a, size_t i, const char *what, char *buf,
                                  size_t cap, size_t *len, fusenet_error *err) {
    ctx c = {h, what, err, FUSENET_OK};
    *len = 0;
    if (cap) buf[0] = '\0';
    if (i >= a->shape.count || cap == 0)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__hdf_attr_string: bad index");
    if (a->type.cls == FN_HDF_STRING) {
        const char *s = (const char *)a->data + i * a->type.size;
        size_t n = a->type.size;
        if (a->type.strpad == 0) n = strnlen(s, n); /* NUL-terminated: ends at the first NUL */
        while (n > 0 && s[n - 1] == (a->type.strpad == 2 ? ' ' : '\0')) n--;
        if (n >= cap) return fail(&c, FUSENET_ERR_FORMAT, "string of %zu bytes, more than %zu", n, cap - 1);
        memcpy(buf, s, n);
        buf[n] = '\0';
        *len = n;
    } else if (a->type.cls == FN_HDF_VLEN_STRING) {
        cur k = cur_of(a->data + i * a->type.size, a->type.size);
        size_t n = (size_t)u(&k, 4);
        uint64_t at = addr_of(&k, h);
        uint32_t index = (uint32_t)u(&k, 4);
        if (n >= cap) return fail(&c, FUSENET_ERR_FORMAT, "string of %zu bytes, more than %zu", n, cap - 1);
        if (n > 0 && global_heap_object(&c, at, index, n, buf) != FUSENET_OK) return c.st;
        buf[n] = '\0';
        *len = n;
    } else {
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__hdf_attr_string: not a string attribute");
    }
    return finish(&c);
}

/* ---- datasets ---------------------------------------------------------------------- */

enum { LAYOUT_COMPACT = 0, LAYOUT_CONTIGUOUS = 1, LAYOUT_CHUNKED = 2 };
enum { INDEX_BTREE1 = 0, INDEX_SINGLE = 1, INDEX_IMPLICIT = 2, INDEX_FIXED_ARRAY = 3 };

typedef struct filter {
    unsigned id;
    uint32_t param0; /* first client value (shuffle: element size) */
    int nparams;
} filter;

struct fn_hdf_dataset {
    fn_hdf_shape shape;
    dtype type;
    int layout;
    uint64_t addr, stored; /* contiguous: address and size; compact: size */
    const uint8_t *compact;
    int index;                       /* chunked: INDEX_* */
    int crank;                       /* chunk rank, = shape.rank */
    uint64_t cdims[FN_HDF_MAX_RANK]; /* chunk dims */
    uint64_t single_size;            /* single chunk: stored size if filtered */
    uint32_t single_mask;
    int fa_page_bits;
    filter filters[MAX_FILTERS];
    int nfilters;
};
typedef fn_hdf_dataset dataset;

static FN_CHECKED fusenet_status parse_filters(ctx *c, const msg *m, dataset *d) {
    cur k = cur_of(m->p, m->n);
    unsigned version = (unsigned)u(&k, 1);
    int n = (int)u(&k, 1);
    if (version == 1)
        skip(&k, 6);
    else if (version != 2)
        return k.over ? CORRUPT(c, "short filter pipeline")
                      : UNSUPPORTED(c, "filter pipeline version %u", version);
    if (n > MAX_FILTERS) return CORRUPT(c, "%d filters", n);
    for (int i = 0; i < n; i++) {
        filter *f = &d->filters[i];
        f->id = (unsigned)u(&k, 2);
        size_t name_len = version == 1 || f->id >= 256 ? (size_t)u(&k, 2) : 0;
        skip(&k, 2); /* flags */
        f->nparams = (int)u(&k, 2);
        skip(&k, version == 1 ? pad8(name_len) : name_len);
        for (int j = 0; j < f->nparams; j++) {
            uint32_t v = (uint32_t)u(&k, 4);
            if (j == 0) f->param0 = v;
        }
        if (version == 1 && (f->nparams & 1)) skip(&k, 4);
        if (k.over) return CORRUPT(c, "short filter pipeline");
        if (f->id < 1 || f->id > 3)
            return UNSUPPORTED(c, "filter %u (%s); only deflate, shuffle and fletcher32 are read", f->id,
                               f->id == 4   ? "szip"
                               : f->id == 5 ? "nbit"
                               : f->id == 6 ? "scaleoffset"
                                            : "a plugin");
    }
    d->nfilters = n;
    return FUSENET_OK;
}

static FN_CHECKED fusenet_status parse_layout(ctx *c, const msg *m, dataset *d) {
    fn_hdf *h = c->h;
    cur k = cur_of(m->p, m->n);
    unsigned version = (unsigned)u(&k, 1);
    d->addr = UNDEF;
    if (version == 1 || version == 2) {
        int ndims = (int)u(&k, 1);
        d->layout = (int)u(&k, 1);
        skip(&k, 5);
        if (d->layout != LAYOUT_COMPACT) d->addr = addr_of(&k, h);
        if (ndims < 1 || ndims > FN_HDF_MAX_RANK + 1) return CORRUPT(c, "layout of %d dimensions", ndims);
        uint64_t dims[FN_HDF_MAX_RANK + 1];
        for (int i = 0; i < ndims; i++) dims[i] = u(&k, 4);
        if (d->layout == LAYOUT_COMPACT) {
            d->stored = u(&k, 4);
            d->compact = take(&k, (size_t)d->stored);
        } else if (d->layout == LAYOUT_CHUNKED) {
            d->index = INDEX_BTREE1;
            d->crank = ndims - 1;
            for (int i = 0; i < d->crank; i++) d->cdims[i] = dims[i];
        } else if (d->layout == LAYOUT_CONTIGUOUS) {
            d->stored = UINT64_MAX; /* not recorded: the dataspace decides */
        }
    } else if (version == 3 || version == 4) {
        d->layout = (int)u(&k, 1);
        if (d->layout == LAYOUT_COMPACT) {
            d->stored = u(&k, 2);
            d->compact = take(&k, (size_t)d->stored);
        } else if (d->layout == LAYOUT_CONTIGUOUS) {
            d->addr = addr_of(&k, h);
            d->stored = len_of(&k, h);
        } else if (d->layout == LAYOUT_CHUNKED) {
            unsigned flags = version == 4 ? (unsigned)u(&k, 1) : 0;
            int ndims = (int)u(&k, 1);
            size_t width = 4;
            if (version == 3)
                d->addr = addr_of(&k, h);
            else
                width = (size_t)u(&k, 1);
            if (ndims < 1 || ndims > FN_HDF_MAX_RANK + 1 || width < 1 || width > 8)
                return CORRUPT(c, "chunked layout of %d dimensions", ndims);
            d->crank = ndims - 1;
            for (int i = 0; i < ndims; i++) {
                uint64_t v = u(&k, width);
                if (i < d->crank) d->cdims[i] = v;
            }
            if (version == 3) {
                d->index = INDEX_BTREE1;
            } else {
                d->index = (int)u(&k, 1);
                if (d->index == INDEX_SINGLE) {
                    if (flags & 2) {
                        d->single_size = len_of(&k, h);
                        d->single_mask = (uint32_t)u(&k, 4);
                    }
                } else if (d->index == INDEX_FIXED_ARRAY) {
                    d->fa_page_bits = (int)u(&k, 1);
                } else if (d->index != INDEX_IMPLICIT) {
                    return UNSUPPORTED(
                        c, "chunk index type %d (extensible array or B-tree v2: a resizable dataset)", d->index);
                }
                d->addr = addr_of(&k, h);
            }
        } else {
            return UNSUPPORTED(c, "data layout class %d", d->layout);
        }
    } else {
        return k.over ? CORRUPT(c, "short data layout message")
                      : UNSUPPORTED(c, "data layout version %u", version);
    }
    if (k.over) return CORRUPT(c, "short data layout message");
    if (d->layout > LAYOUT_CHUNKED) return UNSUPPORTED(c, "data layout class %d", d->layout);
    if (d->layout == LAYOUT_CHUNKED) {
        if (d->crank < 1) return CORRUPT(c, "chunked layout of rank 0");
        if (d->crank != d->shape.rank)
            return CORRUPT(c, "chunks of rank %d in a dataset of rank %d", d->crank, d->shape.rank);
        for (int i = 0; i < d->crank; i++)
            if (d->cdims[i] == 0) return CORRUPT(c, "chunk dimension %d is 0", i);
    }
    return FUSENET_OK;
}

/* Parses the dataset at obj into d; *is_dataset is 0 (and nothing parsed)
 * when the object has no data layout, i.e. is not a dataset. */
static FN_CHECKED fusenet_status load_dataset(ctx *c, fn_hdf_obj obj, dataset *d, int *is_dataset) {
    memset(d, 0, sizeof *d);
    *is_dataset = 0;
    hdr o;
    fusenet_status st = load_header(c, obj, &o);
    const msg *sp = find_msg(&o, MSG_DATASPACE), *tp = find_msg(&o, MSG_DATATYPE), *lp = find_msg(&o, MSG_LAYOUT),
              *fp = find_msg(&o, MSG_FILTERS);
    if (st == FUSENET_OK && !lp) {
        hdr_free(&o);
        return FUSENET_OK;
    }
    *is_dataset = st == FUSENET_OK;
    if (st == FUSENET_OK && (!sp || !tp))
        st = CORRUPT(c, "dataset at byte %llu without a dataspace or datatype", (unsigned long long)obj);
    if (st == FUSENET_OK && find_msg(&o, MSG_EXTERNAL)) st = UNSUPPORTED(c, "data stored in external files");
    if (st == FUSENET_OK) st = check_not_shared(c, sp, "dataspace");
    if (st == FUSENET_OK) st = check_not_shared(c, tp, "datatype");
    cur sk = cur_of(sp ? sp->p : NULL, sp ? sp->n : 0), tk = cur_of(tp ? tp->p : NULL, tp ? tp->n : 0);
    if (st == FUSENET_OK) st = parse_space(c, &sk, &d->shape);
    if (st == FUSENET_OK) st = parse_dtype(c, &tk, &d->type);
    if (st == FUSENET_OK) set_type(&d->shape, &d->type);
    if (st == FUSENET_OK) st = parse_layout(c, lp, d);
    if (st == FUSENET_OK && fp) st = parse_filters(c, fp, d);
    if (st == FUSENET_OK && d->nfilters > 0 && d->layout != LAYOUT_CHUNKED)
        st = CORRUPT(c, "filters on a dataset that is not chunked");
    /* compact data points into the header: keep a copy */
    uint8_t *copy = NULL;
    if (st == FUSENET_OK && d->layout == LAYOUT_COMPACT) {
        if (!d->compact)
            st = CORRUPT(c, "short compact data");
        else if (!(copy = fusenet__malloc(d->stored ? (size_t)d->stored : 1)))
            st = NOMEM(c);
        else
            memcpy(copy, d->compact, (size_t)d->stored);
    }
    d->compact = copy; /* NULL, or the copy: never a pointer into the freed header */
    hdr_free(&o);
    return st;
}

fusenet_status fusenet__hdf_dataset_open(fn_hdf *h, fn_hdf_obj obj, const char *what, fn_hdf_dataset **out,
                                   fusenet_error *err) {
    ctx c = {h, what, err, FUSENET_OK};
    *out = NULL;
    dataset *d = fusenet__malloc(sizeof *d);
    int is_dataset = 0;
    if (!d)
        NOMEM(&c);
    else if (load_dataset(&c, obj, d, &is_dataset) == FUSENET_OK && is_dataset)
        *out = d;
    if (!*out) fusenet__hdf_dataset_free(d);
    return finish(&c);
}

const fn_hdf_shape *fusenet__hdf_dataset_shape(const fn_hdf_dataset *d) { return &d->shape; }

void fusenet__hdf_dataset_free(fn_hdf_dataset *d) {
    if (!d) return;
    fusenet__free((void *)d->compact);
    fusenet__free(d);
}

/* Converts n elements of type t to float32. */
static void convert(const uint8_t *src, float *dst, size_t n, const dtype *t) {
    for (size_t i = 0; i < n; i++, src += t->size) {
        uint64_t v = 0;
        for (uint32_t b = 0; b < t->size; b++) v |= (uint64_t)src[t->big_endian ? t->size - 1 - b : b] << (8 * b);
        if (t->size == 4) {
            uint32_t w = (uint32_t)v;
            memcpy(&dst[i], &w, 4);
        } else if (t->size == 8) {
            double x;
            memcpy(&x, &v, 8);
            dst[i] = (float)x;
        } else { /* IEEE half */
            unsigned sign = (unsigned)(v >> 15) & 1, e = (unsigned)(v >> 10) & 31, m = (unsigned)v & 1023;
            float x;
            if (e == 0)
                x = (float)m * (1.0f / 16777216.0f); /* subnormal: m * 2^-24 */
            else if (e == 31)
                x = m ? __builtin_nanf("") : __builtin_inff();
            else
                x = (float)(1024 + m) * ((float)(1u << e) / 33554432.0f); /* (1024+m) * 2^(e-25) */
            dst[i] = sign ? -x : x;
        }
    }
}

/* Reads and converts elements [first, first+n) of contiguous storage at addr. */
static FN_CHECKED fusenet_status read_elements(ctx *c, const dataset *d, uint64_t addr, float *dst, size_t n) {
    const size_t step = (1u << 20) / 8;
    uint8_t *buf = NULL;
    if (!(d->type.size == 4 && !d->type.big_endian)) {
        if (!(buf = fusenet__malloc(step * d->type.size))) return NOMEM(c);
    }
    fusenet_status st = FUSENET_OK;
    for (size_t done = 0; st == FUSENET_OK && done < n;) {
        size_t m = n - done < step ? n - done : step;
        uint64_t at = addr + (uint64_t)done * d->type.size;
        if (buf) {
            st = fetch_raw(c, at, buf, m * d->type.size, "dataset values");
            if (st == FUSENET_OK) convert(buf, dst + done, m, &d->type);
        } else {
            st = fetch_raw(c, at, dst + done, m * 4, "dataset values");
        }
        done += m;
    }
    fusenet__free(buf);
    return st;
}

/* ---- chunks ---- */

typedef struct chunker {
    ctx *c;
    const dataset *d;
    float *dst;
    size_t chunk_elems, chunk_bytes;
    uint64_t grid[FN_HDF_MAX_RANK]; /* chunks along each dimension */
    uint64_t nchunks;
    uint8_t *seen;       /* one byte per chunk */
    uint8_t *raw, *work; /* stored bytes, filter output */
    size_t cap;          /* bytes of raw and of work */
} chunker;

static FN_CHECKED fusenet_status inflate_into(ctx *c, const uint8_t *src, size_t n, uint8_t *dst, size_t want,
                                              size_t *got) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) return NOMEM(c);
    z.next_in = (Bytef *)src;
    z.next_out = dst;
    int r = Z_OK;
    size_t in_left = n, out_left = want;
    while (r == Z_OK) {
        z.avail_in = (uInt)(in_left < UINT32_MAX ? in_left : UINT32_MAX);
        z.avail_out = (uInt)(out_left < UINT32_MAX ? out_left : UINT32_MAX);
        uInt ai = z.avail_in, ao = z.avail_out;
        r = inflate(&z, Z_NO_FLUSH);
        in_left -= ai - z.avail_in;
        out_left -= ao - z.avail_out;
        if (r == Z_OK && ai == z.avail_in && ao == z.avail_out) r = Z_BUF_ERROR; /* no progress */
    }
    inflateEnd(&z);
    if (r != Z_STREAM_END) return CORRUPT(c, "a compressed chunk does not inflate to %zu bytes", want);
    *got = want - out_left;
    return FUSENET_OK;
}

/* Undoes the filters on a chunk of n stored bytes (in ch->raw); the result,
 * exactly chunk_bytes long, is at *out. */
static FN_CHECKED fusenet_status unfilter(chunker *ch, size_t n, uint32_t mask, const uint8_t **out) {
    ctx *c = ch->c;
    const dataset *d = ch->d;
    uint8_t *cur_buf = ch->raw, *other = ch->work;
    for (int i = d->nfilters - 1; i >= 0; i--) {
        if (mask & (1u << i)) continue; /* not applied to this chunk */
        const filter *f = &d->filters[i];
        if (f->id == 3) { /* fletcher32: a 4-byte checksum at the end */
            if (n < 4) return CORRUPT(c, "chunk too short for its checksum");
            n -= 4;
            uint32_t want = fletcher32(cur_buf, n);
            const uint8_t *p = cur_buf + n; /* libhdf5 before 1.6.3 swapped the bytes of each half */
            uint32_t swapped = (uint32_t)p[1] | (uint32_t)p[0] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[2] << 24;
            if (le32(p) != want && swapped != want) return CORRUPT(c, "a chunk fails its fletcher32 checksum");
        } else if (f->id == 2) { /* shuffle: byte planes back to elements */
            size_t es = f->nparams > 0 ? f->param0 : d->type.size;
            if (es > 1 && n >= es) {
                size_t count = n / es;
                for (size_t b = 0; b < es; b++)
                    for (size_t e = 0; e < count; e++) other[e * es + b] = cur_buf[b * count + e];
                memcpy(other + count * es, cur_buf + count * es, n - count * es);
                uint8_t *t = cur_buf;
                cur_buf = other;
                other = t;
            }
        } else { /* deflate */
            size_t got = 0;
            TRY(inflate_into(c, cur_buf, n, other, ch->chunk_bytes, &got));
            n = got;
            uint8_t *t = cur_buf;
            cur_buf = other;
            other = t;
        }
    }
    if (n != ch->chunk_bytes) return CORRUPT(c, "a chunk holds %zu bytes, not %zu", n, ch->chunk_bytes);
    *out = cur_buf;
    return FUSENET_OK;
}

/* Reads the chunk at `offsets` (element coordinates) stored at addr. */
static FN_CHECKED fusenet_status put_chunk(chunker *ch, const uint64_t *offsets, uint64_t addr, uint64_t stored,
                                           uint32_t mask) {
    ctx *c = ch->c;
    const dataset *d = ch->d;
    int rank = d->shape.rank;
    uint64_t index = 0;
    for (int i = 0; i < rank; i++) {
        if (offsets[i] % d->cdims[i] || offsets[i] >= d->shape.dims[i])
            return CORRUPT(c, "chunk at a bad offset %llu in dimension %d", (unsigned long long)offsets[i], i);
        index = index * ch->grid[i] + offsets[i] / d->cdims[i];
    }
    if (ch->seen[index]) return CORRUPT(c, "chunk %llu stored twice", (unsigned long long)index);
    ch->seen[index] = 1;
    if (d->nfilters == 0 && stored != ch->chunk_bytes)
        return CORRUPT(c, "chunk of %llu bytes, expected %zu", (unsigned long long)stored, ch->chunk_bytes);
    if (stored > MAX_CHUNK_BYTES || stored > c->h->size)
        return CORRUPT(c, "chunk of %llu bytes", (unsigned long long)stored);
    if (stored > ch->cap) { /* a chunk that compresses badly grows a little */
        uint8_t *r = fusenet__realloc(ch->raw, (size_t)stored), *w = r ? fusenet__realloc(ch->work, (size_t)stored) : NULL;
        if (r) ch->raw = r;
        if (w) ch->work = w;
        if (!r || !w) return NOMEM(c);
        ch->cap = (size_t)stored;
    }
    TRY(fetch_raw(c, addr, ch->raw, (size_t)stored, "a chunk"));
    const uint8_t *data = NULL;
    TRY(unfilter(ch, (size_t)stored, mask, &data));
    /* copy the part inside the dataset, row by row along the last dimension */
    uint64_t pos[FN_HDF_MAX_RANK] = {0};
    uint64_t last = d->cdims[rank - 1], keep = d->shape.dims[rank - 1] - offsets[rank - 1];
    if (keep > last) keep = last;
    for (;;) {
        int inside = 1;
        uint64_t src = 0, dst = 0;
        for (int i = 0; i < rank; i++) {
            uint64_t g = offsets[i] + pos[i];
            if (g >= d->shape.dims[i]) inside = 0;
            src = src * d->cdims[i] + pos[i];
            dst = dst * d->shape.dims[i] + g;
        }
        if (inside) convert(data + src * d->type.size, ch->dst + dst, (size_t)keep, &d->type);
        int i = rank - 2;
        for (; i >= 0; i--) {
            if (++pos[i] < d->cdims[i]) break;
            pos[i] = 0;
        }
        if (i < 0) break;
    }
    return FUSENET_OK;
}

static FN_CHECKED fusenet_status btree_chunk(bwalk *w, const uint8_t *key, uint64_t addr) {
    chunker *ch = w->arg;
    int rank = ch->d->shape.rank;
    cur k = cur_of(key, w->key_size);
    uint64_t stored = u(&k, 4);
    uint32_t mask = (uint32_t)u(&k, 4);
    uint64_t offsets[FN_HDF_MAX_RANK];
    for (int i = 0; i < rank; i++) offsets[i] = u(&k, 8);
    return put_chunk(ch, offsets, addr, stored, mask);
}

/* The element offsets of chunk number `index` in row-major chunk order. */
static void chunk_offsets(const chunker *ch, uint64_t index, uint64_t *offsets) {
    for (int i = ch->d->shape.rank - 1; i >= 0; i--) {
        offsets[i] = (index % ch->grid[i]) * ch->d->cdims[i];
        index /= ch->grid[i];
    }
}

static FN_CHECKED fusenet_status fixed_array(chunker *ch) {
    ctx *c = ch->c;
    fn_hdf *h = c->h;
    const dataset *d = ch->d;
    uint8_t b[64];
    size_t n = 4 + 1 + 1 + 1 + 1 + (size_t)h->sl + (size_t)h->so;
    TRY(fetch(c, d->addr, b, n + 4, "a chunk index"));
    cur k = cur_of(b, n);
    skip(&k, 5);
    unsigned client = (unsigned)u(&k, 1), entry = (unsigned)u(&k, 1), page_bits = (unsigned)u(&k, 1);
    uint64_t max = len_of(&k, h), block = addr_of(&k, h);
    if (!has_sig(b, "FAHD") || client > 1)
        return CORRUPT(c, "no fixed-array chunk index at byte %llu", (unsigned long long)d->addr);
    TRY(check_sum(c, b, n, "fixed-array chunk index", d->addr));
    size_t want = (size_t)h->so + (client ? 4 + 1 : 0);
    if (entry < want || entry > (size_t)h->so + 8 + 4 || max < ch->nchunks)
        return CORRUPT(c, "fixed-array chunk index with entries of %u bytes for %llu chunks", entry,
                       (unsigned long long)max);
    if (page_bits < 64 && max > ((uint64_t)1 << page_bits))
        return UNSUPPORTED(c, "a paged fixed-array chunk index");
    size_t pre = 4 + 1 + 1 + (size_t)h->so;
    if (max > MAX_BLOCK_BYTES)
        return CORRUPT(c, "fixed-array chunk index of %llu entries", (unsigned long long)max);
    size_t used = pre + (size_t)max * entry; /* every entry of the array, then the checksum */
    uint8_t *body = fetch_block(c, block, used + 4, "a chunk index");
    if (!body) return c->st;
    fusenet_status st = has_sig(body, "FADB")
                            ? FUSENET_OK
                            : CORRUPT(c, "no fixed-array data block at byte %llu", (unsigned long long)block);
    if (st == FUSENET_OK) st = check_sum(c, body, used, "fixed-array data block", block);
    cur e = cur_of(body + pre, (size_t)ch->nchunks * entry);
    for (uint64_t i = 0; st == FUSENET_OK && i < ch->nchunks; i++) {
        uint64_t at = addr_of(&e, h), stored = ch->chunk_bytes;
        uint32_t mask = 0;
        if (client) {
            stored = u(&e, entry - (size_t)h->so - 4);
            mask = (uint32_t)u(&e, 4);
        }
        uint64_t offsets[FN_HDF_MAX_RANK];
        chunk_offsets(ch, i, offsets);
        if (at != UNDEF) st = put_chunk(ch, offsets, at, stored, mask);
    }
    fusenet__free(body);
    return st;
}

static FN_CHECKED fusenet_status read_chunked(ctx *c, const dataset *d, float *dst) {
    chunker ch = {c, d, dst, 1, 0, {0}, 1, NULL, NULL, NULL, 0};
    for (int i = 0; i < d->shape.rank; i++) {
        ch.grid[i] = d->shape.dims[i] / d->cdims[i] + (d->shape.dims[i] % d->cdims[i] != 0);
        if (d->cdims[i] > MAX_CHUNK_BYTES || !fusenet__mul_size(ch.chunk_elems, (size_t)d->cdims[i], &ch.chunk_elems))
            return CORRUPT(c, "chunks too large");
        ch.nchunks *= ch.grid[i]; /* at most the element count */
    }
    /* a chunk may overhang the dataset's edges, but never by much: libhdf5
     * keeps chunk dims within the maximum dims */
    uint64_t data_bytes = d->shape.count * d->type.size,
             limit = data_bytes > (64u << 20) ? data_bytes : (64u << 20);
    if (!fusenet__mul_size(ch.chunk_elems, d->type.size, &ch.chunk_bytes) || ch.chunk_bytes > MAX_CHUNK_BYTES ||
        ch.chunk_bytes > limit)
        return CORRUPT(c, "chunks of %zu elements for %llu values", ch.chunk_elems,
                       (unsigned long long)d->shape.count);
    ch.seen = fusenet__calloc((size_t)ch.nchunks, 1);
    ch.cap = ch.chunk_bytes + 64;
    ch.raw = fusenet__malloc(ch.cap);
    ch.work = fusenet__malloc(ch.cap);
    fusenet_status st = ch.seen && ch.raw && ch.work ? FUSENET_OK : NOMEM(c);
    if (st == FUSENET_OK && d->addr == UNDEF)
        st = fail(c, FUSENET_ERR_FORMAT, "no values stored: the dataset was created but never written");
    if (st == FUSENET_OK) {
        if (d->index == INDEX_BTREE1) {
            bwalk w = {c, 1, 8 + 8 * ((size_t)d->shape.rank + 1), 0, btree_chunk, &ch, 0};
            st = walk_node(&w, d->addr, -1);
        } else if (d->index == INDEX_SINGLE) {
            uint64_t zero[FN_HDF_MAX_RANK] = {0};
            if (ch.nchunks != 1)
                st = CORRUPT(c, "single-chunk index for %llu chunks", (unsigned long long)ch.nchunks);
            else
                st = put_chunk(&ch, zero, d->addr, d->nfilters ? d->single_size : ch.chunk_bytes, d->single_mask);
        } else if (d->index == INDEX_IMPLICIT) {
            for (uint64_t i = 0; st == FUSENET_OK && i < ch.nchunks; i++) {
                uint64_t offsets[FN_HDF_MAX_RANK];
                chunk_offsets(&ch, i, offsets);
                st = put_chunk(&ch, offsets, d->addr + i * ch.chunk_bytes, ch.chunk_bytes, 0);
            }
        } else {
            st = fixed_array(&ch);
        }
    }
    for (uint64_t i = 0; st == FUSENET_OK && i < ch.nchunks; i++)
        if (!ch.seen[i])
            st = CORRUPT(c, "chunk %llu of %llu is missing", (unsigned long long)i, (unsigned long long)ch.nchunks);
    fusenet__free(ch.seen);
    fusenet__free(ch.raw);
    fusenet__free(ch.work);
    return st;
}

fusenet_status fusenet__hdf_dataset_read(fn_hdf *h, const fn_hdf_dataset *d, const char *what, float *dst,
                                   size_t count, fusenet_error *err) {
    ctx c = {h, what, err, FUSENET_OK};
    fusenet_status st = FUSENET_OK;
    if (d->type.cls != FN_HDF_FLOAT || !d->type.ieee)
        st = UNSUPPORTED(&c, "%s data that is not IEEE floating point", fusenet__hdf_class_name(d->type.raw_class));
    if (st == FUSENET_OK && (d->shape.is_null || d->shape.count != count))
        st = fail(&c, FUSENET_ERR_INVALID_ARG, "fusenet__hdf_dataset_read: %zu elements asked of %llu", count,
                  (unsigned long long)d->shape.count);
    uint64_t bytes = (uint64_t)count * d->type.size;
    if (st == FUSENET_OK && d->layout == LAYOUT_COMPACT) {
        if (d->stored < bytes)
            st = CORRUPT(&c, "compact data of %llu bytes for %llu", (unsigned long long)d->stored,
                         (unsigned long long)bytes);
        else
            convert(d->compact, dst, count, &d->type);
    } else if (st == FUSENET_OK && d->layout == LAYOUT_CONTIGUOUS) {
        if (d->addr == UNDEF)
            st = fail(&c, FUSENET_ERR_FORMAT, "no values stored: the dataset was created but never written");
        else if (d->stored < bytes)
            st =
                CORRUPT(&c, "storage of %llu bytes for %llu", (unsigned long long)d->stored, (unsigned long long)bytes);
        else
            st = read_elements(&c, d, d->addr, dst, count);
    } else if (st == FUSENET_OK && count > 0) {
        st = read_chunked(&c, d, dst);
    }
    return finish(&c);
}
