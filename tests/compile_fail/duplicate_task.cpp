// Must NOT compile: OmniRetrieval<omni::All> already holds Retrieval<Text, Image>.
#include <commercemm/components.hpp>

namespace cmm = commercemm;

int main() {
  cmm::TaskList<cmm::tasks::OmniRetrieval<cmm::omni::All>, cmm::tasks::Retrieval<cmm::Text, cmm::Image>> tasks;
  (void)tasks;
  return 0;
}
