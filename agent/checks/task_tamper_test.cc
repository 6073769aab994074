// Tampering with signed tasks (DESIGN.md section 3; issue 8, "Tampering"):
// 1,000 valid tasks, each accepted as made; then every field of the
// envelope, of the Task and of the DecisionStatement inside it (recursively,
// including fields that were unset) is altered one at a time, and unknown
// fields are added — with the original signature, and with a signature by
// the real dispatch key over the changed bytes where the change must be
// refused anyway. Not one altered task may be accepted. The counts are
// printed at the end.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/checks/task_checks.h"
#include "agent/testing/task_factory.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"

namespace wb::agent {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using writeback::v1::SignedEnvelope;

constexpr char kAgentId[] = "spiffe://writeback.test/agent/a1";
// Field 99, varint 1: a field no version of Task/DecisionStatement knows.
constexpr char kUnknownField[] = "\x98\x06\x01";
constexpr int kTasks = 1000;
constexpr int kMaxDepth = 3;

// Changes field `f` of `m` so that its serialization differs.
void AlterField(Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  if (f->is_repeated()) {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        r->AddMessage(&m, f);
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->AddString(&m, f, "x");
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        r->AddInt32(&m, f, 1);
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->AddInt64(&m, f, 1);
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->AddUInt32(&m, f, 1);
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->AddUInt64(&m, f, 1);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->AddBool(&m, f, true);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->AddEnumValue(&m, f, 1);
        break;
      default:
        FAIL() << "unhandled repeated type of " << f->full_name();
    }
    return;
  }
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      r->SetString(&m, f, r->GetString(m, f) + "x");
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      r->SetInt32(&m, f, r->GetInt32(m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      r->SetInt64(&m, f, r->GetInt64(m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      r->SetUInt32(&m, f, r->GetUInt32(m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      r->SetUInt64(&m, f, r->GetUInt64(m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      r->SetBool(&m, f, !r->GetBool(m, f));
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      r->SetEnumValue(&m, f, r->GetEnumValue(m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      r->SetDouble(&m, f, r->GetDouble(m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      r->SetFloat(&m, f, r->GetFloat(m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      // Removed where it was present (even if empty), an empty one where
      // there was none: either changes the bytes. Its own fields are altered
      // one by one by the caller's recursion.
      if (r->HasField(m, f)) {
        r->ClearField(&m, f);
      } else {
        r->MutableMessage(&m, f);
      }
      break;
  }
}

// Every single-field alteration of `m` (recursively into sub-messages, up to
// kMaxDepth), each as a complete copy of the top-level message, passed to
// `emit` with the field's path.
template <typename Fn>
void ForEachAlteration(const Message& top, Message& cur, int depth, const std::string& prefix,
                       Fn&& emit, const std::vector<std::pair<const FieldDescriptor*, int>>& path) {
  const auto* d = cur.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = absl::StrCat(prefix, f->name());
    {
      std::unique_ptr<Message> copy(top.New());
      copy->CopyFrom(top);
      Message* at = copy.get();
      for (const auto& [pf, idx] : path) {
        at = idx < 0 ? at->GetReflection()->MutableMessage(at, pf)
                     : at->GetReflection()->MutableRepeatedMessage(at, pf, idx);
      }
      AlterField(*at, f);
      emit(name, *copy);
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated() &&
        depth < kMaxDepth) {
      auto sub_path = path;
      sub_path.emplace_back(f, -1);
      Message* sub = cur.GetReflection()->MutableMessage(&cur, f);
      ForEachAlteration(top, *sub, depth + 1, name + ".", emit, sub_path);
    }
  }
}

class FakeHistory : public TaskHistory {
 public:
  absl::StatusOr<std::optional<SeenTask>> FindTask(absl::string_view) const override {
    return std::nullopt;
  }
  absl::StatusOr<uint64_t> AppliedVersion(absl::string_view, absl::string_view) const override {
    return 0;
  }
};

TEST(TaskTamperTest, NoAlteredTaskIsAccepted) {
  const auto key = crypto::Ed25519PrivateKey::Generate();
  const auto rogue = crypto::Ed25519PrivateKey::Generate();
  envelope::Keyring keyring;
  keyring.Add(key.public_key());
  CheckContext ctx;
  ctx.agent_id = kAgentId;
  ctx.dispatch_keys = &keyring;
  ctx.instances["ssh-main"] = {"ssh_authorized_keys", {"remove_key", "remove_by_comment"}};
  FakeHistory history;
  std::mt19937 rng(20261129);
  // Flipped bits make invalid UTF-8 in string fields, which protobuf logs on
  // every parse; the refusals are counted below instead.
  google::protobuf::LogSilencer quiet;

  long alterations = 0, accepted = 0, valid_accepted = 0;
  std::map<std::string, long> by_reason;
  auto expect_refused = [&](const SignedEnvelope& env, const std::string& what) {
    ++alterations;
    TaskCheck c = CheckTask(env, ctx, &history);
    if (c.verdict == Verdict::kAccept) {
      ++accepted;
      ADD_FAILURE() << "accepted after altering " << what;
      return;
    }
    by_reason[writeback::v1::RejectReason_Name(c.reason)]++;
  };

  for (int i = 0; i < kTasks; ++i) {
    testing::TaskSpec s;
    s.audience = kAgentId;
    s.task_id = absl::StrCat("task-", i, "-", rng());
    s.decision_id = absl::StrCat("dec-", i);
    s.version = 1 + rng() % 1000;
    s.object = absl::StrCat("user", rng() % 100000);
    s.ttl = absl::Minutes(5 + rng() % 600);
    ctx.now = s.now + absl::Seconds(rng() % 200);
    const writeback::v1::DecisionStatement st = testing::MakeStatement(s);
    const writeback::v1::Task task = testing::MakeTaskFor(s, st.SerializeAsString(), key.key_id());
    const SignedEnvelope good = testing::SignTask(task, key);
    ASSERT_EQ(CheckTask(good, ctx, &history).verdict, Verdict::kAccept) << "task " << i;
    ++valid_accepted;

    // The envelope's own fields.
    for (int f = 1; f <= 4; ++f) {
      SignedEnvelope e = good;
      if (f == 1) e.set_payload(e.payload() + "x");
      if (f == 2) e.set_key_id(e.key_id() + "x");
      if (f == 3) (*e.mutable_signature())[rng() % e.signature().size()] ^= 0x01;
      if (f == 4) e.set_payload_type(writeback::v1::PAYLOAD_TYPE_RESULT);
      expect_refused(e, absl::StrCat("envelope field ", f));
    }
    // One bit anywhere in the payload.
    {
      SignedEnvelope e = good;
      const size_t bit = rng() % (e.payload().size() * 8);
      (*e.mutable_payload())[bit / 8] ^= static_cast<char>(1 << (bit % 8));
      expect_refused(e, absl::StrCat("payload bit ", bit));
    }
    // A valid signature by a key that is not a dispatch key, claiming the
    // real key's id.
    {
      SignedEnvelope e = envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK, good.payload(), rogue);
      e.set_key_id(key.key_id());
      expect_refused(e, "signature by another key under the dispatch key's id");
    }
    // Every Task field, with the original signature.
    writeback::v1::Task scratch = task;
    ForEachAlteration(task, scratch, 0, "task.",
                      [&](const std::string& what, const Message& altered) {
                        SignedEnvelope e = good;
                        e.set_payload(altered.SerializeAsString());
                        expect_refused(e, what);
                      },
                      {});
    // Every DecisionStatement field (inside task.statement), original
    // signature.
    writeback::v1::DecisionStatement st_scratch = st;
    ForEachAlteration(st, st_scratch, 0, "statement.",
                      [&](const std::string& what, const Message& altered) {
                        writeback::v1::Task t = task;
                        t.set_statement(altered.SerializeAsString());
                        SignedEnvelope e = good;
                        e.set_payload(t.SerializeAsString());
                        expect_refused(e, what);
                      },
                      {});
    // Unknown fields, even when signed by the real dispatch key.
    {
      writeback::v1::Task t = task;
      expect_refused(envelope::Sign(writeback::v1::PAYLOAD_TYPE_TASK,
                                    t.SerializeAsString() + kUnknownField, key),
                     "unknown field in the task (signed)");
      t.set_statement(st.SerializeAsString() + kUnknownField);
      expect_refused(testing::SignTask(t, key), "unknown field in the statement (signed)");
      SignedEnvelope e = good;
      e.set_payload(good.payload() + kUnknownField);
      expect_refused(e, "unknown field in the task (unsigned)");
    }
  }

  std::printf("tamper: valid tasks %ld (all accepted as made); alterations %ld; accepted %ld\n",
              valid_accepted, alterations, accepted);
  for (const auto& [reason, n] : by_reason) std::printf("  refused %s: %ld\n", reason.c_str(), n);
  EXPECT_EQ(valid_accepted, kTasks);
  EXPECT_EQ(accepted, 0);
  EXPECT_GT(alterations, 50L * kTasks);
}

}  // namespace
}  // namespace wb::agent
