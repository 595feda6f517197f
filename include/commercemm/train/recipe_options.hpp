#pragma once
// A recipe's run-time options, read from the config and checked against the recipe's types:
// each task's hyper-parameters from [tasks.<name>] and the schedule's from [schedule]. A key
// the recipe does not use is an error naming the file, line and key (a silent no-op in an
// ablation publishes a wrong table). The resolved values, defaults included, are written back
// into the config, so config.json, `describe` and checkpoints show every value a run used.
#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/core/config.hpp>
#include <commercemm/core/options.hpp>
#include <commercemm/schedules/schedule.hpp>
#include <commercemm/tasks/invoke.hpp>

namespace commercemm::train {

template <class Tuple> struct task_options_tuple;
template <class... Ts> struct task_options_tuple<std::tuple<Ts...>> {
  using type = std::tuple<tasks::task_options_t<Ts>...>;
};
/// One options struct per task of a recipe's task tuple, in recipe order.
template <class Tuple> using TaskOptions = typename task_options_tuple<Tuple>::type;

/// Reads every [tasks.<name>] table of `config` into the recipe's tasks' options (checking
/// each with the task's check(), where it has one) and writes the resolved values back. A
/// table for a task the recipe does not have is an error.
template <class Tuple> TaskOptions<Tuple> read_task_options(Config& config) {
  TaskOptions<Tuple> out;
  std::vector<std::string> known;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (known.push_back(std::tuple_element_t<I, Tuple>::name()), ...);
  }(std::make_index_sequence<std::tuple_size_v<Tuple>>{});
  for (const auto& [name, task] : config.tasks)
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      const auto where = task.options.empty() ? Location{} : task.options.begin()->second.where;
      throw Error(Location{where.file, where.line, "tasks." + name},
                  "this recipe has no such task" + commercemm::detail::suggest(name, known));
    }
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          using T = std::tuple_element_t<I, Tuple>;
          auto& options = std::get<I>(out);
          const auto name = T::name();
          auto& entry = config.tasks[name];  // a task without a table gets one: weight 1, defaults
          read_options(entry.options, options, "tasks." + name + ".", "task '" + name + "'");
          if constexpr (requires { T::check(options); }) {
            try {
              T::check(options);
            } catch (const Error& e) {  // the key's file and line, where the config gave them
              const auto prefix = "tasks." + name + ".";
              const auto& field = e.where().field;
              const auto given = field.rfind(prefix, 0) == 0 ? entry.options.find(field.substr(prefix.size()))
                                                              : entry.options.end();
              if (given == entry.options.end() || e.where().line > 0) throw;
              throw Error(Location{given->second.where.file, given->second.where.line, field}, e.message());
            }
          }
          entry.options = options_table(options);
        }(),
        ...);
  }(std::make_index_sequence<std::tuple_size_v<Tuple>>{});
  return out;
}

namespace detail {
/// The ScheduleOptions fields one schedule reads, and only those, as an options struct.
struct UsedScheduleFields {
  schedules::ScheduleOptions* options;
  std::vector<std::string> keys;
};
template <class F> void visit_fields(UsedScheduleFields& used, F&& f) {
  visit_fields(*used.options, [&](const char* field, auto& member) {
    if (std::find(used.keys.begin(), used.keys.end(), field) != used.keys.end()) f(field, member);
  });
}
}  // namespace detail

/// The schedule's options: depth, seed and length from [model] and [train], the rest from
/// [schedule], whose keys must be ones the schedule reads (Schedule::option_keys()).
template <class Schedule> schedules::ScheduleOptions read_schedule_options(Config& config) {
  schedules::ScheduleOptions options;
  options.depth = config.model.fusion.layers;
  options.seed = static_cast<std::uint64_t>(config.train.seed);
  options.total_steps = config.train.steps;
  detail::UsedScheduleFields used{&options, schedules::detail::option_keys_of<Schedule>()};
  read_options(config.schedule, used, "schedule.", "this recipe's schedule");
  config.schedule = options_table(used);
  return options;
}

}  // namespace commercemm::train
