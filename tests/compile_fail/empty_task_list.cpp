// Must NOT compile: a recipe needs at least one task.
#include <commercemm/components.hpp>

int main() {
  commercemm::TaskList<> tasks;
  (void)tasks;
  return 0;
}
