/* blink-game: a small game on Blink with input (thesis 9.1.3: stored procedures
 * handle simple interaction without the VM). The ball bounces as a function of
 * time and the paddle follows the pointer, both in the viewer's procedures; the
 * guest only reads the clicks from /dev/blink, keeps the score, and answers each
 * click with a few register updates (score, ball speed and colour).
 *
 *   blink-game          runs until killed; prints "score N" on each click
 */
#include <stdio.h>
#include "blink.h"

/* Registers: r0 r1 ball speed (px/s), r3 score, r5-r7 ball colour, r10 pointer x (input()). */
static void procedures(int fd) {
  blink_proc p = {0};
  bl_clear_color(&p, F(0.05), F(0.05), F(0.15), F(1));
  blink_upload(fd, 1, 1, BLINK_INIT, &p);
  p.n = 0;
  bl_ext(&p, 8, BX_WIDTH), bl_ext(&p, 9, BX_HEIGHT), bl_viewport(&p, F(0), F(0), R(8), R(9));
  bl_matrix_mode(&p, BMAT_PROJECTION), bl_load_identity(&p);
  bl_ortho(&p, F(0), R(8), F(0), R(9), F(-1), F(1)), bl_matrix_mode(&p, BMAT_MODELVIEW);
  blink_upload(fd, 2, 1, BLINK_RESHAPE, &p);
  p.n = 0;
  bl_ext(&p, 10, BX_POINTER_X);
  blink_upload(fd, 4, 1, BLINK_INPUT, &p);
  p.n = 0;
  bl_clear(&p, BCLEAR_COLOR), bl_load_identity(&p);
  bl_ext(&p, 4, BX_TIME), bl_ext(&p, 8, BX_WIDTH), bl_ext(&p, 9, BX_HEIGHT);
  /* x = |((t * vx) mod 2L) - L| with L = W - 20: a bounce, as a function of time (9.1.7) */
  bl_sub(&p, 11, R(8), F(20)), bl_mul(&p, 12, R(4), R(0)), bl_mul(&p, 13, R(11), F(2));
  bl_mod(&p, 12, R(12), R(13)), bl_sub(&p, 12, R(12), R(11)), bl_abs(&p, 12, R(12));
  bl_sub(&p, 14, R(9), F(40)), bl_mul(&p, 15, R(4), R(1)), bl_mul(&p, 16, R(14), F(2));
  bl_mod(&p, 15, R(15), R(16)), bl_sub(&p, 15, R(15), R(14)), bl_abs(&p, 15, R(15));
  bl_add(&p, 15, R(15), F(20));
  bl_push_matrix(&p), bl_translate(&p, R(12), R(15), F(0)), bl_scale(&p, F(20), F(20), F(1));
  bl_color(&p, R(5), R(6), R(7), F(1)), bl_draw(&p, 20, BDRAW_TRIANGLES, F(0), F(6)), bl_pop_matrix(&p);
  /* the paddle, under the pointer; white, or grey while the ball is high up */
  bl_sub(&p, 17, R(10), F(40)), bl_push_matrix(&p), bl_translate(&p, R(17), F(5), F(0));
  bl_scale(&p, F(80), F(10), F(1)), bl_color(&p, F(0.5), F(0.5), F(0.5), F(1));
  bl_jlt(&p, F(120), R(15), 1), bl_color(&p, F(1), F(1), F(1), F(1));
  bl_draw(&p, 20, BDRAW_TRIANGLES, F(0), F(6)), bl_pop_matrix(&p);
  /* the score: r3 squares of the strip (a draw's count is clamped to its buffer) */
  bl_mul(&p, 18, R(3), F(6)), bl_sub(&p, 19, R(9), F(20)), bl_push_matrix(&p);
  bl_translate(&p, F(10), R(19), F(0)), bl_color(&p, F(1), F(0.8), F(0), F(1));
  bl_draw(&p, 21, BDRAW_TRIANGLES, F(0), R(18)), bl_pop_matrix(&p);
  blink_upload(fd, 3, 1, BLINK_REDRAW, &p);
  free(p.b);
}

static void square(float *v, float x, float y, float s) {
  float c[6][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 0}, {1, 1}, {0, 1}};
  for (int i = 0; i < 6; i++) {
    float *q = v + 8 * i;
    memset(q, 0, 32);
    q[0] = x + s * c[i][0], q[1] = y + s * c[i][1], q[5] = 1;
  }
}

int main(void) {
  int fd = blink_open();
  if (fd < 0) {
    perror("blink-game: /dev/blink");
    return 1;
  }
  float unit[48], strip[30 * 48];
  square(unit, 0, 0, 1);
  for (int i = 0; i < 30; i++) square(strip + 48 * i, i * 14.0f, 0, 10);
  blink_object(fd, 20, BLINK_BUFFER, 1, unit, sizeof unit);
  blink_object(fd, 21, BLINK_BUFFER, 1, strip, sizeof strip);
  float regs[8] = {180, 130, 0, 0, 0, 1, 0.3f, 0.3f};
  blink_regs(fd, 0, regs, 8);
  procedures(fd);
  printf("blink-game: ready\n");
  fflush(stdout);
  uint8_t ev[16 * 16];
  int score = 0;
  for (;;) {
    ssize_t n = read(fd, ev, sizeof ev); /* blocks until the viewer sends input */
    if (n <= 0) break;
    for (ssize_t i = 0; i + 16 <= n; i += 16) {
      uint32_t kind;
      memcpy(&kind, ev + i, 4);
      if (kind != 2) continue; /* a click (pointer down) */
      score++;
      regs[0] *= 1.1f, regs[1] *= 1.1f, regs[3] = score;
      regs[5] = (score % 3) == 0, regs[6] = (score % 3) == 1, regs[7] = (score % 3) == 2;
      blink_regs(fd, 0, regs, 8);
      printf("score %d\n", score);
      fflush(stdout);
    }
  }
  return 0;
}
