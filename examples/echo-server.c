/*
 * echo-server — a line-echo TCP server.
 *
 *   echo-server
 *
 * The listening socket is pre-opened by the runtime (like wasmtime
 * --tcplisten): the server finds it by scanning descriptors 3..64 for a
 * socket (fstat S_ISSOCK, or the WASI file type if fstat fails) and exits
 * with status 1 if there is none.  It prints "listening", then serves one
 * client at a time: every line L (terminated by \n; a trailing \r is
 * dropped) is answered with "echo N: L\n", where N counts the lines this
 * server has echoed so far, over all clients, starting at 1.  The counter is
 * ordinary global state, so a server that was checkpointed and restored
 * keeps counting.  When a client disconnects the server accepts the next
 * one.  The line "quit" is answered with "bye\n"; the server then closes the
 * connection, prints "served N lines" and exits 0.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static unsigned long served = 0; /* lines echoed so far, over all clients */

static int is_socket(int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0) return S_ISSOCK(st.st_mode);
  __wasi_fdstat_t fs;
  if (__wasi_fd_fdstat_get((__wasi_fd_t)fd, &fs) != 0) return 0;
  return fs.fs_filetype == __WASI_FILETYPE_SOCKET_STREAM;
}

static void wait_readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
}

/* Writes all of buf; returns 0, or -1 if the client has gone away. */
static int send_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, -1);
        continue;
      }
      return -1;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Answers one line; returns 1 if it was "quit", -1 on a write error, else 0. */
static int serve_line(int fd, char *line, size_t len) {
  if (len > 0 && line[len - 1] == '\r') len--;
  line[len] = '\0';
  if (strcmp(line, "quit") == 0) {
    send_all(fd, "bye\n", 4);
    return 1;
  }
  served++;
  char head[32];
  int hl = snprintf(head, sizeof head, "echo %lu: ", served);
  if (send_all(fd, head, (size_t)hl) < 0 || send_all(fd, line, len) < 0 ||
      send_all(fd, "\n", 1) < 0)
    return -1;
  return 0;
}

/* Serves one client until it disconnects (0) or says quit (1). */
static int serve_client(int fd) {
  static char buf[4097];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        wait_readable(fd);
        continue;
      }
      return 0; /* connection reset: next client */
    }
    if (r == 0) { /* EOF: serve an unterminated last line, then next client */
      if (have > 0 && serve_line(fd, buf, have) == 1) return 1;
      return 0;
    }
    have += (size_t)r;
    size_t start = 0;
    for (size_t i = 0; i < have; i++) {
      if (buf[i] != '\n') continue;
      int q = serve_line(fd, buf + start, i - start);
      if (q != 0) return q > 0 ? 1 : 0;
      start = i + 1;
    }
    memmove(buf, buf + start, have - start);
    have -= start;
    if (have == sizeof buf - 1) { /* over-long line: serve it in pieces */
      int q = serve_line(fd, buf, have);
      if (q != 0) return q > 0 ? 1 : 0;
      have = 0;
    }
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int lfd = -1;
  for (int fd = 3; fd <= 64; fd++)
    if (is_socket(fd)) {
      lfd = fd;
      break;
    }
  if (lfd < 0) {
    fprintf(stderr, "echo-server: no pre-opened listening socket among fds 3..64\n");
    return 1;
  }
  printf("listening\n");
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) {
        if (errno == EAGAIN) wait_readable(lfd);
        continue;
      }
      perror("echo-server: accept");
      return 1;
    }
    int quit = serve_client(c);
    close(c);
    if (quit) break;
  }
  printf("served %lu lines\n", served);
  return 0;
}
