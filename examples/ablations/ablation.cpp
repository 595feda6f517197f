// One source, one binary per recipe: CMake compiles it once per name in recipes.hpp with
// COMMERCEMM_ABLATION set to that name (see CMakeLists.txt next to it).
#include <commercemm/cli/app.hpp>

#include "recipes.hpp"

#ifndef COMMERCEMM_ABLATION
#error "compile with COMMERCEMM_ABLATION set to a recipe name of recipes.hpp, e.g. itc_only"
#endif

int main(int argc, char** argv) { return commercemm::cli::main<ablation::COMMERCEMM_ABLATION>(argc, argv); }
