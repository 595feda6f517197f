// A user's program: build the tiny model and embed a batch, and write its config as JSON
// (a function commercemm::compiled compiles once).
#include <iostream>

#include <commercemm/commercemm.hpp>

int main() {
  namespace cmm = commercemm;
  const auto config = cmm::presets::model("tiny");
  cmm::DefaultModel model(config);
  cmm::Batch batch;
  batch.images = torch::randn({2, 3, config.image.image_size, config.image.image_size});
  batch.text_ids = torch::randint(1, config.text.vocab_size, {2, 5}, torch::kLong);
  batch.text_mask = torch::ones({2, 5}, torch::kLong);
  const auto e = model->embed(batch, cmm::FusionSplit{1});
  std::cout << "commercemm " << cmm::version << ": multimodal embeddings " << e.multimodal.sizes() << "\n";
  const auto json = cmm::to_json(config);
  return e.multimodal.size(1) == config.embed_dim && json.at("embed_dim") == config.embed_dim ? 0 : 1;
}
