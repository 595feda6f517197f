#pragma once
// cmm::cli::main<Recipe>(argc, argv): a training binary for a recipe, with the subcommands
//   pretrain  finetune  evaluate  embed  plot  compare  describe  import  export
// and any a TU of the binary registers (cli/extra_commands.hpp; the generic binary: data)
// (each with --help). Errors in configs and data are reported as "error: FILE:LINE: key: ..."
// with exit status 2; an interrupted pre-training run checkpoints and exits with 130.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include <commercemm/cli/extra_commands.hpp>
#include <commercemm/cli/describe.hpp>
#include <commercemm/cli/eval_commands.hpp>
#include <commercemm/cli/run_commands.hpp>
#include <commercemm/cli/train_commands.hpp>
#include <commercemm/cli/weights_commands.hpp>
#include <commercemm/core/version.hpp>
#include <commercemm/dist/environment.hpp>

namespace commercemm::cli {

template <class Recipe> int main(int argc, char** argv) {
  CLI::App app{"CommerceMM: commerce multimodal pre-training, fine-tuning and evaluation on LibTorch"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version);
  add_pretrain_command<Recipe>(app);
  add_finetune_command<Recipe>(app);
  add_evaluate_command<Recipe>(app);
  add_embed_command<Recipe>(app);
  add_plot_command(app);
  add_compare_command(app);
  add_describe_command<Recipe>(app);
  add_import_command<Recipe>(app);
  add_export_command<Recipe>(app);
  for (auto add : extra_commands()) add(app);  // e.g. `data emoji` in the generic binary
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {  // an interrupted run (130); CLI11 derives it from ParseError
    return app.exit(e);
  } catch (const CLI::Error& e) {  // --help (0), or a usage error: status 2, as a config error
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "%serror: %s\n", dist::rank_prefix().c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%serror: %s\n", dist::rank_prefix().c_str(), e.what());
    return 1;
  }
  return 0;
}

}  // namespace commercemm::cli
