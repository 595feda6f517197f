// Fuzzes the checkpoint reader (train::Checkpoint: LibTorch's zip archive, then our JSON
// metadata, tokenizer, weights and RNG state), through checkpoint_reader.cpp. With
// COMMERCEMM_FUZZ_WRITE_SEED=FILE set, writes a small real checkpoint to FILE and exits.
#include <cstdlib>

#include "common.hpp"

void commercemm_fuzz_write_checkpoint_seed(const char* path);
bool commercemm_fuzz_read_checkpoint(const char* path);

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seed = std::getenv("COMMERCEMM_FUZZ_WRITE_SEED")) {
    commercemm_fuzz_write_checkpoint_seed(seed);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = commercemm::fuzz::write_file("checkpoint.pt", commercemm::fuzz::as_view(data, size));
  (void)commercemm_fuzz_read_checkpoint(file.c_str());
  return 0;
}
