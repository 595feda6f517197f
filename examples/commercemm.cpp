// The generic commercemm binary: the library's tools as subcommands.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include <commercemm/cli/data_command.hpp>
#include <commercemm/cli/describe.hpp>
#include <commercemm/commercemm.hpp>

int main(int argc, char** argv) {
  namespace cmm = commercemm;
  CLI::App app{"commercemm: commerce multimodal pre-training (CommerceMM) on LibTorch"};
  app.require_subcommand(1);
  app.set_version_flag("--version", cmm::version);
  cmm::cli::add_describe_command<cmm::DefaultModel>(app);
  commercemm::cli::add_data_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const cmm::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
