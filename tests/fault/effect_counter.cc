// wb_fault_counter: the target system of the fault suite, run by the exec
// connector (docs/connectors/exec.md contract). It is deliberately NOT
// idempotent, so that the suite can count effects:
//   plan    always "a change is needed" (never no_change);
//   apply   appends "<task_id>\n" to $WB_EFFECTS_FILE with one O_APPEND write
//           and fsyncs it: one line = one effect on the target;
//   verify  "verified" iff a line equal to the task id is in the file,
//           "failed" otherwise (an observation independent of apply's reply);
//   check   ok.
// A task id appearing twice in the file means a change was applied twice.
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
    return Reply({{"no_change", false},
                  {"summary", "append the task id"},
                  {"changes", json::array({"append " + task_id})},
                  {"before", Observation(object, "effects file")},
                  {"state", ""}});
  }
  if (verb == "apply") {
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Error("cannot open the effects file");
    const std::string line = task_id + "\n";
    const bool ok =
        write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
    close(fd);
    if (!ok) return Error("cannot append to the effects file");
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
