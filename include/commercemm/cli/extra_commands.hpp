#pragma once
// Subcommands a binary links in from translation units of its own: each registers a function
// that adds its subcommand, and cli::main calls them all. The generic binary gets `data emoji`
// this way (tools/emoji_benchmark), so the dataset builder is compiled into the one tool that
// needs it, not into every training binary.
#include <vector>

#include <CLI/CLI.hpp>

namespace commercemm::cli {

using AddCommand = void (*)(CLI::App&);

inline std::vector<AddCommand>& extra_commands() {
  static std::vector<AddCommand> commands;
  return commands;
}

/// A static of this type in a TU registers `add` before main runs.
struct RegisterCommand {
  explicit RegisterCommand(AddCommand add) { extra_commands().push_back(add); }
};

}  // namespace commercemm::cli
