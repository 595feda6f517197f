#pragma once
// How the step planner calls a task's members, with or without the task's options: a task
// that declares `struct Options` (its hyper-parameters, read from [tasks.<name>]) receives
// them as the last argument of make_head, prepare and loss; one that declares none is called
// without. tasks/task.hpp documents the members; TaskList and Recipe check them.
#include <type_traits>
#include <utility>

#include <commercemm/core/model_config.hpp>
#include <commercemm/tasks/task.hpp>

namespace commercemm::tasks {

/// The view a task's loss reads: ImageTextView in pass A, CrossPairView in pass B.
template <class T>
using view_t = std::conditional_t<T::pass == Pass::image_text, ImageTextView, CrossPairView>;

template <class T>
typename T::Head make_head(const ModelConfig& config, const task_options_t<T>& options) {
  if constexpr (requires { T::make_head(config, options); }) return T::make_head(config, options);
  else return T::make_head(config);
}

/// Whether T declares a member called `prepare` at all (checked for its signature elsewhere).
template <class T, class ModelImpl>
constexpr bool declares_prepare = requires { &T::template prepare<ModelImpl>; } || requires { &T::prepare; };

template <class T, class ModelImpl>
constexpr bool prepare_with_options = requires(typename T::Head& h, ModelImpl& m, const ImageTextView& v, TaskContext& c,
                                               const task_options_t<T>& o) {
  { T::prepare(h, m, v, c, o) } -> std::same_as<FusionRequest>;
};
template <class T, class ModelImpl>
constexpr bool prepare_plain = requires(typename T::Head& h, ModelImpl& m, const ImageTextView& v, TaskContext& c) {
  { T::prepare(h, m, v, c) } -> std::same_as<FusionRequest>;
};
template <class T, class ModelImpl>
constexpr bool has_prepare = prepare_with_options<T, ModelImpl> || prepare_plain<T, ModelImpl>;

template <class T, class ModelImpl>
FusionRequest prepare(typename T::Head& head, ModelImpl& model, const ImageTextView& view, TaskContext& ctx,
                      const task_options_t<T>& options) {
  if constexpr (prepare_with_options<T, ModelImpl>) return T::prepare(head, model, view, ctx, options);
  else return T::prepare(head, model, view, ctx);
}

template <class T, class ModelImpl>
constexpr bool loss_with_options = requires(typename T::Head& h, ModelImpl& m, const view_t<T>& v, TaskContext& c,
                                            const task_options_t<T>& o) {
  { T::loss(h, m, v, c, o) } -> std::convertible_to<losses::LossOutput>;
};
template <class T, class ModelImpl>
constexpr bool loss_plain = requires(typename T::Head& h, ModelImpl& m, const view_t<T>& v, TaskContext& c) {
  { T::loss(h, m, v, c) } -> std::convertible_to<losses::LossOutput>;
};
template <class T, class ModelImpl>
constexpr bool has_loss = loss_with_options<T, ModelImpl> || loss_plain<T, ModelImpl>;

template <class T, class ModelImpl>
losses::LossOutput loss(typename T::Head& head, ModelImpl& model, const view_t<T>& view, TaskContext& ctx,
                        const task_options_t<T>& options) {
  if constexpr (loss_with_options<T, ModelImpl>) return T::loss(head, model, view, ctx, options);
  else return T::loss(head, model, view, ctx);
}

/// Whether T declares `momentum_needs` at all, and whether with the one signature the step calls.
template <class T>
constexpr bool declares_momentum_needs = requires { &T::momentum_needs; };
template <class T>
constexpr bool has_momentum_needs = requires(const task_options_t<T>& o) {
  { T::momentum_needs(o) } -> std::same_as<Needs>;
};

/// Per-task checks against the recipe's model, one sentence each (instantiated by Recipe).
template <class T, class ModelImpl>
struct TaskChecks {
  static_assert(has_loss<T, ModelImpl>,
                "a task's loss must be `template <class ModelImpl> static losses::LossOutput loss(Head&, ModelImpl&, "
                "const View&, TaskContext&[, const Options&])` with View = ImageTextView for Pass::image_text and "
                "CrossPairView for Pass::cross_pair (see tasks/task.hpp)");
  static_assert(!declares_prepare<T, ModelImpl> || (T::pass == Pass::image_text && has_prepare<T, ModelImpl>),
                "a task's prepare must be `template <class ModelImpl> static FusionRequest prepare(Head&, ModelImpl&, "
                "const ImageTextView&, TaskContext&[, const Options&])`, and only pass-A tasks have one "
                "(see tasks/task.hpp)");
  static_assert(!declares_momentum_needs<T> || has_momentum_needs<T>,
                "a task's momentum_needs must be `static Needs momentum_needs(const Options&)` (see tasks/task.hpp)");
  static constexpr bool ok = true;
};

}  // namespace commercemm::tasks
