#pragma once
// Teacher policies for the MIM tasks: where the clean-image targets come from.
//
// A teacher provides
//   template <class ModelImpl> void attach(ModelImpl&);              once, before training
//   template <class ModelImpl> TokenSequence features(ModelImpl&, images [B,3,H,W]);
//                                      -> [B, 1 + N, Wi], computed without gradient
//   template <class ModelImpl> void after_step(ModelImpl&);          after each optimizer step
//
//   teachers::StopGradient   the model's own image encoder on the clean image, no gradient
//                            (the default: no extra parameters, one extra forward).
//   teachers::Ema<M>         an exponential-moving-average copy of the image encoder with
//                            momentum M / 1000 (iBOT/DINO style): a slower, steadier target.
#include <cstdint>
#include <memory>

#include <torch/nn/module.h>
#include <torch/types.h>

#include <commercemm/encoders/encoder.hpp>
#include <commercemm/nn/moving_average.hpp>

namespace commercemm::teachers {

struct StopGradient {
  template <class ModelImpl> void attach(ModelImpl&) {}
  template <class ModelImpl> TokenSequence features(ModelImpl& model, const torch::Tensor& images) {
    torch::NoGradGuard no_grad;
    auto out = model.encode_image(images);
    return {out.tokens.detach(), out.valid};
  }
  template <class ModelImpl> void after_step(ModelImpl&) {}
};

template <std::int64_t MomentumPermille = 996>
struct Ema {
  static_assert(MomentumPermille > 0 && MomentumPermille < 1000,
                "teachers::Ema<M>: the momentum M is in thousandths and must be in (0, 1000)");
  /// The default momentum; [tasks.mim_*] teacher_momentum sets the run's (set_momentum).
  static constexpr double default_momentum = static_cast<double>(MomentumPermille) / 1000.0;
  void set_momentum(double m) { momentum_ = m; }
  double momentum() const { return momentum_; }

  template <class ModelImpl> void attach(ModelImpl& model) {
    using Encoder = typename ModelImpl::ImageEncoder::ContainedType;
    auto copy = std::dynamic_pointer_cast<Encoder>(model.image_encoder()->clone());
    for (auto& p : copy->parameters()) p.set_requires_grad(false);
    copy->eval();
    encoder_ = copy;
    average_ = nn::MovingAverage(*copy, *model.image_encoder(), nn::MovingAverage::Buffers::left);
  }
  template <class ModelImpl> TokenSequence features(ModelImpl& model, const torch::Tensor& images) {
    if (!encoder_) attach(model);
    torch::NoGradGuard no_grad;
    using Encoder = typename ModelImpl::ImageEncoder::ContainedType;
    return std::dynamic_pointer_cast<Encoder>(encoder_)->forward(images, {});  // Module is a virtual base
  }
  template <class ModelImpl> void after_step(ModelImpl&) {
    if (encoder_) average_.update(momentum_);
  }
  std::shared_ptr<torch::nn::Module> module() const { return encoder_; }

 private:
  std::shared_ptr<torch::nn::Module> encoder_;
  nn::MovingAverage average_;  // encoder_'s parameters paired with the student's
  double momentum_ = default_momentum;
};

}  // namespace commercemm::teachers
