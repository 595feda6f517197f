// Must NOT compile: keeping a modality's side for reuse (Model::cache_image) needs a fusion
// that runs its stack in two parts (SplittableFusion); this one has only forward(). CTest
// checks that the compiler says so in one sentence.
#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <commercemm/components.hpp>

namespace cmm = commercemm;

// A valid Fusion (cmm::fusion::Fusion): the pooled state is the text CLS.
struct TextOnlyFusionImpl : torch::nn::Cloneable<TextOnlyFusionImpl> {
  TextOnlyFusionImpl(const cmm::FusionConfig&, std::int64_t text_width, std::int64_t) : width_(text_width) {}
  void reset() override {}
  cmm::FusionOutput forward(const cmm::TokenSequence& text, const cmm::TokenSequence& image, cmm::FusionSplit) {
    return {text, image, text.cls()};
  }
  std::int64_t width() const { return width_; }
  std::int64_t depth() const { return 1; }
  std::int64_t width_;
};
TORCH_MODULE(TextOnlyFusion);

int main() {
  cmm::Model<cmm::encoders::ViT, cmm::encoders::TextTransformer, TextOnlyFusion> model(cmm::presets::model("tiny"));
  model->cache_image(torch::zeros({1, 3, 32, 32}));
  return 0;
}
