// wb_fault_counter: the target system of the fault suite, run by the exec
// connector (docs/connectors/exec.md contract). Every apply leaves a trace,
// so that the suite can count effects:
//   plan    no_change iff a line equal to the task id is already in
//           $WB_EFFECTS_FILE (the task's effect is there), else "append".
//           Test instrument: when $WB_PLANS_FILE is set, every plan appends
//           the task id there too, so the suite sees a task planned twice;
//   apply   appends "<task_id>\n" to $WB_EFFECTS_FILE with one O_APPEND write
//           and fsyncs it: one line = one effect on the target. It does not
//           look first: an apply the agent runs twice shows up twice;
//   verify  "verified" iff a line equal to the task id is in the file,
//           "failed" otherwise (an observation independent of apply's reply);
//   check   ok.
// So the operation is idempotent the way the exec contract asks (run again
// after its change, plan sees it and nothing is applied) and the instance
// may declare it (exec.idempotent_operations); a task id appearing twice in
// the file still means a change was applied twice.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

namespace {

using nlohmann::json;

int Reply(const json& j) {
  std::cout << j.dump() << "\n";
  return 0;
}

int Error(const std::string& msg) {
  return Reply({{"error", {{"code", "failed"}, {"message", msg}}}});
}

json Observation(const std::string& subject, const std::string& detail) {
  return {{"check", "effects_file"},
          {"subject", subject},
          {"detail", detail},
          {"facts", json::object()}};
}

// Appends "<line>\n" with one O_APPEND write and fsyncs it.
bool Append(const char* path, const std::string& line) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const std::string l = line + "\n";
  const bool ok = write(fd, l.data(), l.size()) == static_cast<ssize_t>(l.size()) && fsync(fd) == 0;
  close(fd);
  return ok;
}

int CountLines(const std::string& path, const std::string& line) {
  std::ifstream in(path);
  std::string l;
  int n = 0;
  while (std::getline(in, l)) {
    if (l == line) ++n;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string verb = argv[1];
  const char* file = std::getenv("WB_EFFECTS_FILE");
  if (file == nullptr || *file == '\0') return Error("WB_EFFECTS_FILE is not set");
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  json req = json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded()) return Error("request is not JSON");
  const std::string task_id = req.value("task_id", "");
  const std::string object = req.value("object", "");
  if (verb == "check") return Reply({{"ok", true}, {"detail", "effects file configured"}});
  if (task_id.empty()) return Error("request has no task_id");
  if (verb == "plan") {
    if (const char* plans = std::getenv("WB_PLANS_FILE"); plans != nullptr && *plans != '\0') {
      if (!Append(plans, task_id)) return Error("cannot append to the plans file");
    }
    const int n = CountLines(file, task_id);
    if (n > 0) {
      return Reply({{"no_change", true},
                    {"summary", "the task id is already in the effects file"},
                    {"changes", json::array()},
                    {"before", Observation(object, "effects lines: " + std::to_string(n))},
                    {"state", ""}});
    }
    return Reply({{"no_change", false},
                  {"summary", "append the task id"},
                  {"changes", json::array({"append " + task_id})},
                  {"before", Observation(object, "effects lines: 0")},
                  {"state", ""}});
  }
  if (verb == "apply") {
    if (!Append(file, task_id)) return Error("cannot append to the effects file");
    return Reply({{"changes", json::array({"appended " + task_id})}});
  }
  if (verb == "verify") {
    const int n = CountLines(file, task_id);
    return Reply({{"outcome", n > 0 ? "verified" : "failed"},
                  {"detail", n > 0 ? "task id present" : "task id absent"},
                  {"after", Observation(object, "effects lines: " + std::to_string(n))}});
  }
  return Error("unknown verb");
}
