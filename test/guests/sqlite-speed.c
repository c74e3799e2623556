/*
 * sqlite-speed — a speedtest-like SQLite workload, linked with the SQLite
 * amalgamation that better-sqlite3 ships (scripts/build-guests.sh builds it;
 * neither SQLite's source nor the built .wasm is committed).
 *
 *   sqlite-speed [DB [SIZE [PAUSE]]]   defaults: /speed.db 10 0
 *
 * DB is a file (removed first, with its journal) or ":memory:". SIZE scales
 * every phase (SIZE * 1000 rows). Phases: bulk inserts, indexed range selects,
 * LIKE scans, indexed updates, a long transaction in 20 stages (inserts,
 * updates, deletes; each stage prints a line while the transaction is still
 * open), ORDER BY, deletes, then PRAGMA integrity_check. Each phase prints a
 * checksum of what its queries returned, so the output depends only on the
 * arguments: a run that is checkpointed, restored or migrated anywhere in
 * between must print exactly the same lines. PAUSE (ms) is slept after each
 * stage of the transaction, so that a test acting inside it does not race it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sqlite3.h"

static sqlite3 *db;
static uint32_t seed = 1;
static uint64_t sum; /* FNV-1a over every value the queries returned */

static uint32_t rnd(void) {
  seed = seed * 1103515245u + 12345u;
  return seed >> 1;
}

static void mix(const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) sum = (sum ^ s[i]) * 1099511628211ull;
}

static void fail(const char *what) {
  fprintf(stderr, "sqlite-speed: %s: %s\n", what, sqlite3_errmsg(db));
  exit(1);
}

static void exec(const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "sqlite-speed: %s: %s\n", sql, err ? err : "?");
    exit(1);
  }
}

static sqlite3_stmt *prep(const char *sql) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) fail(sql);
  return s;
}

/* Step a statement to its end, mixing every column of every row into sum. */
static int drain(sqlite3_stmt *s) {
  int rows = 0, rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    rows++;
    for (int i = 0; i < sqlite3_column_count(s); i++) {
      const unsigned char *t = sqlite3_column_text(s, i);
      if (t) mix(t, (size_t)sqlite3_column_bytes(s, i));
      mix("|", 1);
    }
  }
  if (rc != SQLITE_DONE) fail(sqlite3_sql(s));
  sqlite3_reset(s);
  return rows;
}

/* English words for n, as speed tests use for text columns of varying length. */
static void words(unsigned n, char *out, size_t cap) {
  static const char *ones[] = {"zero",    "one",     "two",       "three",    "four",
                               "five",    "six",     "seven",     "eight",    "nine",
                               "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                               "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static const char *tens[] = {"", "", "twenty", "thirty", "forty",
                               "fifty", "sixty", "seventy", "eighty", "ninety"};
  char buf[256] = "";
  size_t len = 0;
#define ADD(w) len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", len ? " " : "", (w))
  if (n >= 1000000) {
    char sub[128];
    words(n / 1000000, sub, sizeof sub);
    ADD(sub);
    ADD("million");
    n %= 1000000;
  }
  if (n >= 1000) {
    char sub[128];
    words(n / 1000, sub, sizeof sub);
    ADD(sub);
    ADD("thousand");
    n %= 1000;
  }
  if (n >= 100) {
    ADD(ones[n / 100]);
    ADD("hundred");
    n %= 100;
  }
  if (n >= 20) {
    ADD(tens[n / 10]);
    n %= 10;
    if (n) ADD(ones[n]);
  } else if (n || !len) {
    ADD(ones[n]);
  }
#undef ADD
  snprintf(out, cap, "%s", buf);
}

static void report(const char *phase) {
  printf("%-28s checksum %016llx\n", phase, (unsigned long long)sum);
}

static void inserts(int n) {
  char text[256];
  exec("BEGIN");
  sqlite3_stmt *a = prep("INSERT INTO t1 VALUES(?1, ?2, ?3)");
  sqlite3_stmt *b = prep("INSERT INTO t2 VALUES(NULL, ?1, ?2)");
  for (int i = 1; i <= n; i++) {
    unsigned x = rnd() % (unsigned)(n * 4);
    words(x, text, sizeof text);
    sqlite3_bind_int(a, 1, i);
    sqlite3_bind_int(a, 2, (int)x);
    sqlite3_bind_text(a, 3, text, -1, SQLITE_STATIC);
    if (sqlite3_step(a) != SQLITE_DONE) fail("insert t1");
    sqlite3_reset(a);
    sqlite3_bind_int(b, 1, (int)x);
    sqlite3_bind_text(b, 2, text, -1, SQLITE_STATIC);
    if (sqlite3_step(b) != SQLITE_DONE) fail("insert t2");
    sqlite3_reset(b);
  }
  sqlite3_finalize(a);
  sqlite3_finalize(b);
  exec("COMMIT");
  mix(&n, sizeof n);
}

static void range_selects(int n, int queries) {
  sqlite3_stmt *s = prep("SELECT count(*), sum(a), min(c) FROM t2 WHERE b BETWEEN ?1 AND ?2");
  for (int i = 0; i < queries; i++) {
    int lo = (int)(rnd() % (unsigned)(n * 4));
    sqlite3_bind_int(s, 1, lo);
    sqlite3_bind_int(s, 2, lo + 100);
    drain(s);
  }
  sqlite3_finalize(s);
}

static void like_scans(int queries) {
  static const char *pats[] = {"%one%", "%two hundred%", "%thousand six%", "%eight%",
                               "%ninety nine%", "%seven%", "fifty%", "%hundred t%"};
  sqlite3_stmt *s = prep("SELECT count(*), sum(length(c)) FROM t1 WHERE c LIKE ?1");
  for (int i = 0; i < queries; i++) {
    sqlite3_bind_text(s, 1, pats[i % 8], -1, SQLITE_STATIC);
    drain(s);
  }
  sqlite3_finalize(s);
}

static void updates(int n, int count) {
  exec("BEGIN");
  sqlite3_stmt *s = prep("UPDATE t2 SET b = b * 2 + 1 WHERE b BETWEEN ?1 AND ?2");
  for (int i = 0; i < count; i++) {
    int lo = (int)(rnd() % (unsigned)(n * 4));
    sqlite3_bind_int(s, 1, lo);
    sqlite3_bind_int(s, 2, lo + 20);
    if (sqlite3_step(s) != SQLITE_DONE) fail("update");
    sqlite3_reset(s);
    int c = sqlite3_changes(db);
    mix(&c, sizeof c);
  }
  sqlite3_finalize(s);
  exec("COMMIT");
  sqlite3_stmt *q = prep("SELECT count(*), sum(b) FROM t2");
  drain(q);
  sqlite3_finalize(q);
}

/* One transaction held open across 20 stages, each printing a line: a
 * checkpoint taken after "txn stage" and before "txn commit" freezes SQLite
 * with a transaction (and, for a file database, its rollback journal) open. */
static void long_transaction(int n, int pause_ms) {
  char text[256];
  exec("BEGIN");
  exec("CREATE TABLE t3(a INTEGER PRIMARY KEY, b INTEGER, c TEXT)");
  exec("CREATE INDEX t3b ON t3(b)");
  printf("txn begin\n");
  sqlite3_stmt *ins = prep("INSERT INTO t3 VALUES(NULL, ?1, ?2)");
  sqlite3_stmt *upd = prep("UPDATE t1 SET b = b + ?1, c = c || ' x' WHERE a % 20 = ?2");
  sqlite3_stmt *del = prep("DELETE FROM t3 WHERE b % 7 = ?1 AND a % 3 = 0");
  sqlite3_stmt *agg = prep("SELECT count(*), sum(b), max(c) FROM t3");
  for (int stage = 0; stage < 20; stage++) {
    for (int i = 0; i < n / 4; i++) {
      unsigned x = rnd() % 1000000u;
      words(x, text, sizeof text);
      sqlite3_bind_int(ins, 1, (int)x);
      sqlite3_bind_text(ins, 2, text, -1, SQLITE_STATIC);
      if (sqlite3_step(ins) != SQLITE_DONE) fail("txn insert");
      sqlite3_reset(ins);
    }
    sqlite3_bind_int(upd, 1, stage);
    sqlite3_bind_int(upd, 2, stage);
    if (sqlite3_step(upd) != SQLITE_DONE) fail("txn update");
    sqlite3_reset(upd);
    sqlite3_bind_int(del, 1, stage % 7);
    if (sqlite3_step(del) != SQLITE_DONE) fail("txn delete");
    sqlite3_reset(del);
    drain(agg);
    printf("txn stage %2d/20                checksum %016llx\n", stage + 1,
           (unsigned long long)sum);
    if (pause_ms > 0) usleep((useconds_t)pause_ms * 1000u);
  }
  sqlite3_finalize(ins);
  sqlite3_finalize(upd);
  sqlite3_finalize(del);
  sqlite3_finalize(agg);
  exec("COMMIT");
  printf("txn commit\n");
}

static void ordered(void) {
  sqlite3_stmt *s = prep("SELECT c, a FROM t1 ORDER BY c LIMIT 500 OFFSET 100");
  drain(s);
  sqlite3_finalize(s);
  s = prep("SELECT b, count(*) FROM t3 GROUP BY b % 97 ORDER BY 2 DESC, 1 LIMIT 50");
  drain(s);
  sqlite3_finalize(s);
}

static void deletes(int n) {
  exec("BEGIN");
  sqlite3_stmt *s = prep("DELETE FROM t2 WHERE a BETWEEN ?1 AND ?2");
  for (int i = 0; i < 50; i++) {
    int lo = (int)(rnd() % (unsigned)n);
    sqlite3_bind_int(s, 1, lo);
    sqlite3_bind_int(s, 2, lo + n / 200);
    if (sqlite3_step(s) != SQLITE_DONE) fail("delete");
    sqlite3_reset(s);
  }
  sqlite3_finalize(s);
  exec("COMMIT");
  sqlite3_stmt *q = prep("SELECT count(*), sum(b), total(length(c)) FROM t2");
  drain(q);
  sqlite3_finalize(q);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *path = argc > 1 ? argv[1] : "/speed.db";
  int size = argc > 2 ? atoi(argv[2]) : 10;
  int pause_ms = argc > 3 ? atoi(argv[3]) : 0;
  if (size < 1 || size > 1000 || pause_ms < 0 || pause_ms > 10000) {
    fprintf(stderr, "usage: sqlite-speed [DB [SIZE 1..1000 [PAUSE 0..10000 ms]]]\n");
    return 2;
  }
  int n = size * 1000;
  if (strcmp(path, ":memory:") != 0) {
    char journal[1024];
    snprintf(journal, sizeof journal, "%s-journal", path);
    unlink(path);
    unlink(journal);
  }
  if (sqlite3_open(path, &db) != SQLITE_OK) fail(path);
  printf("sqlite %s, %s, size %d\n", sqlite3_libversion(), path, size);
  exec("PRAGMA cache_size = 500");
  exec("CREATE TABLE t1(a INTEGER PRIMARY KEY, b INTEGER, c TEXT)");
  exec("CREATE TABLE t2(a INTEGER PRIMARY KEY, b INTEGER, c TEXT)");
  exec("CREATE INDEX t2b ON t2(b)");
  inserts(n);
  report("insert");
  range_selects(n, n / 2);
  report("indexed range selects");
  like_scans(size * 2);
  report("LIKE scans");
  updates(n, n / 4);
  report("indexed updates");
  long_transaction(n, pause_ms);
  report("long transaction");
  ordered();
  report("ORDER BY / GROUP BY");
  deletes(n);
  report("deletes");
  sqlite3_stmt *s = prep("PRAGMA integrity_check");
  while (sqlite3_step(s) == SQLITE_ROW) printf("integrity_check: %s\n", sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  if (sqlite3_close(db) != SQLITE_OK) fail("close");
  printf("done\n");
  return 0;
}
