/* The two passes around an int8 product (nmt/quantize.py), each in one loop over memory.

   quantize_rows: per row, s = max(max_j |x_j|, 1e-12) / 127 and q_j = round(x_j / s), halves to
   even, stored as int8, or as uint8 around 128 when offset is 128.
   rescale_*: y_ij = sums_ij * rows_i * cols_j + bias_j, each operation rounded to float in that
   order (no fused multiply-add: built with -ffp-contract=off).

   The same operations, in the same order, as the PyTorch expressions they replace, so every value
   is bit for bit theirs (tests/decode/test_kernels.py). */

#include <math.h>
#include <stdint.h>

static float row_scale(const float *x, int64_t k) {
    /* The largest |x_j| found on bit patterns: with the sign bit cleared, floats order as their
       bits do as unsigned integers, a maximum the compiler vectorises (a float maximum it may
       not reorder, for NaN's and -0's sake). The maximum is the same in any order. */
    const uint32_t *bits = (const uint32_t *)x;
    uint32_t m = 0;
    for (int64_t j = 0; j < k; j++) {
        uint32_t a = bits[j] & 0x7fffffffu;
        m = a > m ? a : m;
    }
    union { uint32_t u; float f; } largest = {m};
    return (largest.f > 1e-12f ? largest.f : 1e-12f) / 127.0f;
}

void quantize_rows(const float *restrict x, int64_t n, int64_t k, int64_t offset,
                   int8_t *restrict q, float *restrict scale) {
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * k;
        int8_t *qi = q + i * k;
        float s = row_scale(xi, k);
        scale[i] = s;
        for (int64_t j = 0; j < k; j++)  /* rintf: to nearest, halves to even, as torch.round */
            qi[j] = (int8_t)(uint8_t)((int32_t)rintf(xi[j] / s) + (int32_t)offset);
    }
}

void rescale_int_sums(const int32_t *restrict sums, int64_t n, int64_t m,
                      const float *restrict rows, const float *restrict cols,
                      const float *restrict bias, float *restrict y) {
    /* torch._int_mm's int32 sums into a new float tensor */
    for (int64_t i = 0; i < n; i++) {
        const int32_t *si = sums + i * m;
        float *yi = y + i * m;
        float r = rows[i];
        if (bias)
            for (int64_t j = 0; j < m; j++) yi[j] = (float)si[j] * r * cols[j] + bias[j];
        else
            for (int64_t j = 0; j < m; j++) yi[j] = (float)si[j] * r * cols[j];
    }
}

void rescale_float_sums(float *restrict y, int64_t n, int64_t m, const float *restrict rows,
                        const float *restrict cols, const float *restrict bias) {
    /* oneDNN's sums, already floats (exact below 2^24), in place */
    for (int64_t i = 0; i < n; i++) {
        float *yi = y + i * m;
        float r = rows[i];
        if (bias)
            for (int64_t j = 0; j < m; j++) yi[j] = yi[j] * r * cols[j] + bias[j];
        else
            for (int64_t j = 0; j < m; j++) yi[j] = yi[j] * r * cols[j];
    }
}
