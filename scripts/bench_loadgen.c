// loadgen: a small etcd v3 gRPC load generator on libnghttp2, for scripts/bench.
//
// One thread, epoll, closed-loop "clients" (in-flight slots) spread over a few
// HTTP/2 connections. Every response is checked: HTTP :status 200, a gRPC
// message in the body and grpc-status 0 (from the headers or the trailers);
// anything else counts as an error and the first one is printed. Latency is
// taken from submit to stream close and kept per request (µs) for exact
// percentiles. The generator's own CPU time (getrusage) is reported so a reader
// can see it was not the bottleneck.
//
//   loadgen --endpoints 127.0.0.1:2379[,..] --op put|range|srange|txn|watch|ready
//           [--clients N] [--conns C] [--duration S | --requests R] [--warmup S]
//           [--keys K] [--seq] [--key-offset O] [--prefix P] [--value-size V]
//           [--watchers W] [--watchers-per-stream S] [--rate R] [--timeout S] [--lat-out FILE]
//
// --lat-out writes every recorded latency (µs, uint32 little-endian, sorted) so that the
// caller can merge several runs exactly.
//
// Prints one JSON object on stdout.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

enum op { OP_PUT, OP_RANGE, OP_SRANGE, OP_TXN, OP_WATCH, OP_READY };

static struct {
  char endpoints[16][128];
  int n_endpoints;
  enum op op;
  int clients, conns;
  double duration, warmup, timeout, rate;
  long requests;
  long keys, key_offset;
  int seq;
  const char *prefix;
  const char *lat_out;
  int value_size;
  int watchers, watchers_per_stream;
} cfg = {.clients = 1, .conns = 0, .duration = 0, .warmup = 0, .timeout = 30, .rate = 0, .requests = 0,
         .keys = 1000, .key_offset = 0, .seq = 0, .prefix = "bench/", .value_size = 256,
         .watchers = 1000, .watchers_per_stream = 10};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

// ---- results
static uint32_t *lat;
static size_t lat_n, lat_cap;
static long ok_total, ok_recorded, err_total, started_total;
static char first_error[512];
static double t_start, t_measure, t_stop_issue, t_end;
static int stopping;
static long watch_events, watch_created, writer_ok;

static void record_latency(uint64_t ns) {
  if (lat_n == lat_cap) {
    lat_cap = lat_cap ? lat_cap * 2 : 1 << 20;
    lat = realloc(lat, lat_cap * sizeof *lat);
    if (!lat) { perror("realloc"); exit(1); }
  }
  uint64_t us = ns / 1000;
  lat[lat_n++] = us > 0xffffffffu ? 0xffffffffu : (uint32_t)us;
}
static void note_error(const char *fmt, const char *a, long b) {
  err_total++;
  if (!first_error[0]) snprintf(first_error, sizeof first_error, fmt, a, b);
}

// ---- protobuf encoding (just what the cases need)
typedef struct { uint8_t *p; size_t n, cap; } buf_t;
static void b_reserve(buf_t *b, size_t more) {
  if (b->n + more <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + more) cap *= 2;
  b->p = realloc(b->p, cap);
  b->cap = cap;
}
static void b_put(buf_t *b, const void *d, size_t n) { b_reserve(b, n); memcpy(b->p + b->n, d, n); b->n += n; }
static void b_varint(buf_t *b, uint64_t v) {
  uint8_t t[10]; int i = 0;
  while (v >= 0x80) { t[i++] = (uint8_t)(v | 0x80); v >>= 7; }
  t[i++] = (uint8_t)v;
  b_put(b, t, i);
}
static void b_bytes(buf_t *b, int field, const void *d, size_t n) { b_varint(b, (uint64_t)field << 3 | 2); b_varint(b, n); b_put(b, d, n); }
static void b_uint(buf_t *b, int field, uint64_t v) { b_varint(b, (uint64_t)field << 3); b_varint(b, v); }
static void b_grpc_frame(buf_t *out, const buf_t *msg) {
  uint8_t h[5] = {0, (uint8_t)(msg->n >> 24), (uint8_t)(msg->n >> 16), (uint8_t)(msg->n >> 8), (uint8_t)msg->n};
  b_put(out, h, 5);
  b_put(out, msg->p, msg->n);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static long seq_next;

static int make_key(char *out, long idx) { return sprintf(out, "%s%010ld", cfg.prefix, idx + cfg.key_offset); }
static void make_value(char *out, int n, uint64_t stamp) {
  memset(out, 'v', n);
  if (stamp && n >= 24) { char t[32]; sprintf(t, "@@TS%016llx", (unsigned long long)stamp); memcpy(out, t, 20); }
}

// Builds the gRPC body of one request; returns the :path.
static const char *build_request(buf_t *out, enum op op, uint64_t stamp) {
  char key[256], value[65536];
  long idx = cfg.seq ? seq_next++ : (long)(next_rand() % (uint64_t)cfg.keys);
  int kn = op == OP_WATCH ? sprintf(key, "%swatched", cfg.prefix) : make_key(key, idx);
  buf_t m = {0}, c = {0}, put = {0}, op1 = {0}, rng_ = {0}, op2 = {0};
  const char *path;
  out->n = 0;
  switch (op) {
    case OP_PUT:
    case OP_WATCH:  // the writer of the watch case
      make_value(value, cfg.value_size, stamp);
      b_bytes(&m, 1, key, kn);
      b_bytes(&m, 2, value, cfg.value_size);
      path = "/etcdserverpb.KV/Put";
      break;
    case OP_RANGE:
    case OP_SRANGE:
    case OP_READY:
      b_bytes(&m, 1, key, kn);
      if (op == OP_SRANGE) b_uint(&m, 7, 1);
      path = "/etcdserverpb.KV/Range";
      break;
    case OP_TXN:
      // compare-and-swap: if value(key) != "sentinel" then put(key) else range(key)
      b_uint(&c, 1, 3);  // NOT_EQUAL
      b_uint(&c, 2, 3);  // VALUE
      b_bytes(&c, 3, key, kn);
      b_bytes(&c, 7, "sentinel", 8);
      make_value(value, cfg.value_size, 0);
      b_bytes(&put, 1, key, kn);
      b_bytes(&put, 2, value, cfg.value_size);
      b_bytes(&op1, 2, put.p, put.n);
      b_bytes(&rng_, 1, key, kn);
      b_bytes(&op2, 1, rng_.p, rng_.n);
      b_bytes(&m, 1, c.p, c.n);
      b_bytes(&m, 2, op1.p, op1.n);
      b_bytes(&m, 3, op2.p, op2.n);
      path = "/etcdserverpb.KV/Txn";
      break;
    default: abort();
  }
  b_grpc_frame(out, &m);
  free(m.p); free(c.p); free(put.p); free(op1.p); free(rng_.p); free(op2.p);
  return path;
}

// ---- connections and streams
typedef struct conn conn_t;
typedef struct stream {
  conn_t *conn;
  int32_t id;
  buf_t body;
  size_t off;
  int unary;          // half-close after the body
  int watch;          // a watch stream (server streaming, never finishes)
  int http_status, grpc_status, got_data;
  char grpc_message[160];
  uint64_t t0;
  buf_t in;           // watch: incoming bytes not yet framed
  int watch_seen;     // watch: create responses seen on this stream
} stream_t;

struct conn {
  int fd;
  nghttp2_session *s;
  buf_t out;
  size_t out_off;
  int want_write;
  int idx;
  const char *authority;
};

static int epfd;
static conn_t *conns;
static int n_conns;
static long inflight;
static int dead_conns;

static void scan_watch_message(const uint8_t *p, size_t n) {
  // each event's value starts with @@TS<16 hex>: count it and take the latency
  static const char mark[] = "@@TS";
  uint64_t t = now_ns();
  for (size_t i = 0; i + 20 <= n; i++) {
    if (p[i] == '@' && memcmp(p + i, mark, 4) == 0) {
      char hex[17]; memcpy(hex, p + i + 4, 16); hex[16] = 0;
      uint64_t stamp = strtoull(hex, NULL, 16);
      watch_events++;
      if (stamp && now_s() >= t_measure && !stopping) record_latency(t - stamp);
      i += 19;
    }
  }
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  (void)s; (void)id; (void)ud;
  stream_t *st = src->ptr;
  size_t n = st->body.n - st->off;
  if (n > len) n = len;
  memcpy(buf, st->body.p + st->off, n);
  st->off += n;
  if (st->off == st->body.n) {
    if (st->unary) *flags |= NGHTTP2_DATA_FLAG_EOF;
    else if (n == 0) return NGHTTP2_ERR_DEFERRED;
  }
  return (ssize_t)n;
}

static void submit(conn_t *c, stream_t *st, const char *path) {
  nghttp2_nv nva[] = {
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
      NV(":method", "POST"), NV(":scheme", "http"), NV(":path", path), NV(":authority", c->authority),
      NV("content-type", "application/grpc"), NV("te", "trailers"),
#undef NV
  };
  nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
  st->conn = c;
  st->off = 0;
  st->http_status = st->grpc_status = -1;
  st->got_data = 0;
  st->grpc_message[0] = 0;
  st->t0 = now_ns();
  int32_t id = nghttp2_submit_request(c->s, NULL, nva, sizeof nva / sizeof nva[0], &prd, st);
  if (id < 0) { fprintf(stderr, "submit: %s\n", nghttp2_strerror(id)); exit(1); }
  st->id = id;
  inflight++;
  started_total++;
}

static int more_to_issue(void) {
  if (stopping) return 0;
  if (cfg.requests && started_total >= cfg.requests) return 0;
  return 1;
}

static void issue(conn_t *c, stream_t *st) {
  if (!st) { st = calloc(1, sizeof *st); st->unary = 1; }
  const char *path = build_request(&st->body, cfg.op == OP_WATCH ? OP_WATCH : cfg.op, cfg.op == OP_WATCH ? now_ns() : 0);
  submit(c, st, path);
}

// rate-limited writer (watch case): tokens added by the main loop
static double writer_next;

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud) {
  (void)flags; (void)ud;
  stream_t *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!st) return 0;
  if (nl == 7 && memcmp(name, ":status", 7) == 0) st->http_status = atoi((const char *)value);
  else if (nl == 11 && memcmp(name, "grpc-status", 11) == 0) st->grpc_status = atoi((const char *)value);
  else if (nl == 12 && memcmp(name, "grpc-message", 12) == 0) {
    size_t n = vl < sizeof st->grpc_message - 1 ? vl : sizeof st->grpc_message - 1;
    memcpy(st->grpc_message, value, n); st->grpc_message[n] = 0;
  }
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud) {
  (void)flags; (void)ud;
  stream_t *st = nghttp2_session_get_stream_user_data(s, id);
  if (!st) return 0;
  st->got_data = 1;
  if (!st->watch) return 0;
  b_put(&st->in, data, len);
  size_t off = 0;
  while (st->in.n - off >= 5) {
    uint32_t ml = (uint32_t)st->in.p[off + 1] << 24 | st->in.p[off + 2] << 16 | st->in.p[off + 3] << 8 | st->in.p[off + 4];
    if (st->in.n - off - 5 < ml) break;
    const uint8_t *m = st->in.p + off + 5;
    if (st->watch_seen < cfg.watchers_per_stream) {
      // WatchResponse: created = field 3 (varint 1)
      int created = 0;
      for (size_t i = 0; i + 1 < ml; i++) if (m[i] == 0x18 && m[i + 1] == 1) { created = 1; break; }
      if (created) { st->watch_seen++; watch_created++; }
    }
    scan_watch_message(m, ml);
    off += 5 + ml;
  }
  memmove(st->in.p, st->in.p + off, st->in.n - off);
  st->in.n -= off;
  return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
  conn_t *c = ud;
  stream_t *st = nghttp2_session_get_stream_user_data(s, id);
  if (!st) return 0;
  inflight--;
  uint64_t t = now_ns();
  if (st->watch) {
    note_error("watch stream closed: %s (%ld)", st->grpc_message, st->grpc_status);
    return 0;
  }
  if (code != 0) note_error("stream reset: %s %ld", nghttp2_http2_strerror(code), code);
  else if (st->http_status != 200) note_error("http status %s%ld", "", st->http_status);
  else if (st->grpc_status != 0) note_error("grpc-status %ld: %s", st->grpc_message, st->grpc_status);
  else if (!st->got_data) note_error("no response message%s %ld", "", 0);
  else {
    ok_total++;
    if (cfg.op == OP_WATCH) writer_ok++;
    if (cfg.op != OP_WATCH && !stopping && now_s() >= t_measure) { ok_recorded++; record_latency(t - st->t0); }
  }
  if (cfg.op != OP_WATCH && cfg.op != OP_READY && more_to_issue()) issue(c, st);
  else { free(st->body.p); free(st->in.p); free(st); }
  return 0;
}

static void die_conn(conn_t *c, const char *why) {
  if (c->fd < 0) return;
  if (cfg.op != OP_READY) fprintf(stderr, "connection %d: %s\n", c->idx, why);
  note_error("connection lost: %s%ld", why, 0);
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  dead_conns++;
}

static void flush_conn(conn_t *c) {
  if (c->fd < 0) return;
  for (;;) {
    if (c->out_off == c->out.n) {
      c->out.n = c->out_off = 0;
      const uint8_t *data;
      ssize_t n = nghttp2_session_mem_send(c->s, &data);
      if (n < 0) { die_conn(c, nghttp2_strerror((int)n)); return; }
      if (n == 0) break;
      b_put(&c->out, data, n);
      // gather more frames before the write
      while ((n = nghttp2_session_mem_send(c->s, &data)) > 0) b_put(&c->out, data, n);
    }
    ssize_t w = write(c->fd, c->out.p + c->out_off, c->out.n - c->out_off);
    if (w < 0) {
      if (errno == EAGAIN) break;
      die_conn(c, strerror(errno));
      return;
    }
    c->out_off += w;
  }
  int want = c->out_off < c->out.n;
  if (want != c->want_write) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_write = want;
  }
}

static void read_conn(conn_t *c) {
  static uint8_t rb[1 << 18];
  for (;;) {
    ssize_t n = read(c->fd, rb, sizeof rb);
    if (n == 0) { die_conn(c, "closed by server"); return; }
    if (n < 0) {
      if (errno == EAGAIN) return;
      die_conn(c, strerror(errno));
      return;
    }
    ssize_t r = nghttp2_session_mem_recv(c->s, rb, n);
    if (r < 0) { die_conn(c, nghttp2_strerror((int)r)); return; }
  }
}

static int open_conn(conn_t *c, int idx, int quiet) {
  const char *ep = cfg.endpoints[idx % cfg.n_endpoints];
  char host[128];
  snprintf(host, sizeof host, "%s", ep);
  char *colon = strrchr(host, ':');
  if (!colon) { fprintf(stderr, "bad endpoint %s\n", ep); exit(2); }
  *colon = 0;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
  inet_pton(AF_INET, host, &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    if (!quiet) fprintf(stderr, "connect %s: %s\n", ep, strerror(errno));
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  memset(c, 0, sizeof *c);
  c->fd = fd;
  c->idx = idx;
  c->authority = cfg.endpoints[idx % cfg.n_endpoints];
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
  nghttp2_session_client_new(&c->s, cb, c);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}, {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 2);
  nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, 1 << 28);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  return 0;
}

static void loop_once(int timeout_ms) {
  struct epoll_event evs[64];
  int n = epoll_wait(epfd, evs, 64, timeout_ms);
  for (int i = 0; i < n; i++) {
    conn_t *c = evs[i].data.ptr;
    if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_conn(c);
  }
  for (int i = 0; i < n_conns; i++) flush_conn(&conns[i]);
}

static void write_latencies(void) {
  if (!cfg.lat_out) return;
  FILE *f = fopen(cfg.lat_out, "wb");
  if (!f || fwrite(lat, sizeof *lat, lat_n, f) != lat_n) { perror(cfg.lat_out); exit(1); }
  fclose(f);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}
static double pct(double p) {
  if (!lat_n) return 0;
  size_t i = (size_t)(p * (lat_n - 1) + 0.5);
  return lat[i] / 1000.0;
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
    if (ARG("--endpoints")) {
      char *copy = strdup(v), *save = NULL;
      for (char *t = strtok_r(copy, ",", &save); t && cfg.n_endpoints < 16; t = strtok_r(NULL, ",", &save)) {
        if (strncmp(t, "http://", 7) == 0) t += 7;
        snprintf(cfg.endpoints[cfg.n_endpoints++], 128, "%s", t);
      }
    } else if (ARG("--op")) {
      cfg.op = !strcmp(v, "put") ? OP_PUT : !strcmp(v, "range") ? OP_RANGE : !strcmp(v, "srange") ? OP_SRANGE
             : !strcmp(v, "txn") ? OP_TXN : !strcmp(v, "watch") ? OP_WATCH : !strcmp(v, "ready") ? OP_READY : -1;
      if ((int)cfg.op < 0) { fprintf(stderr, "unknown op %s\n", v); exit(2); }
    } else if (ARG("--clients")) cfg.clients = atoi(v);
    else if (ARG("--conns")) cfg.conns = atoi(v);
    else if (ARG("--duration")) cfg.duration = atof(v);
    else if (ARG("--warmup")) cfg.warmup = atof(v);
    else if (ARG("--timeout")) cfg.timeout = atof(v);
    else if (ARG("--rate")) cfg.rate = atof(v);
    else if (ARG("--requests")) cfg.requests = atol(v);
    else if (ARG("--keys")) cfg.keys = atol(v);
    else if (ARG("--key-offset")) cfg.key_offset = atol(v);
    else if (ARG("--prefix")) cfg.prefix = v;
    else if (ARG("--lat-out")) cfg.lat_out = v;
    else if (ARG("--value-size")) cfg.value_size = atoi(v);
    else if (ARG("--watchers")) cfg.watchers = atoi(v);
    else if (ARG("--watchers-per-stream")) cfg.watchers_per_stream = atoi(v);
    else if (strcmp(a, "--seq") == 0) cfg.seq = 1;
    else { fprintf(stderr, "unknown or incomplete argument %s\n", a); exit(2); }
#undef ARG
  }
  if (!cfg.n_endpoints) { fprintf(stderr, "--endpoints is required\n"); exit(2); }
  if (cfg.value_size > 65000) cfg.value_size = 65000;
  if (cfg.keys < 1) cfg.keys = 1;
  if (!cfg.conns) cfg.conns = cfg.clients < 8 ? cfg.clients : 8;
  if (cfg.conns < 1) cfg.conns = 1;
}

// ready: time until a linearizable Range succeeds (connect retried every 2 ms)
static int run_ready(void) {
  double t0 = now_s();
  conns = calloc(1, sizeof *conns);
  n_conns = 1;
  long attempts = 0;
  while (now_s() - t0 < cfg.timeout) {
    attempts++;
    if (open_conn(&conns[0], 0, 1) < 0) { usleep(2000); continue; }
    long before_ok = ok_total;
    err_total = 0; first_error[0] = 0; dead_conns = 0; inflight = 0;
    stream_t *st = calloc(1, sizeof *st);
    st->unary = 1;
    submit(&conns[0], st, build_request(&st->body, OP_RANGE, 0));
    flush_conn(&conns[0]);
    double tq = now_s();
    while (inflight > 0 && !dead_conns && now_s() - tq < 2) loop_once(5);
    if (conns[0].fd >= 0) { close(conns[0].fd); epoll_ctl(epfd, EPOLL_CTL_DEL, conns[0].fd, NULL); }
    nghttp2_session_del(conns[0].s);
    if (ok_total > before_ok) {
      printf("{\"op\":\"ready\",\"ready_ms\":%.1f,\"attempts\":%ld}\n", (now_s() - t0) * 1000, attempts);
      return 0;
    }
    usleep(2000);
  }
  printf("{\"op\":\"ready\",\"ready_ms\":null,\"attempts\":%ld,\"first_error\":\"not ready in time\"}\n", attempts);
  return 1;
}

static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') { putchar('\\'); putchar(*s); }
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  epfd = epoll_create1(0);
  rng ^= (uint64_t)getpid() << 17 ^ now_ns();
  if (cfg.op == OP_READY) return run_ready();

  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  n_conns = cfg.conns;
  conns = calloc(n_conns, sizeof *conns);
  for (int i = 0; i < n_conns; i++)
    if (open_conn(&conns[i], i, 0) < 0) return 1;

  t_start = now_s();
  if (cfg.op == OP_WATCH) {
    // watchers: streams of watchers_per_stream creates each, spread over the connections
    int per = cfg.watchers_per_stream < 1 ? 1 : cfg.watchers_per_stream;
    int streams = (cfg.watchers + per - 1) / per;
    char key[256];
    int kn = sprintf(key, "%swatched", cfg.prefix);
    for (int i = 0; i < streams; i++) {
      stream_t *st = calloc(1, sizeof *st);
      st->watch = 1;
      int here = i == streams - 1 ? cfg.watchers - per * i : per;
      for (int w = 0; w < here; w++) {
        buf_t cr = {0}, req = {0};
        b_bytes(&cr, 1, key, kn);
        b_bytes(&req, 1, cr.p, cr.n);
        b_grpc_frame(&st->body, &req);
        free(cr.p); free(req.p);
      }
      submit(&conns[i % n_conns], st, "/etcdserverpb.Watch/Watch");
    }
    double deadline = now_s() + cfg.timeout;
    while (watch_created < cfg.watchers && now_s() < deadline && !dead_conns) loop_once(10);
    if (watch_created < cfg.watchers) {
      printf("{\"op\":\"watch\",\"first_error\":\"only %ld of %d watchers created\"}\n", watch_created, cfg.watchers);
      return 1;
    }
    t_start = now_s();
    t_measure = t_start + cfg.warmup;
    t_stop_issue = t_measure + cfg.duration;
    writer_next = t_start;
    long writer_inflight_base = inflight;  // the watch streams
    watch_events = 0;
    long events_at_measure = -1, writes_at_measure = 0;
    while (now_s() < t_stop_issue && !dead_conns) {
      double t = now_s();
      if (events_at_measure < 0 && t >= t_measure) { events_at_measure = watch_events; writes_at_measure = writer_ok; }
      // one writer: at most one put in flight, paced at --rate (0: back to back)
      if (inflight == writer_inflight_base && t >= writer_next) {
        issue(&conns[0], NULL);
        writer_next = cfg.rate > 0 ? writer_next + 1 / cfg.rate : t;
        if (writer_next < t - 1) writer_next = t;
      }
      flush_conn(&conns[0]);
      double wait = writer_next - now_s();
      loop_once(inflight > writer_inflight_base ? 1 : (wait > 0 ? (int)(wait * 1000) : 0));
    }
    if (events_at_measure < 0) events_at_measure = 0;
    // drain: expect every write's events
    stopping = 1;
    double drain_deadline = now_s() + 5;
    long expected_total = -1;
    while (now_s() < drain_deadline && !dead_conns) {
      if (inflight == writer_inflight_base) {
        if (expected_total < 0) expected_total = writer_ok * (long)cfg.watchers;
        if (watch_events >= expected_total) break;
      }
      loop_once(10);
    }
    t_end = now_s();
    getrusage(RUSAGE_SELF, &ru1);
    qsort(lat, lat_n, sizeof *lat, cmp_u32);
    write_latencies();
    double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double measured = t_stop_issue - t_measure;
    long measured_events = watch_events - events_at_measure;
    printf("{\"op\":\"watch\",\"watchers\":%d,\"writes\":%ld,\"events\":%ld,\"expected_events\":%ld,"
           "\"events_per_s\":%.1f,\"writes_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
           "\"errors\":%ld,\"gen_cpu_s\":%.3f,\"gen_cpu_pct\":%.1f,\"seconds\":%.3f",
           cfg.watchers, writer_ok, watch_events, writer_ok * (long)cfg.watchers, measured_events / measured,
           (writer_ok - writes_at_measure) / measured, pct(0.5), pct(0.99), lat_n ? lat[lat_n - 1] / 1000.0 : 0,
           err_total, cpu, 100 * cpu / (t_end - t_start), measured);
    if (first_error[0]) { printf(",\"first_error\":"); json_str(first_error); }
    printf("}\n");
    return 0;
  }

  t_measure = t_start + cfg.warmup;
  for (int i = 0; i < cfg.clients && more_to_issue(); i++) issue(&conns[i % n_conns], NULL);
  for (int i = 0; i < n_conns; i++) flush_conn(&conns[i]);
  double hard_deadline = cfg.duration > 0 ? t_measure + cfg.duration + cfg.timeout : t_start + cfg.timeout + 1e9;
  while (inflight > 0 && dead_conns < n_conns) {
    double t = now_s();
    if (cfg.duration > 0 && !stopping && t >= t_measure + cfg.duration) { stopping = 1; t_stop_issue = t; }
    if (t > hard_deadline) { note_error("%s timed out with %ld requests in flight", "", inflight); break; }
    loop_once(cfg.duration > 0 ? 20 : 100);
  }
  t_end = now_s();
  if (!stopping) t_stop_issue = t_end;
  getrusage(RUSAGE_SELF, &ru1);
  qsort(lat, lat_n, sizeof *lat, cmp_u32);
  write_latencies();
  double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
               (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  // throughput over the measured window: completions recorded / (stop of issue - start of measure)
  double window = t_stop_issue - t_measure;
  if (window <= 0) window = t_end - t_start;
  static const char *names[] = {"put", "range", "srange", "txn", "watch", "ready"};
  printf("{\"op\":\"%s\",\"clients\":%d,\"conns\":%d,\"ok\":%ld,\"recorded\":%ld,\"errors\":%ld,\"rps\":%.1f,"
         "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"seconds\":%.3f,\"gen_cpu_s\":%.3f,"
         "\"gen_cpu_pct\":%.1f,\"gen_us_per_req\":%.2f",
         names[cfg.op], cfg.clients, n_conns, ok_total, ok_recorded, err_total, ok_recorded / window, pct(0.5), pct(0.9),
         pct(0.99), lat_n ? lat[lat_n - 1] / 1000.0 : 0, window, cpu, 100 * cpu / (t_end - t_start),
         ok_total ? cpu * 1e6 / ok_total : 0);
  if (first_error[0]) { printf(",\"first_error\":"); json_str(first_error); }
  printf("}\n");
  return err_total ? 3 : 0;
}
