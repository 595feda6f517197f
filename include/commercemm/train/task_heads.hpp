#pragma once
// cmm::train::TaskHeadsImpl: every task's head as a submodule named after the task, so the
// heads are saved, loaded, moved and optimised with the model.
#include <tuple>
#include <utility>

#include <torch/nn/module.h>

#include <commercemm/core/model_config.hpp>
#include <commercemm/tasks/invoke.hpp>

namespace commercemm::train {

/// Holds every task's head as a submodule named after the task, so they are saved, loaded
/// and optimised with the model.
template <class Tuple> class TaskHeadsImpl;
template <class... Ts>
class TaskHeadsImpl<std::tuple<Ts...>> : public torch::nn::Module {
 public:
  TaskHeadsImpl(const ModelConfig& config, const std::tuple<tasks::task_options_t<Ts>...>& options)
      : heads_(make_heads(config, options, std::index_sequence_for<Ts...>{})) {
    std::apply([&](auto&... head) { (register_module(Ts::name(), head.ptr()), ...); }, heads_);
  }
  template <std::size_t I> auto& get() { return std::get<I>(heads_); }

 private:
  template <std::size_t... I>
  static std::tuple<typename Ts::Head...> make_heads(const ModelConfig& config,
                                                    const std::tuple<tasks::task_options_t<Ts>...>& options,
                                                    std::index_sequence<I...>) {
    return {tasks::make_head<Ts>(config, std::get<I>(options))...};
  }
  std::tuple<typename Ts::Head...> heads_;
};

}  // namespace commercemm::train
