/* An int8 layer as int8_product.c multiplies it: weights packed by pack_weights, the weights'
   per-row scales and the bias (NULL: none) of Int8Linear. */
#include <stdint.h>

typedef struct {
    const int8_t *packed;
    const int32_t *sums128;  /* 128 x each weight row's sum */
    const float *scale, *bias;
    int64_t out_features, in_features;
} Int8Weights;

/* x (rows, in_features) float -> y (rows, out_features); 0 where this build cannot */
int64_t int8_linear(const Int8Weights *w, const float *x, int64_t rows, float *y);
