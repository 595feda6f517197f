#pragma once
// All tokenizers: BERT WordPiece, GPT-2 byte-level BPE and the byte-level BPE trainer.
#include <commercemm/data/tokenizer.hpp>
#include <commercemm/data/tokenizers/bpe.hpp>
#include <commercemm/data/tokenizers/bpe_trainer.hpp>
#include <commercemm/data/tokenizers/wordpiece.hpp>
