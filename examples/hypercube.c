/*
 * hypercube — forks its own VM into N = 2^k copies in k rounds (thesis
 * Figure 8.11).
 *
 *   hypercube ADDR1 ... ADDR(N-1)       each ADDR is HOST:PORT, N-1 = 2^k-1, k >= 1
 *
 * Every ADDR is an empty VM (a "cstrap") waiting to receive a VM.  The
 * program first fills a 1 MiB array with a deterministic pattern, then runs
 * k rounds.  In round r (0-based) every copy whose id is below 2^r forks the
 * whole VM to ADDR[id + 2^r] (1-based as on the command line); the child
 * that arrives there continues with id + 2^r, the parent keeps its id.  So
 * the number of copies doubles every round, and after k rounds there are N
 * copies with ids 0..N-1, each on its own host.
 *
 * A fork from inside the VM: open("/dev/checkpoint", O_RDWR), write
 * "fork HOST:PORT\n", then read(), which blocks until the fork is done:
 *   0                     this is the parent (the original VM, which goes on);
 *   -1, errno ECANCELED   this is the child, resumed at the new host;
 *   -1, another errno     the fork failed: "fork to ADDR failed: <strerror>"
 *                         on stderr, exit 1.
 * The descriptor is closed after every fork (in both copies).
 *
 * Each fork is logged to stderr as "round R: copy ID forking to ADDR".
 * After the last round every copy prints "copy ID of N: checksum XXXXXXXX"
 * (the hash of the 1 MiB array: the same in every copy, which shows that the
 * memory came along) and exits 0.  Wrong usage (no address, or a count that
 * is not 2^k-1) prints the usage to stderr and exits 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_WORDS (1024 * 1024 / sizeof(uint32_t))

static uint32_t array[ARRAY_WORDS];

static uint32_t checksum(void) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < ARRAY_WORDS; i++) h = (h ^ array[i]) * 16777619u;
  return h;
}

_Noreturn static void fail(const char *addr, const char *why) {
  fprintf(stderr, "fork to %s failed: %s\n", addr, why);
  exit(1);
}

/* Forks the VM to addr; returns 0 in the parent, 1 in the child. */
static int fork_to(const char *addr) {
  int fd = open("/dev/checkpoint", O_RDWR);
  if (fd < 0) fail(addr, strerror(errno));
  char cmd[600];
  int n = snprintf(cmd, sizeof cmd, "fork %s\n", addr);
  if (n < 0 || (size_t)n >= sizeof cmd) fail(addr, "address too long");
  for (int off = 0; off < n;) {
    ssize_t w = write(fd, cmd + off, (size_t)(n - off));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(addr, strerror(errno));
    }
    off += (int)w;
  }
  char buf[64];
  ssize_t r;
  do r = read(fd, buf, sizeof buf);
  while (r < 0 && errno == EINTR);
  int child;
  if (r == 0) {
    child = 0;
  } else if (r < 0 && errno == ECANCELED) {
    child = 1;
  } else if (r < 0) {
    fail(addr, strerror(errno));
  } else {
    fail(addr, "unexpected data from /dev/checkpoint");
  }
  close(fd);
  return child;
}

_Noreturn static void usage(void) {
  fprintf(stderr,
          "usage: hypercube ADDR1 ... ADDR(N-1)\n"
          "  forks this VM into N = 2^k copies (k >= 1); each ADDR is the HOST:PORT\n"
          "  of an empty VM waiting to receive one, and there must be 2^k-1 of them\n");
  exit(2);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  unsigned long naddrs = (unsigned long)(argc - 1);
  unsigned long n = naddrs + 1;
  if (naddrs == 0 || (n & (n - 1)) != 0) usage();
  unsigned k = 0;
  while ((1ul << k) < n) k++;
  char **addrs = argv + 1;

  uint32_t x = 0x12345678u;
  for (size_t i = 0; i < ARRAY_WORDS; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    array[i] = x + (uint32_t)i;
  }

  unsigned long id = 0;
  for (unsigned r = 0; r < k; r++) {
    unsigned long step = 1ul << r;
    if (id >= step) continue;
    const char *target = addrs[id + step - 1];
    fprintf(stderr, "round %u: copy %lu forking to %s\n", r, id, target);
    if (fork_to(target)) id += step;
  }
  printf("copy %lu of %lu: checksum %08x\n", id, n, checksum());
  return 0;
}
