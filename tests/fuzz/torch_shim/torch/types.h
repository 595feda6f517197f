#pragma once
// A stand-in for <torch/types.h> for the image target only: clang 14 cannot compile LibTorch
// 1.13's headers in C++20 mode (std::vector<c10::IValue> instantiated while IValue is
// incomplete, ATen/core/List.h and ivalue_inl.h), and data/image.hpp needs of a tensor only a
// float buffer of the right size. This one is exactly [3, size, size] floats on the heap, so
// AddressSanitizer flags any write of resample_into past it.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

namespace torch {

enum ScalarType { kFloat32 };
struct Device {};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::vector<float> values) : data_(std::make_shared<std::vector<float>>(std::move(values))) {}
  template <class T> T* data_ptr() { return data_->data(); }
  const std::vector<float>& values() const { return *data_; }
  Tensor view(std::initializer_list<std::int64_t>) const { return *this; }
  Device device() const { return {}; }
  Tensor to(Device) const { return *this; }

 private:
  std::shared_ptr<std::vector<float>> data_;
};

inline Tensor empty(std::initializer_list<std::int64_t> sizes, ScalarType) {
  std::size_t n = 1;
  for (auto s : sizes) n *= static_cast<std::size_t>(s);
  return Tensor(std::vector<float>(n));
}
inline Tensor tensor(std::initializer_list<float> values) { return Tensor(std::vector<float>(values)); }
inline Tensor operator*(const Tensor& a, const Tensor&) { return a; }
inline Tensor operator+(const Tensor& a, const Tensor&) { return a; }

}  // namespace torch
