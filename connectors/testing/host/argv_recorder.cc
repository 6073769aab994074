// A stand-in for a system tool (usermod, visudo, ...) in hostile-input
// tests. Installed (as a symlink) under the tool's name in a test's
// tools_dir; when run, it appends one line describing its argv to
// "<directory of argv[0]>/calls.log", then execs the real tool (the first of
// /usr/sbin/NAME, /usr/bin/NAME, /sbin/NAME, /bin/NAME) with the same
// arguments. The test then checks that only the commands it meant were run.
//
// Line format: the arguments after argv[0], each escaped (bytes outside
// printable ASCII, '\\' and ' ' as \xNN), separated by single spaces,
// prefixed by the tool name and a space.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  (void)argc;
  const std::string self = argv[0];
  const size_t slash = self.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : self.substr(0, slash);
  const std::string name = slash == std::string::npos ? self : self.substr(slash + 1);
  std::string line = name;
  for (int i = 1; argv[i] != nullptr; ++i) {
    line.push_back(' ');
    for (const char* p = argv[i]; *p != '\0'; ++p) {
      const auto c = static_cast<unsigned char>(*p);
      if (c < 0x21 || c > 0x7e || c == '\\') {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        line += buf;
      } else {
        line.push_back(static_cast<char>(c));
      }
    }
  }
  line.push_back('\n');
  const int fd =
      ::open((dir + "/calls.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
  }
  for (const char* d : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    const std::string real = std::string(d) + name;
    if (::access(real.c_str(), X_OK) == 0) {
      argv[0] = const_cast<char*>(real.c_str());
      ::execv(real.c_str(), argv);
      break;
    }
  }
  std::fprintf(stderr, "argv_recorder: no real tool named %s\n", name.c_str());
  return 127;
}
