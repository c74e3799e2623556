/* gears: GLGears on Blink (thesis 9.1.7, Table 9.4). The guest builds three
 * gears' triangles and the procedures that draw them once; the gears' angles are
 * functions of time computed by the redraw procedure in the viewer, so the frame
 * rate does not depend on the guest at all. Afterwards the guest only changes
 * two registers (the view's rotation) now and then.
 *
 *   gears [SECONDS]     run for SECONDS (default: until killed)
 */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include "blink.h"

typedef struct { float *v; int n, cap; } verts;

static void vert(verts *b, float x, float y, float z, float nx, float ny, float nz) {
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 1024;
    b->v = realloc(b->v, sizeof(float) * 8 * b->cap);
  }
  float *p = b->v + 8 * b->n++;
  p[0] = x, p[1] = y, p[2] = z, p[3] = nx, p[4] = ny, p[5] = nz, p[6] = 0, p[7] = 0;
}

/* Two triangles for the quad a b c d (points as x, y pairs at depth z). */
static void quad(verts *b, const float *a, const float *c, const float *d, const float *e,
                 float za, float zb, float nx, float ny, float nz) {
  vert(b, a[0], a[1], za, nx, ny, nz), vert(b, c[0], c[1], za, nx, ny, nz), vert(b, d[0], d[1], zb, nx, ny, nz);
  vert(b, a[0], a[1], za, nx, ny, nz), vert(b, d[0], d[1], zb, nx, ny, nz), vert(b, e[0], e[1], zb, nx, ny, nz);
}

static void at(float *p, float r, float a) { p[0] = r * cosf(a), p[1] = r * sinf(a); }

/* One gear: inner radius r0, outer r, width w, teeth, tooth depth (as glxgears' shape). */
static void gear(verts *b, float r0, float r, float w, int teeth, float depth) {
  float r1 = r - depth / 2, r2 = r + depth / 2, da = 2 * (float)M_PI / teeth / 4, z = w / 2;
  for (int i = 0; i < teeth; i++) {
    float a = i * 2 * (float)M_PI / teeth, p[5][2], q[2], s[2];
    at(p[0], r1, a), at(p[1], r2, a + da), at(p[2], r2, a + 2 * da), at(p[3], r1, a + 3 * da);
    at(p[4], r1, a + 4 * da);
    for (int side = 0; side < 2; side++) {
      float zz = side ? -z : z, n = side ? -1 : 1;
      at(q, r0, a), at(s, r0, a + 4 * da);
      quad(b, q, p[0], p[4], s, zz, zz, 0, 0, n);          /* the face's ring */
      quad(b, p[0], p[1], p[2], p[3], zz, zz, 0, 0, n);    /* the tooth's face */
    }
    for (int k = 0; k < 4; k++) { /* the outline, outward */
      float dx = p[k + 1][0] - p[k][0], dy = p[k + 1][1] - p[k][1], l = sqrtf(dx * dx + dy * dy);
      quad(b, p[k], p[k + 1], p[k + 1], p[k], z, -z, dy / l, -dx / l, 0);
    }
    at(q, r0, a), at(s, r0, a + 4 * da); /* the hole, inward */
    quad(b, q, s, s, q, z, -z, -cosf(a + 2 * da), -sinf(a + 2 * da), 0);
  }
}

static const struct { float r0, r, w, depth, x, y, rgb[3]; int teeth; } G[3] = {
  {1.0f, 4.0f, 1.0f, 0.7f, -3.0f, -2.0f, {0.8f, 0.1f, 0.0f}, 20},
  {0.5f, 2.0f, 2.0f, 0.7f, 3.1f, -2.0f, {0.0f, 0.8f, 0.2f}, 10},
  {1.3f, 2.0f, 0.5f, 0.7f, -3.1f, 4.2f, {0.2f, 0.2f, 1.0f}, 10},
};

/* Registers: r0 speed (degrees a second), r1 r2 the view's rotation (set by the guest). */
static void procedures(int fd, const int *count) {
  blink_proc p = {0};
  bl_enable(&p, BCAP_DEPTH_TEST), bl_enable(&p, BCAP_LIGHTING);
  bl_light_dir(&p, F(5), F(5), F(10)), bl_clear_color(&p, F(0), F(0), F(0), F(1));
  blink_upload(fd, 1, 1, BLINK_INIT, &p);
  p.n = 0;
  bl_ext(&p, 8, BX_WIDTH), bl_ext(&p, 9, BX_HEIGHT), bl_viewport(&p, F(0), F(0), R(8), R(9));
  bl_div(&p, 10, R(8), R(9)), bl_matrix_mode(&p, BMAT_PROJECTION), bl_load_identity(&p);
  bl_perspective(&p, F(22.6), R(10), F(5), F(60)), bl_matrix_mode(&p, BMAT_MODELVIEW);
  blink_upload(fd, 2, 1, BLINK_RESHAPE, &p);
  p.n = 0;
  bl_clear(&p, BCLEAR_COLOR_DEPTH), bl_load_identity(&p), bl_translate(&p, F(0), F(0), F(-40));
  bl_rotate(&p, R(1), F(1), F(0), F(0)), bl_rotate(&p, R(2), F(0), F(1), F(0));
  bl_ext(&p, 4, BX_TIME), bl_mul(&p, 5, R(4), R(0));                      /* angle = t * speed */
  bl_mul(&p, 6, R(5), F(-2)), bl_sub(&p, 6, R(6), F(9));                  /* -2 angle - 9 */
  bl_mul(&p, 7, R(5), F(-2)), bl_sub(&p, 7, R(7), F(25));                 /* -2 angle - 25 */
  for (int g = 0; g < 3; g++) {
    bl_push_matrix(&p), bl_translate(&p, F(G[g].x), F(G[g].y), F(0));
    bl_rotate(&p, R(5 + g), F(0), F(0), F(1));
    bl_color(&p, F(G[g].rgb[0]), F(G[g].rgb[1]), F(G[g].rgb[2]), F(1));
    bl_draw(&p, 10 + g, BDRAW_TRIANGLES, F(0), F(count[g])), bl_pop_matrix(&p);
  }
  blink_upload(fd, 3, 1, BLINK_REDRAW, &p);
  free(p.b);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : -1;
  int fd = blink_open();
  if (fd < 0) {
    perror("gears: /dev/blink");
    return 1;
  }
  int count[3];
  for (int g = 0; g < 3; g++) {
    verts b = {0};
    gear(&b, G[g].r0, G[g].r, G[g].w, G[g].teeth, G[g].depth);
    count[g] = b.n;
    blink_object(fd, 10 + g, BLINK_BUFFER, 1, b.v, sizeof(float) * 8 * b.n);
    free(b.v);
  }
  float regs[3] = {70, 20, 30};
  blink_regs(fd, 0, regs, 3);
  procedures(fd, count);
  printf("gears: %d %d %d vertices uploaded\n", count[0], count[1], count[2]);
  fflush(stdout);
  /* From here on the guest only nudges the view now and then; the viewer animates. */
  struct timespec tick = {0, 250 * 1000 * 1000};
  for (int i = 0; seconds < 0 || i * 0.25 < seconds; i++) {
    nanosleep(&tick, 0);
    regs[1] = 20 + 10 * sinf(i * 0.05f);
    blink_regs(fd, 1, regs + 1, 1);
  }
  return 0;
}
