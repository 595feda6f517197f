#pragma once
// The MIM teacher a recipe computes: the one its MIM tasks name (they must agree, since the
// planner runs the teacher once), else teachers::StopGradient.
#include <tuple>
#include <type_traits>

#include <commercemm/tasks/teachers.hpp>

namespace commercemm::train {

namespace detail {
// The teacher policy of a recipe: the one its MIM tasks name (they must agree), else none.
template <class T> struct teacher_of { using type = void; };
template <class T>
  requires requires { typename T::Teacher; }
struct teacher_of<T> { using type = typename T::Teacher; };

template <class Found, class... Ts> struct find_teacher { using type = Found; };
template <class Found, class T, class... Ts> struct find_teacher<Found, T, Ts...> {
  using mine = typename teacher_of<T>::type;
  static_assert(std::is_void_v<mine> || std::is_void_v<Found> || std::is_same_v<mine, Found>,
                "cmm::TaskList: the MIM tasks name different teachers; a recipe computes one "
                "teacher, so every MIM task must use the same teacher policy");
  using type = typename find_teacher<std::conditional_t<std::is_void_v<mine>, Found, mine>, Ts...>::type;
};
template <class Tuple> struct recipe_teacher;
template <class... Ts> struct recipe_teacher<std::tuple<Ts...>> {
  using found = typename find_teacher<void, Ts...>::type;
  using type = std::conditional_t<std::is_void_v<found>, teachers::StopGradient, found>;
};

}  // namespace detail

}  // namespace commercemm::train
