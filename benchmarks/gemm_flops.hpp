#pragma once
// What share of the machine's matrix-multiply throughput a training step achieves.
//  - GemmFlopCounter counts, while alive, the floating-point operations of every matrix
//    product and convolution LibTorch runs (forward and backward, on any thread): 2·m·k·n per
//    product, read from the operands' shapes as the dispatcher passes them. Element-wise work,
//    softmax and norms are not counted: the share is that of the GEMM work alone.
//  - gemm_peak_flops() measures the throughput of one large square product (2048), the most
//    any part of a step can reach, at the same threads and precision.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include <stdexcept>
#include <string>

#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <torch/nn/functional/linear.h>
#include <torch/types.h>

namespace commercemm::bench {

class GemmFlopCounter {
 public:
  GemmFlopCounter() {
    total_.store(0);
    handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&GemmFlopCounter::on_op)
                                        .needsInputs(true)
                                        .scopes({at::RecordScope::FUNCTION}));
  }
  ~GemmFlopCounter() { at::removeCallback(handle_); }
  GemmFlopCounter(const GemmFlopCounter&) = delete;
  GemmFlopCounter& operator=(const GemmFlopCounter&) = delete;

  /// Operations counted since construction.
  double flops() const { return static_cast<double>(total_.load()); }

 private:
  static std::int64_t numel_of(const c10::IValue& v) { return v.isTensor() ? v.toTensor().numel() : 0; }
  static c10::IntArrayRef sizes_of(const c10::IValue& v) {
    return v.isTensor() ? v.toTensor().sizes() : c10::IntArrayRef{};
  }

  // Leaf products only: linear and matmul reach one of these, so nothing is counted twice.
  static std::unique_ptr<at::ObserverContext> on_op(const at::RecordFunction& fn) {
    const std::string_view name = fn.name();
    const auto inputs = fn.inputs();
    std::int64_t flops = 0;
    if (name == "aten::mm" && inputs.size() >= 2) {  // [m, k] x [k, n]
      const auto a = sizes_of(inputs[0]), b = sizes_of(inputs[1]);
      if (a.size() == 2 && b.size() == 2) flops = 2 * a[0] * a[1] * b[1];
    } else if ((name == "aten::addmm" || name == "aten::_addmm_activation") && inputs.size() >= 3) {
      const auto a = sizes_of(inputs[1]), b = sizes_of(inputs[2]);
      if (a.size() == 2 && b.size() == 2) flops = 2 * a[0] * a[1] * b[1];
    } else if (name == "aten::bmm" && inputs.size() >= 2) {  // [b, m, k] x [b, k, n]
      const auto a = sizes_of(inputs[0]), b = sizes_of(inputs[1]);
      if (a.size() == 3 && b.size() == 3) flops = 2 * a[0] * a[1] * a[2] * b[2];
    } else if (name == "aten::baddbmm" && inputs.size() >= 3) {
      const auto a = sizes_of(inputs[1]), b = sizes_of(inputs[2]);
      if (a.size() == 3 && b.size() == 3) flops = 2 * a[0] * a[1] * a[2] * b[2];
    } else if (name == "aten::convolution" && inputs.size() >= 2) {
      // 2 · (weight elements / out channels) multiply-adds per output element.
      const auto w = sizes_of(inputs[1]);
      if (!w.empty() && w[0] > 0) flops = 2 * numel_of(inputs[1]) / w[0] * output_elements(inputs, w);
    } else if (name == "aten::convolution_backward" && inputs.size() >= 3) {
      // The input's and the weight's gradients, where asked for: each costs what the forward did.
      const auto w = sizes_of(inputs[2]);
      std::int64_t grads = 2;
      if (inputs.size() >= 11 && inputs[10].isBoolList()) {
        const auto mask = inputs[10].toBoolList();
        grads = (mask.size() > 0 && mask.get(0)) + (mask.size() > 1 && mask.get(1));
      }
      if (!w.empty() && w[0] > 0) flops = grads * 2 * numel_of(inputs[2]) / w[0] * numel_of(inputs[0]);
    }
    if (flops > 0) total_.fetch_add(flops);
    return nullptr;
  }

  // A convolution's output elements: the batch times the output channels times the output
  // positions, from the input's spatial size, the stride and the padding (dilation 1).
  static std::int64_t output_elements(c10::ArrayRef<const c10::IValue> inputs, c10::IntArrayRef w) {
    const auto x = sizes_of(inputs[0]);
    if (x.size() != w.size() || inputs.size() < 5 || !inputs[3].isIntList() || !inputs[4].isIntList()) return 0;
    const auto stride = inputs[3].toIntVector(), padding = inputs[4].toIntVector();
    std::int64_t out = x[0] * w[0];
    for (std::size_t d = 2; d < x.size(); ++d) {
      const auto s = stride.size() == 1 ? stride[0] : stride[d - 2], p = padding.size() == 1 ? padding[0] : padding[d - 2];
      out *= (x[d] + 2 * p - w[d]) / s + 1;
    }
    return out;
  }

  // LibTorch's callbacks are plain function pointers, so the count is static: one counter at
  // a time (the benchmarks never nest them).
  inline static std::atomic<std::int64_t> total_{0};
  at::CallbackHandle handle_ = 0;
};

/// The counter against a hand count: a linear layer [64, 128] -> 32 forward (2·64·128·32) and
/// backward (the input's and the weight's gradients, as much again each), in float32 and under
/// bf16 autocast (whose casts must not count a product twice). Throws if they differ.
inline void check_gemm_flop_counter() {
  const double expected = 3.0 * 2 * 64 * 128 * 32;
  for (const bool autocast : {false, true}) {
    const auto x = torch::randn({64, 128}, torch::requires_grad()), w = torch::randn({32, 128}, torch::requires_grad());
    GemmFlopCounter counter;
    {
      const bool was = at::autocast::is_cpu_enabled();
      at::autocast::set_cpu_enabled(autocast);
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      const auto y = torch::nn::functional::linear(x, w);
      at::autocast::set_cpu_enabled(was);
      y.sum().backward();
    }
    if (counter.flops() != expected)
      throw std::runtime_error("GemmFlopCounter counted " + std::to_string(counter.flops()) + " FLOPs of a linear layer, " +
                               std::to_string(expected) + " expected" + (autocast ? " (bf16 autocast)" : ""));
  }
}

/// FLOP/s of a 2048 x 2048 product at `dtype` (the best of 5 after a warm-up).
inline double gemm_peak_flops(torch::ScalarType dtype) {
  constexpr std::int64_t n = 2048;
  const auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  auto c = a.mm(b);  // warm-up
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    c = a.mm(b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * n * n * n / s);
  }
  return best;
}

}  // namespace commercemm::bench
