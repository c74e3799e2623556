/* blink.h: draw on roam's Blink display (thesis chapter 9) from a C guest.
 *
 * A program builds BlinkGL stored procedures (a byte encoding of GL commands,
 * register arithmetic and forward jumps: src/blink/ops.ts) for the callbacks
 * init, update, reshape, redraw and input, uploads them and its vertex buffers
 * and textures as versioned shared objects, and from then on only changes
 * registers and objects. The viewer checks, compiles and runs the procedures
 * every frame itself, so the picture moves whatever the guest is doing.
 *
 * Records go to /dev/blink, or to the file named by $BLINK_DEV (a record log
 * that `roam view --log FILE` follows). One record is one write().
 */
#ifndef BLINK_H
#define BLINK_H
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BLINK_INIT, BLINK_UPDATE, BLINK_RESHAPE, BLINK_REDRAW, BLINK_INPUT };
enum { BLINK_PROC = 1, BLINK_BUFFER = 2, BLINK_TEXTURE = 3 };
/* EXT: external state read into a register. */
enum { BX_TIME, BX_FRAME, BX_POINTER_X, BX_POINTER_Y, BX_BUTTONS, BX_KEY, BX_WIDTH, BX_HEIGHT, BX_EVENT };
enum { BCLEAR_COLOR, BCLEAR_DEPTH, BCLEAR_COLOR_DEPTH };
enum { BCAP_DEPTH_TEST, BCAP_CULL_FACE, BCAP_BLEND, BCAP_LIGHTING, BCAP_TEXTURE };
enum { BMAT_PROJECTION, BMAT_MODELVIEW };
enum { BDRAW_TRIANGLES, BDRAW_TRIANGLE_STRIP, BDRAW_TRIANGLE_FAN, BDRAW_LINES, BDRAW_LINE_STRIP,
       BDRAW_LINE_LOOP, BDRAW_POINTS };

/* A value operand: a register or an immediate. */
typedef struct { uint8_t reg; uint8_t n; float v; } bv;
#define R(i) ((bv){1, (uint8_t)(i), 0})
#define F(x) ((bv){0, 0, (float)(x)})

typedef struct { uint8_t *b; size_t n, cap; } blink_proc;

static inline void bp_put(blink_proc *p, const void *d, size_t k) {
  if (p->n + k > p->cap) {
    p->cap = (p->n + k) * 2;
    p->b = realloc(p->b, p->cap);
  }
  memcpy(p->b + p->n, d, k);
  p->n += k;
}
static inline void bp_u8(blink_proc *p, uint8_t x) { bp_put(p, &x, 1); }
static inline void bp_u16(blink_proc *p, uint16_t x) { bp_put(p, &x, 2); } /* wasm32 is little-endian */
static inline void bp_v(blink_proc *p, bv v) {
  bp_u8(p, v.reg);
  if (v.reg) bp_u8(p, v.n);
  else bp_put(p, &v.v, 4);
}
static inline void bl_op(blink_proc *p, uint8_t op) { bp_u8(p, op); }
static inline void bl_rv(blink_proc *p, uint8_t op, int r, bv a) { bp_u8(p, op); bp_u8(p, r); bp_v(p, a); }
static inline void bl_rvv(blink_proc *p, uint8_t op, int r, bv a, bv b) { bl_rv(p, op, r, a); bp_v(p, b); }
static inline void bl_vn(blink_proc *p, uint8_t op, int n, const bv *v) { bp_u8(p, op); for (int i = 0; i < n; i++) bp_v(p, v[i]); }

#define bl_mov(p, r, a) bl_rv(p, 0x01, r, a)
#define bl_add(p, r, a, b) bl_rvv(p, 0x02, r, a, b)
#define bl_sub(p, r, a, b) bl_rvv(p, 0x03, r, a, b)
#define bl_mul(p, r, a, b) bl_rvv(p, 0x04, r, a, b)
#define bl_div(p, r, a, b) bl_rvv(p, 0x05, r, a, b)
#define bl_mod(p, r, a, b) bl_rvv(p, 0x06, r, a, b)
#define bl_min(p, r, a, b) bl_rvv(p, 0x07, r, a, b)
#define bl_max(p, r, a, b) bl_rvv(p, 0x08, r, a, b)
#define bl_sin(p, r, a) bl_rv(p, 0x09, r, a)
#define bl_cos(p, r, a) bl_rv(p, 0x0a, r, a)
#define bl_floor(p, r, a) bl_rv(p, 0x0b, r, a)
#define bl_abs(p, r, a) bl_rv(p, 0x0c, r, a)
/* if (a < b) skip the next `skip` commands (forward only: BlinkGL has no loops) */
static inline void bl_jlt(blink_proc *p, bv a, bv b, int16_t skip) { bp_u8(p, 0x11); bp_v(p, a); bp_v(p, b); bp_put(p, &skip, 2); }
static inline void bl_ext(blink_proc *p, int r, int which) { bp_u8(p, 0x18); bp_u8(p, r); bp_u8(p, which); }
#define bl_clear_color(p, r, g, b, a) bl_vn(p, 0x40, 4, (bv[]){r, g, b, a})
static inline void bl_clear(blink_proc *p, int bits) { bp_u8(p, 0x41); bp_u8(p, bits); }
#define bl_viewport(p, x, y, w, h) bl_vn(p, 0x42, 4, (bv[]){x, y, w, h})
static inline void bl_enable(blink_proc *p, int cap) { bp_u8(p, 0x43); bp_u8(p, cap); }
static inline void bl_disable(blink_proc *p, int cap) { bp_u8(p, 0x44); bp_u8(p, cap); }
static inline void bl_matrix_mode(blink_proc *p, int m) { bp_u8(p, 0x45); bp_u8(p, m); }
#define bl_load_identity(p) bl_op(p, 0x46)
#define bl_push_matrix(p) bl_op(p, 0x47)
#define bl_pop_matrix(p) bl_op(p, 0x48)
#define bl_translate(p, x, y, z) bl_vn(p, 0x49, 3, (bv[]){x, y, z})
#define bl_rotate(p, deg, x, y, z) bl_vn(p, 0x4a, 4, (bv[]){deg, x, y, z})
#define bl_scale(p, x, y, z) bl_vn(p, 0x4b, 3, (bv[]){x, y, z})
#define bl_perspective(p, fovy, aspect, n, f) bl_vn(p, 0x4c, 4, (bv[]){fovy, aspect, n, f})
#define bl_ortho(p, l, r, b, t, n, f) bl_vn(p, 0x4d, 6, (bv[]){l, r, b, t, n, f})
#define bl_color(p, r, g, b, a) bl_vn(p, 0x4e, 4, (bv[]){r, g, b, a})
#define bl_light_dir(p, x, y, z) bl_vn(p, 0x4f, 3, (bv[]){x, y, z})
static inline void bl_bind_texture(blink_proc *p, int id) { bp_u8(p, 0x50); bp_u16(p, id); }
static inline void bl_draw(blink_proc *p, int buffer, int mode, bv first, bv count) {
  bp_u8(p, 0x51); bp_u16(p, buffer); bp_u8(p, mode); bp_v(p, first); bp_v(p, count);
}

/* ---- records ---- */
static inline int blink_open(void) {
  const char *dev = getenv("BLINK_DEV");
  if (dev && *dev) return open(dev, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  return open("/dev/blink", O_RDWR);
}
static inline int blink_record(int fd, uint8_t kind, const void *a, size_t an, const void *b, size_t bn) {
  uint32_t len = an + bn;
  uint8_t *r = malloc(5 + len);
  r[0] = kind;
  memcpy(r + 1, &len, 4);
  if (an) memcpy(r + 5, a, an);
  if (bn) memcpy(r + 5 + an, b, bn);
  ssize_t w = write(fd, r, 5 + len);
  free(r);
  return w == (ssize_t)(5 + len) ? 0 : -1;
}
/* A versioned shared object (9.1.5): a newer version replaces the viewer's copy. */
static inline int blink_object(int fd, int id, int type, uint32_t version, const void *data, size_t n) {
  uint8_t h[7];
  uint16_t i = id;
  memcpy(h, &i, 2);
  h[2] = type;
  memcpy(h + 3, &version, 4);
  return blink_record(fd, 1, h, 7, data, n);
}
static inline int blink_upload(int fd, int id, uint32_t version, int callback, const blink_proc *p) {
  uint8_t *d = malloc(p->n + 1);
  d[0] = callback;
  memcpy(d + 1, p->b, p->n);
  int rc = blink_object(fd, id, BLINK_PROC, version, d, p->n + 1);
  free(d);
  return rc;
}
static inline int blink_regs(int fd, int first, const float *v, int n) {
  uint8_t f = first;
  return blink_record(fd, 2, &f, 1, v, 4 * (size_t)n);
}
static inline int blink_request_update(int fd) { return blink_record(fd, 4, 0, 0, 0, 0); }
#endif
