/* The int8 product of Int8Linear (nmt/quantize.py) in one call: quantize the input rows, multiply
   with the int8 weights, rescale.

       y_ij = (sum_k q(x)_ik w_jk) * s(x)_i * s(W)_j + b_j

   The rows go in as uint8 around 128 (the instructions multiply unsigned by signed bytes), so
   each sum comes out as sum_k (q_ik + 128) w_jk = sum_k q_ik w_jk + 128 sum_k w_jk, and the
   second term, computed once per weight row (pack_weights), is taken off: the exact int32 sums
   of torch._int_mm, rescaled as rescale_int_sums does (int8_rows.c). So y is bit for bit what the
   PyTorch path computes, whichever instructions ran.

   Two sets of instructions: AVX-512 VNNI (vpdpbusd, 64 products per instruction) for one to three
   rows, where the weights are read once and the rows ride along; AMX (tdpbusd: a 16 x 64 byte
   tile of rows against a 64 x 16 tile of weights per instruction) from four rows, where VNNI's
   arithmetic would be the bound. Both read the weights in one packed layout:
   [n / 64][k / 4][4 blocks of 16 outputs][16 outputs][4 bytes of k], n padded to 64 with zero
   rows, which is AMX's layout for its weight tiles (16 rows of 4 k-bytes x 16 outputs, the rows
   256 bytes apart) and VNNI's per instruction. */

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "int8_product.h"

void quantize_rows(const float *restrict x, int64_t n, int64_t k, int64_t offset,
                   int8_t *restrict q, float *restrict scale);

#if defined(__AVX512VNNI__) && defined(__AVX512F__)
#define HAVE_VNNI 1
#endif
#if defined(HAVE_VNNI) && defined(__AMX_INT8__) && defined(__AMX_TILE__) && defined(__linux__)
#define HAVE_AMX 1
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define AMX_FROM_ROWS 4

static int amx_enabled = 0;

/* 1: VNNI only, 2: VNNI and AMX, 0: neither (the caller keeps PyTorch's product). AMX's tile
   registers are lent by Linux to a process that asks for them (arch_prctl, once). */
int64_t int8_product_level(void) {
#ifdef HAVE_AMX
    if (!amx_enabled)  /* ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA */
        amx_enabled = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    return amx_enabled ? 2 : 1;
#elif defined(HAVE_VNNI)
    return 1;
#else
    return 0;
#endif
}

void pack_weights(const int8_t *restrict w, int64_t n, int64_t k, int8_t *restrict packed,
                  int32_t *restrict sums128) {
    /* w (n, k), k a multiple of 4 -> packed ((n + 63) / 64 * 64 * k bytes), 128 * row sums (n) */
    int64_t groups = k / 4;
    memset(packed, 0, (n + 63) / 64 * 64 * k);
    for (int64_t j = 0; j < n; j++) {
        int32_t sum = 0;
        for (int64_t i = 0; i < k; i++) sum += w[j * k + i];
        sums128[j] = 128 * sum;
        int8_t *lane = packed + (j / 64) * 64 * k + (j % 64) * 4;
        for (int64_t g = 0; g < groups; g++) memcpy(lane + g * 256, w + j * k + g * 4, 4);
    }
}

#ifdef HAVE_VNNI
/* Rows r0.. of output block j (16 outputs, masked at the end): sums -> y, rescale_int_sums's
   operations in its order (no FMA: -ffp-contract=off, and explicit products here). */
static inline __attribute__((always_inline)) void rescale_block(
        const __m512i *sums, int64_t stride, int64_t rows, const float *restrict row_scales,
        const int32_t *restrict sums128, const float *restrict cols, const float *restrict bias,
        int64_t j, int64_t n, float *restrict y) {
    int64_t left = n - j;
    __mmask16 m = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
    __m512i offset = _mm512_maskz_loadu_epi32(m, sums128 + j);
    __m512 col = _mm512_maskz_loadu_ps(m, cols + j);
    __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + j) : _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(sums + r * stride), offset));
        v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(row_scales[r])), col);
        if (bias) v = _mm512_add_ps(v, b);
        _mm512_mask_storeu_ps(y + r * n + j, m, v);
    }
}

/* R rows (1-4) x 64 outputs: 16 accumulators, each 4 k-bytes of a row broadcast against the
   panel's 4 vectors of 16 outputs. */
static inline __attribute__((always_inline)) void vnni_tile(
        int R, const uint8_t *restrict xq, int64_t k, const int8_t *restrict panel,
        const float *restrict row_scales, const int32_t *restrict sums128,
        const float *restrict cols, const float *restrict bias, int64_t j0, int64_t n,
        float *restrict y) {
    __m512i acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_si512();
    for (int64_t g = 0; g < k / 4; g++) {
        const int8_t *w = panel + g * 256;
        __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 64),
                w2 = _mm512_loadu_si512(w + 128), w3 = _mm512_loadu_si512(w + 192);
        for (int r = 0; r < R; r++) {
            int32_t four;
            memcpy(&four, xq + r * k + g * 4, 4);
            __m512i x = _mm512_set1_epi32(four);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, w0);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, w1);
            acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], x, w2);
            acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], x, w3);
        }
    }
    for (int c = 0; c < 4 && j0 + c * 16 < n; c++)
        rescale_block(&acc[0][c], 4, R, row_scales, sums128, cols, bias, j0 + c * 16, n, y);
}

static void vnni_product(const uint8_t *xq, int64_t rows, int64_t k, const int8_t *packed,
                         const float *row_scales, const int32_t *sums128, const float *cols,
                         const float *bias, int64_t n, float *y) {
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
        const int8_t *panel = packed + j0 * k;
        int64_t r = 0;
        for (; r + 4 <= rows; r += 4)
            vnni_tile(4, xq + r * k, k, panel, row_scales + r, sums128, cols, bias, j0, n, y + r * n);
        const uint8_t *xr = xq + r * k;
        float *yr = y + r * n;
        if (rows - r == 3) vnni_tile(3, xr, k, panel, row_scales + r, sums128, cols, bias, j0, n, yr);
        if (rows - r == 2) vnni_tile(2, xr, k, panel, row_scales + r, sums128, cols, bias, j0, n, yr);
        if (rows - r == 1) vnni_tile(1, xr, k, panel, row_scales + r, sums128, cols, bias, j0, n, yr);
    }
}
#endif

#ifdef HAVE_AMX
struct tile_config { uint8_t palette, start_row, reserved[14]; uint16_t bytes[16]; uint8_t rows[16]; };

/* 16 rows (xq, padded) x 64 outputs: tiles 0-3 sum the four blocks of 16 outputs, tile 4 holds
   64 k-bytes of the rows, tiles 5 and 6 alternate the weights. */
static void amx_tile(const uint8_t *xq, int64_t k, const int8_t *panel, int32_t *sums) {
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (int64_t kk = 0; kk < k / 64; kk++) {
        const int8_t *w = panel + kk * 16 * 256;
        _tile_loadd(4, xq + kk * 64, k);
        _tile_loadd(5, w, 256); _tile_dpbusd(0, 4, 5);
        _tile_loadd(6, w + 64, 256); _tile_dpbusd(1, 4, 6);
        _tile_loadd(5, w + 128, 256); _tile_dpbusd(2, 4, 5);
        _tile_loadd(6, w + 192, 256); _tile_dpbusd(3, 4, 6);
    }
    _tile_stored(0, sums, 256); _tile_stored(1, sums + 16, 256);
    _tile_stored(2, sums + 32, 256); _tile_stored(3, sums + 48, 256);
}

static void amx_product(const uint8_t *xq, int64_t rows, int64_t k, const int8_t *packed,
                        const float *row_scales, const int32_t *sums128, const float *cols,
                        const float *bias, int64_t n, float *y) {
    struct tile_config config = {.palette = 1};
    for (int t = 0; t < 7; t++) config.bytes[t] = 64, config.rows[t] = 16;
    _tile_loadconfig(&config);
    int32_t sums[16 * 64] __attribute__((aligned(64)));
    for (int64_t j0 = 0; j0 < n; j0 += 64)
        for (int64_t r0 = 0; r0 < rows; r0 += 16) {
            amx_tile(xq + r0 * k, k, packed + j0 * k, sums);
            int64_t r = rows - r0 < 16 ? rows - r0 : 16;
            for (int c = 0; c < 4 && j0 + c * 16 < n; c++)
                rescale_block((const __m512i *)(sums + c * 16), 4, r, row_scales + r0, sums128,
                              cols, bias, j0 + c * 16, n, y + r0 * n);
        }
    _tile_release();
}
#endif

/* k (in_features) a multiple of 4 */
int64_t int8_linear(const Int8Weights *w, const float *restrict x, int64_t rows, float *restrict y) {
#ifdef HAVE_VNNI
    int64_t k = w->in_features, n = w->out_features;
    int64_t padded = (rows + 15) / 16 * 16;  /* AMX reads whole tiles of 16 rows */
    uint8_t *xq = malloc(padded * k + padded * sizeof(float));
    if (!xq) return 0;
    float *row_scales = (float *)(xq + padded * k);
    quantize_rows(x, rows, k, 128, (int8_t *)xq, row_scales);
#ifdef HAVE_AMX
    if (amx_enabled && rows >= AMX_FROM_ROWS && k % 64 == 0) {
        memset(xq + rows * k, 128, (padded - rows) * k);
        amx_product(xq, rows, k, w->packed, row_scales, w->sums128, w->scale, w->bias, n, y);
        free(xq);
        return 1;
    }
#endif
    vnni_product(xq, rows, k, w->packed, row_scales, w->sums128, w->scale, w->bias, n, y);
    free(xq);
    return 1;
#else
    (void)w; (void)x; (void)rows; (void)y;
    return 0;
#endif
}
