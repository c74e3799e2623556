/*
 * game-server — a game-server-like TCP server: many clients, a shared world
 * in memory that every message and a 10 ms "physics" tick keep dirtying.
 *
 *   game-server [--world-mib N]        (default 4, at most 1024)
 *
 * The listening socket is pre-opened by the runtime (as for echo-server:
 * the lowest descriptor in 3..64 that is a socket).  The server prints
 * "listening" and then serves up to 64 clients at once with poll().
 *
 * Protocol, one line per message (a trailing \r is dropped, empty lines are
 * ignored):
 *   "ID SEQ"  ID in 0..1023, SEQ an unsigned 32-bit decimal.  Answered with
 *             "SEQ CHECKSUM" (CHECKSUM = 8 lowercase hex digits), where
 *             CHECKSUM is a running value the server keeps per ID:
 *                 h[ID] starts at 2166136261 (0x811c9dc5);
 *                 per message: h[ID] = ((h[ID] ^ SEQ) * 16777619) ^ ID
 *             (32-bit arithmetic).  It depends only on the sequence of
 *             messages sent with that ID (over any number of connections),
 *             so a client can compute the expected value itself and detect
 *             lost or repeated server state.  A message that repeats the
 *             last SEQ of its ID (a client resending after its connection
 *             was cut) is answered again but not applied again: exactly
 *             once, whether or not the first answer got through.  Each message also updates 8
 *             cells of the world, one in each eighth of it (an LCG seeded
 *             from ID and SEQ), so it dirties 8 pages spread over the world.
 *   "quit"    answered with "bye"; the server prints "served N messages"
 *             (N = number of "ID SEQ" messages answered, over all clients)
 *             and exits 0.
 *   anything else (or a line longer than 1023 bytes, or ID > 1023) is
 *             answered with "error" and not counted.
 *
 * Every 10 ms (the poll timeout, CLOCK_MONOTONIC) a physics tick rewrites one
 * word in 1/64 of the world's 4 KiB pages (at least one page), so the whole
 * world is dirtied every 0.64 s even with no clients.  Ticks that were missed
 * by more than 50 ms (e.g. while the VM was frozen) are skipped, not
 * replayed.  The world's content thus depends on timing, but nothing printed
 * or sent does.  A client that disconnects, or whose read fails (e.g.
 * ECONNRESET), is dropped; the others are not affected.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

#define MAX_CONN 64
#define MAX_IDS 1024
#define LINE_MAX_LEN 1024
#define OUT_CAP 16384
#define TICK_NS 10000000LL
#define SKIP_NS 50000000LL
#define CELLS_PER_PAGE 1024 /* 4 KiB pages of uint32_t cells */

struct conn {
  int fd;
  size_t inlen;
  size_t outlen;
  char in[LINE_MAX_LEN];
  char out[OUT_CAP];
};

static struct conn conns[MAX_CONN];
static int nconn = 0;
static uint32_t sums[MAX_IDS];
static uint32_t last_seq[MAX_IDS]; /* per ID, valid where seen[ID] */
static unsigned char seen[MAX_IDS];
static unsigned long served = 0;

static uint32_t *world;
static size_t ncells, npages;
static uint64_t ticks = 0;

static int is_socket(int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0) return S_ISSOCK(st.st_mode);
  __wasi_fdstat_t fs;
  if (__wasi_fd_fdstat_get((__wasi_fd_t)fd, &fs) != 0) return 0;
  return fs.fs_filetype == __WASI_FILETYPE_SOCKET_STREAM;
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the world ---- */

static void apply_message(uint32_t id, uint32_t seq) {
  size_t region = ncells / 8;
  uint32_t x = id * 2654435761u ^ seq * 40503u ^ 0x9E3779B9u;
  for (size_t k = 0; k < 8; k++) {
    x = x * 1664525u + 1013904223u;
    size_t idx = k * region + (size_t)(x >> 8) % region;
    world[idx] = world[idx] * 31u + x;
  }
}

static void physics_tick(void) {
  size_t per_tick = npages / 64 ? npages / 64 : 1;
  size_t word = (size_t)(ticks * 7 % CELLS_PER_PAGE);
  for (size_t j = 0; j < per_tick; j++) {
    size_t page = (size_t)((ticks * per_tick + j) % npages);
    size_t idx = page * CELLS_PER_PAGE + word;
    size_t other = (idx + ncells / 2 + 1) % ncells;
    world[idx] = world[idx] * 1103515245u + 12345u + (world[other] >> 3);
  }
  ticks++;
}

/* ---- connections ---- */

/* Writes as much pending output as the socket takes; -1 if the client is gone. */
static int flush_out(struct conn *c) {
  size_t off = 0;
  while (off < c->outlen) {
    ssize_t w = write(c->fd, c->out + off, c->outlen - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return -1;
    }
    off += (size_t)w;
  }
  memmove(c->out, c->out + off, c->outlen - off);
  c->outlen -= off;
  return 0;
}

/* Queues a reply; -1 if the client does not read its replies (buffer full). */
static int reply(struct conn *c, const char *s, size_t n) {
  if (c->outlen + n > OUT_CAP) return -1;
  memcpy(c->out + c->outlen, s, n);
  c->outlen += n;
  return 0;
}

/* Waits (bounded) until the pending output of c is written. */
static void flush_blocking(struct conn *c) {
  for (int tries = 0; c->outlen > 0 && tries < 100; tries++) {
    if (flush_out(c) < 0) return;
    if (c->outlen == 0) return;
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    poll(&p, 1, 10);
  }
}

static void drop(int i) {
  close(conns[i].fd);
  nconn--;
  if (i != nconn) {
    /* Move the last connection into slot i (only the used part of it). */
    struct conn *d = &conns[i], *s = &conns[nconn];
    d->fd = s->fd;
    d->inlen = s->inlen;
    d->outlen = s->outlen;
    memcpy(d->in, s->in, s->inlen);
    memcpy(d->out, s->out, s->outlen);
  }
}

static int parse_u32(const char **p, uint32_t *out) {
  const char *s = *p;
  if (*s < '0' || *s > '9') return -1;
  uint64_t v = 0;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > 0xFFFFFFFFu) return -1;
    s++;
  }
  *out = (uint32_t)v;
  *p = s;
  return 0;
}

/* Handles one line; returns 1 for quit, -1 if the client must be dropped, else 0. */
static int handle_line(struct conn *c, char *line, size_t len) {
  if (len > 0 && line[len - 1] == '\r') len--;
  line[len] = '\0';
  if (len == 0) return 0;
  if (strcmp(line, "quit") == 0) {
    reply(c, "bye\n", 4);
    return 1;
  }
  const char *p = line;
  uint32_t id, seq;
  if (parse_u32(&p, &id) < 0 || *p++ != ' ' || parse_u32(&p, &seq) < 0 || *p != '\0' ||
      id >= MAX_IDS)
    return reply(c, "error\n", 6);
  /* A client that lost its connection resends its last message: it may or may
   * not have been applied (its answer can be lost with the connection), so a
   * repeat of the last SEQ is answered again, not applied again. */
  if (!seen[id] || seq != last_seq[id]) {
    apply_message(id, seq);
    sums[id] = ((sums[id] ^ seq) * 16777619u) ^ id;
    last_seq[id] = seq;
    seen[id] = 1;
  }
  uint32_t h = sums[id];
  served++;
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%u %08x\n", seq, h);
  return reply(c, buf, (size_t)n);
}

/* Handles every complete line in c's input; eof also handles an unterminated rest. */
static int handle_input(struct conn *c, int eof) {
  size_t start = 0;
  for (size_t i = 0; i < c->inlen; i++) {
    if (c->in[i] != '\n') continue;
    int r = handle_line(c, c->in + start, i - start);
    if (r != 0) return r;
    start = i + 1;
  }
  memmove(c->in, c->in + start, c->inlen - start);
  c->inlen -= start;
  if (c->inlen > 0 && (eof || c->inlen == sizeof c->in)) {
    int r;
    if (eof) {
      char tmp[LINE_MAX_LEN + 1];
      memcpy(tmp, c->in, c->inlen);
      r = handle_line(c, tmp, c->inlen);
    } else {
      r = reply(c, "error\n", 6); /* over-long line: drop it */
    }
    c->inlen = 0;
    if (r != 0) return r;
  }
  return 0;
}

/* Reads what client i has sent; returns 1 for quit, -1 to drop it, else 0. */
static int serve_readable(struct conn *c) {
  for (;;) {
    ssize_t r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return 0;
      return -1; /* ECONNRESET and friends */
    }
    if (r == 0) {
      int q = handle_input(c, 1);
      flush_out(c);
      return q > 0 ? 1 : -1;
    }
    c->inlen += (size_t)r;
    int q = handle_input(c, 0);
    if (q != 0) return q;
    if (c->inlen < sizeof c->in) return 0; /* read again after the next poll */
  }
}

static void usage(void) {
  fprintf(stderr, "usage: game-server [--world-mib N]   (1 <= N <= 1024, default 4)\n");
  exit(2);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long mib = 4;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--world-mib") == 0 && i + 1 < argc) {
      char *end;
      mib = strtol(argv[++i], &end, 10);
      if (*argv[i] == '\0' || *end != '\0' || mib < 1 || mib > 1024) usage();
    } else {
      usage();
    }
  }

  int lfd = -1;
  for (int fd = 3; fd <= 64; fd++)
    if (is_socket(fd)) {
      lfd = fd;
      break;
    }
  if (lfd < 0) {
    fprintf(stderr, "game-server: no pre-opened listening socket among fds 3..64\n");
    return 1;
  }
  set_nonblock(lfd);

  ncells = (size_t)mib * (1024 * 1024 / sizeof(uint32_t));
  npages = ncells / CELLS_PER_PAGE;
  world = malloc(ncells * sizeof(uint32_t));
  if (world == NULL) {
    fprintf(stderr, "game-server: cannot allocate a %ld MiB world\n", mib);
    return 1;
  }
  for (size_t i = 0; i < ncells; i++) world[i] = (uint32_t)i * 0x9E3779B9u ^ 0x5bd1e995u;
  for (size_t i = 0; i < MAX_IDS; i++) sums[i] = 2166136261u;

  printf("listening\n");

  static struct pollfd pfds[MAX_CONN + 1];
  int64_t next_tick = now_ns() + TICK_NS;
  int quitter = -1;
  while (quitter < 0) {
    int64_t now = now_ns();
    if (now - next_tick > SKIP_NS || next_tick - now > 2 * TICK_NS) next_tick = now; /* frozen, or clock jumped */
    while (now >= next_tick) {
      physics_tick();
      next_tick += TICK_NS;
    }
    int timeout_ms = (int)((next_tick - now + 999999) / 1000000);

    int n = 0;
    for (int i = 0; i < nconn; i++) {
      pfds[n].fd = conns[i].fd;
      pfds[n].events = POLLIN | (conns[i].outlen ? POLLOUT : 0);
      pfds[n].revents = 0;
      n++;
    }
    int lidx = -1;
    if (nconn < MAX_CONN) {
      lidx = n;
      pfds[n].fd = lfd;
      pfds[n].events = POLLIN;
      pfds[n].revents = 0;
      n++;
    }
    int ready = poll(pfds, (nfds_t)n, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      perror("game-server: poll");
      return 1;
    }
    if (ready == 0) continue;

    /* Clients, last to first so that drop() (which moves the last one into the
     * freed slot) never moves a connection we have not looked at yet. */
    for (int i = nconn - 1; i >= 0; i--) {
      short re = pfds[i].revents;
      if (re == 0) continue;
      struct conn *c = &conns[i];
      int r = 0;
      if (re & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) r = serve_readable(c);
      if (r == 1) {
        flush_blocking(c);
        quitter = i;
        break;
      }
      if (r == 0 && flush_out(c) < 0) r = -1;
      if (r < 0) drop(i);
    }
    if (quitter >= 0) break;

    if (lidx >= 0 && pfds[lidx].revents) {
      while (nconn < MAX_CONN) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == ECONNABORTED) break;
          perror("game-server: accept");
          return 1;
        }
        set_nonblock(cfd);
        conns[nconn].fd = cfd;
        conns[nconn].inlen = 0;
        conns[nconn].outlen = 0;
        nconn++;
      }
    }
  }

  for (int i = 0; i < nconn; i++) {
    if (i != quitter) flush_blocking(&conns[i]);
    close(conns[i].fd);
  }
  printf("served %lu messages\n", served);
  return 0;
}
