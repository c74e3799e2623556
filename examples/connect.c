/*
 * connect — an outbound TCP client.
 *
 *   connect HOST:PORT MSG
 *
 * Opens the path /net/tcp/HOST:PORT with open(O_RDWR); the roam guest
 * kernel turns that into a TCP connection.  Writes MSG and a newline, reads
 * one line back and prints "got: LINE".  Exits 1 on any error (including the
 * peer closing before sending a whole line).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 3) {
    fprintf(stderr, "usage: connect HOST:PORT MSG\n");
    return 2;
  }
  char path[512];
  snprintf(path, sizeof path, "/net/tcp/%s", argv[1]);
  int fd = open(path, O_RDWR);
  if (fd < 0) {
    fprintf(stderr, "connect: open %s: %s\n", path, strerror(errno));
    return 1;
  }
  size_t mlen = strlen(argv[2]);
  char out[4096];
  if (mlen > sizeof out - 1) mlen = sizeof out - 1;
  memcpy(out, argv[2], mlen);
  out[mlen++] = '\n';
  for (size_t off = 0; off < mlen;) {
    ssize_t w = write(fd, out + off, mlen - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "connect: write: %s\n", strerror(errno));
      return 1;
    }
    off += (size_t)w;
  }
  char line[4096];
  size_t have = 0;
  for (;;) {
    if (have == sizeof line - 1) break; /* over-long: print what we have */
    ssize_t r = read(fd, line + have, 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "connect: read: %s\n", strerror(errno));
      return 1;
    }
    if (r == 0) {
      fprintf(stderr, "connect: connection closed before a whole line arrived\n");
      return 1;
    }
    if (line[have] == '\n') break;
    have++;
  }
  if (have > 0 && line[have - 1] == '\r') have--;
  line[have] = '\0';
  printf("got: %s\n", line);
  close(fd);
  return 0;
}
