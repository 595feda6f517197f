#pragma once
// All tokenizers: BERT WordPiece, GPT-2 byte-level BPE, the byte-level BPE trainer and
// hashed character n-grams.
#include <commercemm/data/tokenizer.hpp>
#include <commercemm/data/tokenizers/bpe.hpp>
#include <commercemm/data/tokenizers/bpe_trainer.hpp>
#include <commercemm/data/tokenizers/hashed_ngrams.hpp>
#include <commercemm/data/tokenizers/wordpiece.hpp>
