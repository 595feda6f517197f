// Links `data emoji` (the emoji-commerce benchmark builder) into a binary built with
// cmm::cli::main: the generic `commercemm` binary adds this file to its sources.
#include <commercemm/cli/extra_commands.hpp>

#include "data_command.hpp"

namespace {
const commercemm::cli::RegisterCommand data_command(commercemm::cli::add_data_command);
}  // namespace
