// The test servers start, answer, and are gone after their destructor.
#include <signal.h>

#include "common/testing/temp_dir.h"
#include "connectors/testing/servers/postgres_server.h"
#include "connectors/testing/servers/redis_server.h"
#include "connectors/testing/servers/slapd_server.h"
#include "gtest/gtest.h"

namespace wb::connectors::testing {
namespace {

TEST(TestServers, PostgresStartsAnswersAndStops) {
  wb::testing::TempDir tmp;
  int port = 0;
  {
    auto pg = PostgresServer::Start(tmp.Sub("pg"));
    ASSERT_TRUE(pg.ok()) << pg.status();
    port = (*pg)->port();
    auto c = PgClient::Connect(port, "postgres", (*pg)->superuser_password());
    ASSERT_TRUE(c.ok()) << c.status();
    auto rows = (*c)->Query("SELECT $1::text || 'b'", {"a"});
    ASSERT_TRUE(rows.ok()) << rows.status();
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ((*rows)[0][0].value_or(""), "ab");
    auto bad = PgClient::Connect(port, "postgres", "wrong");
    EXPECT_FALSE(bad.ok());
    EXPECT_NE((*pg)->ReadLog().find("SELECT $1::text"), std::string::npos);
  }
  EXPECT_FALSE(PgClient::Connect(port, "postgres", "x").ok());
}

TEST(TestServers, RedisStartsAnswersAndStops) {
  wb::testing::TempDir tmp;
  int port = 0;
  {
    auto r = RedisServer::Start(tmp.Sub("redis"));
    ASSERT_TRUE(r.ok()) << r.status();
    port = (*r)->port();
    auto c = RedisClient::Connect(port, "default", (*r)->admin_password());
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE((*c)->Alive());
    auto v = (*c)->Command({"CONFIG", "GET", "aclfile"});
    ASSERT_TRUE(v.ok());
    ASSERT_EQ(v->elements.size(), 2u);
    EXPECT_EQ(v->elements[1].str, (*r)->aclfile());
    EXPECT_FALSE(RedisClient::Connect(port, "default", "wrong").ok());
  }
  EXPECT_FALSE(RedisClient::Connect(port, "default", "x").ok());
}

TEST(TestServers, SlapdStartsAnswersAndStops) {
  wb::testing::TempDir tmp;
  std::string uri;
  {
    SlapdServer::Options o;
    o.monitor_readers = {"cn=admin,dc=example,dc=test"};
    auto s = SlapdServer::Start(tmp.Sub("ldap"), o);
    ASSERT_TRUE(s.ok()) << s.status();
    uri = (*s)->uri();
    auto c = LdapClient::Connect(uri, (*s)->admin_dn(), (*s)->admin_password());
    ASSERT_TRUE(c.ok()) << c.status();
    const std::string dn = "uid=svc,ou=people,dc=example,dc=test";
    ASSERT_TRUE((*c)->Add(dn, {{"objectClass", {"inetOrgPerson"}},
                               {"uid", {"svc"}},
                               {"cn", {"svc"}},
                               {"sn", {"svc"}},
                               {"userPassword", {"pw"}}})
                    .ok());
    auto svc = LdapClient::Connect(uri, dn, "pw");
    ASSERT_TRUE(svc.ok()) << svc.status();
    // ppolicy enforces a lock: the bind is refused afterwards.
    ASSERT_TRUE((*c)->Modify(dn, "replace", "pwdAccountLockedTime", {"000001010000Z"}).ok());
    EXPECT_FALSE(LdapClient::Connect(uri, dn, "pw").ok());
    auto conns = (*c)->Search("cn=Connections,cn=Monitor", "(objectClass=monitorConnection)");
    ASSERT_TRUE(conns.ok()) << conns.status();
    bool seen = false;
    for (const auto& [cdn, attrs] : *conns) {
      auto it = attrs.find("monitorConnectionAuthzDN");
      if (it != attrs.end() && !it->second.empty() && it->second[0] == dn) seen = true;
    }
    EXPECT_TRUE(seen) << "the svc session is listed in cn=Monitor";
  }
  EXPECT_FALSE(LdapClient::Connect(uri, "cn=admin,dc=example,dc=test", "x").ok());
}

}  // namespace
}  // namespace wb::connectors::testing
