#include "connectors/redis/resp_session.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace wb::connectors::resp {
namespace {

Value Convert(const redisReply* r) {
  Value v;
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      v.type = Value::kStatus;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = Value::kError;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STRING:
      v.type = Value::kString;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = Value::kInteger;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = Value::kArray;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(Convert(r->element[i]));
      break;
    default:
      v.type = Value::kNil;
  }
  return v;
}

timeval ClampedTimeval(absl::Duration d) {
  if (d < absl::Milliseconds(100)) d = absl::Milliseconds(100);
  return absl::ToTimeval(d);
}

// Server text in an error: printable ASCII only (other bytes become '?').
std::string Ascii(absl::string_view s) {
  std::string out(s.substr(0, 500));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Session>> Session::Open(const std::string& host, int port,
                                                       absl::Duration timeout) {
  const timeval tv = ClampedTimeval(timeout);
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
  if (c == nullptr) return absl::ResourceExhaustedError("hiredis: out of memory");
  if (c->err != 0) {
    std::string msg = c->errstr;
    redisFree(c);
    return absl::UnavailableError(absl::StrCat("connect ", host, ":", port, ": ", Ascii(msg)));
  }
  redisSetTimeout(c, tv);
  return std::unique_ptr<Session>(new Session(c));
}

Session::~Session() { redisFree(ctx_); }

absl::StatusOr<Value> Session::Command(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), args.data(), lens.data()));
  if (r == nullptr) return absl::UnavailableError(absl::StrCat("redis: ", ctx_->errstr));
  Value v = Convert(r);
  freeReplyObject(r);
  return v;
}

absl::StatusOr<Value> Session::Must(const std::vector<std::string>& argv, absl::string_view what) {
  auto v = Command(argv);
  if (!v.ok()) return v.status();
  if (v->is_error()) {
    if (absl::StartsWith(v->str, "NOPERM")) {
      return absl::PermissionDeniedError(absl::StrCat(what, ": ", Ascii(v->str)));
    }
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", Ascii(v->str)));
  }
  return v;
}

}  // namespace wb::connectors::resp
