/*
 * counter — a tiny program for quick tests.
 *
 *   counter [N [SLEEPMS]]        defaults: 10 100
 *
 * Prints "tick i" for i = 0..N-1, sleeping SLEEPMS ms (usleep) between
 * ticks.  Every tick rewrites a 1 MiB heap buffer (so each tick dirties 256
 * pages) and adds the buffer's contents to a running sum; at the end it
 * prints "sum S".  Output depends only on N (not on SLEEPMS).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define WORDS (1024 * 1024 / sizeof(uint32_t))

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long n = argc > 1 ? atol(argv[1]) : 10;
  long sleepms = argc > 2 ? atol(argv[2]) : 100;
  uint32_t *buf = calloc(WORDS, sizeof(uint32_t));
  if (buf == NULL) {
    fprintf(stderr, "counter: out of memory\n");
    return 1;
  }
  uint64_t sum = 0;
  for (long i = 0; i < n; i++) {
    if (i > 0 && sleepms > 0) usleep((useconds_t)(sleepms * 1000));
    for (uint32_t j = 0; j < WORDS; j++) {
      buf[j] = buf[j] * 3u + (uint32_t)i ^ j;
      sum += buf[j];
    }
    printf("tick %ld\n", i);
  }
  printf("sum %llu\n", (unsigned long long)sum);
  free(buf);
  return 0;
}
