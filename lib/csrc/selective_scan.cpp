// Mamba's selective scan on a CPU, forward and backward each one fused loop (the idea of
// Mamba's CUDA kernel): h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t with h_{-1} = 0, y_t = h_t . C_t.
//
// Layout (row-major, contiguous): x, dt, y: [batch, pos, d_inner]; A: [d_inner, N];
// B, C: [batch, pos, N], N = 16. Every (batch b, channel d) pair is an independent recurrence
// over time whose state is N numbers, so nothing of size [batch, pos, d_inner, N] is ever
// built: the forward keeps no state but the current one, and the backward recomputes the states
// and decays of the channels at hand before running time in reverse.
//
// The vector lanes are channels: the loops are `for b: for block of kW channels: for t: for n:
// for lane`, with the block's state h[n][lane] in a local array (1 KB, L1). Every inner loop is
// then elementwise over contiguous lanes, which any compiler vectorises at any instruction set;
// lanes over n instead would need a horizontal sum over the state at every step (y_t = h_t . C_t),
// which the compiler does element by element (measured: the whole scan 1.7x slower). The
// block's inputs are gathered into [pos][kW] arrays, zero-padded past d_inner: a padded lane has
// dt = x = 0, so its state, output and gradients stay 0.
//
// `#pragma GCC ivdep` on a loop over lanes: its arrays do not overlap, so no run-time checks.
// Serial on purpose (no at::parallel_for): training runs one thread per worker process.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// The kernels are compiled for three x86-64 levels, and the best one the CPU has is picked when
// the library loads (GCC's function multiversioning): AVX-512 (x86-64-v4), AVX2 and FMA (v3),
// and SSE2 (any x86-64). Measured on an AVX-512 CPU, the whole scan: SSE2 takes 3x as long.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SCAN_TARGETS __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SCAN_TARGETS
#endif

constexpr int64_t kN = 16;  // Mamba's state size
constexpr int64_t kW = 16;  // channels per block: the vector lanes (one AVX-512 register of floats)

// exp(v), vectorisable (no call, no branch, SSE2 suffices): Cephes' expf, the argument
// reduced by k = round(v / ln 2) and a degree-5 polynomial on |r| <= ln(2) / 2, then 2^k added
// to the exponent; within 1 ulp of exp (measured on [-87, 88]). Decays exp(dt A) are the hot
// spot, one per state element per step, and glibc's expf is a call the compiler cannot
// vectorise. v is clamped to [-87, 88] (exp(-87) = 1.6e-38 stands for 0; Mamba's dt A is < 0);
// NaN stays NaN.
inline float vexp(float v) {
  v = v < -87.0f ? -87.0f : v;
  v = v > 88.0f ? 88.0f : v;
  const float magic = 12582912.0f;                             // 1.5 * 2^23: adding it rounds
  const float k = (v * 1.44269504088896341f + magic) - magic;  // to the nearest integer
  const float r = v - k * 0.693359375f + k * 2.12194440e-4f;   // ln 2 in two parts (k * hi exact)
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  uint32_t bits;
  std::memcpy(&bits, &p, sizeof bits);
  bits += static_cast<uint32_t>(static_cast<int32_t>(k)) << 23;
  std::memcpy(&p, &bits, sizeof p);
  return p;
}
inline double vexp(double v) { return std::exp(v); }  // float64 is for gradcheck, not speed

// One block of channels d0 .. d0 + kW - 1 of one batch row: its inputs as [pos][kW] and A as
// [N][kW] (transposed), zero past d_inner; and the scatter of [pos][kW] results back.
template <typename T>
struct Block {
  int64_t seq, d_inner, d0, width;  // width: the real channels, <= kW
  std::vector<T> x, dt, dtx, a;

  Block(int64_t seq, int64_t d_inner) : seq(seq), d_inner(d_inner), d0(0), width(0),
      x(seq * kW), dt(seq * kW), dtx(seq * kW), a(kN * kW) {}

  void copy(const T* src, T* dst) const {  // one position's lanes; a full block's copy is
    if (width == kW) {                      // inlined (a known size), another is a call
      std::copy_n(src, kW, dst);
    } else {
      std::copy_n(src, width, dst);
    }
  }
  void gather(const T* src, int64_t b, T* dst) const {  // [b, :, d0 : d0 + width] -> [pos][kW]
    if (width < kW) std::fill_n(dst, seq * kW, T(0));
    for (int64_t t = 0; t < seq; ++t) copy(src + (b * seq + t) * d_inner + d0, dst + t * kW);
  }
  void scatter(const T* src, int64_t b, T* dst) const {
    for (int64_t t = 0; t < seq; ++t) copy(src + t * kW, dst + (b * seq + t) * d_inner + d0);
  }
  void load(const T* x_, const T* dt_, const T* A, int64_t b, int64_t d0_) {
    d0 = d0_;
    width = std::min(kW, d_inner - d0);
    gather(x_, b, x.data());
    gather(dt_, b, dt.data());
    for (int64_t i = 0; i < seq * kW; ++i) dtx[i] = dt[i] * x[i];
    std::fill(a.begin(), a.end(), T(0));
    for (int64_t w = 0; w < width; ++w)
      for (int64_t n = 0; n < kN; ++n) a[n * kW + w] = A[(d0 + w) * kN + n];
  }
};

template <typename T>
SCAN_TARGETS void forward_kernel(const T* x, const T* dt, const T* A, const T* B, const T* C, T* y,
                                 int64_t batch, int64_t seq, int64_t d_inner) {
  Block<T> blk(seq, d_inner);
  std::vector<T> out(seq * kW);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t d0 = 0; d0 < d_inner; d0 += kW) {
      blk.load(x, dt, A, b, d0);
      T h[kN][kW] = {};
      for (int64_t t = 0; t < seq; ++t) {
        const T *B_t = B + (b * seq + t) * kN, *C_t = C + (b * seq + t) * kN;
        const T *dt_t = &blk.dt[t * kW], *dtx_t = &blk.dtx[t * kW];
        T y_t[kW] = {};
        for (int64_t n = 0; n < kN; ++n) {
          const T *a_n = &blk.a[n * kW];
#pragma GCC ivdep
          for (int64_t w = 0; w < kW; ++w) {
            h[n][w] = vexp(dt_t[w] * a_n[w]) * h[n][w] + dtx_t[w] * B_t[n];
            y_t[w] += h[n][w] * C_t[n];
          }
        }
        std::copy_n(y_t, kW, &out[t * kW]);
      }
      blk.scatter(out.data(), b, y);
    }
  }
}

// g = dL/dh_t, carried backwards: g_t = C_t dL/dy_t + exp(dt_{t+1} A) g_{t+1}. From it, at t:
// dL/dC_t += dL/dy_t h_t, dL/dB_t += dt_t x_t g_t, dL/d(dt_t x_t) = g_t . B_t, and through the
// decay, e = g_t exp(dt_t A) h_{t-1} = dL/d(dt_t A): dL/ddt_t += e . A_d, dL/dA_d += dt_t e.
// dL/dB and dL/dC (sums over channels) gather per lane in [pos][N][kW] arrays, summed over the
// lanes once per batch row; dL/dA (a sum over the batch) accumulates in place. The four
// [pos][N][kW] arrays take pos x 4 KB in float32 (600 KB at 153 positions): L2, not L1.
template <typename T>
SCAN_TARGETS void backward_kernel(const T* x, const T* dt, const T* A, const T* B, const T* C,
                                  const T* gy, T* gx, T* gdt, T* gA, T* gB, T* gC,
                                  int64_t batch, int64_t seq, int64_t d_inner) {
  const int64_t plane = kN * kW;
  Block<T> blk(seq, d_inner);
  std::vector<T> gy_blk(seq * kW), gx_blk(seq * kW), gdt_blk(seq * kW);
  std::vector<T> H((seq + 1) * plane), decay(seq * plane);  // H[0] = h_{-1} = 0; h_t at H[t + 1]
  std::vector<T> gB_lanes(seq * plane), gC_lanes(seq * plane);
  for (int64_t b = 0; b < batch; ++b) {
    std::fill(gB_lanes.begin(), gB_lanes.end(), T(0));
    std::fill(gC_lanes.begin(), gC_lanes.end(), T(0));
    for (int64_t d0 = 0; d0 < d_inner; d0 += kW) {
      blk.load(x, dt, A, b, d0);
      blk.gather(gy, b, gy_blk.data());
      for (int64_t t = 0; t < seq; ++t) {  // recompute the forward's states and decays
        const T* B_t = B + (b * seq + t) * kN;
        const T *dt_t = &blk.dt[t * kW], *dtx_t = &blk.dtx[t * kW];
        const T* h_prev = &H[t * plane];
        T *h = &H[(t + 1) * plane], *decay_t = &decay[t * plane];
        for (int64_t n = 0; n < kN; ++n) {
#pragma GCC ivdep
          for (int64_t w = 0; w < kW; ++w) {
            const int64_t i = n * kW + w;
            decay_t[i] = vexp(dt_t[w] * blk.a[i]);
            h[i] = decay_t[i] * h_prev[i] + dtx_t[w] * B_t[n];
          }
        }
      }
      T g[kN * kW] = {}, gA_blk[kN * kW] = {};
      for (int64_t t = seq - 1; t >= 0; --t) {  // and run time in reverse
        const T *B_t = B + (b * seq + t) * kN, *C_t = C + (b * seq + t) * kN;
        const T *x_t = &blk.x[t * kW], *dt_t = &blk.dt[t * kW], *dtx_t = &blk.dtx[t * kW];
        const T *gy_t = &gy_blk[t * kW], *h = &H[(t + 1) * plane], *h_prev = &H[t * plane];
        const T* decay_t = &decay[t * plane];
        T *gB_t = &gB_lanes[t * plane], *gC_t = &gC_lanes[t * plane];
        T g_dtx[kW] = {}, g_dt[kW] = {};
        for (int64_t n = 0; n < kN; ++n) {
#pragma GCC ivdep
          for (int64_t w = 0; w < kW; ++w) {
            const int64_t i = n * kW + w;
            g[i] += gy_t[w] * C_t[n];
            gC_t[i] += gy_t[w] * h[i];
            gB_t[i] += dtx_t[w] * g[i];
            g_dtx[w] += g[i] * B_t[n];
            const T e = g[i] * decay_t[i] * h_prev[i];  // 0 at t = 0
            g_dt[w] += e * blk.a[i];
            gA_blk[i] += e * dt_t[w];
            g[i] *= decay_t[i];  // carried to h_{t-1}
          }
        }
        for (int64_t w = 0; w < kW; ++w) {
          gx_blk[t * kW + w] = g_dtx[w] * dt_t[w];
          gdt_blk[t * kW + w] = g_dtx[w] * x_t[w] + g_dt[w];
        }
      }
      blk.scatter(gx_blk.data(), b, gx);
      blk.scatter(gdt_blk.data(), b, gdt);
      for (int64_t w = 0; w < blk.width; ++w)
        for (int64_t n = 0; n < kN; ++n) gA[(d0 + w) * kN + n] += gA_blk[n * kW + w];
    }
    for (int64_t t = 0; t < seq; ++t) {  // sum the lanes
      for (int64_t n = 0; n < kN; ++n) {
        T sB = 0, sC = 0;
        for (int64_t w = 0; w < kW; ++w) {
          sB += gB_lanes[t * plane + n * kW + w];
          sC += gC_lanes[t * plane + n * kW + w];
        }
        gB[(b * seq + t) * kN + n] = sB;
        gC[(b * seq + t) * kN + n] = sC;
      }
    }
  }
}

void check(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
           const torch::Tensor& B, const torch::Tensor& C) {
  for (const auto* v : {&x, &dt, &A, &B, &C}) {
    TORCH_CHECK(v->device().is_cpu() && v->is_contiguous() && v->scalar_type() == x.scalar_type(),
                "selective_scan: CPU tensors, contiguous, of one dtype");
  }
  TORCH_CHECK(x.dim() == 3 && dt.sizes() == x.sizes(), "selective_scan: x, dt [batch, pos, d_inner]");
  TORCH_CHECK(A.dim() == 2 && A.size(0) == x.size(2) && A.size(1) == kN, "selective_scan: A [d_inner, 16]");
  for (const auto* v : {&B, &C}) {
    TORCH_CHECK(v->dim() == 3 && v->size(0) == x.size(0) && v->size(1) == x.size(1) && v->size(2) == kN,
                "selective_scan: B, C [batch, pos, 16]");
  }
}

torch::Tensor forward(torch::Tensor x, torch::Tensor dt, torch::Tensor A, torch::Tensor B, torch::Tensor C) {
  check(x, dt, A, B, C);
  auto y = torch::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "selective_scan_forward", [&] {
    forward_kernel<scalar_t>(x.data_ptr<scalar_t>(), dt.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
                             B.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                             x.size(0), x.size(1), x.size(2));
  });
  return y;
}

std::vector<torch::Tensor> backward(torch::Tensor x, torch::Tensor dt, torch::Tensor A, torch::Tensor B,
                                    torch::Tensor C, torch::Tensor grad_y) {
  check(x, dt, A, B, C);
  TORCH_CHECK(grad_y.sizes() == x.sizes() && grad_y.is_contiguous() && grad_y.scalar_type() == x.scalar_type(),
              "selective_scan: grad_y like x, contiguous");
  auto gx = torch::empty_like(x), gdt = torch::empty_like(dt), gB = torch::empty_like(B), gC = torch::empty_like(C);
  auto gA = torch::zeros_like(A);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "selective_scan_backward", [&] {
    backward_kernel<scalar_t>(x.data_ptr<scalar_t>(), dt.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
                              B.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(), grad_y.data_ptr<scalar_t>(),
                              gx.data_ptr<scalar_t>(), gdt.data_ptr<scalar_t>(), gA.data_ptr<scalar_t>(),
                              gB.data_ptr<scalar_t>(), gC.data_ptr<scalar_t>(), x.size(0), x.size(1), x.size(2));
  });
  return {gx, gdt, gA, gB, gC};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "selective scan y from (x, dt, A, B, C)");
  m.def("backward", &backward, "gradients (x, dt, A, B, C) of the selective scan, given grad_y");
}
