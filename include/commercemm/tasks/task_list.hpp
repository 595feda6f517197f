#pragma once
// cmm::TaskList<...>: the tasks of a recipe, a flat list (OmniRetrieval expands to its nine);
// cmm::Recipe<Model, Tasks, Schedule>: what a training binary is built from.
#include <tuple>
#include <type_traits>

#include <commercemm/schedules/schedule.hpp>
#include <commercemm/tasks/invoke.hpp>
#include <commercemm/tasks/task.hpp>
#include <commercemm/train/update_policy.hpp>

namespace commercemm {

namespace detail {
template <class T> struct expand { using type = std::tuple<T>; };
template <class T>
  requires requires { typename T::expands_to; }
struct expand<T> { using type = typename T::expands_to; };

template <class... Ts>
using flatten = decltype(std::tuple_cat(std::declval<typename expand<Ts>::type>()...));

template <class Tuple> struct all_unique;
template <> struct all_unique<std::tuple<>> : std::true_type {};
template <class T, class... Rest>
struct all_unique<std::tuple<T, Rest...>>
    : std::bool_constant<(!std::is_same_v<T, Rest> && ...) && all_unique<std::tuple<Rest...>>::value> {};

/// A task may declare `template <class ModelImpl> static constexpr bool supports_model` to
/// refuse models it cannot work with; by default every model is fine.
template <class T, class ModelImpl> constexpr bool task_supports() {
  if constexpr (requires { T::template supports_model<ModelImpl>; }) return T::template supports_model<ModelImpl>;
  else return true;
}
template <class Tuple, class ModelImpl> struct all_supported;
template <class... Ts, class ModelImpl>
struct all_supported<std::tuple<Ts...>, ModelImpl> : std::bool_constant<(task_supports<Ts, ModelImpl>() && ...)> {};

template <class Tuple, class ModelImpl> struct all_checked;
template <class... Ts, class ModelImpl>
struct all_checked<std::tuple<Ts...>, ModelImpl> : std::bool_constant<(tasks::TaskChecks<Ts, ModelImpl>::ok && ...)> {};

template <class Tuple> struct all_tasks;
template <class... Ts> struct all_tasks<std::tuple<Ts...>> : std::bool_constant<(tasks::Task<Ts> && ...)> {};
}  // namespace detail

template <class... Ts>
struct TaskList {
  using tuple = detail::flatten<Ts...>;
  static constexpr std::size_t size = std::tuple_size_v<tuple>;

  static_assert(sizeof...(Ts) > 0, "cmm::TaskList<>: a recipe needs at least one task");
  static_assert(detail::all_tasks<tuple>::value,
                "cmm::TaskList<...>: every entry must satisfy the cmm::tasks::Task concept "
                "(name(), pass, needs, Head, make_head(const ModelConfig&[, const Options&]); see tasks/task.hpp)");
  static_assert(detail::all_unique<tuple>::value,
                "cmm::TaskList<...>: a task appears twice (OmniRetrieval<omni::All> already "
                "contains every Retrieval<S, T>)");
};

template <class T> struct is_task_list : std::false_type {};
template <class... Ts> struct is_task_list<TaskList<Ts...>> : std::true_type {};


template <class ModelT, class Tasks, class ScheduleT, class Update = update::OneStep>
struct Recipe {
  static_assert(is_task_list<Tasks>::value, "cmm::Recipe<Model, Tasks, Schedule>: Tasks must be a cmm::TaskList<...>");
  static_assert(schedules::Schedule<ScheduleT>,
                "cmm::Recipe<Model, Tasks, Schedule>: Schedule must satisfy cmm::schedules::Schedule "
                "(see schedules/schedule.hpp)");
  static_assert(detail::all_supported<typename Tasks::tuple, typename ModelT::Impl>::value,
                "cmm::Recipe<Model, Tasks, Schedule>: a task cannot work with this model (its "
                "supports_model<ModelImpl> is false; the task's header says what it needs)");
  static_assert(detail::all_checked<typename Tasks::tuple, typename ModelT::Impl>::value);  // one sentence each
  using Model = ModelT;
  using TaskTuple = typename Tasks::tuple;
  using Schedule = ScheduleT;
  using UpdatePolicy = Update;
};

}  // namespace commercemm
