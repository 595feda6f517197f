// The binary the kill-anywhere resume soak (scripts/soak-resume) trains and checks with.
// Its recipe holds every kind of state a resume must restore: MIM-kl's centre and an EMA
// teacher, ITM's sampled negatives, the nine omni tasks' learned temperatures, the fusion split
// and ModalityDropout's draws, the loaders' positions (the whole app around it).
// `same-checkpoint A B` says whether two checkpoints hold bitwise the same tensors and metadata.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <torch/serialize/input-archive.h>

#include <commercemm/commercemm.hpp>

namespace cmm = commercemm;
namespace tk = commercemm::tasks;

using Tasks = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL, cmm::teachers::Ema<>>, tk::ITC<>,
                            tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<cmm::omni::All>>;
using Recipe = cmm::Recipe<cmm::DefaultModel, Tasks, cmm::schedules::ModalityDropout<cmm::schedules::RandomFusionSplit>>;

namespace {

// Compares two checkpoints key by key: nested archives recursively, tensors by their bytes
// (dtype, shape and every bit), numbers bitwise, strings (config, tokenizer, state) as text.
// LibTorch's optimizer archive names each parameter by its address in the saving process
// ("param_groups/G/params/I", and the state by that address): those are matched by position.
class ArchiveComparison {
 public:
  std::vector<std::string> differences;
  std::int64_t tensors = 0;

  void archives(torch::serialize::InputArchive& a, torch::serialize::InputArchive& b, const std::string& prefix) {
    auto keys = a.keys(), other = b.keys();
    std::sort(keys.begin(), keys.end()), std::sort(other.begin(), other.end());
    const bool addresses = prefix.find("param_groups/") != std::string::npos;  // a param group's params
    if (!addresses && keys != other) differences.push_back(prefix + "(keys differ)");
    for (const auto& key : keys) {
      const auto name = prefix + key;
      if (addresses && key.rfind("params/", 0) == 0) continue;  // addresses, matched in optimizer_state()
      if (prefix == "optimizer." && key == "state") {
        optimizer_state(a, b, name + ".");
        continue;
      }
      if (std::find(other.begin(), other.end(), key) == other.end()) continue;
      c10::IValue x, y;
      a.try_read(key, x), b.try_read(key, y);
      torch::serialize::InputArchive p, q;
      if (x.isObject() && y.isObject() && a.try_read(key, p) && b.try_read(key, q)) archives(p, q, name + ".");
      else if (!same(x, y)) differences.push_back(name);
    }
  }

 private:
  bool same(const c10::IValue& x, const c10::IValue& y) {
    if (x.isTensor() && y.isTensor()) {
      ++tensors;
      const auto s = x.toTensor().contiguous().cpu(), t = y.toTensor().contiguous().cpu();
      return s.scalar_type() == t.scalar_type() && s.sizes() == t.sizes() &&
             std::memcmp(s.data_ptr(), t.data_ptr(), s.nbytes()) == 0;
    }
    if (x.isDouble() && y.isDouble()) {
      const double u = x.toDouble(), v = y.toDouble();
      return std::memcmp(&u, &v, sizeof u) == 0;
    }
    if (x.isTuple() && y.isTuple()) {
      const auto& s = x.toTupleRef().elements();
      const auto& t = y.toTupleRef().elements();
      if (s.size() != t.size()) return false;
      for (std::size_t i = 0; i < s.size(); ++i)
        if (!same(s[i], t[i])) return false;
      return true;
    }
    if (x.isString() && y.isString()) return x.toStringRef() == y.toStringRef();
    if (x.isInt() && y.isInt()) return x.toInt() == y.toInt();
    if (x.isBool() && y.isBool()) return x.toBool() == y.toBool();
    return false;  // another kind of value, or two different kinds
  }

  // The parameters' addresses in param-group order: the positions pair the two states.
  static std::vector<std::string> addresses(torch::serialize::InputArchive& optimizer) {
    std::vector<std::string> out;
    torch::serialize::InputArchive groups;
    if (!optimizer.try_read("param_groups", groups)) return out;
    for (int g = 0;; ++g) {
      torch::serialize::InputArchive group;
      if (!groups.try_read("param_groups/" + std::to_string(g), group)) break;
      for (int i = 0;; ++i) {
        c10::IValue address;
        if (!group.try_read("params/" + std::to_string(i), address) || !address.isString()) break;
        out.push_back(address.toStringRef());
      }
    }
    return out;
  }

  void optimizer_state(torch::serialize::InputArchive& a, torch::serialize::InputArchive& b, const std::string& prefix) {
    const auto x = addresses(a), y = addresses(b);
    torch::serialize::InputArchive s, t;
    if (x.size() != y.size() || x.empty() || !a.try_read("state", s) || !b.try_read("state", t)) {
      differences.push_back(prefix + "(parameters differ)");
      return;
    }
    if (s.keys().size() != t.keys().size()) differences.push_back(prefix + "(states differ in number)");
    for (std::size_t i = 0; i < x.size(); ++i) {
      torch::serialize::InputArchive p, q;
      const bool has_p = s.try_read(x[i], p), has_q = t.try_read(y[i], q);
      if (has_p != has_q) differences.push_back(prefix + "parameter " + std::to_string(i) + " (state in one only)");
      else if (has_p) archives(p, q, prefix + "parameter " + std::to_string(i) + ".");
    }
  }
};

void add_same_checkpoint_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("same-checkpoint", "Whether two checkpoints are bitwise equal (exit 0) or not (exit 1)");
  static std::string first, second;
  cmd->add_option("first", first)->required()->check(CLI::ExistingFile);
  cmd->add_option("second", second)->required()->check(CLI::ExistingFile);
  cmd->callback([] {
    torch::serialize::InputArchive a, b;
    a.load_from(first), b.load_from(second);
    ArchiveComparison comparison;
    comparison.archives(a, b, "");
    for (const auto& d : comparison.differences) std::printf("differs: %s\n", d.c_str());
    std::printf("%lld tensors compared: %s\n", static_cast<long long>(comparison.tensors),
                comparison.differences.empty() ? "bitwise equal" : "NOT equal");
    if (!comparison.differences.empty()) throw CLI::RuntimeError(1);
  });
}
const cmm::cli::RegisterCommand same_checkpoint_command(add_same_checkpoint_command);

}  // namespace

int main(int argc, char** argv) { return cmm::cli::main<Recipe>(argc, argv); }
