#pragma once
// The `import` and `export` subcommands of cmm::cli::main<Recipe>: safetensors in and out.
//   import: Hugging Face ViT / BERT files -> the config's encoders, written under this
//           library's names (a file model.image.init and model.text.init then read directly)
//   export: a checkpoint's whole model (and fine-tuned head) -> one safetensors file (config
//           in its metadata)
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include <commercemm/cli/common.hpp>
#include <commercemm/cli/loaded_model.hpp>
#include <commercemm/core/version.hpp>
#include <commercemm/train/pretrained.hpp>
#include <commercemm/train/trainer.hpp>

namespace commercemm::cli {

namespace detail {
/// What every file these commands write says of itself: the format, the writer and the model.
inline std::map<std::string, std::string> weights_metadata(const ModelConfig& model) {
  return {{"format", "commercemm"}, {"commercemm.version", version}, {"commercemm.model", to_json(model).dump()}};
}
}  // namespace detail

template <class Recipe> void add_import_command(CLI::App& app) {
  using Model = typename Recipe::Model;
  auto* cmd = app.add_subcommand("import", "Convert Hugging Face ViT and BERT safetensors into the config's encoders");
  auto common = add_common_options(cmd, "pretrained.safetensors");
  auto image = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  cmd->add_option("--image", *image, "ViT weights (Hugging Face names; default: model.image.init)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--text", *text, "BERT weights (Hugging Face names; default: model.text.init); needs "
                                   "model.text.norm = \"post\" and BERT's vocab.txt as data.vocab")
      ->check(CLI::ExistingFile);
  cmd->callback([common, image, text] {
    if (common->config.empty()) throw Error(Location{"import", 0, "--config"}, "a config file is required (the model's sizes)");
    Config config = resolve_config(*common);
    if (!image->empty()) config.model.image.init = *image;
    if (!text->empty()) config.model.text.init = *text;
    if (config.model.image.init.empty() && config.model.text.init.empty())
      throw Error(Location{"import", 0, "--image"}, "nothing to import: give --image, --text or model.*.init");
    // The vocabulary fixes the text encoder's size (and BERT's [CLS]); a learned one has no file.
    std::shared_ptr<const data::Tokenizer> tokenizer;
    if (config.data.tokenizer != "learned_bpe") {
      tokenizer = train::make_tokenizer(config, {});
      config.model.text.vocab_size = tokenizer->vocab_size();
    } else if (!config.model.text.init.empty()) {
      throw Error(Location{"import", 0, "data.tokenizer"}, "the text encoder's vocabulary comes from a file: set "
                                                           "data.tokenizer = \"wordpiece\" and data.vocab (BERT's vocab.txt)");
    }
    validate(config);
    Model model(config.model);
    train::load_pretrained_encoders(model, config.model, tokenizer ? train::cls_id_of(*tokenizer) : -1);
    auto metadata = detail::weights_metadata(config.model);
    std::map<std::string, torch::Tensor> tensors;
    const auto collect = [&](const torch::nn::Module& encoder, const std::string& prefix, const std::string& from) {
      for (auto& [name, t] : train::named_tensors(encoder)) tensors[prefix + "." + name] = t;
      metadata["commercemm." + prefix + "_from"] = from;
    };
    if (!config.model.image.init.empty()) collect(*model->image_encoder(), "image_encoder", config.model.image.init);
    if (!config.model.text.init.empty()) collect(*model->text_encoder(), "text_encoder", config.model.text.init);
    train::write_safetensors(common->out, tensors, metadata);
    std::printf("wrote %zu tensors to %s (set model.image.init / model.text.init to it)\n", tensors.size(),
                common->out.c_str());
  });
}

template <class Recipe> void add_export_command(CLI::App& app) {
  using Model = typename Recipe::Model;
  auto* cmd = app.add_subcommand("export", "Write a checkpoint's model as one safetensors file");
  auto checkpoint_file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>("model.safetensors");
  cmd->add_option("--checkpoint", *checkpoint_file, "Checkpoint (pre-trained or fine-tuned)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", *out, "Output file")->capture_default_str();
  cmd->callback([checkpoint_file, out] {
    const train::Checkpoint checkpoint(*checkpoint_file);
    const auto loaded = load_model<Model>(checkpoint, checkpoint.config());
    auto tensors = train::named_tensors(*loaded.model);
    auto metadata = detail::weights_metadata(checkpoint.config().model);
    metadata["commercemm.checkpoint"] = *checkpoint_file;
    if (loaded.head) {  // a fine-tuned classifier travels with its classes
      for (auto& [name, t] : train::named_tensors(*loaded.head->linear)) tensors["finetune_head." + name] = t;
      metadata["commercemm.finetune_task"] = loaded.head->task;
      metadata["commercemm.finetune_labels"] = nlohmann::json(loaded.head->labels.names()).dump();
    }
    train::write_safetensors(*out, tensors, metadata);
    std::printf("wrote %zu tensors to %s\n", tensors.size(), out->c_str());
  });
}

}  // namespace commercemm::cli
