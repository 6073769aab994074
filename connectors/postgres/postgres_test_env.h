// Test environment of the postgres connector tests: one real PostgreSQL 15
// server per test process (started before the first test, stopped after the
// last), a superuser client for set-up, and the connector's own
// least-privilege role `writeback`, exactly as docs/connectors/postgres.md
// documents it:
//   CREATE ROLE writeback LOGIN CREATEROLE PASSWORD ...;
//   GRANT pg_signal_backend TO writeback;
//   GRANT SELECT (oid, rolname, rolpassword) ON pg_catalog.pg_authid TO writeback;
// plus membership in the owner role of the schemas it revokes on (app_owner).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "common/testing/temp_dir.h"
#include "connectors/testing/servers/postgres_server.h"
#include "gtest/gtest.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors::pgtest {

using testing::PgClient;
using testing::PostgresServer;

class PgEnv : public ::testing::Environment {
 public:
  static PgEnv* Get() {
    static PgEnv* env = static_cast<PgEnv*>(::testing::AddGlobalTestEnvironment(new PgEnv));
    return env;
  }

  void SetUp() override {
    tmp_ = std::make_unique<wb::testing::TempDir>();
    auto s = PostgresServer::Start(tmp_->Sub("pg"));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    admin_ = MustConnect("postgres", server_->superuser_password());
    connector_password_ = "wb-connector-secret";
    ASSERT_TRUE(admin_
                    ->ExecGenerated("SELECT format('CREATE ROLE writeback LOGIN CREATEROLE "
                                    "PASSWORD %L', $1::text)",
                                    {connector_password_})
                    .ok());
    for (const char* sql :
         {"GRANT pg_signal_backend TO writeback",
          "GRANT SELECT (oid, rolname, rolpassword) ON pg_catalog.pg_authid TO writeback",
          "CREATE ROLE app_owner NOLOGIN", "GRANT app_owner TO writeback",
          "CREATE TABLE public.canary (id int)", "INSERT INTO public.canary VALUES (1), (2)"}) {
      auto st = admin_->Exec(sql);
      ASSERT_TRUE(st.ok()) << st;
    }
    connector_password_file_ = WriteSecret("connector", connector_password_);
  }

  void TearDown() override {
    admin_.reset();
    server_.reset();
    tmp_.reset();
  }

  bool ok() const { return server_ != nullptr && admin_ != nullptr; }
  PostgresServer& server() { return *server_; }
  PgClient& admin() { return *admin_; }
  const std::string& dir() const { return tmp_->path(); }

  std::unique_ptr<PgClient> MustConnect(const std::string& user, const std::string& password,
                                        const std::string& app = "wbtest") {
    auto c = PgClient::Connect(server_->port(), user, password, "postgres", app);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // A 0600 file holding `secret`, in the environment's temp dir.
  std::string WriteSecret(const std::string& name, const std::string& secret) {
    const std::string path = tmp_->Sub(absl::StrCat("secret-", name, "-", ++files_));
    EXPECT_TRUE(fs::WriteFileAtomic(path, secret + "\n").ok());
    return path;
  }

  // A fresh suffix for names of one test's objects.
  std::string Unique() { return absl::StrCat(++unique_); }

  writeback::v1::ConnectorInstanceConfig Config(const std::string& name = "pg") {
    writeback::v1::ConnectorInstanceConfig c;
    c.set_name(name);
    c.set_type("postgres");
    auto* p = c.mutable_postgres();
    p->set_host("127.0.0.1");
    p->set_port(static_cast<uint32_t>(server_->port()));
    p->set_dbname("postgres");
    p->set_user("writeback");
    p->set_password_file(connector_password_file_);
    p->set_sslmode("disable");
    p->set_connect_timeout_seconds(10);
    p->add_protected_roles("postgres");
    return c;
  }

 private:
  std::unique_ptr<wb::testing::TempDir> tmp_;
  std::unique_ptr<PostgresServer> server_;
  std::unique_ptr<PgClient> admin_;
  std::string connector_password_;
  std::string connector_password_file_;
  std::atomic<int> files_{0};
  std::atomic<int> unique_{0};
};

}  // namespace wb::connectors::pgtest
