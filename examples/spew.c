/*
 * spew — writes a known byte stream to stdout, fast, for testing pipes.
 *
 *   spew [MIB [CHUNK]]        defaults: 16 65536
 *
 * Writes MIB MiB to stdout in write() calls of CHUNK bytes: byte i of the
 * stream is (i * 7 + i / 4096) & 0xff, so a reader can check every byte and
 * its place. Exits 0 when all was written, 2 when a write fails (saying why
 * on stderr).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long mib = argc > 1 ? atol(argv[1]) : 16;
  long chunk = argc > 2 ? atol(argv[2]) : 65536;
  if (mib < 0 || chunk <= 0) {
    fprintf(stderr, "usage: spew [MIB [CHUNK]]\n");
    return 1;
  }
  unsigned char *buf = malloc((size_t)chunk);
  if (buf == NULL) {
    fprintf(stderr, "spew: out of memory\n");
    return 1;
  }
  unsigned long long total = (unsigned long long)mib << 20, at = 0;
  while (at < total) {
    size_t n = (size_t)(total - at < (unsigned long long)chunk ? total - at : (unsigned long long)chunk);
    for (size_t j = 0; j < n; j++) {
      unsigned long long i = at + j;
      buf[j] = (unsigned char)((i * 7 + i / 4096) & 0xff);
    }
    size_t off = 0;
    while (off < n) {
      ssize_t w = write(1, buf + off, n - off);
      if (w < 0) {
        fprintf(stderr, "spew: write failed after %llu bytes: %s\n", at + off, strerror(errno));
        return 2;
      }
      off += (size_t)w;
    }
    at += n;
  }
  return 0;
}
