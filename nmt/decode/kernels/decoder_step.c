/* One decoding step of the Transformer decoder (nmt/models/transformer.py) with int8 weights,
   the whole of it in one call: at these sizes a step in PyTorch is some 390 operations of a few
   microseconds each, whatever their size, and that overhead, not arithmetic, was most of a step.

   Pre-norm layers, each x = x + Sublayer(LayerNorm(x)):
       masked self-attention over the row's own earlier positions,
       attention over the encoder output of the row's sentence,
       the feed-forward max(0, x W_1 + b_1) W_2 + b_2,
   then the final LayerNorm, the output projection and log_softmax. Every product is
   int8_linear's (int8_product.c), so exactly Int8Linear's values; the float parts (layer norms,
   attention, softmax) follow the same formulas in a different order from PyTorch's kernels and
   agree with them to a few units in the last place.

   The self-attention keys and values are stored by position, not by hypothesis: position p holds
   the rows that were alive at step p, and ancestors[r][p] says which of them row r descends
   from. A beam step that reorders hypotheses only rewrites the small table of ancestors; the
   caches themselves are never copied (in PyTorch the reordering copies were 18% of a beam-4
   batch). */

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "int8_product.h"

typedef struct {
    const float *norm_weight[3], *norm_bias[3];  /* before self-attention, cross, feed-forward */
    Int8Weights qkv, self_out, cross_q, cross_out, ff1, ff2;
} Layer;

typedef struct {
    int64_t layers, d_model, heads, d_ff, max_positions;
    const float *embed, *positions;  /* (vocabulary, d_model), (max_positions, d_model) */
    const float *final_weight, *final_bias;
    const Layer *layer;
} Decoder;

typedef struct {  /* the self-attention cache of one layer: (capacity, width, d_model) twice */
    float *keys, *values;
} Cache;

#ifdef __AVX512F__
static int linear(const Int8Weights *w, const float *x, int64_t rows, float *y) {
    return int8_linear(w, x, rows, y) ? 0 : -1;
}

static inline float sum16(__m512 v) { return _mm512_reduce_add_ps(v); }

/* e^x for x <= 0 (scores minus their maximum): e^x = 2^n e^r, |r| <= ln(2) / 2, e^r by its
   Taylor series to r^7 (relative error below 2e-7); below -87 it is 0 within float's range. */
static inline __m512 exp_nonpositive(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
}

/* LayerNorm(x) = (x - mean) / sqrt(var + 1e-5) * w + b, var the biased variance, per row */
static void layer_norm(const float *x, int64_t rows, int64_t d, const float *w, const float *b,
                       float *y) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        __m512 s = _mm512_setzero_ps();
        for (int64_t i = 0; i < d; i += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(xr + i));
        __m512 mean = _mm512_set1_ps(sum16(s) / d), v = _mm512_setzero_ps();
        for (int64_t i = 0; i < d; i += 16) {
            __m512 c = _mm512_sub_ps(_mm512_loadu_ps(xr + i), mean);
            v = _mm512_fmadd_ps(c, c, v);
        }
        __m512 inv = _mm512_set1_ps(1.0f / sqrtf(sum16(v) / d + 1e-5f));
        for (int64_t i = 0; i < d; i += 16) {
            __m512 c = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + i), mean), inv);
            _mm512_storeu_ps(yr + i, _mm512_fmadd_ps(c, _mm512_loadu_ps(w + i), _mm512_loadu_ps(b + i)));
        }
    }
}

static inline float dot(const float *a, const float *b, int64_t n) {
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16)
        s = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s);
    return sum16(s);
}

/* softmax(scores) in place over n entries (-inf: masked out); returns 0 if all are masked */
static int softmax(float *scores, int64_t n) {
    float top = -INFINITY;
    for (int64_t p = 0; p < n; p++) top = scores[p] > top ? scores[p] : top;
    if (top == -INFINITY) return 0;
    __m512 total = _mm512_setzero_ps(), m = _mm512_set1_ps(top);
    for (int64_t p = 0; p < n; p += 16) {
        __mmask16 k = tail_mask(n - p);
        __m512 s = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, scores + p);
        __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(s, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ),
                                       exp_nonpositive(_mm512_sub_ps(s, m)));
        _mm512_mask_storeu_ps(scores + p, k, e);
        total = _mm512_add_ps(total, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / sum16(total));
    for (int64_t p = 0; p < n; p += 16) {
        __mmask16 k = tail_mask(n - p);
        _mm512_mask_storeu_ps(scores + p, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, scores + p), inv));
    }
    return 1;
}

/* out (d_k) = sum_p weights[p] * rows[p] */
static void weighted_sum(const float *weights, const float *const *rows, int64_t n, int64_t d_k,
                         float *out) {
    for (int64_t i = 0; i < d_k; i += 64) {
        int64_t width = d_k - i < 64 ? d_k - i : 64;
        __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int64_t p = 0; p < n; p++) {
            if (weights[p] == 0.0f) continue;
            __m512 w = _mm512_set1_ps(weights[p]);
            for (int64_t c = 0; c * 16 < width; c++)
                a[c] = _mm512_fmadd_ps(w, _mm512_loadu_ps(rows[p] + i + c * 16), a[c]);
        }
        for (int64_t c = 0; c * 16 < width; c++) _mm512_storeu_ps(out + i + c * 16, a[c]);
    }
}

/* Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V for one query and head, keys and values
   given as row pointers (n of them), scores a scratch of n floats. */
static void attend(const float *q, const float *const *keys, const float *const *values,
                   const uint8_t *mask, int64_t n, int64_t d_k, float *scores, float *out) {
    float scale = 1.0f / sqrtf((float)d_k);
    for (int64_t p = 0; p < n; p++)
        scores[p] = mask && !mask[p] ? -INFINITY : dot(q, keys[p], d_k) * scale;
    if (!softmax(scores, n)) {
        memset(out, 0, d_k * sizeof(float));
        return;
    }
    weighted_sum(scores, values, n, d_k, out);
}

/* log_softmax over each row of logits (rows, n), in place: x - max - log(sum(exp(x - max))) */
static void log_softmax(float *logits, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; r++) {
        float *x = logits + r * n;
        __m512 m = _mm512_set1_ps(-INFINITY);
        for (int64_t j = 0; j < n; j += 16)
            m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n - j), x + j));
        float top = _mm512_reduce_max_ps(m);
        __m512 total = _mm512_setzero_ps(), t = _mm512_set1_ps(top);
        for (int64_t j = 0; j < n; j += 16) {
            __mmask16 k = tail_mask(n - j);
            __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), t));
            total = _mm512_add_ps(total, _mm512_maskz_mov_ps(k, e));
        }
        __m512 shift = _mm512_set1_ps(top + logf(sum16(total)));
        for (int64_t j = 0; j < n; j += 16) {
            __mmask16 k = tail_mask(n - j);
            _mm512_mask_storeu_ps(x + j, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), shift));
        }
    }
}

static void add_rows(float *x, const float *y, int64_t count) {
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 k = tail_mask(count - i);
        _mm512_mask_storeu_ps(x + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, x + i),
                                                      _mm512_maskz_loadu_ps(k, y + i)));
    }
}
#endif

/* rows hypotheses, beams per sentence of the memory (rows / beams sentences), at position step.
   ancestors (rows, capacity): row r's ancestor at each position before step; with parents, row
   r continues row parents[r] of the previous step and its ancestors are copied from that row of
   previous (which may be ancestors itself when nothing moved and parents is NULL); column step
   is written here. caches[l]: (capacity, width, d_model) keys
   and values by position; cross_keys/values[l]: (sentences, heads, source_len, d_k); mask
   (sentences, source_len), 1 at real tokens. log_probs (rows, output->out_features).
   Returns 0, or -1 when out of memory or not built for this CPU. */
int64_t decoder_step(const Decoder *m, const Int8Weights *output, int64_t rows, int64_t beams,
                     const int64_t *tokens, int64_t step, const int64_t *parents,
                     const int32_t *previous, int32_t *ancestors, int64_t capacity,
                     const Cache *caches, int64_t width, const float *const *cross_keys,
                     const float *const *cross_values, const uint8_t *mask, int64_t source_len,
                     float *log_probs) {
#ifdef __AVX512F__
    int64_t d = m->d_model, heads = m->heads, d_k = d / heads, longest = step + 1;
    longest = longest > source_len ? longest : source_len;
    size_t floats = rows * (6 * d + m->d_ff) + longest;  /* x, h, qkv, att, ff; scores */
    float *x = malloc(floats * sizeof(float));
    const float **pointers = malloc(2 * longest * sizeof(float *));
    if (!x || !pointers) { free(x); free(pointers); return -1; }
    float *h = x + rows * d, *qkv = h + rows * d, *att = qkv + 3 * rows * d,
          *ff = att + rows * d, *scores = ff + rows * m->d_ff;
    const float **keys = pointers, **values = pointers + longest;
    float scale = sqrtf((float)d);
    int status = 0;

    /* 3.4, 3.5: x = E[token] * sqrt(d_model) + PE[step] */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < d; i++)
            x[r * d + i] = m->embed[tokens[r] * d + i] * scale + m->positions[step * d + i];
    for (int64_t r = 0; r < rows; r++) {
        if (parents)
            memcpy(ancestors + r * capacity, previous + parents[r] * capacity, step * sizeof(int32_t));
        ancestors[r * capacity + step] = (int32_t)r;
    }

    for (int64_t l = 0; l < m->layers && !status; l++) {
        const Layer *layer = &m->layer[l];
        float *step_keys = caches[l].keys + step * width * d, *step_values = caches[l].values + step * width * d;
        layer_norm(x, rows, d, layer->norm_weight[0], layer->norm_bias[0], h);
        status |= linear(&layer->qkv, h, rows, qkv);
        for (int64_t r = 0; r < rows; r++) {
            memcpy(step_keys + r * d, qkv + r * 3 * d + d, d * sizeof(float));
            memcpy(step_values + r * d, qkv + r * 3 * d + 2 * d, d * sizeof(float));
        }
        for (int64_t r = 0; r < rows; r++)  /* the row's own positions 0..step, via ancestors */
            for (int64_t head = 0; head < heads; head++) {
                for (int64_t p = 0; p <= step; p++) {
                    int64_t at = (p * width + ancestors[r * capacity + p]) * d + head * d_k;
                    keys[p] = caches[l].keys + at;
                    values[p] = caches[l].values + at;
                }
                attend(qkv + r * 3 * d + head * d_k, keys, values, NULL, step + 1, d_k, scores,
                       att + r * d + head * d_k);
            }
        status |= linear(&layer->self_out, att, rows, h);
        add_rows(x, h, rows * d);

        layer_norm(x, rows, d, layer->norm_weight[1], layer->norm_bias[1], h);
        status |= linear(&layer->cross_q, h, rows, qkv);
        for (int64_t r = 0; r < rows; r++) {
            int64_t sentence = r / beams;
            for (int64_t head = 0; head < heads; head++) {
                int64_t at = (sentence * heads + head) * source_len * d_k;
                for (int64_t p = 0; p < source_len; p++) {
                    keys[p] = cross_keys[l] + at + p * d_k;
                    values[p] = cross_values[l] + at + p * d_k;
                }
                attend(qkv + r * d + head * d_k, keys, values, mask + sentence * source_len,
                       source_len, d_k, scores, att + r * d + head * d_k);
            }
        }
        status |= linear(&layer->cross_out, att, rows, h);
        add_rows(x, h, rows * d);

        layer_norm(x, rows, d, layer->norm_weight[2], layer->norm_bias[2], h);
        status |= linear(&layer->ff1, h, rows, ff);
        for (int64_t i = 0; i < rows * m->d_ff; i++) ff[i] = ff[i] > 0.0f ? ff[i] : 0.0f;
        status |= linear(&layer->ff2, ff, rows, h);
        add_rows(x, h, rows * d);
    }
    if (!status) {
        layer_norm(x, rows, d, m->final_weight, m->final_bias, h);
        status |= linear(output, h, rows, log_probs);
        log_softmax(log_probs, rows, output->out_features);
    }
    free(x);
    free(pointers);
    return status ? -1 : 0;
#else
    (void)m; (void)output; (void)rows; (void)beams; (void)tokens; (void)step; (void)parents;
    (void)previous; (void)ancestors;
    (void)capacity; (void)caches; (void)width; (void)cross_keys; (void)cross_values; (void)mask;
    (void)source_len; (void)log_probs;
    return -1;
#endif
}
