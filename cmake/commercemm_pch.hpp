// The LibTorch headers our targets use, precompiled once (see commercemmDevelopment.cmake).
// Only for our own tests/examples/benchmarks: the public headers include what they need.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/init.h>
#include <torch/serialize.h>
#include <torch/types.h>
#include <torch/utils.h>
