// Must NOT compile: a Linear layer is not an image encoder. CTest checks that the compiler
// stops with the plain-words static_assert of cmm::Model, not pages of template noise.
#include <torch/nn/modules/linear.h>

#include <commercemm/components.hpp>

int main() {
  using Broken = commercemm::Model<torch::nn::Linear, commercemm::encoders::TextTransformer,
                                   commercemm::fusion::MergedAttention>;
  Broken model(commercemm::presets::model("tiny"));
  return 0;
}
