#pragma once
// The umbrella header: the whole library and the app, as DESIGN.md's golden example uses it:
//   #include <commercemm/commercemm.hpp>
//   ...
//   int main(int argc, char** argv) { return cmm::cli::main<Recipe>(argc, argv); }
// Code that does not need the command line can include <commercemm/components.hpp> instead.
#include <commercemm/cli/app.hpp>
#include <commercemm/components.hpp>
