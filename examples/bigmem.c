/*
 * bigmem — a long, CPU-bound computation over a large working set.
 *
 *   bigmem [MIB [ITERATIONS [SLEEPMS]]]      defaults: 64 20 0
 *
 * Allocates MIB MiB as one array of uint32 and runs ITERATIONS passes over it.
 * Each pass has
 *   - a sequential sweep that reads and writes every element with a cheap
 *     mixing function (the whole array is dirtied once per iteration), and
 *   - LCG-driven random writes, 7/8 of them into a hot region (the first
 *     1/16 of the array, at least 1 element) and 1/8 anywhere, so that a
 *     page tracker sees a hot part and a cold part.
 * After every iteration it prints "iter N checksum XXXXXXXX" (a hash over
 * every 16th element) and at the end "done checksum XXXXXXXX".  With
 * SLEEPMS > 0 it sleeps that long after every iteration (so a test can catch
 * it inside a blocking poll_oneoff).  The output depends only on the
 * arguments: no clocks, no randomness.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint32_t checksum(const uint32_t *a, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a over every 16th element */
  for (size_t i = 0; i < n; i += 16) {
    h ^= a[i];
    h *= 16777619u;
  }
  return h ^ (uint32_t)n;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static long arg(int argc, char **argv, int i, long def) {
  if (argc <= i) return def;
  char *end;
  long v = strtol(argv[i], &end, 10);
  if (*end != '\0' || v < 0) {
    fprintf(stderr, "bigmem: bad argument '%s' (usage: bigmem MIB ITERATIONS [SLEEPMS])\n", argv[i]);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long mib = arg(argc, argv, 1, 64);
  long iters = arg(argc, argv, 2, 20);
  long sleepms = arg(argc, argv, 3, 0);
  if (mib < 1) mib = 1;
  if (mib > 4000) {
    fprintf(stderr, "bigmem: %ld MiB does not fit in a 32-bit linear memory\n", mib);
    return 1;
  }

  size_t n = (size_t)mib * (1024 * 1024 / sizeof(uint32_t));
  uint32_t *a = malloc(n * sizeof(uint32_t));
  if (a == NULL) {
    fprintf(stderr, "bigmem: cannot allocate %ld MiB\n", mib);
    return 1;
  }
  for (size_t i = 0; i < n; i++) a[i] = (uint32_t)i * 0x9E3779B9u ^ 0x5bd1e995u;

  size_t hot = n / 16 ? n / 16 : 1;
  size_t randomWrites = n / 4;
  uint32_t lcg = 12345u;

  for (long it = 0; it < iters; it++) {
    /* Sequential sweep: every element read and written. */
    uint32_t prev = a[n - 1];
    for (size_t i = 0; i < n; i++) {
      uint32_t v = a[i] * 2654435761u + (uint32_t)i ^ (prev >> 7);
      v ^= v << 13;
      v ^= v >> 17;
      v ^= v << 5;
      a[i] = v;
      prev = v;
    }
    /* Random writes: 7/8 hot region, 1/8 anywhere. */
    for (size_t k = 0; k < randomWrites; k++) {
      lcg = lcg * 1664525u + 1013904223u;
      uint32_t r = lcg >> 8;
      size_t idx = (lcg & 7) ? (size_t)r % hot : (size_t)r * 131u % n;
      a[idx] += lcg ^ (uint32_t)it;
    }
    printf("iter %ld checksum %08x\n", it, checksum(a, n));
    if (sleepms > 0) sleep_ms(sleepms);
  }
  printf("done checksum %08x\n", checksum(a, n));
  free(a);
  return 0;
}
