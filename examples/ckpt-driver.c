/*
 * ckpt-driver — the user-space checkpoint driver of the thesis, Figure 6.3.
 *
 *   ckpt-driver OUTFILE
 *
 * Reads the VM's own checkpoint from /dev/checkpoint in 64 KiB chunks and
 * writes it to OUTFILE (created/truncated).  read() == 0 means the stream is
 * complete and this is still the original VM: it prints
 * "checkpoint written: N bytes" and exits 0.  read() < 0 means this is the
 * copy resumed from the checkpoint: "we have arrived", exit 0.  Failing to
 * open either file or to write OUTFILE prints the error and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 2) {
    fprintf(stderr, "usage: ckpt-driver OUTFILE\n");
    return 2;
  }
  int in = open("/dev/checkpoint", O_RDONLY);
  if (in < 0) {
    perror("ckpt-driver: open /dev/checkpoint");
    return 1;
  }
  int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (out < 0) {
    perror("ckpt-driver: open output");
    return 1;
  }
  static char buf[CHUNK];
  unsigned long long total = 0;
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0) {
      /* The resumed copy: the read that was in progress at the freeze point
       * returns an error on the destination. */
      printf("we have arrived\n");
      return 0;
    }
    if (r == 0) break;
    for (ssize_t off = 0; off < r;) {
      ssize_t w = write(out, buf + off, (size_t)(r - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        perror("ckpt-driver: write");
        return 1;
      }
      off += w;
    }
    total += (unsigned long long)r;
  }
  if (close(out) != 0) {
    perror("ckpt-driver: close output");
    return 1;
  }
  close(in);
  printf("checkpoint written: %llu bytes\n", total);
  return 0;
}
