// Fair Prune's own wasm SIMD kernels, for what tfjs-backend-wasm 4.22 does slowly. Compiled by
// scripts/build-simd.sh (clang --target=wasm32 -msimd128) into kernels.wasm, which is committed: the
// build and the tests need no C compiler. The module owns no memory: it imports tfjs-backend-wasm's own
// (its heap), so it reads and writes tensors in place. It has no data, no stack (locals only) and no
// calls out, so it touches only the addresses it is given.
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

static inline int min_i(int a, int b) { return a < b ? a : b; }
static inline int max_i(int a, int b) { return a > b ? a : b; }
static inline const float* min_p(const float* a, const float* b) { return a < b ? a : b; }
// floor(a / b) for b > 0
static inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// One float of each cache line of [p, e), in order: a run of lines a kernel is about to read or write, which in a
// training step come from beyond the second-level cache and which the processor's prefetchers stream faster read
// in order than the kernel's strided reads and scattered stores fetch them. The loads are volatile so that the
// compiler keeps them though nothing uses their values.
static inline __attribute__((always_inline)) void read_ahead_lines(const float* p, const float* e) {
  for (; p < e; p += 16) (void)*(volatile const float*)p;
}

// The largest of four values that is not NaN, −∞ when all are NaN, as the cpu backend's max pooling takes
// it: pmax(a, b) = a < b ? b : a keeps a when b is NaN, and the first of equal values.
static inline v128_t max_of_4(v128_t v0, v128_t v1, v128_t v2, v128_t v3) {
  const v128_t minusInf = wasm_f32x4_splat(-__builtin_inff());
  return wasm_f32x4_pmax(wasm_f32x4_pmax(wasm_f32x4_pmax(wasm_f32x4_pmax(minusInf, v0), v1), v2), v3);
}

// The winner of a 2×2 pooling window of inputs y0…y3 (row by row) whose max is m, as `max_pool_grad`
// picks it: the first input equal to m, where m is above `floor`; else 4 (none). One byte per channel,
// stored at `win` (four channels).
static inline void store_winners(unsigned char* win, v128_t y0, v128_t y1, v128_t y2, v128_t y3, v128_t m, v128_t floor) {
  const v128_t none = wasm_i32x4_splat(4);
  v128_t k = wasm_v128_bitselect(wasm_i32x4_splat(3), none, wasm_f32x4_eq(y3, m)); // the last equal, then each earlier over it
  k = wasm_v128_bitselect(wasm_i32x4_splat(2), k, wasm_f32x4_eq(y2, m));
  k = wasm_v128_bitselect(wasm_i32x4_splat(1), k, wasm_f32x4_eq(y1, m));
  k = wasm_v128_bitselect(wasm_i32x4_splat(0), k, wasm_f32x4_eq(y0, m));
  k = wasm_v128_bitselect(k, none, wasm_f32x4_gt(m, floor));
  const v128_t bytes = wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(k, k), wasm_i16x8_narrow_i32x4(k, k));
  wasm_v128_store32_lane(win, bytes, 0);
}

// One block of the filter gradient: NC input channels (c0…) × 4·NV output channels (o0…), summed over
// `n` pixels of one output row (or n tiles) from zero, then added to dw: blocked summation, whose rounding
// error grows with the number of blocks rather than of pixels (Winograd's filter gradients, summed over
// 64·256 tiles of a 32×32 batch, had 5–7 times the error of a float64 sum when dw was the running sum).
// x advances xstep floats a pixel, dy `co` floats.
#define BLOCK(NC, NV)                                                                                  \
  static void block_##NC##_##NV(const float* xp, int xstep, const float* dyp, int co, int n,          \
                                float* dwp) {                                                          \
    v128_t acc[NC][NV];                                                                                \
    _Pragma("clang loop unroll(full)") for (int j = 0; j < NC; j++)                                    \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++)                                  \
        acc[j][v] = wasm_f32x4_splat(0.0f);                                                            \
    for (int p = 0; p < n; p++, xp += xstep, dyp += co) {                                              \
      v128_t d[NV];                                                                                    \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) d[v] = wasm_v128_load(dyp + 4 * v); \
      _Pragma("clang loop unroll(full)") for (int j = 0; j < NC; j++) {                                \
        v128_t xs = wasm_f32x4_splat(xp[j]);                                                           \
        _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++)                                \
          acc[j][v] = wasm_f32x4_add(acc[j][v], wasm_f32x4_mul(xs, d[v]));                             \
      }                                                                                                \
    }                                                                                                  \
    _Pragma("clang loop unroll(full)") for (int j = 0; j < NC; j++)                                    \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++)                                  \
        wasm_v128_store(dwp + j * co + 4 * v, wasm_f32x4_add(wasm_v128_load(dwp + j * co + 4 * v), acc[j][v])); \
  }

BLOCK(4, 2) BLOCK(3, 2) BLOCK(2, 2) BLOCK(1, 2)
BLOCK(4, 1) BLOCK(3, 1) BLOCK(2, 1) BLOCK(1, 1)

// One output row's share of the filter gradient: dw += Σ_x xin[b, y·sh + kh − top, x·sw + kw − left, c] ·
// dyRow[x, o] over the row's `ow` pixels (dyRow advances co floats a pixel).
static inline void filter_grad_row(const float* x, const float* dyRow, float* dw, int b, int y, int H, int W, int ci,
                                   int ow, int co, int fh, int fw, int sh, int sw, int top, int left) {
  const int xstep = sw * ci;
  for (int kh = 0; kh < fh; kh++) {
    const int iy = y * sh + kh - top;
    if (iy < 0 || iy >= H) continue;
    const float* xRow = x + ((b * H + iy) * W) * ci;
    for (int kw = 0; kw < fw; kw++) {
      // Output columns whose input column x·sw + kw − left lies inside the image.
      const int lo = max_i(0, -floor_div(kw - left, sw));
      const int hi = min_i(ow, floor_div(W - 1 + left - kw, sw) + 1);
      if (lo >= hi) continue;
      const int n = hi - lo;
      const float* xp0 = xRow + (lo * sw + kw - left) * ci;
      const float* dyp0 = dyRow + lo * co;
      float* dwTap = dw + ((kh * fw + kw) * ci) * co;
      for (int c0 = 0; c0 < ci; c0 += 4) {
        const int nc = min_i(4, ci - c0);
        const float* xp = xp0 + c0;
        float* dwp = dwTap + c0 * co;
        int o0 = 0;
        for (; o0 + 8 <= co; o0 += 8) {
          switch (nc) {
            case 4: block_4_2(xp, xstep, dyp0 + o0, co, n, dwp + o0); break;
            case 3: block_3_2(xp, xstep, dyp0 + o0, co, n, dwp + o0); break;
            case 2: block_2_2(xp, xstep, dyp0 + o0, co, n, dwp + o0); break;
            default: block_1_2(xp, xstep, dyp0 + o0, co, n, dwp + o0); break;
          }
        }
        for (; o0 < co; o0 += 4) {
          switch (nc) {
            case 4: block_4_1(xp, xstep, dyp0 + o0, co, n, dwp + o0); break;
            case 3: block_3_1(xp, xstep, dyp0 + o0, co, n, dwp + o0); break;
            case 2: block_2_1(xp, xstep, dyp0 + o0, co, n, dwp + o0); break;
            default: block_1_1(xp, xstep, dyp0 + o0, co, n, dwp + o0); break;
          }
        }
      }
    }
  }
}

// The filter gradient of a 2-D convolution, NHWC, dilation 1:
//   dw[kh, kw, c, o] = Σ_{b, y, x} xin[b, y·sh + kh − top, x·sw + kw − left, c] · dy[b, y, x, o]
// (reads outside the image are zeros). `co` must be a multiple of 4. dw is overwritten. Blocks of 4 input
// × 8 output channels: 8 accumulators, which with 2 dy vectors and a splat fit x86-64's 16 SIMD registers;
// 4 × 16 (16 accumulators) spilled and ran at half the speed (batch 64, 16×16×16 → 32: 6.4 → 2.9 ms).
EXPORT("conv2d_filter_grad")
void conv2d_filter_grad(const float* x, const float* dy, float* dw, int B, int H, int W, int ci, int oh,
                        int ow, int co, int fh, int fw, int sh, int sw, int top, int left) {
  const int total = fh * fw * ci * co;
  for (int i = 0; i < total; i += 4) wasm_v128_store(dw + i, wasm_f32x4_splat(0.0f));
  for (int b = 0; b < B; b++) {
    for (int y = 0; y < oh; y++) {
      const float* dyRow = dy + ((b * oh + y) * ow) * co;
      // Where the reads are strided (a stride-1 kernel's rows were a few percent slower with it).
      if (sh > 1 || sw > 1) {
        const float* img = x + b * H * W * ci;
        read_ahead_lines(img + max_i(0, y * sh - top) * W * ci, img + min_i(H, y * sh - top + fh) * W * ci);
        read_ahead_lines(dyRow, dyRow + ow * co);
      }
      filter_grad_row(x, dyRow, dw, b, y, H, W, ci, ow, co, fh, fw, sh, sw, top, left);
    }
  }
}

// The filter and bias gradients of a convolution whose output goes through a 2×2, stride-2 max pooling
// recorded by `max_pool_2x2_winners` (a relu between them folded in there), from the pooling's gradient
// dyp [B, oh/2, ow/2, co] and its winners, without the convolution's output gradient in memory: each row
// of it, dz[x, o] = dyp[⌊x/2⌋, o] where the window's winner is this pixel, else 0, is made in `row`
// (ow·co floats) and used at once. Rows and columns past the windows (odd sizes) have no gradient.
// db[o] = Σ dz[·, o], summed in float64 in `sums` (co doubles, 8-byte aligned) in pixel order, as
// `sum_rows` sums; dw as `conv2d_filter_grad`. Both are overwritten.
EXPORT("conv2d_filter_grad_pooled")
void conv2d_filter_grad_pooled(const float* x, const float* dyp, const unsigned char* win, float* dw, float* db,
                               float* row, double* sums, int B, int H, int W, int ci, int oh, int ow, int co, int fh,
                               int fw, int sh, int sw, int top, int left) {
  const int total = fh * fw * ci * co;
  for (int i = 0; i < total; i += 4) wasm_v128_store(dw + i, wasm_f32x4_splat(0.0f));
  for (int o = 0; o < co; o += 2) wasm_v128_store(sums + o, wasm_f64x2_splat(0.0));
  const int OH = oh / 2, OW = ow / 2;
  for (int b = 0; b < B; b++) {
    for (int y = 0; y < 2 * OH; y++) {
      const float* g = dyp + ((b * OH + y / 2) * OW) * co;
      const unsigned char* w = win + ((b * OH + y / 2) * OW) * co;
      for (int xo = 0; xo < 2 * OW; xo++) {
        const v128_t k = wasm_i32x4_splat((y & 1) * 2 + (xo & 1));
        const float* gp = g + (xo / 2) * co;
        const unsigned char* wp = w + (xo / 2) * co;
        float* rp = row + xo * co;
        for (int o = 0; o < co; o += 4) {
          const v128_t won = wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(wp + o)));
          const v128_t d = wasm_v128_and(wasm_v128_load(gp + o), wasm_i32x4_eq(won, k));
          wasm_v128_store(rp + o, d);
          wasm_v128_store(sums + o, wasm_f64x2_add(wasm_v128_load(sums + o), wasm_f64x2_promote_low_f32x4(d)));
          wasm_v128_store(sums + o + 2, wasm_f64x2_add(wasm_v128_load(sums + o + 2),
                                                       wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(d, d, 2, 3, 0, 1))));
        }
      }
      filter_grad_row(x, row, dw, b, y, H, W, ci, 2 * OW, co, fh, fw, sh, sw, top, left);
    }
  }
  for (int o = 0; o < co; o += 4) {
    const v128_t lo = wasm_f32x4_demote_f64x2_zero(wasm_v128_load(sums + o));
    const v128_t hi = wasm_f32x4_demote_f64x2_zero(wasm_v128_load(sums + o + 2));
    wasm_v128_store(db + o, wasm_i32x4_shuffle(lo, hi, 0, 1, 4, 5));
  }
}

// A 2-D convolution, NHWC, the filter [fh, fw, ci, co]:
//   out[b, y, x, o] = Σ_{kh, kw, c} xin[b, y·sh + kh·dh − top, x·sw + kw·dw − left, c] · w[kh, kw, c, o]
// (reads outside the image are zeros), plus bias[o] where `bias` is not null, then the activation `act`
// (0 none, 1 relu: x < 0 ? 0 : x, 2 relu6: that, then 6 < x ? 6 : x; NaN passes, as on the cpu backend).
// One block is P output pixels of a row × 4·NV output channels,
// P·NV accumulators in SIMD registers; a filter row whose taps all lie inside the image (dilation 1) is
// one run of fw·ci inputs, contiguous in NHWC. A tap outside reads `zeros` (ci zero floats) instead.
#define CONV_TAPS(P, NV)                                                                                 \
  static inline void conv_taps_##P##_##NV(const float* const* px, const float* wp, int n, int co,        \
                                          v128_t* acc) {                                                 \
    for (int c = 0; c < n; c++, wp += co) {                                                              \
      v128_t wv[NV];                                                                                     \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) wv[v] = wasm_v128_load(wp + 4 * v); \
      _Pragma("clang loop unroll(full)") for (int p = 0; p < P; p++) {                                   \
        const v128_t s = wasm_f32x4_splat(px[p][c]);                                                     \
        _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++)                                  \
          acc[p * NV + v] = wasm_f32x4_add(acc[p * NV + v], wasm_f32x4_mul(s, wv[v]));                   \
      }                                                                                                  \
    }                                                                                                    \
  }

// The block's sums, bias added and activation applied, in acc[p·NV + v].
#define CONV_ACC_FN(P, NV)                                                                               \
  static inline void conv_acc_##P##_##NV(const float* img, const float* w, const float* zeros,           \
                                         const float* bias, int act, int iy0, int xo, int H, int W,      \
                                         int ci, int co, int fh, int fw, int sw, int dh, int dw,         \
                                         int left, v128_t* acc) {                                        \
    int bx[P];                                                                                           \
    _Pragma("clang loop unroll(full)") for (int p = 0; p < P; p++) bx[p] = (xo + p) * sw - left;         \
    const int inside = dw == 1 && bx[0] >= 0 && bx[P - 1] + fw <= W;                                     \
    _Pragma("clang loop unroll(full)") for (int i = 0; i < P * NV; i++) acc[i] = wasm_f32x4_splat(0.0f); \
    for (int kh = 0; kh < fh; kh++) {                                                                    \
      const int iy = iy0 + kh * dh;                                                                      \
      if (iy < 0 || iy >= H) continue;                                                                   \
      const float* row = img + iy * W * ci;                                                              \
      const float* px[P];                                                                                \
      if (inside) {                                                                                      \
        _Pragma("clang loop unroll(full)") for (int p = 0; p < P; p++) px[p] = row + bx[p] * ci;         \
        conv_taps_##P##_##NV(px, w + kh * fw * ci * co, fw * ci, co, acc);                               \
        continue;                                                                                        \
      }                                                                                                  \
      for (int kw = 0; kw < fw; kw++) {                                                                  \
        _Pragma("clang loop unroll(full)") for (int p = 0; p < P; p++) {                                 \
          const int ix = bx[p] + kw * dw;                                                                \
          px[p] = ix >= 0 && ix < W ? row + ix * ci : zeros;                                             \
        }                                                                                                \
        conv_taps_##P##_##NV(px, w + (kh * fw + kw) * ci * co, ci, co, acc);                             \
      }                                                                                                  \
    }                                                                                                    \
    if (bias) { /* added after the sum, as a separate bias add would: the same float32 result */        \
      _Pragma("clang loop unroll(full)") for (int p = 0; p < P; p++)                                     \
        _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++)                                  \
          acc[p * NV + v] = wasm_f32x4_add(acc[p * NV + v], wasm_v128_load(bias + 4 * v));               \
    }                                                                                                    \
    if (act) {                                                                                           \
      const v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);                          \
      _Pragma("clang loop unroll(full)") for (int i = 0; i < P * NV; i++) {                              \
        acc[i] = wasm_f32x4_pmax(acc[i], zero);                                                          \
        if (act == 2) acc[i] = wasm_f32x4_pmin(acc[i], six);                                             \
      }                                                                                                  \
    }                                                                                                    \
  }                                                                                                      \
  static void conv_block_##P##_##NV(const float* img, const float* w, float* out, int ostep,            \
                                    const float* zeros, const float* bias, int act, int iy0, int xo,     \
                                    int H, int W, int ci, int co, int fh, int fw, int sw, int dh, int dw, \
                                    int left) {                                                          \
    v128_t acc[P * NV];                                                                                  \
    conv_acc_##P##_##NV(img, w, zeros, bias, act, iy0, xo, H, W, ci, co, fh, fw, sw, dh, dw, left, acc); \
    _Pragma("clang loop unroll(full)") for (int p = 0; p < P; p++)                                       \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++)                                    \
        wasm_v128_store(out + p * ostep + 4 * v, acc[p * NV + v]);                                       \
  }

CONV_TAPS(2, 4) CONV_TAPS(2, 2) CONV_TAPS(2, 1) CONV_TAPS(1, 4) CONV_TAPS(1, 2) CONV_TAPS(1, 1)
CONV_ACC_FN(2, 4) CONV_ACC_FN(2, 2) CONV_ACC_FN(2, 1) CONV_ACC_FN(1, 4) CONV_ACC_FN(1, 2) CONV_ACC_FN(1, 1)

// `co` must be a multiple of 4. Two pixels × 16 channels a block: measured against 4×8, 3×8, 2×8, 4×12,
// 3×12 and 1×16 on the bench's layers, it was the fastest (8 accumulators, 4 filter vectors, 1 splat fit
// the 16 SIMD registers of x86-64). Output pixel (b, y, x) at out + b·oimg + y·orow + x·opx.
static inline __attribute__((always_inline)) void conv2d_at(const float* x, const float* w, float* out, int oimg,
                                                            int orow, int opx, const float* zeros, const float* bias,
                                                            int act, int B, int H, int W, int ci, int oh, int ow,
                                                            int co, int fh, int fw, int sh, int sw, int dh, int dw,
                                                            int top, int left) {
// One block of P pixels × 4·NV channels at (xo, o0) of the current output row.
#define CONV_BLOCK(P, NV) \
  conv_block_##P##_##NV(img, w + o0, o + o0, opx, zeros, bias ? bias + o0 : 0, act, iy0, xo, H, W, ci, co, fh, fw, sw, dh, dw, left)
  for (int b = 0; b < B; b++) {
    const float* img = x + b * H * W * ci;
    for (int y = 0; y < oh; y++) {
      const int iy0 = y * sh - top;
      float* orowp = out + b * oimg + y * orow;
      // The input rows this output row reads, and the output row where it is one run of lines (not a phase's
      // pixels, every other one, where reading the lines between cost more than it saved).
      read_ahead_lines(img + max_i(0, iy0) * W * ci, img + min_i(H, iy0 + (fh - 1) * dh + 1) * W * ci);
      if (opx == co) read_ahead_lines(orowp, orowp + ow * co);
      int xo = 0;
      for (; xo + 2 <= ow; xo += 2) {
        float* o = orowp + xo * opx;
        int o0 = 0;
        for (; o0 + 16 <= co; o0 += 16) CONV_BLOCK(2, 4);
        for (; o0 + 8 <= co; o0 += 8) CONV_BLOCK(2, 2);
        for (; o0 < co; o0 += 4) CONV_BLOCK(2, 1);
      }
      if (xo < ow) { // an odd last pixel
        float* o = orowp + xo * opx;
        int o0 = 0;
        for (; o0 + 16 <= co; o0 += 16) CONV_BLOCK(1, 4);
        for (; o0 + 8 <= co; o0 += 8) CONV_BLOCK(1, 2);
        for (; o0 < co; o0 += 4) CONV_BLOCK(1, 1);
      }
    }
  }
#undef CONV_BLOCK
}

EXPORT("conv2d")
void conv2d(const float* x, const float* w, float* out, const float* zeros, const float* bias, int act, int B, int H,
            int W, int ci, int oh, int ow, int co, int fh, int fw, int sh, int sw, int dh, int dw, int top, int left) {
  conv2d_at(x, w, out, oh * ow * co, ow * co, co, zeros, bias, act, B, H, W, ci, oh, ow, co, fh, fw, sh, sw, dh, dw,
            top, left);
}

// conv2d (no bias or activation) into the pixels (p + y·sph, q + x·spw) of out [B, OH, OW, co]: one phase of a
// strided convolution's input gradient (simd-kernels.ts, `inputGradientByPhases`) written in place, where it was
// written whole and then scattered (scatter_phase, about a tenth of the phase's time, and a buffer more).
EXPORT("conv2d_phase")
void conv2d_phase(const float* x, const float* w, float* out, const float* zeros, int B, int H, int W, int ci, int oh,
                  int ow, int co, int fh, int fw, int top, int left, int OH, int OW, int p, int q, int sph, int spw) {
  conv2d_at(x, w, out + (p * OW + q) * co, OH * OW * co, sph * OW * co, spw * co, zeros, 0, 0, B, H, W, ci, oh, ow, co,
            fh, fw, 1, 1, 1, 1, top, left);
}

// Winograd F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): a 3×3,
// stride-1, dilation-1 convolution computed per 2×2 output tile from the 4×4 input tile around it,
//   Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A,
// 16 multiplies per tile and channel pair where the direct sum takes 36. The 16 element-wise products
// summed over the input channels are 16 matrix products (tiles × ci)·(ci × co), run by the direct
// convolution's register blocks (`conv_taps_*`), over a block of WINO_TILES tiles of one tile row at a
// time so that their transforms stay in the first-level cache.
#define WINO_TILES 8

// u[ξ, c, o] = (G g Gᵀ)[ξ] for the filter g = w[·, ·, c, o] [3, 3, ci, co]; u is [16, ci, co], co a multiple of 4.
EXPORT("winograd_filter")
void winograd_filter(const float* w, float* u, int ci, int co) {
  const v128_t half = wasm_f32x4_splat(0.5f);
  for (int c = 0; c < ci; c++) {
    for (int o = 0; o < co; o += 4) {
      v128_t g[3][3], t[4][3];
      _Pragma("clang loop unroll(full)") for (int kh = 0; kh < 3; kh++)
        _Pragma("clang loop unroll(full)") for (int kw = 0; kw < 3; kw++) g[kh][kw] = wasm_v128_load(w + ((kh * 3 + kw) * ci + c) * co + o);
      _Pragma("clang loop unroll(full)") for (int k = 0; k < 3; k++) { // t = G g
        t[0][k] = g[0][k];
        t[1][k] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(g[0][k], g[1][k]), g[2][k]));
        t[2][k] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(g[0][k], g[1][k]), g[2][k]));
        t[3][k] = g[2][k];
      }
      _Pragma("clang loop unroll(full)") for (int i = 0; i < 4; i++) { // u = t Gᵀ
        float* ui = u + ((i * 4) * ci + c) * co + o;
        const int step = ci * co;
        wasm_v128_store(ui, t[i][0]);
        wasm_v128_store(ui + step, wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(t[i][0], t[i][1]), t[i][2])));
        wasm_v128_store(ui + 2 * step, wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(t[i][0], t[i][1]), t[i][2])));
        wasm_v128_store(ui + 3 * step, t[i][2]);
      }
    }
  }
}

// V = Bᵀ d B for the 4×4 input tile at (iy0, ix0) of img [H, W, ci] (reads outside are zeros), four
// channels at a time: v[ξ·step + c] for ξ = 4r + s.
static inline void wino_input_tile(const float* img, int H, int W, int ci, int iy0, int ix0, float* v, int step) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  const int inside = iy0 >= 0 && iy0 + 4 <= H && ix0 >= 0 && ix0 + 4 <= W;
  for (int c = 0; c < ci; c += 4) {
    v128_t d[4][4], e[4][4];
    _Pragma("clang loop unroll(full)") for (int r = 0; r < 4; r++)
      _Pragma("clang loop unroll(full)") for (int s = 0; s < 4; s++) {
        const int iy = iy0 + r, ix = ix0 + s;
        d[r][s] = inside || (iy >= 0 && iy < H && ix >= 0 && ix < W) ? wasm_v128_load(img + (iy * W + ix) * ci + c) : zero;
      }
    _Pragma("clang loop unroll(full)") for (int s = 0; s < 4; s++) {
      e[0][s] = wasm_f32x4_sub(d[0][s], d[2][s]);
      e[1][s] = wasm_f32x4_add(d[1][s], d[2][s]);
      e[2][s] = wasm_f32x4_sub(d[2][s], d[1][s]);
      e[3][s] = wasm_f32x4_sub(d[1][s], d[3][s]);
    }
    float* vt = v + c;
    _Pragma("clang loop unroll(full)") for (int r = 0; r < 4; r++) {
      wasm_v128_store(vt + (r * 4 + 0) * step, wasm_f32x4_sub(e[r][0], e[r][2]));
      wasm_v128_store(vt + (r * 4 + 1) * step, wasm_f32x4_add(e[r][1], e[r][2]));
      wasm_v128_store(vt + (r * 4 + 2) * step, wasm_f32x4_sub(e[r][2], e[r][1]));
      wasm_v128_store(vt + (r * 4 + 3) * step, wasm_f32x4_sub(e[r][1], e[r][3]));
    }
  }
}

// One block of P tiles × 4·NV output channels of the ξ-th product: m[t, o] = Σ_c v[t, c] · u[c, o], the p-th
// tile's sums stored mt floats on, each next four channels ks floats on.
#define WINO_GEMM(P, NV)                                                                                 \
  static inline void wino_gemm_##P##_##NV(const float* v, const float* u, float* m, int mt, int ks, int ci, \
                                          int co) {                                                      \
    const float* px[P];                                                                                  \
    _Pragma("clang loop unroll(full)") for (int p = 0; p < P; p++) px[p] = v + p * ci;                   \
    v128_t acc[P * NV];                                                                                  \
    _Pragma("clang loop unroll(full)") for (int i = 0; i < P * NV; i++) acc[i] = wasm_f32x4_splat(0.0f); \
    conv_taps_##P##_##NV(px, u, ci, co, acc);                                                            \
    _Pragma("clang loop unroll(full)") for (int p = 0; p < P; p++)                                       \
      _Pragma("clang loop unroll(full)") for (int k = 0; k < NV; k++)                                    \
        wasm_v128_store(m + p * mt + k * ks, acc[p * NV + k]);                                           \
  }
CONV_TAPS(4, 2)
WINO_GEMM(4, 2) WINO_GEMM(2, 4) WINO_GEMM(2, 2) WINO_GEMM(2, 1) WINO_GEMM(1, 4) WINO_GEMM(1, 2) WINO_GEMM(1, 1)

// M[ξ] = V[ξ] · U[ξ] for the n transforms ξ of nt tiles: V [n, tiles, ci] (the ξ-th at V + ξ·vs), u [n, ci, co];
// the sums of tile t and output channels o…o + 3 at M + ξ·ms + t·mt + (o/4)·ks (F(2×2, 3×3): M [n, tiles, co];
// F(4×4, 3×3): [tiles, co/4, n, 4]). The products of the Winograd convolutions, by blocks of 2 tiles × 16
// channels, or 4 × 8 (`conv_taps_*`).
static void wino_products(const float* V, int vs, const float* u, float* M, int ms, int mt, int ks, int n, int nt,
                          int ci, int co) {
  for (int xi = 0; xi < n; xi++) {
    const float* v = V + xi * vs;
    const float* uu = u + xi * ci * co;
    float* m = M + xi * ms;
    int t = 0;
    if (co == 8 || co == 16) // 4 tiles × 8 channels: at 16 channels 3% faster than 2 × 16 (at 64, 3% slower)
      for (; t + 4 <= nt; t += 4)
        for (int o = 0; o < co; o += 8) wino_gemm_4_2(v + t * ci, uu + o, m + t * mt + o / 4 * ks, mt, ks, ci, co);
    for (; t + 2 <= nt; t += 2) {
      int o = 0;
      for (; o + 16 <= co; o += 16) wino_gemm_2_4(v + t * ci, uu + o, m + t * mt + o / 4 * ks, mt, ks, ci, co);
      for (; o + 8 <= co; o += 8) wino_gemm_2_2(v + t * ci, uu + o, m + t * mt + o / 4 * ks, mt, ks, ci, co);
      for (; o < co; o += 4) wino_gemm_2_1(v + t * ci, uu + o, m + t * mt + o / 4 * ks, mt, ks, ci, co);
    }
    if (t < nt) {
      int o = 0;
      for (; o + 16 <= co; o += 16) wino_gemm_1_4(v + t * ci, uu + o, m + t * mt + o / 4 * ks, mt, ks, ci, co);
      for (; o + 8 <= co; o += 8) wino_gemm_1_2(v + t * ci, uu + o, m + t * mt + o / 4 * ks, mt, ks, ci, co);
      for (; o < co; o += 4) wino_gemm_1_1(v + t * ci, uu + o, m + t * mt + o / 4 * ks, mt, ks, ci, co);
    }
  }
}

// The convolution of x [B, H, W, ci] with the filter whose transform `winograd_filter` wrote into u,
// as `conv2d` takes it (padding `top`, `left`; reads outside the image are zeros; bias and activation
// after the sum). ci and co multiples of 4. `scratch` holds 16·WINO_TILES·(ci + co) floats. Where `win`
// is not null, a 2×2, stride-2 max pooling follows, as `max_pool_2x2_winners` does it: `out` is then
// [B, oh/2, ow/2, co], each output tile being one pooling window.
EXPORT("conv2d_winograd")
void conv2d_winograd(const float* x, const float* u, float* out, float* scratch, const float* bias, int act,
                     unsigned char* win, int floorZero, int B, int H, int W, int ci, int oh, int ow, int co, int top,
                     int left) {
  const v128_t floor = wasm_f32x4_splat(floorZero ? 0.0f : -__builtin_inff());
  const int OH = oh / 2, OW = ow / 2;
  float* V = scratch;                        // [16, WINO_TILES, ci]: the input tiles' transforms
  float* M = scratch + 16 * WINO_TILES * ci; // [16, WINO_TILES, co]: their products with the filter's
  const int th = (oh + 1) / 2, tw = (ow + 1) / 2;
  const v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  for (int b = 0; b < B; b++) {
    const float* img = x + b * H * W * ci;
    for (int ty = 0; ty < th; ty++) {
      const int iy0 = 2 * ty - top;
      for (int tx0 = 0; tx0 < tw; tx0 += WINO_TILES) {
        const int nt = min_i(WINO_TILES, tw - tx0);
        for (int t = 0; t < nt; t++) wino_input_tile(img, H, W, ci, iy0, 2 * (tx0 + t) - left, V + t * ci, WINO_TILES * ci);
        wino_products(V, WINO_TILES * ci, u, M, WINO_TILES * co, co, 4, 16, nt, ci, co);
        for (int t = 0; t < nt; t++) { // Y = Aᵀ M A, then bias and activation
          const int oy = 2 * ty, ox = 2 * (tx0 + t);
          const int rows = min_i(2, oh - oy), cols = min_i(2, ow - ox);
          const int step = WINO_TILES * co;
          for (int o = 0; o < co; o += 4) {
            const float* mt = M + t * co + o;
            v128_t a[2][4], y[2][2];
            _Pragma("clang loop unroll(full)") for (int s = 0; s < 4; s++) {
              const v128_t m0 = wasm_v128_load(mt + (0 * 4 + s) * step), m1 = wasm_v128_load(mt + (1 * 4 + s) * step);
              const v128_t m2 = wasm_v128_load(mt + (2 * 4 + s) * step), m3 = wasm_v128_load(mt + (3 * 4 + s) * step);
              a[0][s] = wasm_f32x4_add(wasm_f32x4_add(m0, m1), m2);
              a[1][s] = wasm_f32x4_sub(wasm_f32x4_sub(m1, m2), m3);
            }
            _Pragma("clang loop unroll(full)") for (int i = 0; i < 2; i++) {
              y[i][0] = wasm_f32x4_add(wasm_f32x4_add(a[i][0], a[i][1]), a[i][2]);
              y[i][1] = wasm_f32x4_sub(wasm_f32x4_sub(a[i][1], a[i][2]), a[i][3]);
            }
            const v128_t bv = bias ? wasm_v128_load(bias + o) : zero;
            _Pragma("clang loop unroll(full)") for (int i = 0; i < 2; i++)
              _Pragma("clang loop unroll(full)") for (int j = 0; j < 2; j++) {
                if (bias) y[i][j] = wasm_f32x4_add(y[i][j], bv);
                if (act) y[i][j] = wasm_f32x4_pmax(y[i][j], zero);
                if (act == 2) y[i][j] = wasm_f32x4_pmin(y[i][j], six);
              }
            if (win) { // the tile is a pooling window: its max and winner only (a partial tile is in none)
              if (rows < 2 || cols < 2) continue;
              const v128_t m = max_of_4(y[0][0], y[0][1], y[1][0], y[1][1]);
              const int p = ((b * OH + ty) * OW + tx0 + t) * co + o;
              wasm_v128_store(out + p, m);
              store_winners(win + p, y[0][0], y[0][1], y[1][0], y[1][1], m, floor);
              continue;
            }
            // Unrolled (an array indexed by a loop variable would live in linear memory, which the module must
            // not touch), the edges tested inside.
            _Pragma("clang loop unroll(full)") for (int i = 0; i < 2; i++)
              _Pragma("clang loop unroll(full)") for (int j = 0; j < 2; j++)
                if (i < rows && j < cols) wasm_v128_store(out + ((b * oh + oy + i) * ow + ox + j) * co + o, y[i][j]);
          }
        }
      }
    }
  }
}

// acc[ξ] += V[ξ]ᵀ · D[ξ] for the ξ-th of n transforms of nt tiles: V [n, tiles, ci] (ξ-th at V + ξ·vs), D [n,
// tiles, co] (at D + ξ·ds), acc
// [n, ci, co]; the sums over tiles of the Winograd filter gradients, by the direct filter gradient's blocks.
static void wino_grad_sums(const float* V, int vs, const float* D, int ds, float* acc, int n, int nt, int ci, int co) {
  for (int xi = 0; xi < n; xi++) {
    const float* v = V + xi * vs;
    const float* d = D + xi * ds;
    float* a = acc + xi * ci * co;
    for (int c = 0; c < ci; c += 4) {
      int o = 0;
      for (; o + 8 <= co; o += 8) block_4_2(v + c, ci, d + o, co, nt, a + c * co + o);
      for (; o < co; o += 4) block_4_1(v + c, ci, d + o, co, nt, a + c * co + o);
    }
  }
}

// The filter gradient of a 3×3, stride-1, dilation-1 convolution by Winograd F(3×3, 2×2), the transpose
// of the forward F(2×2, 3×3):
//   dw = Gᵀ [ Σ_tiles (Bᵀ d B) ⊙ (A dy Aᵀ) ] G
// over the 2×2 tiles of dy and the 4×4 input tiles behind them (reads outside the image, and dy outside its
// odd edges, are zeros). The 16 sums over tiles are matrix products (ci × tiles)·(tiles × co), run by the
// direct filter gradient's register blocks over `tiles` tiles at a time. ci and co multiples of 4;
// dw [3, 3, ci, co] is overwritten; `scratch` holds 16·(ci·co + tiles·(ci + co)) floats.
EXPORT("conv2d_filter_grad_winograd")
void conv2d_filter_grad_winograd(const float* x, const float* dy, float* dw, float* scratch, int tiles, int B, int H, int W,
                                 int ci, int oh, int ow, int co, int top, int left) {
  float* acc = scratch;                        // [16, ci, co]: the sums in the transformed domain
  float* V = acc + 16 * ci * co;     // [16, tiles, ci]
  float* D = V + 16 * tiles * ci;    // [16, tiles, co]
  const v128_t zero = wasm_f32x4_splat(0.0f), half = wasm_f32x4_splat(0.5f);
  for (int i = 0; i < 16 * ci * co; i += 4) wasm_v128_store(acc + i, zero);
  const int th = (oh + 1) / 2, tw = (ow + 1) / 2, per = th * tw, total = B * per;
  for (int t0 = 0; t0 < total; t0 += tiles) {
    const int nt = min_i(tiles, total - t0);
    for (int t = 0; t < nt; t++) {
      const int b = (t0 + t) / per, rem = (t0 + t) % per, ty = rem / tw, tx = rem % tw;
      wino_input_tile(x + b * H * W * ci, H, W, ci, 2 * ty - top, 2 * tx - left, V + t * ci, tiles * ci);
      const int oy = 2 * ty, ox = 2 * tx;
      const int two_rows = oy + 1 < oh, two_cols = ox + 1 < ow;
      const float* g0 = dy + ((b * oh + oy) * ow + ox) * co; // the tile's first row of dy; the second is ow·co on
      float* dt = D + t * co;
      const int step = tiles * co;
      for (int o = 0; o < co; o += 4) { // A dy Aᵀ
        const v128_t g00 = wasm_v128_load(g0 + o);
        const v128_t g01 = two_cols ? wasm_v128_load(g0 + co + o) : zero;
        const v128_t g10 = two_rows ? wasm_v128_load(g0 + ow * co + o) : zero;
        const v128_t g11 = two_rows && two_cols ? wasm_v128_load(g0 + ow * co + co + o) : zero;
        const v128_t q[4][2] = {
          {g00, g01},
          {wasm_f32x4_add(g00, g10), wasm_f32x4_add(g01, g11)},
          {wasm_f32x4_sub(g00, g10), wasm_f32x4_sub(g01, g11)},
          {wasm_f32x4_neg(g10), wasm_f32x4_neg(g11)},
        };
        _Pragma("clang loop unroll(full)") for (int r = 0; r < 4; r++) {
          wasm_v128_store(dt + (r * 4 + 0) * step + o, q[r][0]);
          wasm_v128_store(dt + (r * 4 + 1) * step + o, wasm_f32x4_add(q[r][0], q[r][1]));
          wasm_v128_store(dt + (r * 4 + 2) * step + o, wasm_f32x4_sub(q[r][0], q[r][1]));
          wasm_v128_store(dt + (r * 4 + 3) * step + o, wasm_f32x4_neg(q[r][1]));
        }
      }
    }
    wino_grad_sums(V, tiles * ci, D, tiles * co, acc, 16, nt, ci, co);
  }
  const int step = ci * co;
  for (int c = 0; c < ci; c++) { // dw = Gᵀ acc G
    for (int o = 0; o < co; o += 4) {
      const float* a = acc + c * co + o;
      v128_t r[3][4];
      _Pragma("clang loop unroll(full)") for (int j = 0; j < 4; j++) {
        const v128_t a0 = wasm_v128_load(a + (0 * 4 + j) * step), a1 = wasm_v128_load(a + (1 * 4 + j) * step);
        const v128_t a2 = wasm_v128_load(a + (2 * 4 + j) * step), a3 = wasm_v128_load(a + (3 * 4 + j) * step);
        const v128_t h12 = wasm_f32x4_mul(half, wasm_f32x4_add(a1, a2));
        r[0][j] = wasm_f32x4_add(a0, h12);
        r[1][j] = wasm_f32x4_mul(half, wasm_f32x4_sub(a1, a2));
        r[2][j] = wasm_f32x4_add(h12, a3);
      }
      _Pragma("clang loop unroll(full)") for (int i = 0; i < 3; i++) {
        const v128_t h12 = wasm_f32x4_mul(half, wasm_f32x4_add(r[i][1], r[i][2]));
        float* out = dw + ((i * 3) * ci + c) * co + o;
        wasm_v128_store(out, wasm_f32x4_add(r[i][0], h12));
        wasm_v128_store(out + ci * co, wasm_f32x4_mul(half, wasm_f32x4_sub(r[i][1], r[i][2])));
        wasm_v128_store(out + 2 * ci * co, wasm_f32x4_add(h12, r[i][3]));
      }
    }
  }
}

// Winograd F(4×4, 3×3) and its transpose F(3×3, 4×4) for the filter gradient (Lavin & Gray 2016), per 4×4
// output tile from the 6×6 input tile around it: 36 products per tile and channel pair where F(2×2, 3×3)
// takes 64 (four of its tiles) and the direct sum 144. The interpolation points are 0, ±1, 1/2, −2 and ∞
// rather than the usual 0, ±1, ±2, ∞: in a float32 simulation of a 32-channel tile sum against float64 their
// rounding error is 1.9e-6 of the largest output where the usual points give 5.0e-6 (F(2×2, 3×3): 2.6e-7).
// (With the usual points, a ResNet trained 12 steps through the graph step ended 4.7e-3 off the tfjs path's
// validation loss; with these, 2e-4.) The transforms below are the Toom-Cook matrices of those points, A's
// columns the powers of each point (Aᵀ[i][j] = p_j^i), G's rows p_j^k over Π_{l≠j}(p_j − p_l) and Bᵀ's rows
// the coefficients of Π_{l≠j}(x − p_l), ∞ the last of each; written out term by term, zeros left out. The 36
// element-wise products are matrix products run by the same register blocks as F(2×2, 3×3)'s.

// The transforms of F(4×4, 3×3) are 36 slices of `tiles` rows, WINO4_PAD floats more than those rows apart: at
// 16 or 32 channels a power-of-two stride would put the 36 slices a tile touches into a few sets of the
// first-level cache.
#define WINO4_PAD 16

// 2 in every lane, where `nonzero` is not 0 (always, at the calls below), as a value LLVM cannot fold: a multiply by
// the constant 2 it turns into x + x, and the transforms wait on the adds (2 a cycle) while the multiplier idles.
static inline v128_t w4_two(int nonzero) { return wasm_f32x4_splat(nonzero ? 2.0f : 0.0f); }

// Bᵀ (6 → 6), an input column or row. Its rows are Π_{l≠j}(x − p_l): those of 0, 1/2, −2 and ∞ share the factor
// x² − 1, so they are sums of the differences f_k = x[k + 2] − x[k]; those of ±1 share x(x − 1/2)(x + 2), so
// they are a ± b. 6 multiplies and 14 adds where the terms one by one take 10 and 24. `two` is 2 (`w4_two`).
static inline void w4_bt(const v128_t* x, v128_t* r, v128_t two) {
  const v128_t h = wasm_f32x4_splat(1.5f);
  const v128_t f0 = wasm_f32x4_sub(x[2], x[0]), f1 = wasm_f32x4_sub(x[3], x[1]);
  const v128_t f2 = wasm_f32x4_sub(x[4], x[2]), f3 = wasm_f32x4_sub(x[5], x[3]);
  const v128_t a = wasm_f32x4_add(f2, wasm_f32x4_mul(x[3], h)), b = wasm_f32x4_add(f1, wasm_f32x4_mul(x[2], h));
  r[0] = wasm_f32x4_add(f2, wasm_f32x4_sub(wasm_f32x4_mul(f1, h), f0));
  r[1] = wasm_f32x4_add(a, b);
  r[2] = wasm_f32x4_sub(a, b);
  r[3] = wasm_f32x4_add(wasm_f32x4_mul(f1, two), f2);
  r[4] = wasm_f32x4_sub(f2, wasm_f32x4_mul(f1, wasm_f32x4_splat(0.5f)));
  r[5] = wasm_f32x4_add(f3, wasm_f32x4_sub(wasm_f32x4_mul(f2, h), f1));
}

// Aᵀ (6 → 4), a product column or row; the columns of ±1 through their sum and difference. `two` is 2 (`w4_two`).
static inline void w4_at(const v128_t* x, v128_t* r, v128_t two) {
  const v128_t s = wasm_f32x4_add(x[1], x[2]), d = wasm_f32x4_sub(x[1], x[2]);
  r[0] = wasm_f32x4_add(wasm_f32x4_add(x[0], s), wasm_f32x4_add(x[3], x[4]));
  r[1] = wasm_f32x4_sub(wasm_f32x4_add(d, wasm_f32x4_mul(x[3], wasm_f32x4_splat(0.5f))), wasm_f32x4_mul(x[4], two));
  r[2] = wasm_f32x4_add(wasm_f32x4_add(s, wasm_f32x4_mul(x[3], wasm_f32x4_splat(0.25f))), wasm_f32x4_mul(x[4], wasm_f32x4_splat(4.0f)));
  r[3] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_add(d, wasm_f32x4_mul(x[3], wasm_f32x4_splat(0.125f))), wasm_f32x4_mul(x[4], wasm_f32x4_splat(8.0f))), x[5]);
}

// G (3 → 6), a filter column or row
static inline void w4_g(const v128_t* x, v128_t* r) {
  r[0] = x[0];
  r[1] = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(x[0], wasm_f32x4_splat(0.3333333333333333f)), wasm_f32x4_mul(x[1], wasm_f32x4_splat(0.3333333333333333f))), wasm_f32x4_mul(x[2], wasm_f32x4_splat(0.3333333333333333f)));
  r[2] = wasm_f32x4_sub(wasm_f32x4_add(wasm_f32x4_neg(wasm_f32x4_mul(x[0], wasm_f32x4_splat(0.3333333333333333f))), wasm_f32x4_mul(x[1], wasm_f32x4_splat(0.3333333333333333f))), wasm_f32x4_mul(x[2], wasm_f32x4_splat(0.3333333333333333f)));
  r[3] = wasm_f32x4_sub(wasm_f32x4_sub(wasm_f32x4_neg(wasm_f32x4_mul(x[0], wasm_f32x4_splat(1.0666666666666667f))), wasm_f32x4_mul(x[1], wasm_f32x4_splat(0.5333333333333333f))), wasm_f32x4_mul(x[2], wasm_f32x4_splat(0.26666666666666666f)));
  r[4] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(x[0], wasm_f32x4_splat(0.06666666666666667f)), wasm_f32x4_mul(x[1], wasm_f32x4_splat(0.13333333333333333f))), wasm_f32x4_mul(x[2], wasm_f32x4_splat(0.26666666666666666f)));
  r[5] = x[2];
}

// A (4 → 6), a column or row of dy; the rows of ±1 through the even and odd sums
static inline void w4_a(const v128_t* x, v128_t* r) {
  const v128_t e = wasm_f32x4_add(x[0], x[2]), o = wasm_f32x4_add(x[1], x[3]);
  r[0] = x[0];
  r[1] = wasm_f32x4_add(e, o);
  r[2] = wasm_f32x4_sub(e, o);
  r[3] = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(x[0], wasm_f32x4_mul(x[1], wasm_f32x4_splat(0.5f))), wasm_f32x4_mul(x[2], wasm_f32x4_splat(0.25f))), wasm_f32x4_mul(x[3], wasm_f32x4_splat(0.125f)));
  r[4] = wasm_f32x4_sub(wasm_f32x4_add(wasm_f32x4_sub(x[0], wasm_f32x4_mul(x[1], wasm_f32x4_splat(2.0f))), wasm_f32x4_mul(x[2], wasm_f32x4_splat(4.0f))), wasm_f32x4_mul(x[3], wasm_f32x4_splat(8.0f)));
  r[5] = x[3];
}

// Gᵀ (6 → 3), a column or row of the filter gradient's sums
static inline void w4_gt(const v128_t* x, v128_t* r) {
  r[0] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_sub(wasm_f32x4_add(x[0], wasm_f32x4_mul(x[1], wasm_f32x4_splat(0.3333333333333333f))), wasm_f32x4_mul(x[2], wasm_f32x4_splat(0.3333333333333333f))), wasm_f32x4_mul(x[3], wasm_f32x4_splat(1.0666666666666667f))), wasm_f32x4_mul(x[4], wasm_f32x4_splat(0.06666666666666667f)));
  r[1] = wasm_f32x4_sub(wasm_f32x4_sub(wasm_f32x4_add(wasm_f32x4_mul(x[1], wasm_f32x4_splat(0.3333333333333333f)), wasm_f32x4_mul(x[2], wasm_f32x4_splat(0.3333333333333333f))), wasm_f32x4_mul(x[3], wasm_f32x4_splat(0.5333333333333333f))), wasm_f32x4_mul(x[4], wasm_f32x4_splat(0.13333333333333333f)));
  r[2] = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_sub(wasm_f32x4_mul(x[1], wasm_f32x4_splat(0.3333333333333333f)), wasm_f32x4_mul(x[2], wasm_f32x4_splat(0.3333333333333333f))), wasm_f32x4_mul(x[3], wasm_f32x4_splat(0.26666666666666666f))), wasm_f32x4_mul(x[4], wasm_f32x4_splat(0.26666666666666666f))), x[5]);
}


// The rows of x (from px, rows + 2 of them, xRow floats each) and of a second tensor (from pd, `rows` of dRow
// floats) that a batch of F(4×4, 3×3) tiles reads, up to xEnd and dEnd, read ahead (`read_ahead_lines`) before the
// batch's transforms: the prefetchers stream two runs of consecutive lines faster than the transforms' scattered
// reads fetch them (the filter gradient, x and dy, a call with other kernels run between calls: 5–10% faster; with
// x and dy in cache, 1–2% slower).
static inline __attribute__((always_inline)) void wino4_read_ahead(const float* px, const float* xEnd,
                                                                   const float* pd, const float* dEnd, int rows,
                                                                   int xRow, int dRow) {
  read_ahead_lines(px, min_p(px + (rows + 2) * xRow, xEnd));
  read_ahead_lines(pd, min_p(pd + rows * dRow, dEnd));
}

// The forward pass keeps its products tile by tile, four channels at a time: the 36 products of a tile's channels
// 4g…4g+3 are 36 consecutive vectors, a block of W4 floats ([tiles, co/4, 36, 4]), which the output transform
// reads and writes at fixed offsets from one address (36 offsets ξ·step took V8 a register or stack slot each).
#define W4 144

// V = Bᵀ d B for the 6×6 input tile at (iy0, ix0) of img [H, W, ci], four channels at a time: v[ξ·step + c] for
// ξ = 6r + s. Pixels outside the image read `zeros` (ci zero floats), rows outside are stored as zeros. In two
// passes, d B row by row into e, then Bᵀ (d B) column by column from e into v: a pass keeps 12 vectors live where
// one keeps all 36 (V8 has 16 SIMD registers), and each pixel's address is picked once a row, not once a channel
// group. (d B)[r, s] of channels c… goes to e + (6r + s)·es + c·ec: v itself (es = step, ec = 1), or a scratch
// of 36·ci floats laid out as [ci/4, 36, 4] (es = 4, ec = 36), whose addresses are fixed offsets from one base
// where each of v's 36 in-place addresses took V8 a register or a stack slot.
static inline __attribute__((always_inline)) void wino4_input_via(const float* img, const float* zeros, int H, int W,
                                                                  int ci, int iy0, int ix0, float* v, int step,
                                                                  float* e, int es, int ec) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  const v128_t two = w4_two(step);
  for (int r = 0; r < 6; r++) { // d B, row r
    const int iy = iy0 + r;
    float* er = e + r * 6 * es;
    if (iy < 0 || iy >= H) {
      for (int c = 0; c < ci; c += 4)
        _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) wasm_v128_store(er + s * es + c * ec, zero);
      continue;
    }
    const float* row = img + iy * W * ci;
    const float* p[6];
    _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) {
      const int ix = ix0 + s;
      p[s] = ix >= 0 && ix < W ? row + ix * ci : zeros;
    }
    for (int c = 0; c < ci; c += 4) {
      v128_t d[6], db[6];
      _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) d[s] = wasm_v128_load(p[s] + c);
      w4_bt(d, db, two);
      _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) wasm_v128_store(er + s * es + c * ec, db[s]);
    }
  }
  for (int c = 0; c < ci; c += 4) { // Bᵀ (d B), column by column
    const float* ec0 = e + c * ec;
    float* vt = v + c;
    _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) {
      v128_t db[6], col[6];
      _Pragma("clang loop unroll(full)") for (int r = 0; r < 6; r++) db[r] = wasm_v128_load(ec0 + (r * 6 + s) * es);
      w4_bt(db, col, two);
      _Pragma("clang loop unroll(full)") for (int r = 0; r < 6; r++) wasm_v128_store(vt + (r * 6 + s) * step, col[r]);
    }
  }
}

// `wino4_input_via` through v itself
static __attribute__((noinline)) void wino4_input_tile(const float* img, const float* zeros, int H, int W, int ci,
                                                       int iy0, int ix0, float* v, int step) {
  wino4_input_via(img, zeros, H, W, ci, iy0, ix0, v, step, v, step, 1);
}

// `wino4_input_via` through the scratch T (36·ci floats)
static __attribute__((noinline)) void wino4_input_tile_via(const float* img, const float* zeros, int H, int W, int ci,
                                                           int iy0, int ix0, float* v, int step, float* T) {
  wino4_input_via(img, zeros, H, W, ci, iy0, ix0, v, step, T, 4, 36);
}

// Row i of u's 6 × 6 transforms (G g Gᵀ, below) for every channel pair: six output streams ci·co floats apart.
static inline __attribute__((always_inline)) void wino4_filter_row(const float* w, float* u, int ci, int co, int i) {
  for (int c = 0; c < ci; c++) {
    for (int o = 0; o < co; o += 4) {
      v128_t t[3], row[6];
      _Pragma("clang loop unroll(full)") for (int k = 0; k < 3; k++) { // (G g)[i], column k
        v128_t g[3], col[6];
        _Pragma("clang loop unroll(full)") for (int r = 0; r < 3; r++) g[r] = wasm_v128_load(w + ((r * 3 + k) * ci + c) * co + o);
        w4_g(g, col);
        t[k] = col[i];
      }
      w4_g(t, row); // (G g Gᵀ)[i]
      _Pragma("clang loop unroll(full)") for (int j = 0; j < 6; j++) wasm_v128_store(u + ((i * 6 + j) * ci + c) * co + o, row[j]);
    }
  }
}

// u[ξ, c, o] = (G g Gᵀ)[ξ] for the filter g = w[·, ·, c, o] [3, 3, ci, co]; u is [36, ci, co], co in fours. A row
// of the transforms at a time: all 36 at once are 36 streams a multiple of 4 KB apart at 32 and 64 channels,
// which fell into one set of the first-level cache, every store a miss.
EXPORT("winograd4_filter")
void winograd4_filter(const float* w, float* u, int ci, int co) {
  wino4_filter_row(w, u, ci, co, 0);
  wino4_filter_row(w, u, ci, co, 1);
  wino4_filter_row(w, u, ci, co, 2);
  wino4_filter_row(w, u, ci, co, 3);
  wino4_filter_row(w, u, ci, co, 4);
  wino4_filter_row(w, u, ci, co, 5);
}

// The tile after tile (b, ty, tx) of a batch of th × tw tiles an image, row by row
static inline __attribute__((always_inline)) void next_tile(int* b, int* ty, int* tx, int th, int tw) {
  if (++*tx < tw) return;
  *tx = 0;
  if (++*ty < th) return;
  *ty = 0;
  ++*b;
}

// Y = Aᵀ M A for one tile's products m ([co/4, 36, 4], W4 floats a group of four channels), then bias and
// activation, into the tile's `rows` × `cols` pixels at out (`orow` floats a row, `co` a pixel); where `win` is
// not null, out and win point at the tile's first 2×2 pooling window instead (orow floats a row of windows).
// Aᵀ M column by column into T (24 vectors), then (Aᵀ M) A two rows at a time: 12 vectors live where the whole
// tile at once keeps 24 (V8 has 16 SIMD registers). T at a fixed address rather than M in place, and a function
// of its own: each in-place address was a wasm local (load and store), which V8 spilled.
static __attribute__((noinline)) void wino4_output_tile(const float* m, float* T, float* out, unsigned char* win,
                                                        int orow, int co, int rows, int cols, const float* bias,
                                                        int act, v128_t floor) {
  const v128_t two = w4_two(rows);
  const v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  for (int o = 0; o < co; o += 4, m += W4) {
    _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) {
      v128_t c[6], col[4];
      _Pragma("clang loop unroll(full)") for (int r = 0; r < 6; r++) c[r] = wasm_v128_load(m + 4 * (r * 6 + s));
      w4_at(c, col, two);
      _Pragma("clang loop unroll(full)") for (int i = 0; i < 4; i++) wasm_v128_store(T + 4 * (i * 6 + s), col[i]);
    }
    const v128_t bv = bias ? wasm_v128_load(bias + o) : zero;
    _Pragma("clang loop unroll(full)") for (int i = 0; i < 4; i += 2) {
      v128_t y[2][4];
      _Pragma("clang loop unroll(full)") for (int k = 0; k < 2; k++) {
        v128_t a[6];
        _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) a[s] = wasm_v128_load(T + 4 * ((i + k) * 6 + s));
        w4_at(a, y[k], two);
        _Pragma("clang loop unroll(full)") for (int j = 0; j < 4; j++) {
          if (bias) y[k][j] = wasm_f32x4_add(y[k][j], bv);
          if (act) y[k][j] = wasm_f32x4_pmax(y[k][j], zero);
          if (act == 2) y[k][j] = wasm_f32x4_pmin(y[k][j], six);
        }
      }
      // Unrolled, the edges tested inside: an array indexed by a loop variable would live in linear memory.
      if (win) {
        if (i + 1 >= rows) continue;
        _Pragma("clang loop unroll(full)") for (int j = 0; j < 4; j += 2) {
          if (j + 1 >= cols) continue;
          const v128_t mx = max_of_4(y[0][j], y[0][j + 1], y[1][j], y[1][j + 1]);
          const int p = i / 2 * orow + j / 2 * co + o;
          wasm_v128_store(out + p, mx);
          store_winners(win + p, y[0][j], y[0][j + 1], y[1][j], y[1][j + 1], mx, floor);
        }
        continue;
      }
      _Pragma("clang loop unroll(full)") for (int k = 0; k < 2; k++) {
        float* row = out + (i + k) * orow + o;
        _Pragma("clang loop unroll(full)") for (int j = 0; j < 4; j++)
          if (i + k < rows && j < cols) wasm_v128_store(row + j * co, y[k][j]);
      }
    }
  }
}

// The convolution of x [B, H, W, ci] with the filter whose transform `winograd4_filter` wrote into u, as
// `conv2d_winograd` takes it, the 2×2 max pooling after it included (`win` not null: each 4×4 tile holds
// 2×2 pooling windows; a window cut by the output's odd edge is in none). `scratch` holds
// 36·(tiles·(ci + co) + ci + 2·WINO4_PAD) floats: `tiles` tiles of one tile row are transformed at a time.
EXPORT("conv2d_winograd4")
void conv2d_winograd4(const float* x, const float* u, float* out, float* scratch, int tiles, const float* bias, int act,
                      unsigned char* win, int floorZero, int B, int H, int W, int ci, int oh, int ow, int co, int top,
                      int left) {
  const v128_t floor = wasm_f32x4_splat(floorZero ? 0.0f : -__builtin_inff());
  const int OH = oh / 2, OW = ow / 2;
  const int vs = tiles * ci + WINO4_PAD;
  float* V = scratch;           // [36, tiles, ci], the ξ-th at V + ξ·vs: the input tiles' transforms
  float* M = scratch + 36 * vs; // [tiles, co/4, 36, 4]: their products with the filter's
  float* T = M + 36 * tiles * co; // 24 vectors: Aᵀ M of one tile's four channels
  float* Tin = T + 96;            // [ci/4, 36, 4]: d B of one tile
  const int th = (oh + 3) / 4, tw = (ow + 3) / 4, total = B * th * tw;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int b0 = 0, ty0 = 0, tx0 = 0; // tile t0's image, row and column: counted, not divided out tile by tile
  for (int t0 = 0; t0 < total; t0 += tiles) { // `tiles` tiles at a time, across rows and images
    const int nt = min_i(tiles, total - t0);
    for (int c = 0; c < ci; c += 4) wasm_v128_store(M + c, zero); // the zeros outside the image, until the products
    int b = b0, ty = ty0, tx = tx0;
    // The rows of x these tiles read and of out they write, a float a cache line in order (see wino4_read_ahead).
    wino4_read_ahead(x + (b * H + max_i(0, 4 * ty - top)) * W * ci, x + B * H * W * ci,
                     win ? out : out + (b * oh + 4 * ty) * ow * co, win ? out : out + B * oh * ow * co,
                     4 * ((tx + nt + tw - 1) / tw), W * ci, ow * co);
    for (int t = 0; t < nt; t++) {
      wino4_input_tile_via(x + b * H * W * ci, M, H, W, ci, 4 * ty - top, 4 * tx - left, V + t * ci, vs, Tin);
      next_tile(&b, &ty, &tx, th, tw);
    }
    wino_products(V, vs, u, M, 4, 36 * co, W4, 36, nt, ci, co);
    b = b0, ty = ty0, tx = tx0;
    for (int t = 0; t < nt; t++) { // Y = Aᵀ M A, then bias and activation
      const int oy = 4 * ty, ox = 4 * tx;
      const int rows = min_i(4, oh - oy), cols = min_i(4, ow - ox);
      if (win) {
        const int p = ((b * OH + oy / 2) * OW + ox / 2) * co;
        wino4_output_tile(M + t * 36 * co, T, out + p, win + p, OW * co, co, rows, cols, bias, act, floor);
      } else {
        wino4_output_tile(M + t * 36 * co, T, out + ((b * oh + oy) * ow + ox) * co, 0, ow * co, co, rows, cols, bias,
                          act, floor);
      }
      next_tile(&b, &ty, &tx, th, tw);
    }
    b0 = b, ty0 = ty, tx0 = tx;
  }
}

// The filter gradient's transforms, V [36, tiles, ci] (the ξ-th at V + ξ·vs, vs = tiles·ci + WINO4_PAD) and D
// [36, tiles, co] (ds = tiles·co + WINO4_PAD), with ci, co and tiles constants where they can be (below): the
// transforms then read and write at fixed offsets from one address (36 offsets ξ·vs took V8 a register or stack
// slot each).

// d B for the rows r0…5 of the 6×6 input tile at (iy0, ix0) of img [H, W, ci] (reads outside are `zeros`, ci zero
// floats; rows outside are stored as zeros), row r at v + 6r·step, four channels at a time: the first of
// `wino4_input_tile`'s two passes. The filter gradient shares rows 0 and 1 with those 4 and 5 of the tile above.
static inline __attribute__((always_inline)) void wino4_grad_input_rows(const float* img, const float* zeros, int H,
                                                                        int W, int ci, int iy0, int ix0, float* v,
                                                                        int step, int r0) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int r = r0; r < 6; r++) {
    const int iy = iy0 + r;
    float* vr = v + r * 6 * step;
    const int inside = iy >= 0 && iy < H;
    const float* row = img + (inside ? iy : 0) * W * ci; // (no address outside the image, even unread)
    const float* p[6];
    _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) {
      const int ix = ix0 + s;
      p[s] = inside && ix >= 0 && ix < W ? row + ix * ci : zeros;
    }
    for (int c = 0; c < ci; c += 4) {
      v128_t d[6], e[6];
      _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) d[s] = wasm_v128_load(p[s] + c);
      if (inside) {
        w4_bt(d, e, w4_two(step));
      } else {
        _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) e[s] = zero;
      }
      _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) wasm_v128_store(vr + s * step + c, e[s]);
    }
  }
}

// Rows 0 and 1 of a tile's d B from rows 4 and 5 of the tile above it (at `above`, not yet through Bᵀ): the
// same pixels.
static inline __attribute__((always_inline)) void wino4_grad_shared_rows(const float* above, float* v, int ci,
                                                                         int step) {
  for (int c = 0; c < ci; c += 4)
    _Pragma("clang loop unroll(full)") for (int k = 0; k < 12; k++)
      wasm_v128_store(v + k * step + c, wasm_v128_load(above + (24 + k) * step + c));
}

// Bᵀ (d B) in place, column by column, for the tile whose rows `wino4_grad_input_rows` left at v: the second pass.
static inline __attribute__((always_inline)) void wino4_grad_input_columns(float* v, int ci, int step) {
  for (float *vt = v, *end = v + ci; vt < end; vt += 4) {
    _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) {
      v128_t e[6], col[6];
      _Pragma("clang loop unroll(full)") for (int r = 0; r < 6; r++) e[r] = wasm_v128_load(vt + (r * 6 + s) * step);
      w4_bt(e, col, w4_two(step));
      _Pragma("clang loop unroll(full)") for (int r = 0; r < 6; r++) wasm_v128_store(vt + (r * 6 + s) * step, col[r]);
    }
  }
}

// A dy for one column of a dy tile (`rows` pixels rowStep floats apart at p, zeros below them), four channels
// at a time: the transforms 6r + j of the column's tile at d (the r-th 6r·step floats on).
static inline __attribute__((always_inline)) void wino4_dy_column(const float* p, int rowStep, int rows, float* d,
                                                                  int step, int co) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int o = 0; o < co; o += 4) {
    v128_t g[4], col[6];
    _Pragma("clang loop unroll(full)") for (int i = 0; i < 4; i++) g[i] = i < rows ? wasm_v128_load(p + i * rowStep + o) : zero;
    w4_a(g, col);
    _Pragma("clang loop unroll(full)") for (int r = 0; r < 6; r++) wasm_v128_store(d + r * 6 * step + o, col[r]);
  }
}

// D = A dy Aᵀ for the 4×4 tile of dy [B, oh, ow, co] at (b, oy, ox) (zeros outside its edges), d[ξ·step + o] (the
// tile's place in D), in two passes: A dy column by column, then (A dy) Aᵀ row by row (12 vectors live where one
// pass keeps 24).
static inline __attribute__((always_inline)) void wino4_dy_tile(const float* dy, int b, int oy, int ox, int oh, int ow,
                                                                int co, float* d, int step) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  const int rows = min_i(4, oh - oy), cols = min_i(4, ow - ox);
  const float* g0 = dy + ((b * oh + oy) * ow + ox) * co;
  for (int j = 0; j < 4; j++) {
    float* dj = d + j * step;
    if (j >= cols) {
      for (int o = 0; o < co; o += 4)
        _Pragma("clang loop unroll(full)") for (int r = 0; r < 6; r++) wasm_v128_store(dj + r * 6 * step + o, zero);
    } else if (rows == 4) {
      wino4_dy_column(g0 + j * co, ow * co, 4, dj, step, co);
    } else {
      wino4_dy_column(g0 + j * co, ow * co, rows, dj, step, co);
    }
  }
  for (int r = 0; r < 6; r++) {
    float* dr = d + r * 6 * step;
    for (int o = 0; o < co; o += 4) {
      v128_t q[4], row[6];
      _Pragma("clang loop unroll(full)") for (int j = 0; j < 4; j++) q[j] = wasm_v128_load(dr + j * step + o);
      w4_a(q, row);
      _Pragma("clang loop unroll(full)") for (int s = 0; s < 6; s++) wasm_v128_store(dr + s * step + o, row[s]);
    }
  }
}

// Gᵀ (6 → 3) over n floats: out + k·ostep = (Gᵀ x)[k] for x[l] at a + l·astep, four channels at a time.
static void wino4_gt_pass(const float* a, int astep, float* out, int ostep, int n) {
  for (int i = 0; i < n; i += 4) {
    v128_t x[6], res[3];
    _Pragma("clang loop unroll(full)") for (int l = 0; l < 6; l++) x[l] = wasm_v128_load(a + l * astep + i);
    w4_gt(x, res);
    _Pragma("clang loop unroll(full)") for (int k = 0; k < 3; k++) wasm_v128_store(out + k * ostep + i, res[k]);
  }
}

// acc += the sums over all tiles, `tiles` at a time (constants where inlined with them). The input transform shares
// rows between tiles (below) where the sizes are `fixed` constants; elsewhere it is `wino4_input_tile`, whose
// addresses as variables made sharing a little slower than not.
static inline __attribute__((always_inline)) void wino4_grad_tiles(const float* x, const float* dy, float* acc, float* V,
                                                                   float* D, int tiles, int B, int H, int W, int ci,
                                                                   int oh, int ow, int co, int top, int left,
                                                                   int fixed) {
  const int vs = tiles * ci + WINO4_PAD, ds = tiles * co + WINO4_PAD;
  const int th = (oh + 3) / 4, tw = (ow + 3) / 4, total = B * th * tw;
  int b = 0, ty = 0, tx = 0; // the batch's first tile: counted, not divided out tile by tile
  for (int t0 = 0; t0 < total; t0 += tiles) {
    const int nt = min_i(tiles, total - t0);
    const int b0 = b, ty0 = ty, tx0 = tx;
    for (int c = 0; c < ci; c += 4) wasm_v128_store(D + c, wasm_f32x4_splat(0.0f)); // zeros, until A dy Aᵀ
    wino4_read_ahead(x + (b * H + max_i(0, 4 * ty - top)) * W * ci, x + B * H * W * ci,
                     dy + (b * oh + 4 * ty) * ow * co, dy + B * oh * ow * co, 4 * ((tx + nt + tw - 1) / tw), W * ci,
                     ow * co);
    for (int t = 0; t < nt && !fixed; t++) {
      wino4_input_tile(x + b * H * W * ci, D, H, W, ci, 4 * ty - top, 4 * tx - left, V + t * ci, vs);
      if (++tx == tw) tx = 0, ty = ty + 1 == th ? (b++, 0) : ty + 1;
    }
    // V = Bᵀ d B, d B a tile row ahead of Bᵀ (d B): a tile below another in the batch takes its first two rows of
    // d B from the other's last two (a third fewer of them computed at 32 × 32).
    for (int t = 0; t < nt && fixed; t++) {
      float* v = V + t * ci;
      const int shared = ty > 0 && t >= tw;
      if (shared) wino4_grad_shared_rows(v - tw * ci, v, ci, vs);
      wino4_grad_input_rows(x + b * H * W * ci, D, H, W, ci, 4 * ty - top, 4 * tx - left, v, vs, shared ? 2 : 0);
      if (t >= tw) wino4_grad_input_columns(v - tw * ci, ci, vs);
      if (++tx == tw) tx = 0, ty = ty + 1 == th ? (b++, 0) : ty + 1;
    }
    for (int t = max_i(0, nt - tw); t < nt && fixed; t++) wino4_grad_input_columns(V + t * ci, ci, vs);
    b = b0, ty = ty0, tx = tx0;
    for (int t = 0; t < nt; t++) {
      wino4_dy_tile(dy, b, 4 * ty, 4 * tx, oh, ow, co, D + t * co, ds);
      if (++tx == tw) tx = 0, ty = ty + 1 == th ? (b++, 0) : ty + 1;
    }
    wino_grad_sums(V, vs, D, ds, acc, 36, nt, ci, co);
  }
}

// The filter gradient of a 3×3, stride-1, dilation-1 convolution by F(3×3, 4×4), the transpose of the forward
// F(4×4, 3×3): dw = Gᵀ [ Σ_tiles (Bᵀ d B) ⊙ (A dy Aᵀ) ] G, as `conv2d_filter_grad_winograd` with 4×4 tiles of
// dy (zeros outside its edges). `scratch` holds 36·(ci·co + tiles·(ci + co) + 2·WINO4_PAD) floats.
EXPORT("conv2d_filter_grad_winograd4")
void conv2d_filter_grad_winograd4(const float* x, const float* dy, float* dw, float* scratch, int tiles, int B, int H,
                                  int W, int ci, int oh, int ow, int co, int top, int left) {
  float* acc = scratch;                                 // [36, ci, co]: the sums in the transformed domain
  float* V = acc + 36 * ci * co;                        // [36, tiles, ci]
  float* D = V + 36 * (tiles * ci + WINO4_PAD);         // [36, tiles, co]
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int i = 0; i < 36 * ci * co; i += 4) wasm_v128_store(acc + i, zero);
  // The stride-1 layers of CIFAR ResNets (16, 32 and 64 channels, as many tiles as `winograd4GradTiles` takes)
  // with their sizes as constants; any other with them as variables.
  if (ci == 16 && co == 16 && tiles == 64)
    wino4_grad_tiles(x, dy, acc, V, D, 64, B, H, W, 16, oh, ow, 16, top, left, 1);
  else if (ci == 32 && co == 32 && tiles == 64)
    wino4_grad_tiles(x, dy, acc, V, D, 64, B, H, W, 32, oh, ow, 32, top, left, 1);
  else if (ci == 64 && co == 64 && tiles == 32)
    wino4_grad_tiles(x, dy, acc, V, D, 32, B, H, W, 64, oh, ow, 64, top, left, 1);
  else
    wino4_grad_tiles(x, dy, acc, V, D, tiles, B, H, W, ci, oh, ow, co, top, left, 0);
  // dw = Gᵀ acc G: Gᵀ acc column by column into acc's first three rows, then (Gᵀ acc) G row by row. Six streams
  // ci·co floats apart a pass: all 36 at once, a multiple of 4 KB apart at 32 and 64 channels, fell into one set
  // of the first-level cache.
  const int cs = ci * co;
  for (int j = 0; j < 6; j++) wino4_gt_pass(acc + j * cs, 6 * cs, acc + j * cs, 6 * cs, cs);
  for (int r = 0; r < 3; r++) wino4_gt_pass(acc + r * 6 * cs, cs, dw + r * 3 * cs, cs, cs);
}

// Max pooling over 2×2 windows of stride 2 that lie inside the image, NHWC, C a multiple of 4: each
// output is its window's `max_of_4`.
EXPORT("max_pool_2x2")
void max_pool_2x2(const float* x, float* out, int B, int H, int W, int C, int OH, int OW) {
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      const float* r0 = x + ((b * H + oh * 2) * W) * C;
      const float* r1 = r0 + W * C;
      float* o = out + ((b * OH + oh) * OW) * C;
      for (int ow = 0; ow < OW; ow++, r0 += 2 * C, r1 += 2 * C, o += C) {
        for (int c = 0; c < C; c += 4) {
          wasm_v128_store(o + c, max_of_4(wasm_v128_load(r0 + c), wasm_v128_load(r0 + C + c), wasm_v128_load(r1 + c),
                                          wasm_v128_load(r1 + C + c)));
        }
      }
    }
  }
}

// The gradient of max pooling for windows that do not overlap (strides at least the window) and lie
// inside the image (no padding), NHWC, C a multiple of 4. Each window's gradient goes to its first
// strictly largest input (NaN and −∞ never win; a window with no winner gives none), as the cpu
// backend's MaxPoolGrad does; with windows apart there is nothing to sum, so the result is exact.
EXPORT("max_pool_grad")
void max_pool_grad(const float* x, const float* dy, float* dx, int B, int H, int W, int C, int OH, int OW,
                   int fh, int fw, int sh, int sw) {
  const int covered = sh == fh && sw == fw && OH * fh == H && OW * fw == W;
  if (!covered) {
    const int total = B * H * W * C;
    for (int i = 0; i < total; i += 4) wasm_v128_store(dx + i, wasm_f32x4_splat(0.0f));
  }
  const v128_t minusInf = wasm_f32x4_splat(-__builtin_inff());
  if (fh == 2 && fw == 2 && sh == 2 && sw == 2) {
    // 2×2 windows, stride 2 (nearly every CNN's pooling), unrolled: M is the window's `max_of_4`, and the
    // first input equal to it wins, which is what the sequential strict comparison below picks. A window
    // whose M is −∞ gives nothing.
    // One call, steady state: 64×32×32×16 2.3 → 0.6 ms, 64×14×14×32 0.43 → 0.15 ms.
    for (int b = 0; b < B; b++) {
      for (int oh = 0; oh < OH; oh++) {
        for (int ow = 0; ow < OW; ow++) {
          const int base = ((b * H + oh * 2) * W + ow * 2) * C;
          const float* g = dy + ((b * OH + oh) * OW + ow) * C;
          const float *x0 = x + base, *x1 = x0 + C, *x2 = x0 + W * C, *x3 = x2 + C;
          float *d0 = dx + base, *d1 = d0 + C, *d2 = d0 + W * C, *d3 = d2 + C;
          for (int c = 0; c < C; c += 4) {
            const v128_t v0 = wasm_v128_load(x0 + c), v1 = wasm_v128_load(x1 + c);
            const v128_t v2 = wasm_v128_load(x2 + c), v3 = wasm_v128_load(x3 + c);
            const v128_t m = max_of_4(v0, v1, v2, v3);
            const v128_t gv = wasm_v128_and(wasm_v128_load(g + c), wasm_f32x4_gt(m, minusInf));
            const v128_t e0 = wasm_f32x4_eq(v0, m);
            const v128_t e1 = wasm_v128_andnot(wasm_f32x4_eq(v1, m), e0);
            const v128_t e01 = wasm_v128_or(e0, e1);
            const v128_t e2 = wasm_v128_andnot(wasm_f32x4_eq(v2, m), e01);
            const v128_t e3 = wasm_v128_andnot(wasm_f32x4_eq(v3, m), wasm_v128_or(e01, e2));
            wasm_v128_store(d0 + c, wasm_v128_and(gv, e0));
            wasm_v128_store(d1 + c, wasm_v128_and(gv, e1));
            wasm_v128_store(d2 + c, wasm_v128_and(gv, e2));
            wasm_v128_store(d3 + c, wasm_v128_and(gv, e3));
          }
        }
      }
    }
    return;
  }
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      for (int ow = 0; ow < OW; ow++) {
        const int base = ((b * H + oh * sh) * W + ow * sw) * C;
        const float* g = dy + ((b * OH + oh) * OW + ow) * C;
        for (int c = 0; c < C; c += 4) {
          v128_t m = minusInf;
          v128_t k = wasm_i32x4_splat(-1);
          for (int r = 0, t = 0; r < fh; r++) {
            for (int q = 0; q < fw; q++, t++) {
              const v128_t v = wasm_v128_load(x + base + (r * W + q) * C + c);
              const v128_t gt = wasm_f32x4_gt(v, m);
              m = wasm_v128_bitselect(v, m, gt);
              k = wasm_v128_bitselect(wasm_i32x4_splat(t), k, gt);
            }
          }
          const v128_t gv = wasm_v128_load(g + c);
          for (int r = 0, t = 0; r < fh; r++) {
            for (int q = 0; q < fw; q++, t++) {
              const v128_t won = wasm_i32x4_eq(k, wasm_i32x4_splat(t));
              wasm_v128_store(dx + base + (r * W + q) * C + c, wasm_v128_and(gv, won));
            }
          }
        }
      }
    }
  }
}

// A convolution as `conv2d` (dilation 1) followed by 2×2, stride-2 max pooling, without the convolution's
// output in memory: each block is one pooling window × 4·NV channels, its two rows summed one after the
// other by `conv2d`'s register blocks (2 pixels × 16 channels was the fastest; 4 pixels × 8 lost what the
// fusion saves), with bias and activation applied; the window's max goes to `out` [B, oh/2, ow/2, co],
// with its winner in `win` as `max_pool_2x2_winners` records it (floor 0 after a relu: `floorZero`).
// The same float32 values as `conv2d` then `max_pool_2x2_winners`. co a multiple of 4.
#define CONV_POOL_BLOCK(NV)                                                                                \
  static void conv_pool_block_##NV(const float* img, const float* w, float* out, unsigned char* win,       \
                                   const float* zeros, const float* bias, int act, v128_t floor, int iyA,  \
                                   int iyB, int xo, int H, int W, int ci, int co, int fh, int fw, int sw,  \
                                   int left) {                                                             \
    v128_t ra[2 * NV], rb[2 * NV];                                                                         \
    conv_acc_2_##NV(img, w, zeros, bias, act, iyA, xo, H, W, ci, co, fh, fw, sw, 1, 1, left, ra);          \
    conv_acc_2_##NV(img, w, zeros, bias, act, iyB, xo, H, W, ci, co, fh, fw, sw, 1, 1, left, rb);          \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                      \
      const v128_t y0 = ra[v], y1 = ra[NV + v], y2 = rb[v], y3 = rb[NV + v];                               \
      const v128_t m = max_of_4(y0, y1, y2, y3);                                                           \
      wasm_v128_store(out + 4 * v, m);                                                                     \
      store_winners(win + 4 * v, y0, y1, y2, y3, m, floor);                                                \
    }                                                                                                      \
  }
CONV_POOL_BLOCK(4) CONV_POOL_BLOCK(2) CONV_POOL_BLOCK(1)

EXPORT("conv2d_pool")
void conv2d_pool(const float* x, const float* w, float* out, unsigned char* win, const float* zeros, const float* bias,
                 int act, int floorZero, int B, int H, int W, int ci, int oh, int ow, int co, int fh, int fw, int sh,
                 int sw, int top, int left) {
  const v128_t floor = wasm_f32x4_splat(floorZero ? 0.0f : -__builtin_inff());
  const int OH = oh / 2, OW = ow / 2;
  for (int b = 0; b < B; b++) {
    const float* img = x + b * H * W * ci;
    for (int py = 0; py < OH; py++) {
      const int iyA = 2 * py * sh - top, iyB = (2 * py + 1) * sh - top;
      for (int px = 0; px < OW; px++) {
        const int o = ((b * OH + py) * OW + px) * co;
#define POOL_BLOCK(NV) \
  conv_pool_block_##NV(img, w + o0, out + o + o0, win + o + o0, zeros, bias ? bias + o0 : 0, act, floor, iyA, iyB, 2 * px, H, W, ci, co, fh, fw, sw, left)
        int o0 = 0;
        for (; o0 + 16 <= co; o0 += 16) POOL_BLOCK(4);
        for (; o0 + 8 <= co; o0 += 8) POOL_BLOCK(2);
        for (; o0 < co; o0 += 4) POOL_BLOCK(1);
#undef POOL_BLOCK
      }
    }
  }
}

// 2×2 max pooling of stride 2 (as `max_pool_2x2`) that also records, for each output, which input gets
// its gradient: `win` [B, OH, OW, C] bytes, 0–3 (the window's first input equal to its max, as
// `max_pool_grad` picks it) where the max is above `floor`, else 4 (none). With floor −∞ that is the
// max-pool gradient's rule; with floor 0, where the input is a relu's output, the relu's gradient is
// folded in too: a winner whose value is not positive passes nothing.
EXPORT("max_pool_2x2_winners")
void max_pool_2x2_winners(const float* x, float* out, unsigned char* win, int B, int H, int W, int C, int OH, int OW,
                          int floorZero) {
  const v128_t floor = wasm_f32x4_splat(floorZero ? 0.0f : -__builtin_inff());
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      const float* r0 = x + ((b * H + oh * 2) * W) * C;
      const float* r1 = r0 + W * C;
      const int o0 = ((b * OH + oh) * OW) * C;
      for (int ow = 0; ow < OW; ow++, r0 += 2 * C, r1 += 2 * C) {
        for (int c = 0; c < C; c += 4) {
          const v128_t v0 = wasm_v128_load(r0 + c), v1 = wasm_v128_load(r0 + C + c);
          const v128_t v2 = wasm_v128_load(r1 + c), v3 = wasm_v128_load(r1 + C + c);
          const v128_t m = max_of_4(v0, v1, v2, v3);
          wasm_v128_store(out + o0 + ow * C + c, m);
          store_winners(win + o0 + ow * C + c, v0, v1, v2, v3, m, floor);
        }
      }
    }
  }
}

// The gradient through `max_pool_2x2_winners`: each output's dy goes to its winner, zeros elsewhere
// (also to rows and columns past the windows of an odd-sized input). dx [B, H, W, C] is overwritten.
EXPORT("max_pool_2x2_winners_grad")
void max_pool_2x2_winners_grad(const float* dy, const unsigned char* win, float* dx, int B, int H, int W, int C, int OH,
                               int OW) {
  if (2 * OH != H || 2 * OW != W) {
    const int total = B * H * W * C;
    for (int i = 0; i < total; i += 4) wasm_v128_store(dx + i, wasm_f32x4_splat(0.0f));
  }
  for (int b = 0; b < B; b++) {
    for (int oh = 0; oh < OH; oh++) {
      const int o0 = ((b * OH + oh) * OW) * C;
      for (int ow = 0; ow < OW; ow++) {
        float* d0 = dx + ((b * H + oh * 2) * W + ow * 2) * C;
        float* d1 = d0 + C;
        float* d2 = d0 + W * C;
        float* d3 = d2 + C;
        for (int c = 0; c < C; c += 4) {
          const v128_t g = wasm_v128_load(dy + o0 + ow * C + c);
          const v128_t k = wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(win + o0 + ow * C + c)));
          wasm_v128_store(d0 + c, wasm_v128_and(g, wasm_i32x4_eq(k, wasm_i32x4_splat(0))));
          wasm_v128_store(d1 + c, wasm_v128_and(g, wasm_i32x4_eq(k, wasm_i32x4_splat(1))));
          wasm_v128_store(d2 + c, wasm_v128_and(g, wasm_i32x4_eq(k, wasm_i32x4_splat(2))));
          wasm_v128_store(d3 + c, wasm_v128_and(g, wasm_i32x4_eq(k, wasm_i32x4_splat(3))));
        }
      }
    }
  }
}

// out[r, c] = a[r, c] + b[c] over `rows` rows of C (a multiple of 4): a bias added to every position.
EXPORT("add_bias")
void add_bias(const float* a, const float* b, float* out, int rows, int C) {
  for (int r = 0; r < rows; r++, a += C, out += C) {
    for (int c = 0; c < C; c += 4) wasm_v128_store(out + c, wasm_f32x4_add(wasm_v128_load(a + c), wasm_v128_load(b + c)));
  }
}

// out[c] = Σ_r x[r, c] over `rows` rows of C (a multiple of 4), summed in float64 and rounded once: a bias
// gradient. Four columns at a time, as two f64x2 partial sums.
EXPORT("sum_rows")
void sum_rows(const float* x, float* out, int rows, int C) {
  int c = 0;
  // 16 columns (one 64-byte cache line of a row) at a time, so each line is read once: a column group at
  // a time read every line 4 times over (65536 rows × 16: 0.27 → 0.19 ms). The same sums, in the same order.
  for (; c + 16 <= C; c += 16) {
    v128_t lo[4], hi[4];
    _Pragma("clang loop unroll(full)") for (int g = 0; g < 4; g++) lo[g] = hi[g] = wasm_f64x2_splat(0.0);
    const float* p = x + c;
    for (int r = 0; r < rows; r++, p += C) {
      _Pragma("clang loop unroll(full)") for (int g = 0; g < 4; g++) {
        const v128_t v = wasm_v128_load(p + 4 * g);
        lo[g] = wasm_f64x2_add(lo[g], wasm_f64x2_promote_low_f32x4(v));
        hi[g] = wasm_f64x2_add(hi[g], wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1)));
      }
    }
    _Pragma("clang loop unroll(full)") for (int g = 0; g < 4; g++) {
      const v128_t lo32 = wasm_f32x4_demote_f64x2_zero(lo[g]);
      const v128_t hi32 = wasm_f32x4_demote_f64x2_zero(hi[g]);
      wasm_v128_store(out + c + 4 * g, wasm_i32x4_shuffle(lo32, hi32, 0, 1, 4, 5));
    }
  }
  for (; c < C; c += 4) {
    v128_t lo = wasm_f64x2_splat(0.0);
    v128_t hi = wasm_f64x2_splat(0.0);
    const float* p = x + c;
    for (int r = 0; r < rows; r++, p += C) {
      const v128_t v = wasm_v128_load(p);
      lo = wasm_f64x2_add(lo, wasm_f64x2_promote_low_f32x4(v));
      hi = wasm_f64x2_add(hi, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1)));
    }
    const v128_t lo32 = wasm_f32x4_demote_f64x2_zero(lo);
    const v128_t hi32 = wasm_f32x4_demote_f64x2_zero(hi);
    wasm_v128_store(out + c, wasm_i32x4_shuffle(lo32, hi32, 0, 1, 4, 5));
  }
}

// The gradient of relu: out = dy · step(x), step(x) = 1 where x > 0, NaN where x is NaN, else 0 (the cpu
// backend's Step), one pass instead of tfjs's Step and Multiply. The same float32 products.
EXPORT("relu_grad")
void relu_grad(const float* dy, const float* x, float* out, int n) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t xi = wasm_v128_load(x + i);
    v128_t mask = wasm_v128_and(wasm_f32x4_gt(xi, wasm_f32x4_splat(0.0f)), one);
    mask = wasm_v128_bitselect(xi, mask, wasm_f32x4_ne(xi, xi)); // NaN stays NaN
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_v128_load(dy + i), mask));
  }
  for (; i < n; i++) out[i] = dy[i] * (x[i] != x[i] ? x[i] : x[i] > 0 ? 1.0f : 0.0f);
}

// One Adam step for one variable (tfjs's AdamOptimizer, operation for operation, every result rounded to
// float32 as tfjs's wasm kernels round it, so the weights are bit for bit tf.train.adam's):
//   m ← m·β1 + g·(1 − β1);  v ← v·β2 + g²·(1 − β2)
//   out = ((m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)) · (−lr) + w
// m and v are updated in place; the new weights go to `out`.
EXPORT("adam_update")
void adam_update(const float* g, const float* w, float* out, float* m, float* v, int n, float b1, float b2,
                 float c1, float c2, float eps, float negLr, float oneMinusAcc1, float oneMinusAcc2) {
  const v128_t B1 = wasm_f32x4_splat(b1), B2 = wasm_f32x4_splat(b2), C1 = wasm_f32x4_splat(c1), C2 = wasm_f32x4_splat(c2);
  const v128_t EPS = wasm_f32x4_splat(eps), LR = wasm_f32x4_splat(negLr);
  const v128_t A1 = wasm_f32x4_splat(oneMinusAcc1), A2 = wasm_f32x4_splat(oneMinusAcc2);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t gi = wasm_v128_load(g + i);
    const v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), B1), wasm_f32x4_mul(gi, C1));
    const v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), B2), wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), C2));
    wasm_v128_store(m + i, mi);
    wasm_v128_store(v + i, vi);
    const v128_t mHat = wasm_f32x4_div(mi, A1);
    const v128_t vHat = wasm_f32x4_div(vi, A2);
    const v128_t step = wasm_f32x4_mul(wasm_f32x4_div(mHat, wasm_f32x4_add(wasm_f32x4_sqrt(vHat), EPS)), LR);
    wasm_v128_store(out + i, wasm_f32x4_add(step, wasm_v128_load(w + i)));
  }
  for (; i < n; i++) {
    const float gi = g[i];
    const float mi = m[i] * b1 + gi * c1;
    const float vi = v[i] * b2 + (gi * gi) * c2;
    m[i] = mi;
    v[i] = vi;
    const float mHat = mi / oneMinusAcc1;
    const float vHat = vi / oneMinusAcc2;
    out[i] = (mHat / (__builtin_sqrtf(vHat) + eps)) * negLr + w[i];
  }
}

// ---- The heap training step of graphs (graph-step.ts): batch normalization in training mode, residual
// adds, global average pooling. x is [rows, C] (every position of the batch a row), C a multiple of 4.

// Two f64x2 (channels 0–1 and 2–3) rounded to one f32x4.
static inline v128_t join_f64x2(v128_t lo, v128_t hi) {
  return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}

// The per-channel sums of batch normalization run in float32 over blocks of BN_BLOCK rows, each block's sum
// then added into float64 (LO: channels 0–1, HI: 2–3): the rounding error grows with the number of blocks,
// not of rows, and the float64 work is a sixteenth of it. (Every row in float64 took 2–3 times as long:
// 65536 × 16, bn_moments 364 → 136 µs; in cache, 4096 × 16, bn_backward after a relu 46 → 35 µs.)
#define BN_BLOCK 16
// The rows a pass takes through all its channels before the next (whole blocks, at least one): 64 KB of each
// tensor, which stay in the second-level cache until the last of its channels is done.
#define BN_SPAN(C) max_i(BN_BLOCK, 16384 / (C) / BN_BLOCK * BN_BLOCK)
// BODY for each span of rows [r0, r1) of a [rows, C] tensor.
#define BN_SPANS(BODY)                           \
  do {                                           \
    const int span = BN_SPAN(C);                 \
    for (int r0 = 0; r0 < rows; r0 += span) {    \
      const int r1 = min_i(rows, r0 + span);     \
      BODY                                       \
    }                                            \
  } while (0)
#define BN_ADD_F64(LO, HI, S)                                                              \
  do {                                                                                     \
    LO = wasm_f64x2_add(LO, wasm_f64x2_promote_low_f32x4(S));                              \
    HI = wasm_f64x2_add(HI, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(S, S, 2, 3, 0, 1))); \
  } while (0)

// The per-channel mean and (biased: over `rows`, as tf.moments takes it) variance of x, the variance from a
// second pass over the deviations from the mean (rounded to float32). Each pass takes a span of rows (BN_SPAN)
// through all its channels, NV·4 channels (up to 16, a cache line) at a time, before the next span, so that it
// reads every line of the tensor once (a sweep over all the rows for each 16 channels of a wider tensor
// fetched its lines from memory a line out of every two or four); the float64 sums wait in `scratch` (2·C
// floats: per four channels c, at scratch + 2c, the f64x2 of channels 0–1 and of 2–3). DEV: the second pass.
#define BN_MOMENTS(NV, DEV)                                                                                \
  static inline void bn_moments_##NV##_##DEV(const float* x, const float* mean, float* acc, int r0, int r1, \
                                             int C) {                                                     \
    v128_t lo[NV], hi[NV], m[NV];                                                                          \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                     \
      lo[v] = wasm_v128_load(acc + 8 * v);                                                                 \
      hi[v] = wasm_v128_load(acc + 8 * v + 4);                                                             \
      if (DEV) m[v] = wasm_v128_load(mean + 4 * v);                                                        \
    }                                                                                                      \
    for (int b0 = r0; b0 < r1; b0 += BN_BLOCK) {                                                           \
      const int b1 = min_i(r1, b0 + BN_BLOCK);                                                             \
      v128_t s[NV];                                                                                        \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) s[v] = wasm_f32x4_splat(0.0f);      \
      for (const float* p = x + b0 * C; p < x + b1 * C; p += C) {                                          \
        _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                 \
          if (DEV) {                                                                                       \
            const v128_t d = wasm_f32x4_sub(wasm_v128_load(p + 4 * v), m[v]);                              \
            s[v] = wasm_f32x4_add(s[v], wasm_f32x4_mul(d, d));                                             \
          } else {                                                                                         \
            s[v] = wasm_f32x4_add(s[v], wasm_v128_load(p + 4 * v));                                        \
          }                                                                                                \
        }                                                                                                  \
      }                                                                                                    \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) BN_ADD_F64(lo[v], hi[v], s[v]);     \
    }                                                                                                      \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                     \
      wasm_v128_store(acc + 8 * v, lo[v]);                                                                 \
      wasm_v128_store(acc + 8 * v + 4, hi[v]);                                                             \
    }                                                                                                      \
  }
BN_MOMENTS(4, 0) BN_MOMENTS(3, 0) BN_MOMENTS(2, 0) BN_MOMENTS(1, 0)
BN_MOMENTS(4, 1) BN_MOMENTS(3, 1) BN_MOMENTS(2, 1) BN_MOMENTS(1, 1)

// AT(NV, ACT) over C's channels, 16 at a time (NV 4) and then the rest, c the first channel of each call; ACT the
// compile-time activation for `act` (0 none, 1 relu, 2 relu6).
#define BN_BY_CHANNELS(AT, ACT)                     \
  do {                                              \
    int c = 0;                                      \
    for (; c + 16 <= C; c += 16) AT(4, ACT);        \
    switch ((C - c) / 4) {                          \
      case 3: AT(3, ACT); break;                    \
      case 2: AT(2, ACT); break;                    \
      case 1: AT(1, ACT); break;                    \
    }                                               \
  } while (0)

// One pass of bn_moments over every span of rows (DEV 0: the sums of x, 1: of the squared deviations), then
// its sums divided by the rows into `to`.
static inline void bn_moments_pass(const float* x, float* mean, float* to, int rows, int C, float* scratch, int dev) {
  const v128_t zero = wasm_f64x2_splat(0.0);
  for (int c = 0; c < 2 * C; c += 4) wasm_v128_store(scratch + c, zero);
  const int span = BN_SPAN(C);
  for (int r0 = 0; r0 < rows; r0 += span) {
    const int r1 = min_i(rows, r0 + span);
#define BN_MOMENTS_AT(NV, DEV) bn_moments_##NV##_##DEV(x + c, mean + c, scratch + 2 * c, r0, r1, C)
    if (dev)
      BN_BY_CHANNELS(BN_MOMENTS_AT, 1);
    else
      BN_BY_CHANNELS(BN_MOMENTS_AT, 0);
#undef BN_MOMENTS_AT
  }
  const v128_t n = wasm_f64x2_splat((double)rows);
  for (int c = 0; c < C; c += 4) {
    const v128_t lo = wasm_v128_load(scratch + 2 * c), hi = wasm_v128_load(scratch + 2 * c + 4);
    wasm_v128_store(to + c, join_f64x2(wasm_f64x2_div(lo, n), wasm_f64x2_div(hi, n)));
  }
}

EXPORT("bn_moments")
void bn_moments(const float* x, float* mean, float* var, int rows, int C, float* scratch) {
  bn_moments_pass(x, mean, mean, rows, C, scratch, 0);
  bn_moments_pass(x, mean, var, rows, C, scratch, 1);
}

// NV·4 channels (up to 16, a cache line) of every row: ((x − mean)·scale + beta) [+ other], then the activation
// ACT; the channels' constants stay in registers over the rows (a loop over the channels of each row reloaded
// them every vector: best of 30 calls at 65536 × 16, bn_forward after a relu 200 → 104 µs, bn_add 276 → 197 µs).
#define BN_APPLY(NV, ACT)                                                                                      \
  static inline void bn_apply_##NV##_##ACT(const float* x, const float* mean, const float* scale,              \
                                           const float* beta, const float* other, float* out, int rows, int C) { \
    v128_t m[NV], s[NV], b[NV];                                                                                 \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                          \
      m[v] = wasm_v128_load(mean + 4 * v);                                                                      \
      s[v] = wasm_v128_load(scale + 4 * v);                                                                     \
      b[v] = wasm_v128_load(beta + 4 * v);                                                                      \
    }                                                                                                           \
    for (int o = 0; o < rows * C; o += C) {                                                                     \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                        \
        v128_t y = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + o + 4 * v), m[v]), s[v]), b[v]); \
        if (other) y = wasm_f32x4_add(y, wasm_v128_load(other + o + 4 * v));                                   \
        if (ACT) y = wasm_f32x4_pmax(wasm_f32x4_splat(0.0f), y);                                                \
        if (ACT == 2) y = wasm_f32x4_pmin(y, wasm_f32x4_splat(6.0f));                                           \
        wasm_v128_store(out + o + 4 * v, y);                                                                    \
      }                                                                                                         \
    }                                                                                                           \
  }
#define BN_APPLY_ACTS(NV) BN_APPLY(NV, 0) BN_APPLY(NV, 1) BN_APPLY(NV, 2)
BN_APPLY_ACTS(4) BN_APPLY_ACTS(3) BN_APPLY_ACTS(2) BN_APPLY_ACTS(1)

#define BN_BY_ACT(AT)                               \
  switch (act) {                                    \
    case 0: BN_BY_CHANNELS(AT, 0); break;           \
    case 1: BN_BY_CHANNELS(AT, 1); break;           \
    default: BN_BY_CHANNELS(AT, 2); break;          \
  }

// Up to 32 channels (a row two cache lines or less), a span of rows (BN_SPAN) at a time, 16 channels of it at a time
// with their constants in registers, as bn_moments; more (MobileNet's 44 to 360), a row at a time, every channel of
// it, reading memory in order. Sweeps of 16 channels over all the rows of a wider tensor made MobileNet's bn_forward
// 9.8 → 14.5 ms an epoch (2304 × 180: 96 → 162 µs a call), and sweeps over spans of rows, though faster in cache
// (0.20 → 0.13 ns a float), also slower there (2304 × 180: 2.1 → 3.3 ms an epoch, 9216 × 92 1.2 → 1.8); at 24 and
// 32 channels the spans were faster in the epoch too (147456 × 24 1.8 → 1.4 ms, 16384 × 32 1.7 → 1.2).
static void bn_apply(const float* x, const float* mean, const float* scale, const float* beta, const float* other,
                     float* out, int rows, int C, int act) {
  if (C <= 32) {
#define BN_APPLY_AT(NV, ACT)                                                                                  \
  bn_apply_##NV##_##ACT(x + r0 * C + c, mean + c, scale + c, beta + c, other ? other + r0 * C + c : 0,       \
                        out + r0 * C + c, r1 - r0, C)
    BN_SPANS(BN_BY_ACT(BN_APPLY_AT));
#undef BN_APPLY_AT
    return;
  }
  const v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  for (int o = 0; o < rows * C; o += C) {
    for (int c = 0; c < C; c += 4) {
      v128_t y = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + o + c), wasm_v128_load(mean + c)),
                                               wasm_v128_load(scale + c)),
                                wasm_v128_load(beta + c));
      if (other) y = wasm_f32x4_add(y, wasm_v128_load(other + o + c));
      if (act) y = wasm_f32x4_pmax(zero, y);
      if (act == 2) y = wasm_f32x4_pmin(y, six);
      wasm_v128_store(out + o + c, y);
    }
  }
}

// y = (x − mean) · scale + beta per channel (scale = γ / √(variance + ε)), then relu where act is 1, relu6
// (relu, then capped at 6) where act is 2: batch normalization in training mode, with the batch's own
// moments, and the activation after it in the same pass.
EXPORT("bn_forward")
void bn_forward(const float* x, const float* mean, const float* scale, const float* beta, float* y, int rows, int C, int act) {
  bn_apply(x, mean, scale, beta, 0, y, rows, C, act);
}

// out = ((x − mean) · scale + beta) + other, then relu where act is 1, relu6 where 2: a normalization whose output
// only a residual add reads, run in the add's pass (its output never goes to memory); the same float32 values as
// bn_forward then add_act.
EXPORT("bn_add")
void bn_add(const float* x, const float* mean, const float* scale, const float* beta, const float* other, float* out,
            int rows, int C, int act) {
  bn_apply(x, mean, scale, beta, other, out, rows, C, act);
}

// The gradients of bn_forward (with the batch's moments, whose own gradients are folded in). With act 1 the
// relu's gradient comes first: dy passes only where the output y is positive; with act 2 (relu6) only where
// 0 < y < 6. Per channel, with d the gradient reaching the normalization and x̂ = (x − mean)·inv:
//   dβ = Σ d,  dγ = Σ d·x̂,  dx = γ·inv · (d − dβ/n − x̂·dγ/n)
// the sums by blocks (BN_BLOCK), the coefficients in float64. Where `dbias` is not null, dbias = Σ dx too (the
// bias gradient of a convolution before the normalization, in the pass that writes dx). The activation's mask
// is worked out again from x, (x − mean)·scale + beta with bn_forward's operations and so its bits, instead of
// reading y (a tensor less from memory in each pass). Two passes over the rows, each a span (BN_SPAN) at a
// time through all its channels, as bn_moments; the float64 sums and the coefficients wait in `scratch` (7·C
// floats) between spans: per four channels c, at scratch + 4c the sums of d (two f64x2, channels 0–1 and 2–3)
// and of d·(x − mean), then Σ dx; at scratch + 4C + 3c, k1, k2, k3 (float32). ACT is fixed at compile time.
// dy through the activation bn_forward applied (act 0 none, 1 relu, 2 relu6), at its output y.
static inline v128_t bn_activation_grad(const float* dy, const float* y, int act) {
  v128_t d = wasm_v128_load(dy);
  if (act) d = wasm_v128_and(d, wasm_f32x4_gt(wasm_v128_load(y), wasm_f32x4_splat(0.0f)));
  if (act == 2) d = wasm_v128_and(d, wasm_f32x4_lt(wasm_v128_load(y), wasm_f32x4_splat(6.0f)));
  return d;
}
// The same at the activation's input z: relu(z) > 0 exactly where z > 0 (NaN neither), relu6(z) < 6 where z < 6.
static inline v128_t bn_activation_grad_at(const float* dy, v128_t z, int act) {
  v128_t d = wasm_v128_load(dy);
  if (act) d = wasm_v128_and(d, wasm_f32x4_gt(z, wasm_f32x4_splat(0.0f)));
  if (act == 2) d = wasm_v128_and(d, wasm_f32x4_lt(z, wasm_f32x4_splat(6.0f)));
  return d;
}

// The float64 sums of NV vectors of channels, f64x2 pairs (channels 0–1, 2–3) at acc + 16·v (then + 8), loaded
// into LO/HI (and stored back from them).
#define BN_LOAD_F64(NV, LO, HI, ACC)                                                                          \
  _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                          \
    LO[v] = wasm_v128_load(ACC + 16 * v);                                                                     \
    HI[v] = wasm_v128_load(ACC + 16 * v + 4);                                                                 \
  }
#define BN_STORE_F64(NV, LO, HI, ACC)                                                                         \
  _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                          \
    wasm_v128_store(ACC + 16 * v, LO[v]);                                                                     \
    wasm_v128_store(ACC + 16 * v + 4, HI[v]);                                                                 \
  }

// XM = x − mean and D = dy through the activation (its mask from x) at offset O, vector V of the channels.
#define BN_XM_D(XM, D, O, V, ACT)                                                                               \
  const v128_t XM = wasm_f32x4_sub(wasm_v128_load(x + (O)), m[V]);                                             \
  const v128_t D = bn_activation_grad_at(dy + (O), wasm_f32x4_add(wasm_f32x4_mul(XM, sc[V]), be[V]), ACT);

// Rows r0 to r1 (a whole number of blocks but at the end) of NV·4 channels: the first pass's sums, and with KEEP
// the gradient through the activation kept at dd (dx) for the second pass.
#define BN_BACKWARD_SUMS(NV, ACT, KEEP)                                                                       \
  static inline void bn_backward_sums_##NV##_##ACT##_##KEEP(const float* dy, const float* x, const float* mean, \
                                                   const float* scale, const float* beta, float* acc, int r0,  \
                                                   int r1, int C, float* dd) {                                 \
    v128_t m[NV], sc[NV], be[NV], s1lo[NV], s1hi[NV], s2lo[NV], s2hi[NV];                                     \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                        \
      m[v] = wasm_v128_load(mean + 4 * v);                                                                    \
      sc[v] = wasm_v128_load(scale + 4 * v);                                                                  \
      be[v] = wasm_v128_load(beta + 4 * v);                                                                   \
    }                                                                                                         \
    BN_LOAD_F64(NV, s1lo, s1hi, acc)                                                                          \
    BN_LOAD_F64(NV, s2lo, s2hi, acc + 8)                                                                      \
    for (int b0 = r0; b0 < r1; b0 += BN_BLOCK) {                                                              \
      const int e = min_i(r1, b0 + BN_BLOCK) * C;                                                             \
      /* Two vectors of channels a sweep over the block's rows (in the first-level cache by the second): */  \
      /* the sums of all four and their constants took more than the 16 SIMD registers of x86-64. */          \
      _Pragma("clang loop unroll(full)") for (int h = 0; h < NV; h += 2) {                                   \
        v128_t a1[2], a2[2];                                                                                  \
        a1[0] = a1[1] = a2[0] = a2[1] = wasm_f32x4_splat(0.0f);                                               \
        for (int o = b0 * C; o < e; o += C) {                                                                 \
          _Pragma("clang loop unroll(full)") for (int j = 0; j < 2 && h + j < NV; j++) {                     \
            const int v = h + j;                                                                              \
            BN_XM_D(xm, d, o + 4 * v, v, ACT)                                                                 \
            if (KEEP) wasm_v128_store(dd + o + 4 * v, d);                                                     \
            a1[j] = wasm_f32x4_add(a1[j], d);                                                                 \
            a2[j] = wasm_f32x4_add(a2[j], wasm_f32x4_mul(d, xm));                                             \
          }                                                                                                   \
        }                                                                                                     \
        _Pragma("clang loop unroll(full)") for (int j = 0; j < 2 && h + j < NV; j++) {                       \
          BN_ADD_F64(s1lo[h + j], s1hi[h + j], a1[j]);                                                        \
          BN_ADD_F64(s2lo[h + j], s2hi[h + j], a2[j]);                                                        \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
    BN_STORE_F64(NV, s1lo, s1hi, acc)                                                                         \
    BN_STORE_F64(NV, s2lo, s2hi, acc + 8)                                                                     \
  }

// Rows r0 to r1 of NV·4 channels: the second pass, dx = k1·d + k2 + k3·(x − mean), and Σ dx where `bias`; d is dy
// through the activation ACT (its mask from x again), or with ACT 0 read as it is (dy, or the gradient through
// the activation that the first pass kept in dx).
#define BN_BACKWARD_GRADS(NV, ACT)                                                                            \
  static inline void bn_backward_grads_##NV##_##ACT(const float* dy, const float* x, const float* mean,        \
                                                    const float* scale, const float* beta, const float* k,    \
                                                    float* acc, float* dx, int r0, int r1, int C, int bias) { \
    v128_t m[NV], sc[NV], be[NV], K1[NV], K2[NV], K3[NV], s1lo[NV], s1hi[NV];                                 \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                        \
      m[v] = wasm_v128_load(mean + 4 * v);                                                                    \
      sc[v] = ACT ? wasm_v128_load(scale + 4 * v) : m[v];                                                     \
      be[v] = ACT ? wasm_v128_load(beta + 4 * v) : m[v];                                                      \
      K1[v] = wasm_v128_load(k + 12 * v);                                                                     \
      K2[v] = wasm_v128_load(k + 12 * v + 4);                                                                 \
      K3[v] = wasm_v128_load(k + 12 * v + 8);                                                                 \
    }                                                                                                         \
    BN_LOAD_F64(NV, s1lo, s1hi, acc)                                                                          \
    for (int b0 = r0; b0 < r1; b0 += BN_BLOCK) {                                                              \
      const int e = min_i(r1, b0 + BN_BLOCK) * C;                                                             \
      _Pragma("clang loop unroll(full)") for (int h = 0; h < NV; h += 2) {                                   \
        v128_t a1[2];                                                                                         \
        a1[0] = a1[1] = wasm_f32x4_splat(0.0f);                                                               \
        for (int o = b0 * C; o < e; o += C) {                                                                 \
          _Pragma("clang loop unroll(full)") for (int j = 0; j < 2 && h + j < NV; j++) {                     \
            const int v = h + j;                                                                              \
            BN_XM_D(xm, d, o + 4 * v, v, ACT)                                                                 \
            const v128_t g = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(K1[v], d), K2[v]), wasm_f32x4_mul(K3[v], xm)); \
            wasm_v128_store(dx + o + 4 * v, g);                                                               \
            if (bias) a1[j] = wasm_f32x4_add(a1[j], g);                                                       \
          }                                                                                                   \
        }                                                                                                     \
        if (bias) {                                                                                           \
          _Pragma("clang loop unroll(full)") for (int j = 0; j < 2 && h + j < NV; j++)                       \
            BN_ADD_F64(s1lo[h + j], s1hi[h + j], a1[j]);                                                      \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
    if (bias) BN_STORE_F64(NV, s1lo, s1hi, acc)                                                               \
  }
#define BN_BACKWARD_BLOCKS(NV, ACT) BN_BACKWARD_SUMS(NV, ACT, 0) BN_BACKWARD_GRADS(NV, ACT)
#define BN_BACKWARD_ACTS(NV) \
  BN_BACKWARD_BLOCKS(NV, 0) BN_BACKWARD_BLOCKS(NV, 1) BN_BACKWARD_BLOCKS(NV, 2) BN_BACKWARD_SUMS(NV, 1, 1) \
  BN_BACKWARD_SUMS(NV, 2, 1)
BN_BACKWARD_ACTS(4) BN_BACKWARD_ACTS(3) BN_BACKWARD_ACTS(2) BN_BACKWARD_ACTS(1)

// bn_backward's two passes over the rows, each a function of its own (V8 allocated the registers of one function
// with more variants inlined worse: 65536 × 16 after a relu, 0.55 → 0.7 ns a float).
static __attribute__((noinline)) void bn_backward_sums_pass(const float* dy, const float* x, const float* mean,
                                                            const float* scale, const float* beta, float* scratch,
                                                            float* dd, int rows, int C, int act) {
#define BN_SUMS_AT(NV, ACT) \
  bn_backward_sums_##NV##_##ACT##_0(dy + c, x + c, mean + c, scale + c, beta + c, scratch + 4 * c, r0, r1, C, 0)
#define BN_KEEP_AT(NV, ACT) \
  bn_backward_sums_##NV##_##ACT##_1(dy + c, x + c, mean + c, scale + c, beta + c, scratch + 4 * c, r0, r1, C, dd + c)
  if (!dd)
    BN_SPANS(BN_BY_ACT(BN_SUMS_AT));
  else if (act == 1)
    BN_SPANS(BN_BY_CHANNELS(BN_KEEP_AT, 1););
  else
    BN_SPANS(BN_BY_CHANNELS(BN_KEEP_AT, 2););
#undef BN_SUMS_AT
#undef BN_KEEP_AT
}
static __attribute__((noinline)) void bn_backward_grads_pass(const float* dy, const float* x, const float* mean,
                                                             const float* scale, const float* beta, const float* k,
                                                             float* scratch, float* dx, int rows, int C, int act,
                                                             int bias) {
#define BN_GRADS_AT(NV, ACT) \
  bn_backward_grads_##NV##_##ACT(dy + c, x + c, mean + c, scale + c, beta + c, k + 3 * c, scratch + 4 * c, dx + c, r0, \
                                 r1, C, bias)
  BN_SPANS(BN_BY_ACT(BN_GRADS_AT));
#undef BN_GRADS_AT
}

// `dbias` may be null (0): no convolution's bias before the normalization.
EXPORT("bn_backward")
void bn_backward(const float* dy, const float* x, const float* mean, const float* inv, const float* gamma,
                 const float* scale, const float* beta, float* dx, float* dgamma, float* dbeta, float* dbias, int rows,
                 int C, int act, float* scratch) {
  const v128_t zero = wasm_f64x2_splat(0.0);
  for (int c = 0; c < 4 * C; c += 4) wasm_v128_store(scratch + c, zero);
  // With an activation the first pass keeps the gradient through it in dx, where the second reads it instead of
  // working the mask out from x again; not where dx is x, which the second pass still reads.
  const int keep = act && dx != x;
  bn_backward_sums_pass(dy, x, mean, scale, beta, scratch, keep ? dx : 0, rows, C, act);
  // Per-channel coefficients, dx = k1·d + k2 + k3·(x − mean), worked out in float64 and rounded once.
  const double n = (double)rows;
  const v128_t minusInvN = wasm_f64x2_splat(-1.0 / n);
  float* const k = scratch + 4 * C;
  for (int c = 0; c < C; c += 4) {
    float* const acc = scratch + 4 * c;
    const v128_t s1lo = wasm_v128_load(acc), s1hi = wasm_v128_load(acc + 4);
    const v128_t s2lo = wasm_v128_load(acc + 8), s2hi = wasm_v128_load(acc + 12);
    const v128_t iv4 = wasm_v128_load(inv + c), g4 = wasm_v128_load(gamma + c);
    const v128_t ivlo = wasm_f64x2_promote_low_f32x4(iv4);
    const v128_t ivhi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(iv4, iv4, 2, 3, 0, 1));
    const v128_t gilo = wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(g4), ivlo);
    const v128_t gihi = wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(g4, g4, 2, 3, 0, 1)), ivhi);
    wasm_v128_store(dbeta + c, join_f64x2(s1lo, s1hi));
    wasm_v128_store(dgamma + c, join_f64x2(wasm_f64x2_mul(s2lo, ivlo), wasm_f64x2_mul(s2hi, ivhi)));
    wasm_v128_store(k + 3 * c, join_f64x2(gilo, gihi));
    wasm_v128_store(k + 3 * c + 4, join_f64x2(wasm_f64x2_mul(wasm_f64x2_mul(gilo, s1lo), minusInvN),
                                              wasm_f64x2_mul(wasm_f64x2_mul(gihi, s1hi), minusInvN)));
    wasm_v128_store(k + 3 * c + 8,
                    join_f64x2(wasm_f64x2_mul(wasm_f64x2_mul(wasm_f64x2_mul(gilo, wasm_f64x2_mul(ivlo, ivlo)), s2lo),
                                              minusInvN),
                               wasm_f64x2_mul(wasm_f64x2_mul(wasm_f64x2_mul(gihi, wasm_f64x2_mul(ivhi, ivhi)), s2hi),
                                              minusInvN)));
    wasm_v128_store(acc, zero);
    wasm_v128_store(acc + 4, zero);
  }
  bn_backward_grads_pass(keep ? dx : dy, x, mean, scale, beta, k, scratch, dx, rows, C, keep ? 0 : act, dbias != 0);
  if (dbias) {
    for (int c = 0; c < C; c += 4)
      wasm_v128_store(dbias + c, join_f64x2(wasm_v128_load(scratch + 4 * c), wasm_v128_load(scratch + 4 * c + 4)));
  }
}

// part [B, h, w, C] into the pixels (p + y·sh, q + x·sw) of dx [B, H, W, C], C a multiple of 4: one phase of
// a strided convolution's input gradient (simd-kernels.ts, `inputGradientByPhases`), where a copy a pixel
// from JavaScript took longer than the phase's convolution.
EXPORT("scatter_phase")
void scatter_phase(const float* part, float* dx, int B, int h, int w, int H, int W, int C, int p, int q, int sh, int sw) {
  for (int b = 0; b < B; b++) {
    for (int y = 0; y < h; y++) {
      float* row = dx + ((b * H + p + y * sh) * W + q) * C;
      for (int x = 0; x < w; x++, part += C) {
        float* to = row + x * sw * C;
        for (int c = 0; c < C; c += 4) wasm_v128_store(to + c, wasm_v128_load(part + c));
      }
    }
  }
}

// dst[o, i] = src[i, o] for a [ci, co] matrix (one tap of a filter with its channel axes swapped, as the input
// gradient of a convolution takes it), 4 × 4 blocks in registers where both are in fours; in JavaScript, a
// 64 × 64 tap took about 15 times as long.
EXPORT("transpose_tap")
void transpose_tap(const float* src, float* dst, int ci, int co) {
  if (ci % 4 || co % 4) {
    for (int i = 0; i < ci; i++)
      for (int o = 0; o < co; o++) dst[o * ci + i] = src[i * co + o];
    return;
  }
  for (int i = 0; i < ci; i += 4) {
    for (int o = 0; o < co; o += 4) {
      const v128_t r0 = wasm_v128_load(src + i * co + o), r1 = wasm_v128_load(src + (i + 1) * co + o);
      const v128_t r2 = wasm_v128_load(src + (i + 2) * co + o), r3 = wasm_v128_load(src + (i + 3) * co + o);
      const v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
      const v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
      wasm_v128_store(dst + o * ci + i, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
      wasm_v128_store(dst + (o + 1) * ci + i, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
      wasm_v128_store(dst + (o + 2) * ci + i, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
      wasm_v128_store(dst + (o + 3) * ci + i, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
    }
  }
}

// out = a + b over n floats (n a multiple of 4), then relu where act is 1 (relu6 where 2): a residual add and
// the activation after it in one pass; also the sum of two gradients that reach one tensor.
EXPORT("add_act")
void add_act(const float* a, const float* b, float* out, int n, int act) {
  const v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  for (int i = 0; i < n; i += 4) {
    v128_t v = wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i));
    if (act) v = wasm_f32x4_pmax(zero, v);
    if (act == 2) v = wasm_f32x4_pmin(v, six);
    wasm_v128_store(out + i, v);
  }
}

// Two gradients that reach a residual add with a relu (act 1) or relu6 (act 2) after it, whose output is y,
// summed and put through that activation's gradient in one pass (no relu_grad pass after add_act): where both,
// out = (a + b)' (a third gradient comes later: out = a' + b, b the sum so far), with v' = v where y > 0
// (0 < y < 6), else 0. n a multiple of 4.
EXPORT("add_masked")
void add_masked(const float* a, const float* y, const float* b, float* out, int n, int act, int both) {
#define ADD_MASKED(ACT)                                                                                         \
  for (int i = 0; i < n; i += 4) {                                                                              \
    const v128_t bv = wasm_v128_load(b + i);                                                                    \
    if (both) {                                                                                                 \
      const v128_t s = wasm_f32x4_add(wasm_v128_load(a + i), bv);                                               \
      v128_t m = wasm_f32x4_gt(wasm_v128_load(y + i), wasm_f32x4_splat(0.0f));                                  \
      if (ACT == 2) m = wasm_v128_and(m, wasm_f32x4_lt(wasm_v128_load(y + i), wasm_f32x4_splat(6.0f)));         \
      wasm_v128_store(out + i, wasm_v128_and(s, m));                                                            \
    } else {                                                                                                    \
      wasm_v128_store(out + i, wasm_f32x4_add(bn_activation_grad(a + i, y + i, ACT), bv));                      \
    }                                                                                                           \
  }
  if (act == 2) {
    ADD_MASKED(2)
  } else {
    ADD_MASKED(1)
  }
#undef ADD_MASKED
}

// Global average pooling of x [B, P, C] (P positions) to out [B, C], and its gradient (dx = dy / P at
// every position): `grad` 0 forward, 1 backward (then x is dx, out is dy).
EXPORT("global_avg_pool")
void global_avg_pool(float* x, float* out, int B, int P, int C, int grad) {
  const v128_t k = wasm_f32x4_splat(1.0f / (float)P);
  for (int b = 0; b < B; b++, x += P * C, out += C) {
    for (int c = 0; c < C; c += 4) {
      if (grad) {
        const v128_t g = wasm_f32x4_mul(wasm_v128_load(out + c), k);
        for (int p = 0; p < P; p++) wasm_v128_store(x + p * C + c, g);
      } else {
        v128_t s = wasm_f32x4_splat(0.0f);
        for (int p = 0; p < P; p++) s = wasm_f32x4_add(s, wasm_v128_load(x + p * C + c));
        wasm_v128_store(out + c, wasm_f32x4_mul(s, k));
      }
    }
  }
}

// ---- MobileNets in the graph step: depthwise convolutions (depth multiplier 1) and relu6. NHWC, C a
// multiple of 4, the filter [fh, fw, C]; each channel is its own convolution, so four channels go in a
// v128 and NV vectors (4·NV channels) at a time share the loop over the taps.

// The gradient of relu6 at its output y: out = dy where 0 < y < 6, else 0 (n a multiple of 4).
EXPORT("relu6_grad")
void relu6_grad(const float* dy, const float* y, float* out, int n) {
  const v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  for (int i = 0; i < n; i += 4) {
    const v128_t v = wasm_v128_load(y + i);
    const v128_t pass = wasm_v128_and(wasm_f32x4_gt(v, zero), wasm_f32x4_lt(v, six));
    wasm_v128_store(out + i, wasm_v128_and(wasm_v128_load(dy + i), pass));
  }
}

// One output pixel's 4·NV channels from c: the taps kh0…kh1−1 × kw0…kw1−1 that lie inside the image, in
// filter order (the cpu backend's), then the bias. `in` is the input at the tap (0, 0) of this pixel.
#define DW_PIXEL(NV)                                                                                      \
  static inline void dw_pixel_##NV(const float* in, const float* w, const float* bias, float* o, int W,    \
                                   int C, int fw, int kh0, int kh1, int kw0, int kw1) {                   \
    v128_t acc[NV];                                                                                       \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) acc[v] = wasm_f32x4_splat(0.0f);      \
    for (int kh = kh0; kh < kh1; kh++) {                                                                  \
      for (int kw = kw0; kw < kw1; kw++) {                                                                \
        const float* ip = in + (kh * W + kw) * C;                                                         \
        const float* wp = w + (kh * fw + kw) * C;                                                         \
        _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++)                                   \
          acc[v] = wasm_f32x4_add(acc[v], wasm_f32x4_mul(wasm_v128_load(ip + 4 * v), wasm_v128_load(wp + 4 * v))); \
      }                                                                                                   \
    }                                                                                                     \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) {                                     \
      if (bias) acc[v] = wasm_f32x4_add(acc[v], wasm_v128_load(bias + 4 * v));                            \
      wasm_v128_store(o + 4 * v, acc[v]);                                                                 \
    }                                                                                                     \
  }
DW_PIXEL(4) DW_PIXEL(1)

// One output row's pixels xa…xb−1 of a 3×3 filter whose taps all lie inside the image, channels c…c+3: the
// nine filter vectors and the bias stay in registers along the row. `in` is the input at tap (0, 0) of
// pixel xa; it advances `step` floats a pixel. The same sums, in the same order, as dw_pixel.
static inline void dw3x3_row(const float* in, const float* w, const float* bias, float* o, int W, int C, int step,
                             int n) {
  v128_t k[9];
  _Pragma("clang loop unroll(full)") for (int t = 0; t < 9; t++) k[t] = wasm_v128_load(w + t * C);
  const v128_t bv = bias ? wasm_v128_load(bias) : wasm_f32x4_splat(0.0f);
  for (int p = 0; p < n; p++, in += step, o += C) {
    v128_t acc = wasm_f32x4_splat(0.0f);
    _Pragma("clang loop unroll(full)") for (int kh = 0; kh < 3; kh++)
      _Pragma("clang loop unroll(full)") for (int kw = 0; kw < 3; kw++)
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(in + (kh * W + kw) * C), k[kh * 3 + kw]));
    if (bias) acc = wasm_f32x4_add(acc, bv);
    wasm_v128_store(o, acc);
  }
}

// out[b, y, x, c] = Σ_{kh, kw} x[b, y·sh + kh − top, x·sw + kw − left, c] · w[kh, kw, c] (+ bias[c] where
// bias is not null); reads outside the image are left out (zeros). Pixels at the edges one at a time; a 3×3
// filter's inner pixels a row and four channels at a time (`dw3x3_row`).
EXPORT("depthwise_conv2d")
void depthwise_conv2d(const float* x, const float* w, const float* bias, float* out, int B, int H, int W, int C,
                      int oh, int ow, int fh, int fw, int sh, int sw, int top, int left) {
  // Output columns xa…xb−1 have all their taps inside the image's width.
  const int xa = min_i(ow, (left + sw - 1) / sw);
  const int xb = max_i(xa, min_i(ow, W - fw + left >= 0 ? (W - fw + left) / sw + 1 : 0));
  for (int b = 0; b < B; b++) {
    for (int y = 0; y < oh; y++) {
      const int iy0 = y * sh - top;
      const int kh0 = max_i(0, -iy0), kh1 = min_i(fh, H - iy0);
      const int rowFast = fh == 3 && fw == 3 && kh0 == 0 && kh1 == 3;
      const float* inRow = x + ((long)(b * H + iy0) * W) * C;
      float* oRow = out + ((b * oh + y) * ow) * C;
      // The row's input rows and its output row, a float a cache line in order, as the convolutions read ahead.
      read_ahead_lines(inRow + kh0 * W * C, inRow + kh1 * W * C);
      read_ahead_lines(oRow, oRow + ow * C);
      for (int xo = 0; xo < ow; xo++) {
        if (rowFast && xo == xa) xo = xb; // the inner pixels below
        if (xo >= ow) break;
        const int ix0 = xo * sw - left;
        const int kw0 = max_i(0, -ix0), kw1 = min_i(fw, W - ix0);
        // The input at tap (0, 0), which may lie outside the image: only taps inside are read.
        const float* in = inRow + ix0 * C;
        float* o = oRow + xo * C;
        int c = 0;
        for (; c + 16 <= C; c += 16) dw_pixel_4(in + c, w + c, bias ? bias + c : 0, o + c, W, C, fw, kh0, kh1, kw0, kw1);
        for (; c < C; c += 4) dw_pixel_1(in + c, w + c, bias ? bias + c : 0, o + c, W, C, fw, kh0, kh1, kw0, kw1);
      }
      if (rowFast && xb > xa) {
        for (int c = 0; c < C; c += 4)
          dw3x3_row(inRow + (xa * sw - left) * C + c, w + c, bias ? bias + c : 0, oRow + xa * C + c, W, C, sw * C, xb - xa);
      }
    }
  }
}

// The input gradient of depthwise_conv2d: dx[b, y·sh + kh − top, x·sw + kw − left, c] += dy[b, y, x, c] ·
// w[kh, kw, c] over the taps inside the image, each output pixel's gradient spread to its taps. dx is
// overwritten.
EXPORT("depthwise_conv2d_input_grad")
void depthwise_conv2d_input_grad(const float* dy, const float* w, float* dx, int B, int H, int W, int C, int oh,
                                 int ow, int fh, int fw, int sh, int sw, int top, int left) {
  const int total = B * H * W * C;
  for (int i = 0; i < total; i += 4) wasm_v128_store(dx + i, wasm_f32x4_splat(0.0f));
  for (int b = 0; b < B; b++) {
    for (int y = 0; y < oh; y++) {
      const int iy0 = y * sh - top;
      const int kh0 = max_i(0, -iy0), kh1 = min_i(fh, H - iy0);
      for (int xo = 0; xo < ow; xo++) {
        const int ix0 = xo * sw - left;
        const int kw0 = max_i(0, -ix0), kw1 = min_i(fw, W - ix0);
        float* d = dx + ((long)(b * H + iy0) * W + ix0) * C;
        const float* g = dy + ((b * oh + y) * ow + xo) * C;
        for (int kh = kh0; kh < kh1; kh++) {
          for (int kw = kw0; kw < kw1; kw++) {
            float* dp = d + (kh * W + kw) * C;
            const float* wp = w + (kh * fw + kw) * C;
            for (int c = 0; c < C; c += 4)
              wasm_v128_store(dp + c, wasm_f32x4_add(wasm_v128_load(dp + c), wasm_f32x4_mul(wasm_v128_load(g + c), wasm_v128_load(wp + c))));
          }
        }
      }
    }
  }
}

// One tap's share of the filter gradient from one output row, 4·NV channels from c: dw[c…] += Σ over the
// row's n pixels of x (advancing xstep floats a pixel) · dy (advancing C floats).
#define DW_FILTER(NV)                                                                                     \
  static inline void dw_filter_##NV(const float* xp, int xstep, const float* dyp, int C, int n, float* dwp) { \
    v128_t acc[NV];                                                                                       \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++) acc[v] = wasm_f32x4_splat(0.0f);      \
    for (int p = 0; p < n; p++, xp += xstep, dyp += C) {                                                  \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++)                                     \
        acc[v] = wasm_f32x4_add(acc[v], wasm_f32x4_mul(wasm_v128_load(xp + 4 * v), wasm_v128_load(dyp + 4 * v))); \
    }                                                                                                     \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; v++)                                       \
      wasm_v128_store(dwp + 4 * v, wasm_f32x4_add(wasm_v128_load(dwp + 4 * v), acc[v]));                  \
  }
DW_FILTER(4) DW_FILTER(1)

// One output row's share of a 3×3 filter's gradient over its pixels xa…xb−1 (all taps inside), channels
// c…c+3: nine sums in registers, dy read once a pixel. `in` is the input at tap (0, 0) of pixel xa; it
// advances `step` floats a pixel.
static inline void dw3x3_filter_row(const float* in, const float* dyp, float* dwp, int W, int C, int step, int n) {
  v128_t acc[9];
  _Pragma("clang loop unroll(full)") for (int t = 0; t < 9; t++) acc[t] = wasm_f32x4_splat(0.0f);
  for (int p = 0; p < n; p++, in += step, dyp += C) {
    const v128_t d = wasm_v128_load(dyp);
    _Pragma("clang loop unroll(full)") for (int kh = 0; kh < 3; kh++)
      _Pragma("clang loop unroll(full)") for (int kw = 0; kw < 3; kw++)
        acc[kh * 3 + kw] = wasm_f32x4_add(acc[kh * 3 + kw], wasm_f32x4_mul(wasm_v128_load(in + (kh * W + kw) * C), d));
  }
  _Pragma("clang loop unroll(full)") for (int t = 0; t < 9; t++)
    wasm_v128_store(dwp + t * C, wasm_f32x4_add(wasm_v128_load(dwp + t * C), acc[t]));
}

// dw_filter over output pixels lo…hi−1 of a row for one tap, all channels.
static inline void dw_filter_run(const float* xRow, const float* dyRow, float* dwp, int C, int sw, int kw, int left,
                                 int lo, int hi) {
  if (lo >= hi) return;
  const float* xp = xRow + (lo * sw + kw - left) * C;
  const float* dyp = dyRow + lo * C;
  int c = 0;
  for (; c + 16 <= C; c += 16) dw_filter_4(xp + c, sw * C, dyp + c, C, hi - lo, dwp + c);
  for (; c < C; c += 4) dw_filter_1(xp + c, sw * C, dyp + c, C, hi - lo, dwp + c);
}

// The filter gradient of depthwise_conv2d: dw[kh, kw, c] = Σ_{b, y, x} x[b, y·sh + kh − top, x·sw + kw − left, c]
// · dy[b, y, x, c] (reads outside the image are zeros), summed a row of output pixels at a time in registers:
// a 3×3 filter's inner pixels by `dw3x3_filter_row`, the rest a tap at a time. dw is overwritten.
EXPORT("depthwise_conv2d_filter_grad")
void depthwise_conv2d_filter_grad(const float* x, const float* dy, float* dw, int B, int H, int W, int C, int oh,
                                  int ow, int fh, int fw, int sh, int sw, int top, int left) {
  const int total = fh * fw * C;
  for (int i = 0; i < total; i += 4) wasm_v128_store(dw + i, wasm_f32x4_splat(0.0f));
  // Output columns xa…xb−1 have all their taps inside the image's width (as in depthwise_conv2d).
  const int xa = min_i(ow, (left + sw - 1) / sw);
  const int xb = max_i(xa, min_i(ow, W - fw + left >= 0 ? (W - fw + left) / sw + 1 : 0));
  for (int b = 0; b < B; b++) {
    for (int y = 0; y < oh; y++) {
      const float* dyRow = dy + ((b * oh + y) * ow) * C;
      const int iy0 = y * sh - top;
      const int fast = fh == 3 && fw == 3 && iy0 >= 0 && iy0 + 3 <= H && xb > xa;
      read_ahead_lines(x + (b * H + max_i(0, iy0)) * W * C, x + (b * H + min_i(H, iy0 + fh)) * W * C);
      read_ahead_lines(dyRow, dyRow + ow * C);
      if (fast) {
        const float* in = x + ((b * H + iy0) * W + xa * sw - left) * C;
        for (int c = 0; c < C; c += 4) dw3x3_filter_row(in + c, dyRow + xa * C + c, dw + c, W, C, sw * C, xb - xa);
      }
      for (int kh = 0; kh < fh; kh++) {
        const int iy = iy0 + kh;
        if (iy < 0 || iy >= H) continue;
        const float* xRow = x + ((b * H + iy) * W) * C;
        for (int kw = 0; kw < fw; kw++) {
          const int lo = max_i(0, -floor_div(kw - left, sw));
          const int hi = min_i(ow, floor_div(W - 1 + left - kw, sw) + 1);
          float* dwp = dw + (kh * fw + kw) * C;
          if (!fast) {
            dw_filter_run(xRow, dyRow, dwp, C, sw, kw, left, lo, hi);
          } else { // the pixels left of and right of the inner ones
            dw_filter_run(xRow, dyRow, dwp, C, sw, kw, left, lo, min_i(hi, xa));
            dw_filter_run(xRow, dyRow, dwp, C, sw, kw, left, max_i(lo, xb), hi);
          }
        }
      }
    }
  }
}

// A 3×3, stride-2 convolution by a Winograd form of its polyphase split, per 2×2 output tile from the 5×5 input
// tile under it. Along one axis the outputs y0, y1 read the samples s0…s4 (from 2·y0 − top): y0 = s0·w0 + s1·w1 +
// s2·w2, y1 = s2·w0 + s3·w1 + s4·w2, where s0, s2, s4 meet the 2-tap filter (w0, w2) (Winograd F(2, 2), 3 products)
// and s1, s3 the 1-tap w1 (2 products): 5 products for 2 outputs where the direct sum takes 6, so 25 for a 2×2
// tile where it takes 36. The transforms only add. One axis, transform positions 0…4:
//   Bᵀ s = (s0 − s2, s2, s4 − s2, s1, s3),  G w = (w0, w0 + w2, w2, w1, w1),  Aᵀ m = (m0 + m1 + m3, m1 + m2 + m4),
// and for the gradients A g = (g0, g0 + g1, g1, g0, g1), Gᵀ a = (a0 + a1, a3 + a4, a1 + a2),
// B v = (v0, v3, v1 − v0 − v2, v4, v2). Positions 0 and 3 reach y0 only (class a), 2 and 4 y1 only (class b),
// 1 both (class c). The 25 positions (r, s) of a tile fall into 9 groups by their classes (X, Y), whose products
// reach the same outputs: each group is one matrix product over its positions' channels stacked, [tiles, n·ci] ·
// [n·ci, co] for its n positions (4, 2 or 1), longer sums than 25 products over ci (16 channels: 64, 32 and 16),
// and 9 outputs to transform back instead of 25. Groups 0…3 are (a, a), (a, b), (b, a), (b, b), 4…7 (a, c),
// (b, c), (c, a), (c, b), 8 (c, c); group g's positions are 25 transforms' rows of the filter's transform
// [25, ci, co] from row s2_start(g), and its tiles' transforms sit at s2_start(g)·tiles·ci + g·S2_PAD, n·ci floats
// a tile, the positions' channels one after the other. The groups' rows are padded by S2_PAD floats, so that a
// tile's stores do not all fall into one set of the first-level cache.
#define S2_PAD 32
static inline int s2_class(int p) { return p == 0 || p == 3 ? 0 : p == 2 || p == 4 ? 1 : 2; }
static inline int s2_index(int p) { return p == 3 || p == 4 ? 1 : 0; } // within its class
static inline int s2_group(int r, int s) {
  const int X = s2_class(r), Y = s2_class(s);
  return X < 2 && Y < 2 ? 2 * X + Y : X < 2 ? 4 + X : Y < 2 ? 6 + Y : 8;
}
static inline int s2_size(int g) { return g < 4 ? 4 : g < 8 ? 2 : 1; }
static inline int s2_start(int g) { return g < 4 ? 4 * g : g < 8 ? 16 + 2 * (g - 4) : 24; }
// (r, s)'s place among its group's positions.
static inline int s2_slot(int r, int s) { return s2_index(r) * (s2_class(s) < 2 ? 2 : 1) + s2_index(s); }
// Where tile t's transform at (r, s) starts: channels c of it are at + c.
static inline int s2_at(int r, int s, int t, int tiles, int ci) {
  const int g = s2_group(r, s);
  return s2_start(g) * tiles * ci + g * S2_PAD + (t * s2_size(g) + s2_slot(r, s)) * ci;
}

static inline void s2_bt(const v128_t* s, v128_t* r) {
  r[0] = wasm_f32x4_sub(s[0], s[2]);
  r[1] = s[2];
  r[2] = wasm_f32x4_sub(s[4], s[2]);
  r[3] = s[1];
  r[4] = s[3];
}
static inline void s2_g(const v128_t* w, v128_t* r) {
  r[0] = w[0];
  r[1] = wasm_f32x4_add(w[0], w[2]);
  r[2] = w[2];
  r[3] = w[1];
  r[4] = w[1];
}
static inline void s2_gt(const v128_t* a, v128_t* r) {
  r[0] = wasm_f32x4_add(a[0], a[1]);
  r[1] = wasm_f32x4_add(a[3], a[4]);
  r[2] = wasm_f32x4_add(a[1], a[2]);
}
static inline void s2_b(const v128_t* v, v128_t* r) {
  r[0] = v[0];
  r[1] = v[3];
  r[2] = wasm_f32x4_sub(wasm_f32x4_sub(v[1], v[0]), v[2]);
  r[3] = v[4];
  r[4] = v[2];
}

// Row r of the filter's transform, a row at a time as `winograd4_filter_row`: (G g Gᵀ)[r, s] for c, o (four o at a
// time) at u + s2_start(g)·ci·co + c·rs + slot·ss + o, (rs, ss) = (co, ci·co) for the forward pass; for the input
// gradient (`across`: the filter given with its channel axes swapped) (n·co, co), each row c of the group's
// [ci, n·co] matrix holding its positions one after the other.
static inline __attribute__((always_inline)) void s2_filter_row(const float* w, float* u, int ci, int co, int r,
                                                                int across) {
  for (int c = 0; c < ci; c++) {
    for (int o = 0; o < co; o += 4) {
      v128_t t[3];
      _Pragma("clang loop unroll(full)") for (int k = 0; k < 3; k++) { // t = (G g)[r], column k
        v128_t g[3], col[5];
        _Pragma("clang loop unroll(full)") for (int i = 0; i < 3; i++) g[i] = wasm_v128_load(w + ((i * 3 + k) * ci + c) * co + o);
        s2_g(g, col);
        t[k] = col[r];
      }
      v128_t row[5];
      s2_g(t, row);
      _Pragma("clang loop unroll(full)") for (int s = 0; s < 5; s++) {
        const int g = s2_group(r, s), slot = s2_slot(r, s);
        const int at = across ? c * s2_size(g) * co + slot * co : slot * ci * co + c * co;
        wasm_v128_store(u + s2_start(g) * ci * co + at + o, row[s]);
      }
    }
  }
}

// The filter's transform, [25, ci, co] in the groups' order (above), from w [3, 3, ci, co]; co in fours. `across`:
// for the input gradient, from the filter with its channel axes swapped (see `s2_filter_row`).
EXPORT("winograd_s2_filter")
void winograd_s2_filter(const float* w, float* u, int ci, int co, int across) {
  s2_filter_row(w, u, ci, co, 0, across);
  s2_filter_row(w, u, ci, co, 1, across);
  s2_filter_row(w, u, ci, co, 2, across);
  s2_filter_row(w, u, ci, co, 3, across);
  s2_filter_row(w, u, ci, co, 4, across);
}

// V = Bᵀ d B for the 5×5 input tile at (iy0, ix0) of img [H, W, ci] (reads outside are zeros), tile t of `tiles`,
// at V + s2_at(r, s, …).
static void s2_input_tile(const float* img, int H, int W, int ci, int iy0, int ix0, float* V, int t, int tiles) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  const int inside = iy0 >= 0 && iy0 + 5 <= H && ix0 >= 0 && ix0 + 5 <= W;
  for (int c = 0; c < ci; c += 4) {
    v128_t e[5][5];
    _Pragma("clang loop unroll(full)") for (int s = 0; s < 5; s++) { // e = Bᵀ d, column s
      const int ix = ix0 + s;
      v128_t d[5], col[5];
      _Pragma("clang loop unroll(full)") for (int r = 0; r < 5; r++) {
        const int iy = iy0 + r;
        d[r] = inside || (iy >= 0 && iy < H && ix >= 0 && ix < W) ? wasm_v128_load(img + (iy * W + ix) * ci + c) : zero;
      }
      s2_bt(d, col);
      _Pragma("clang loop unroll(full)") for (int r = 0; r < 5; r++) e[r][s] = col[r];
    }
    _Pragma("clang loop unroll(full)") for (int r = 0; r < 5; r++) { // V = e B, row r
      v128_t row[5];
      s2_bt(e[r], row);
      _Pragma("clang loop unroll(full)") for (int s = 0; s < 5; s++) wasm_v128_store(V + s2_at(r, s, t, tiles, ci) + c, row[s]);
    }
  }
}

// A g Aᵀ for the 2×2 tile of dy at g0 (zeros past its edges: `rows`, `cols`), by groups: a position's value is its
// classes' (a: g0, b: g1, c: g0 + g1 along each axis), the same for all of a group, so one per group, at d + g·ds.
static void s2_dy_tile(const float* g0, int rows, int cols, int ow, int co, float* d, int ds) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int o = 0; o < co; o += 4) {
    const v128_t g00 = wasm_v128_load(g0 + o);
    const v128_t g01 = cols > 1 ? wasm_v128_load(g0 + co + o) : zero;
    const v128_t g10 = rows > 1 ? wasm_v128_load(g0 + ow * co + o) : zero;
    const v128_t g11 = rows > 1 && cols > 1 ? wasm_v128_load(g0 + ow * co + co + o) : zero;
    const v128_t c0 = wasm_f32x4_add(g00, g10), c1 = wasm_f32x4_add(g01, g11); // class c along the rows
    wasm_v128_store(d + 0 * ds + o, g00);
    wasm_v128_store(d + 1 * ds + o, g01);
    wasm_v128_store(d + 2 * ds + o, g10);
    wasm_v128_store(d + 3 * ds + o, g11);
    wasm_v128_store(d + 4 * ds + o, wasm_f32x4_add(g00, g01));
    wasm_v128_store(d + 5 * ds + o, wasm_f32x4_add(g10, g11));
    wasm_v128_store(d + 6 * ds + o, c0);
    wasm_v128_store(d + 7 * ds + o, c1);
    wasm_v128_store(d + 8 * ds + o, wasm_f32x4_add(c0, c1));
  }
}

// The tile t of tiles b, ty, tx for the flat index i over B images of th × tw tiles.
#define S2_TILE(i)                                                                                       \
  const int b = (i) / per, rem = (i) % per, ty = rem / tw, tx = rem % tw;                                \
  (void)b, (void)ty, (void)tx

// The rows of img [B, H, W, ci] (x, or dx for the input gradient) that the `nt` tiles from tile t0 read or write, 5
// a tile row, and of g [B, oh, ow, co] (dy, or out for the forward pass), 2 a tile row, read ahead as
// `wino4_read_ahead` reads them (4 rows + 2 of img a tile row, and g's 2 rows as 4 half rows), for the same reason:
// in a training step they come from beyond the second-level cache.
static inline __attribute__((always_inline)) void s2_read_ahead(const float* img, const float* g, int t0, int nt,
                                                                int per, int tw, int B, int H, int W, int ci, int oh,
                                                                int ow, int co, int top) {
  S2_TILE(t0);
  wino4_read_ahead(img + (b * H + max_i(0, 4 * ty - top)) * W * ci, img + B * H * W * ci,
                   g + (b * oh + 2 * ty) * ow * co, g + B * oh * ow * co, 4 * ((tx + nt + tw - 1) / tw), W * ci,
                   ow * co / 2);
}

// The 3×3, stride-2 (dilation 1) convolution of x [B, H, W, ci] with the filter whose transform
// `winograd_s2_filter` wrote into u, as `conv2d` takes it (padding top, left; bias and activation after the sum),
// out [B, oh, ow, co]. ci and co in fours; `scratch` holds 25·tiles·ci + 9·tiles·co + 18·S2_PAD floats: `tiles`
// 2×2 output tiles (in order over the batch) are transformed at a time.
EXPORT("conv2d_winograd_s2")
void conv2d_winograd_s2(const float* x, const float* u, float* out, float* scratch, int tiles, const float* bias,
                        int act, int B, int H, int W, int ci, int oh, int ow, int co, int top, int left) {
  const int ms = tiles * co + S2_PAD;
  float* V = scratch;                                // the groups' input transforms
  float* M = scratch + 25 * tiles * ci + 9 * S2_PAD; // [9, ms]: their products
  const v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  const int th = (oh + 1) / 2, tw = (ow + 1) / 2, per = th * tw, total = B * per;
  for (int t0 = 0; t0 < total; t0 += tiles) {
    const int nt = min_i(tiles, total - t0);
    s2_read_ahead(x, out, t0, nt, per, tw, B, H, W, ci, oh, ow, co, top);
    for (int t = 0; t < nt; t++) {
      S2_TILE(t0 + t);
      s2_input_tile(x + b * H * W * ci, H, W, ci, 4 * ty - top, 4 * tx - left, V, t, tiles);
    }
    for (int g = 0; g < 9; g++)
      wino_products(V + s2_start(g) * tiles * ci + g * S2_PAD, 0, u + s2_start(g) * ci * co, M + g * ms, 0, co, 4, 1,
                    nt, s2_size(g) * ci, co);
    for (int t = 0; t < nt; t++) {
      S2_TILE(t0 + t);
      const int oy = 2 * ty, ox = 2 * tx;
      const int rows = min_i(2, oh - oy), cols = min_i(2, ow - ox);
      float* o0 = out + ((b * oh + oy) * ow + ox) * co;
      for (int o = 0; o < co; o += 4) {
        const float* mt = M + t * co + o;
        v128_t p[9], y[4];
        _Pragma("clang loop unroll(full)") for (int g = 0; g < 9; g++) p[g] = wasm_v128_load(mt + g * ms);
        const v128_t a = wasm_f32x4_add(p[4], p[8]), bb = wasm_f32x4_add(p[5], p[8]); // classes (a, c), (b, c) + (c, c)
        y[0] = wasm_f32x4_add(wasm_f32x4_add(p[0], p[6]), a);
        y[1] = wasm_f32x4_add(wasm_f32x4_add(p[1], p[7]), a);
        y[2] = wasm_f32x4_add(wasm_f32x4_add(p[2], p[6]), bb);
        y[3] = wasm_f32x4_add(wasm_f32x4_add(p[3], p[7]), bb);
        const v128_t bv = bias ? wasm_v128_load(bias + o) : zero;
        _Pragma("clang loop unroll(full)") for (int k = 0; k < 4; k++) {
          if (bias) y[k] = wasm_f32x4_add(y[k], bv);
          if (act) y[k] = wasm_f32x4_pmax(y[k], zero);
          if (act == 2) y[k] = wasm_f32x4_pmin(y[k], six);
          if (k / 2 < rows && k % 2 < cols) wasm_v128_store(o0 + ((k / 2) * ow + k % 2) * co + o, y[k]);
        }
      }
    }
  }
}

// The filter gradient of that convolution, the transpose of its forward form: dw = Gᵀ [ Σ_tiles (Bᵀ d B) ⊙ (A dy
// Aᵀ) ] G over the 2×2 tiles of dy (zeros past its edges), a group's sums [n·ci, co] one matrix product over the
// tiles, summed as `conv2d_filter_grad_winograd4` sums. ci and co in fours; dw [3, 3, ci, co] is overwritten;
// `scratch` holds 25·ci·co + 25·tiles·ci + 9·tiles·co + 18·S2_PAD floats.
EXPORT("conv2d_filter_grad_winograd_s2")
void conv2d_filter_grad_winograd_s2(const float* x, const float* dy, float* dw, float* scratch, int tiles, int B, int H,
                                    int W, int ci, int oh, int ow, int co, int top, int left) {
  const int ds = tiles * co + S2_PAD;
  float* acc = scratch;                          // [25, ci, co], as the filter's transform
  float* V = acc + 25 * ci * co;                 // the groups' input transforms
  float* D = V + 25 * tiles * ci + 9 * S2_PAD;   // [9, ds]
  for (int i = 0; i < 25 * ci * co; i += 4) wasm_v128_store(acc + i, wasm_f32x4_splat(0.0f));
  const int th = (oh + 1) / 2, tw = (ow + 1) / 2, per = th * tw, total = B * per;
  for (int t0 = 0; t0 < total; t0 += tiles) {
    const int nt = min_i(tiles, total - t0);
    s2_read_ahead(x, dy, t0, nt, per, tw, B, H, W, ci, oh, ow, co, top);
    for (int t = 0; t < nt; t++) {
      S2_TILE(t0 + t);
      const int oy = 2 * ty, ox = 2 * tx;
      s2_input_tile(x + b * H * W * ci, H, W, ci, 4 * ty - top, 4 * tx - left, V, t, tiles);
      s2_dy_tile(dy + ((b * oh + oy) * ow + ox) * co, min_i(2, oh - oy), min_i(2, ow - ox), ow, co, D + t * co, ds);
    }
    for (int g = 0; g < 9; g++)
      wino_grad_sums(V + s2_start(g) * tiles * ci + g * S2_PAD, 0, D + g * ds, 0, acc + s2_start(g) * ci * co, 1, nt,
                     s2_size(g) * ci, co);
  }
  const int cs = ci * co;
  for (int c = 0; c < ci; c++) { // dw = Gᵀ acc G
    for (int o = 0; o < co; o += 4) {
      const float* a = acc + c * co + o;
      v128_t r[3][5];
      _Pragma("clang loop unroll(full)") for (int j = 0; j < 5; j++) { // Gᵀ acc, column j
        v128_t col[5], res[3];
        _Pragma("clang loop unroll(full)") for (int i = 0; i < 5; i++)
          col[i] = wasm_v128_load(a + (s2_start(s2_group(i, j)) + s2_slot(i, j)) * cs);
        s2_gt(col, res);
        _Pragma("clang loop unroll(full)") for (int i = 0; i < 3; i++) r[i][j] = res[i];
      }
      _Pragma("clang loop unroll(full)") for (int i = 0; i < 3; i++) { // (Gᵀ acc) G, row i
        v128_t res[3];
        s2_gt(r[i], res);
        _Pragma("clang loop unroll(full)") for (int j = 0; j < 3; j++) wasm_v128_store(dw + ((i * 3 + j) * ci + c) * co + o, res[j]);
      }
    }
  }
}

// The input gradient of that convolution, the transpose of its forward form: dx = Σ_tiles B [ (A dy Aᵀ) · Uᵀ ] Bᵀ,
// a group's [tiles, co] · [co, n·ci] one matrix product, each tile's 5×5 block of dx overlapping its neighbours'
// by a row and a column, where it adds to what they stored (tiles run in order). ut is `winograd_s2_filter` of the
// filter with its channel axes swapped, `across`. dx [B, H, W, ci] is overwritten; the tiles must cover it
// (H ≤ 4·⌈oh/2⌉ − top + 1, the same for W). ci and co in fours; `scratch` as the forward pass's.
EXPORT("conv2d_input_grad_winograd_s2")
void conv2d_input_grad_winograd_s2(const float* dy, const float* ut, float* dx, float* scratch, int tiles, int B, int H,
                                   int W, int ci, int oh, int ow, int co, int top, int left) {
  const int ds = tiles * co + S2_PAD;
  float* M = scratch;                                // the products, laid out as the forward's input transforms
  float* D = scratch + 25 * tiles * ci + 9 * S2_PAD; // [9, ds]
  const int th = (oh + 1) / 2, tw = (ow + 1) / 2, per = th * tw, total = B * per;
  for (int t0 = 0; t0 < total; t0 += tiles) {
    const int nt = min_i(tiles, total - t0);
    s2_read_ahead(dx, dy, t0, nt, per, tw, B, H, W, ci, oh, ow, co, top);
    for (int t = 0; t < nt; t++) {
      S2_TILE(t0 + t);
      const int oy = 2 * ty, ox = 2 * tx;
      s2_dy_tile(dy + ((b * oh + oy) * ow + ox) * co, min_i(2, oh - oy), min_i(2, ow - ox), ow, co, D + t * co, ds);
    }
    for (int g = 0; g < 9; g++)
      wino_products(D + g * ds, 0, ut + s2_start(g) * ci * co, M + s2_start(g) * tiles * ci + g * S2_PAD, 0,
                    s2_size(g) * ci, 4, 1, nt, co, s2_size(g) * ci);
    for (int t = 0; t < nt; t++) {
      S2_TILE(t0 + t);
      const int iy0 = 4 * ty - top, ix0 = 4 * tx - left;
      const int inside = iy0 >= 0 && iy0 + 5 <= H && ix0 >= 0 && ix0 + 5 <= W;
      float* img = dx + b * H * W * ci;
      for (int c = 0; c < ci; c += 4) {
        v128_t e[5][5];
        _Pragma("clang loop unroll(full)") for (int s = 0; s < 5; s++) { // e = B M, column s
          v128_t m[5], col[5];
          _Pragma("clang loop unroll(full)") for (int r = 0; r < 5; r++) m[r] = wasm_v128_load(M + s2_at(r, s, t, tiles, ci) + c);
          s2_b(m, col);
          _Pragma("clang loop unroll(full)") for (int r = 0; r < 5; r++) e[r][s] = col[r];
        }
        _Pragma("clang loop unroll(full)") for (int r = 0; r < 5; r++) { // (B M) Bᵀ, row r
          v128_t row[5];
          s2_b(e[r], row);
          const int iy = iy0 + r;
          _Pragma("clang loop unroll(full)") for (int s = 0; s < 5; s++) {
            const int ix = ix0 + s;
            if (!inside && (iy < 0 || iy >= H || ix < 0 || ix >= W)) continue;
            float* p = img + (iy * W + ix) * ci + c;
            // Row 0 was the last row of the tile above, column 0 the last column of the tile to the left.
            const int shared = (r == 0 && ty > 0) || (s == 0 && tx > 0);
            wasm_v128_store(p, shared ? wasm_f32x4_add(wasm_v128_load(p), row[s]) : row[s]);
          }
        }
      }
    }
  }
}
