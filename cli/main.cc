// wbctl: the Writeback operators' command line. See docs/wbctl.md.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  wb::cli::RunOptions run;
  run.out = &std::cout;
  run.err = &std::cerr;
  const char* env = std::getenv("WBCTL_CONFIG");
  run.env_config = env != nullptr ? env : "";
  return wb::cli::RunWbctl(args, run);
}
