// Test environment of the redis connector tests: one real redis-server per
// test process (ACL file, no persistence), an admin client (the `default`
// user), and the connector's own least-privilege ACL user `writeback`,
// exactly as docs/connectors/redis.md documents it.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "connectors/testing/servers/redis_server.h"
#include "gtest/gtest.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors::redistest {

using testing::RedisClient;
using testing::RedisServer;

// The connector's ACL rule, as documented.
inline constexpr const char* kConnectorRules =
    "resetchannels -@all +acl|getuser +acl|setuser +acl|deluser +acl|save +acl|dryrun +acl|cat "
    "+client|list +client|kill +config|get +command|info +ping";

class RedisEnv : public ::testing::Environment {
 public:
  static RedisEnv* Get() {
    static RedisEnv* env =
        static_cast<RedisEnv*>(::testing::AddGlobalTestEnvironment(new RedisEnv));
    return env;
  }

  void SetUp() override {
    tmp_ = std::make_unique<wb::testing::TempDir>();
    RedisServer::Options o;
    o.acl_lines = {absl::StrCat("user writeback on >", kConnectorPassword, " ", kConnectorRules)};
    auto s = RedisServer::Start(tmp_->Sub("redis"), o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    auto a = RedisClient::Connect(server_->port(), "default", server_->admin_password());
    ASSERT_TRUE(a.ok()) << a.status();
    admin_ = std::move(*a);
    connector_password_file_ = WriteSecret("connector", kConnectorPassword);
  }
  void TearDown() override {
    admin_.reset();
    server_.reset();
    tmp_.reset();
  }

  bool ok() const { return admin_ != nullptr; }
  RedisServer& server() { return *server_; }
  RedisClient& admin() { return *admin_; }

  std::string WriteSecret(const std::string& name, const std::string& secret) {
    const std::string path = tmp_->Sub(absl::StrCat("secret-", ++files_));
    EXPECT_TRUE(fs::WriteFileAtomic(path, secret + "\n").ok()) << name;
    return path;
  }
  std::string Unique() { return absl::StrCat(++unique_); }

  writeback::v1::ConnectorInstanceConfig Config(const std::string& name = "cache") {
    writeback::v1::ConnectorInstanceConfig c;
    c.set_name(name);
    c.set_type("redis");
    auto* r = c.mutable_redis();
    r->set_address(server_->address());
    r->set_user("writeback");
    r->set_password_file(connector_password_file_);
    r->set_timeout_seconds(10);
    return c;
  }

  // Runs a command as admin; fails the test on a broken connection.
  testing::RedisValue Admin(const std::vector<std::string>& argv) {
    auto v = admin_->Command(argv);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : testing::RedisValue{};
  }

  static constexpr const char* kConnectorPassword = "wb-redis-connector-secret";

 private:
  std::unique_ptr<wb::testing::TempDir> tmp_;
  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisClient> admin_;
  std::string connector_password_file_;
  std::atomic<int> files_{0};
  std::atomic<int> unique_{0};
};

}  // namespace wb::connectors::redistest
