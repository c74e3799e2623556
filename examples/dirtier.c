/*
 * dirtier — a guest that dirties memory faster than any link can copy it.
 *
 *   dirtier MIB PASSES
 *
 * Allocates MIB MiB (page-aligned, 4 KiB pages) and makes exactly PASSES
 * passes over it.  Pass P (0-based) walks the pages in order; for each page
 * it writes the 32-bit value P*2654435761 ^ page into the page's first word
 * and reads it back into a running hash, so every page of the array is
 * dirtied once per pass, evenly spread over the pass.  After each pass it
 * prints "pass P checksum XXXXXXXX", the hash of the first words of all
 * pages (h = 2166136261; per word w: h = (h ^ mix(w)) * 16777619, where
 * mix() is MIX_ROUNDS rounds of x = x*0x9E3779B1 + i; x ^= x >> 15).  At the
 * end it prints "done passes=PASSES pages=N".
 *
 * mix() is deliberately slow: it sets the pace of a pass (about 0.6 us per
 * page under roam, so "dirtier 64 200" runs a few seconds while still
 * dirtying >1 million pages per second).  The loop is bounded by work, not
 * by time: the output depends only on the arguments, so a run that was
 * migrated (or throttled) prints exactly what an undisturbed run prints.  A
 * live migration of this program can only converge if the runtime slows
 * the guest down.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PAGE 4096u
#define WORDS_PER_PAGE (PAGE / sizeof(uint32_t))

#ifndef MIX_ROUNDS
#define MIX_ROUNDS 256
#endif

/* Deliberately slow word hash: it sets the pace (time per page) of a pass. */
static uint32_t mix(uint32_t x) {
  for (uint32_t i = 0; i < MIX_ROUNDS; i++) {
    x = x * 0x9E3779B1u + i;
    x ^= x >> 15;
  }
  return x;
}

static long arg(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 0) return -1;
  return v;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long mib = argc == 3 ? arg(argv[1]) : -1;
  long passes = argc == 3 ? arg(argv[2]) : -1;
  if (mib < 1 || passes < 0) {
    fprintf(stderr, "usage: dirtier MIB PASSES   (MIB >= 1, PASSES >= 0)\n");
    return 2;
  }
  if (mib > 4000) {
    fprintf(stderr, "dirtier: %ld MiB does not fit in a 32-bit linear memory\n", mib);
    return 1;
  }
  size_t pages = (size_t)mib * (1024 * 1024 / PAGE);
  volatile uint32_t *a = aligned_alloc(PAGE, pages * PAGE);
  if (a == NULL) {
    fprintf(stderr, "dirtier: cannot allocate %ld MiB\n", mib);
    return 1;
  }
  for (long p = 0; p < passes; p++) {
    uint32_t base = (uint32_t)p * 2654435761u;
    uint32_t h = 2166136261u;
    for (size_t pg = 0; pg < pages; pg++) {
      a[pg * WORDS_PER_PAGE] = base ^ (uint32_t)pg;
      h = (h ^ mix(a[pg * WORDS_PER_PAGE])) * 16777619u;
    }
    printf("pass %ld checksum %08x\n", p, h);
  }
  printf("done passes=%ld pages=%zu\n", passes, pages);
  return 0;
}
