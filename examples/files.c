/*
 * files — a file-system-heavy program.
 *
 *   files [DIR [ROUNDS]]        defaults: /tmp/work 10
 *
 * Creates DIR (like mkdir -p) and empties it, then keeps two descriptors open
 * for the whole run (DIR/journal.log written sequentially, DIR/append.log in
 * O_APPEND mode), so that a migrated program must find its file offsets
 * intact.  Every round R creates DIR/rR/ and in it
 *   a.bin   written with fwrite (sizes vary, some > 64 KiB), then renamed to
 *           a2.bin
 *   b.txt   written with write(), reopened with O_APPEND and appended to
 *   c.dat   pwrite() at scattered offsets (leaving holes), lseek(SEEK_END),
 *           pread(), then ftruncate() to a smaller size
 *   link    a symlink to b.txt, checked with readlink()
 *   sub/x/y created and removed again (mkdir/rmdir)
 * reads every file back, lists the directory with readdir (names sorted),
 * stats the sizes, and prints
 *   round R entries=a2.bin,b.txt,c.dat,link bytes=N checksum XXXXXXXX
 * then removes the directory of round R-2 (unlink + rmdir) and sleeps 20 ms.
 * At the end it verifies both logs by reading them back and prints the
 * sorted listing of DIR and "files done XXXXXXXX".  Output depends only on
 * the arguments.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, const char *path) {
  fprintf(stderr, "files: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(1);
}

/* FNV-1a, chained. */
static uint32_t fnv(uint32_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 16777619u;
  }
  return h;
}
static uint32_t fnv_str(uint32_t h, const char *s) { return fnv(h, s, strlen(s) + 1); }
static uint32_t fnv_u64(uint32_t h, uint64_t v) { return fnv(h, &v, sizeof v); }

static void fill(unsigned char *buf, size_t n, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    buf[i] = (unsigned char)(x >> 16);
  }
}

static void write_all(int fd, const void *p, size_t n, const char *path) {
  const char *b = p;
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write", path);
    }
    b += w;
    n -= (size_t)w;
  }
}

static void mkdir_p(const char *path) {
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      if (mkdir(tmp, 0755) != 0 && errno != EEXIST) die("mkdir", tmp);
      *p = '/';
    }
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) die("mkdir", tmp);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted directory listing (without . and ..); returns count. */
static int list_dir(const char *path, char ***out) {
  DIR *d = opendir(path);
  if (!d) die("opendir", path);
  int n = 0, cap = 16;
  char **names = malloc(cap * sizeof *names);
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n == cap) names = realloc(names, (cap *= 2) * sizeof *names);
    names[n++] = strdup(e->d_name);
  }
  if (errno != 0) die("readdir", path);
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  *out = names;
  return n;
}

static void free_list(char **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return;
    die("lstat", path);
  }
  if (S_ISDIR(st.st_mode)) {
    char **names;
    int n = list_dir(path, &names);
    for (int i = 0; i < n; i++) {
      char child[1024];
      snprintf(child, sizeof child, "%s/%s", path, names[i]);
      rm_rf(child);
    }
    free_list(names, n);
    if (rmdir(path) != 0) die("rmdir", path);
  } else if (unlink(path) != 0) {
    die("unlink", path);
  }
}

/* Reads a whole file back with read(); returns its size, chains the hash. */
static size_t hash_file(const char *path, uint32_t *h) {
  static unsigned char buf[16384];
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("open", path);
  size_t total = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) die("read", path);
    if (r == 0) break;
    *h = fnv(*h, buf, (size_t)r);
    total += (size_t)r;
  }
  close(fd);
  return total;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *dir = argc > 1 ? argv[1] : "/tmp/work";
  int rounds = argc > 2 ? atoi(argv[2]) : 10;
  char path[1024], path2[1024];
  uint32_t total = 2166136261u;

  mkdir_p(dir);
  {
    char **names;
    int n = list_dir(dir, &names);
    for (int i = 0; i < n; i++) {
      snprintf(path, sizeof path, "%s/%s", dir, names[i]);
      rm_rf(path);
    }
    free_list(names, n);
  }

  snprintf(path, sizeof path, "%s/journal.log", dir);
  int journal = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (journal < 0) die("open", path);
  snprintf(path, sizeof path, "%s/append.log", dir);
  int applog = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (applog < 0) die("open", path);
  uint32_t journal_hash = 2166136261u;
  size_t journal_len = 0;

  size_t bufcap = 256 * 1024;
  unsigned char *buf = malloc(bufcap), *back = malloc(bufcap);
  if (!buf || !back) die("malloc", NULL);

  for (int r = 0; r < rounds; r++) {
    char rdir[512];
    snprintf(rdir, sizeof rdir, "%s/r%d", dir, r);
    if (mkdir(rdir, 0755) != 0) die("mkdir", rdir);

    /* a.bin: stdio, 1 KiB .. ~200 KiB, then renamed. */
    size_t asize = 1000 + (size_t)((r * 37813u) % 200000u);
    fill(buf, asize, 100 + r);
    snprintf(path, sizeof path, "%s/a.bin", rdir);
    FILE *f = fopen(path, "wb");
    if (!f) die("fopen", path);
    size_t half = asize / 2;
    if (fwrite(buf, 1, half, f) != half || fwrite(buf + half, 1, asize - half, f) != asize - half)
      die("fwrite", path);
    if (fclose(f) != 0) die("fclose", path);
    snprintf(path2, sizeof path2, "%s/a2.bin", rdir);
    if (rename(path, path2) != 0) die("rename", path);
    if (access(path, F_OK) == 0) {
      fprintf(stderr, "files: %s still exists after rename\n", path);
      return 1;
    }

    /* b.txt: write() in chunks, then O_APPEND. */
    snprintf(path, sizeof path, "%s/b.txt", rdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open", path);
    size_t bsize = 70000 + (size_t)((r * 3001u) % 100000u); /* > 64 KiB */
    for (size_t i = 0; i < bsize; i++) buf[i] = (unsigned char)('a' + (i * 7 + r) % 26);
    for (size_t off = 0; off < bsize; off += 5000)
      write_all(fd, buf + off, bsize - off < 5000 ? bsize - off : 5000, path);
    close(fd);
    fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0) die("open", path);
    for (int k = 0; k < 3; k++) {
      char line[64];
      int len = snprintf(line, sizeof line, "\nappended line %d of round %d", k, r);
      write_all(fd, line, (size_t)len, path);
    }
    close(fd);

    /* c.dat: pwrite at scattered offsets, lseek, pread, ftruncate. */
    snprintf(path, sizeof path, "%s/c.dat", rdir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open", path);
    off_t offs[4] = {0, 4096 * 3 + r, 65536 + 17 * r, 100000 + 1000 * r};
    for (int k = 0; k < 4; k++) {
      fill(buf, 3000, 1000 * r + k);
      if (pwrite(fd, buf, 3000, offs[k]) != 3000) die("pwrite", path);
    }
    off_t end = lseek(fd, 0, SEEK_END);
    if (end != offs[3] + 3000) {
      fprintf(stderr, "files: lseek(SEEK_END) = %lld, want %lld\n", (long long)end,
              (long long)(offs[3] + 3000));
      return 1;
    }
    for (int k = 0; k < 4; k++) {
      fill(buf, 3000, 1000 * r + k);
      if (pread(fd, back, 3000, offs[k]) != 3000) die("pread", path);
      if (memcmp(buf, back, 3000) != 0) {
        fprintf(stderr, "files: pread mismatch in %s at %lld\n", path, (long long)offs[k]);
        return 1;
      }
    }
    /* The hole between the first two writes must read back as zeros. */
    if (pread(fd, back, 100, 3500) != 100) die("pread", path);
    for (int k = 0; k < 100; k++)
      if (back[k] != 0) {
        fprintf(stderr, "files: hole in %s is not zero\n", path);
        return 1;
      }
    off_t newlen = offs[2] + 1500;
    if (ftruncate(fd, newlen) != 0) die("ftruncate", path);
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat", path);
    if (st.st_size != newlen) {
      fprintf(stderr, "files: size after ftruncate %lld, want %lld\n", (long long)st.st_size,
              (long long)newlen);
      return 1;
    }
    close(fd);

    /* Symlink + readlink. */
    snprintf(path, sizeof path, "%s/link", rdir);
    if (symlink("b.txt", path) != 0) die("symlink", path);
    char target[256];
    ssize_t tl = readlink(path, target, sizeof target - 1);
    if (tl < 0) die("readlink", path);
    target[tl] = '\0';
    if (strcmp(target, "b.txt") != 0) {
      fprintf(stderr, "files: readlink gave '%s'\n", target);
      return 1;
    }

    /* Nested subdirectories, created and removed again. */
    snprintf(path, sizeof path, "%s/sub/x/y", rdir);
    mkdir_p(path);
    snprintf(path2, sizeof path2, "%s/sub/x/y/tmp", rdir);
    fd = open(path2, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open", path2);
    write_all(fd, "temporary\n", 10, path2);
    close(fd);
    if (unlink(path2) != 0) die("unlink", path2);
    if (rmdir(path) != 0) die("rmdir", path);
    snprintf(path, sizeof path, "%s/sub/x", rdir);
    if (rmdir(path) != 0) die("rmdir", path);
    snprintf(path, sizeof path, "%s/sub", rdir);
    if (rmdir(path) != 0) die("rmdir", path);

    /* Read everything back: sorted listing, stat sizes, contents. */
    uint32_t h = 2166136261u;
    char **names;
    int n = list_dir(rdir, &names);
    char entries[256] = "";
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
      if (i) strcat(entries, ",");
      strncat(entries, names[i], sizeof entries - strlen(entries) - 2);
      snprintf(path, sizeof path, "%s/%s", rdir, names[i]);
      if (lstat(path, &st) != 0) die("lstat", path);
      h = fnv_str(h, names[i]);
      if (S_ISLNK(st.st_mode)) {
        h = fnv_str(h, "->b.txt");
        continue;
      }
      size_t got = hash_file(path, &h);
      if ((off_t)got != st.st_size) {
        fprintf(stderr, "files: %s: read %zu bytes, stat says %lld\n", path, got,
                (long long)st.st_size);
        return 1;
      }
      h = fnv_u64(h, (uint64_t)st.st_size);
      bytes += got;
    }
    free_list(names, n);
    /* stat() through the symlink must give b.txt's size. */
    snprintf(path, sizeof path, "%s/link", rdir);
    struct stat st2;
    snprintf(path2, sizeof path2, "%s/b.txt", rdir);
    if (stat(path, &st) != 0) die("stat", path);
    if (stat(path2, &st2) != 0) die("stat", path2);
    if (st.st_size != st2.st_size) {
      fprintf(stderr, "files: stat through symlink: %lld != %lld\n", (long long)st.st_size,
              (long long)st2.st_size);
      return 1;
    }

    printf("round %d entries=%s bytes=%zu checksum %08x\n", r, entries, bytes, h);
    total = fnv(total, &h, sizeof h);

    /* The long-lived descriptors: sequential journal and O_APPEND log. */
    char line[128];
    int len = snprintf(line, sizeof line, "round %d checksum %08x\n", r, h);
    write_all(journal, line, (size_t)len, "journal.log");
    journal_hash = fnv(journal_hash, line, (size_t)len);
    journal_len += (size_t)len;
    write_all(applog, line, (size_t)len, "append.log");

    if (r >= 2) {
      snprintf(path, sizeof path, "%s/r%d", dir, r - 2);
      rm_rf(path);
    }
    usleep(20 * 1000);
  }

  /* Verify the journal through the same descriptor, and append.log by path. */
  if (lseek(journal, 0, SEEK_CUR) != (off_t)journal_len) {
    fprintf(stderr, "files: journal offset %lld, want %zu\n", (long long)lseek(journal, 0, SEEK_CUR),
            journal_len);
    return 1;
  }
  if (lseek(journal, 0, SEEK_SET) != 0) die("lseek", "journal.log");
  uint32_t jh = 2166136261u;
  size_t jl = 0;
  for (;;) {
    ssize_t r = read(journal, buf, bufcap);
    if (r < 0) die("read", "journal.log");
    if (r == 0) break;
    jh = fnv(jh, buf, (size_t)r);
    jl += (size_t)r;
  }
  close(journal);
  close(applog);
  uint32_t ah = 2166136261u;
  snprintf(path, sizeof path, "%s/append.log", dir);
  size_t al = hash_file(path, &ah);
  if (jh != journal_hash || jl != journal_len || ah != journal_hash || al != journal_len) {
    fprintf(stderr, "files: log verification failed\n");
    return 1;
  }

  char **names;
  int n = list_dir(dir, &names);
  printf("dir");
  for (int i = 0; i < n; i++) {
    printf(" %s", names[i]);
    total = fnv_str(total, names[i]);
  }
  printf("\n");
  free_list(names, n);
  total = fnv_u64(total, journal_len);
  printf("files done %08x\n", total);
  free(buf);
  free(back);
  return 0;
}
