/*
 * conv1d over time-major x [L, Cin] → [Lout, Cout] as a matmul: a block of output
 * frames is unfolded into patches [frames, Cin·kernel] in the torch weight's column
 * order (ci·kernel + tap), then multiplied by W through linear.c's blocked kernel.
 */
#include "omni.h"
#include <string.h>

/* Patch elements per block: bounds the unfolded copy (16 MB) for long inputs. */
#define PATCH_BLOCK_ELEMENTS (4 << 20)

/* Returns 0, or −1 when scratch memory ran out. */
OMNI_EXPORT int omni_conv1d(const float *x, int L, int Cin, const void *data, int format, int scale_f16,
                            int Cout, int kernel, int stride, int padding, int dilation, int reflect,
                            const float *bias, float *y, int Lout) {
  weight_t w = { data, Cout, Cin * kernel, format, scale_f16 };
  const int cols = Cin * kernel;
  int frames = PATCH_BLOCK_ELEMENTS / cols;
  if (frames < 1) frames = 1;
  if (frames > Lout) frames = Lout;
  float *patches = omni_shared_scratch(SCRATCH_PATCHES, (size_t)frames * cols * 4);
  if (!patches) return -1;
  for (int t0 = 0; t0 < Lout; t0 += frames) {
    int n = Lout - t0 < frames ? Lout - t0 : frames;
    for (int f = 0; f < n; f++) {
      float *patch = patches + (size_t)f * cols;
      for (int tap = 0; tap < kernel; tap++) {
        int src = (t0 + f) * stride + tap * dilation - padding;
        if (src < 0 || src >= L) {
          if (!reflect) {
            for (int ci = 0; ci < Cin; ci++) patch[ci * kernel + tap] = 0.0f;
            continue;
          }
          /* torch's reflect padding mirrors without repeating the edge frame. */
          src = src < 0 ? -src : 2 * (L - 1) - src;
        }
        const float *row = x + (size_t)src * Cin;
        for (int ci = 0; ci < Cin; ci++) patch[ci * kernel + tap] = row[ci];
      }
    }
    if (linear_rows(patches, cols, n, &w, bias, y + (size_t)t0 * Cout, Cout) != 0) return -1;
  }
  return 0;
}
