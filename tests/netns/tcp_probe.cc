// wb_tcp_probe IP PORT TIMEOUT_MS: tries one TCP connection (run inside a
// network namespace by tests/netns). Exit 0 and "connected" if the handshake
// completed; exit 1 and the reason (refused, unreachable, timed out) if not;
// exit 2 on bad arguments. Test support only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: wb_tcp_probe IP PORT TIMEOUT_MS\n");
    return 2;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
    std::fprintf(stderr, "bad address %s\n", argv[1]);
    return 2;
  }
  const int timeout_ms = std::atoi(argv[3]);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::printf("socket: %s\n", std::strerror(errno));
    return 1;
  }
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc != 0 && errno != EINPROGRESS) {
    std::printf("not connected: %s\n", std::strerror(errno));
    return 1;
  }
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    rc = poll(&p, 1, timeout_ms);
    if (rc == 0) {
      std::printf("not connected: timed out after %d ms (dropped)\n", timeout_ms);
      return 1;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      std::printf("not connected: %s\n", std::strerror(err));
      return 1;
    }
  }
  std::printf("connected\n");
  close(fd);
  return 0;
}
