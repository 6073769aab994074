#include "connectors/testing/servers/redis_server.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/fs/fs.h"
#include "common/status/macros.h"

namespace wb::connectors::testing {
namespace {

RedisValue Convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      v.type = "status";
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = "error";
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STRING:
      v.type = "string";
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = "integer";
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = "array";
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(Convert(r->element[i]));
      break;
    default:
      v.type = "nil";
  }
  return v;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(const std::string& dir,
                                                                const Options& opts) {
  WB_RETURN_IF_ERROR(fs::MakeDirs(dir, 0700));
  auto server = std::unique_ptr<RedisServer>(new RedisServer());
  server->password_ = crypto::HexEncode(crypto::RandomBytes(12));
  server->log_path_ = dir + "/redis.log";
  server->aclfile_ = dir + "/users.acl";
  if (opts.with_aclfile) {
    std::string acl = absl::StrCat("user default on >", server->password_, " ~* &* +@all\n");
    for (const auto& l : opts.acl_lines) absl::StrAppend(&acl, l, "\n");
    WB_RETURN_IF_ERROR(fs::WriteFileAtomic(server->aclfile_, acl));
  }
  absl::Status last = absl::UnknownError("not started");
  for (int attempt = 0; attempt < 5; ++attempt) {
    WB_ASSIGN_OR_RETURN(const int port, PickFreePort());
    std::string conf = absl::StrCat("port ", port,
                                    "\nbind 127.0.0.1\n"
                                    "save \"\"\nappendonly no\ndaemonize no\n"
                                    "dir ",
                                    dir, "\n");
    if (opts.with_aclfile) {
      absl::StrAppend(&conf, "aclfile ", server->aclfile_, "\n");
    } else {
      absl::StrAppend(&conf, "requirepass ", server->password_, "\n");
    }
    const std::string conf_path = dir + "/redis.conf";
    WB_RETURN_IF_ERROR(fs::WriteFileAtomic(conf_path, conf));
    SpawnOptions run;
    run.argv = {opts.binary, conf_path};
    run.log_file = server->log_path_;
    run.working_dir = dir;
    WB_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(run));
    auto holder = std::make_unique<ChildProcess>(std::move(child));
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    bool ready = false;
    while (absl::Now() < deadline && holder->Running()) {
      auto c = RedisClient::Connect(port, "default", server->password_);
      if (c.ok() && (*c)->Alive()) {
        ready = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (ready) {
      server->child_ = std::move(holder);
      server->port_ = port;
      return server;
    }
    holder->Stop(SIGKILL, absl::Seconds(5));
    last = absl::InternalError(
        absl::StrCat("redis-server did not start on port ", port, ": ", server->ReadLog()));
  }
  return last;
}

RedisServer::~RedisServer() {
  if (child_ != nullptr) child_->Stop(SIGTERM, absl::Seconds(10));
}

std::string RedisServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Connect(int port, const std::string& user,
                                                                  const std::string& password) {
  timeval tv{10, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr) return absl::ResourceExhaustedError("redisConnect: out of memory");
  if (c->err != 0) {
    std::string msg = c->errstr;
    redisFree(c);
    return absl::UnavailableError(msg);
  }
  redisSetTimeout(c, tv);
  auto client = std::unique_ptr<RedisClient>(new RedisClient(c));
  if (!user.empty()) {
    WB_ASSIGN_OR_RETURN(RedisValue v, client->Command({"AUTH", user, password}));
    if (v.type == "error") return absl::PermissionDeniedError(v.str);
  }
  return client;
}

RedisClient::~RedisClient() { redisFree(ctx_); }

absl::StatusOr<RedisValue> RedisClient::Command(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), args.data(), lens.data()));
  if (r == nullptr) return absl::UnavailableError(ctx_->errstr);
  RedisValue v = Convert(r);
  freeReplyObject(r);
  return v;
}

bool RedisClient::Alive() {
  auto v = Command({"PING"});
  return v.ok() && v->type == "status" && v->str == "PONG";
}

}  // namespace wb::connectors::testing
