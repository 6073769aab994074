// wbctl decision approve ID --key FILE: sign the decision's statement digest
// with the approver's own key (DESIGN.md section 3). wbctl fetches the
// statement's exact bytes, shows what IT parsed from them (not what the
// server says), computes the digest itself and signs that; the control plane
// only stores the approval and agents check it again.
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/command.h"
#include "cli/exit_codes.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "common/trust/approvals.h"
#include "google/protobuf/util/json_util.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::cli {
namespace {

struct Options {
  std::string id;
  std::string key_file;
};

// What the approver signs, as parsed here from the statement bytes. Every
// field is escaped for display (cli/format.h Printable): a right-to-left
// override or a zero-width space in a target shows as \u202e / \u200b, so
// what is read is what is signed.
std::string Describe(const writeback::v1::DecisionStatement& st) {
  std::vector<std::string> targets;
  for (const auto& t : st.targets()) targets.push_back(Printable(t.object()));
  std::string params;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(st.params(), &params, o);
  return absl::StrCat(
      "decision ", Printable(st.decision_id()), " v", st.version(), "\n",
      "  requester: ", Printable(st.requester()), "\n", "  action:    ", Printable(st.operation()),
      " on ", Printable(st.connector_instance()), "\n", "  agent:     ",
      st.agent_id().empty() ? "(not named: any agent serving the instance)"
                            : Printable(st.agent_id()),
      "\n", "  targets:   ", absl::StrJoin(targets, ", "), "\n", "  params:    ", Printable(params),
      "\n", "  reason:    ", Printable(st.reason()), "\n",
      st.reference().empty() ? "" : absl::StrCat("  reference: ", Printable(st.reference()), "\n"));
}

int Run(const Options& o, Context& ctx) {
  auto key = crypto::Ed25519PrivateKey::LoadFile(o.key_file);
  if (!key.ok()) {
    return ctx.Fail(absl::InvalidArgumentError(absl::StrCat("--key: ", key.status().message())));
  }
  auto timeout = ctx.Timeout(absl::Seconds(10));
  if (!timeout.ok()) return ctx.Fail(timeout.status());
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  auto view = (*client)->GetDecision(o.id, *timeout);
  if (!view.ok()) return ctx.Fail(view.status());
  writeback::v1::DecisionStatement st;
  if (view->statement_bytes().empty() || !st.ParseFromString(view->statement_bytes()) ||
      envelope::HasUnknownFields(st)) {
    return ctx.Fail(absl::DataLossError(
        "the control plane did not return the decision's statement bytes in a form this wbctl "
        "can read: refusing to sign what cannot be shown"));
  }
  if (st.decision_id() != o.id) {
    return ctx.Fail(absl::DataLossError(absl::StrCat("the statement returned is for decision '",
                                                     st.decision_id(), "', not '", o.id, "'")));
  }
  const writeback::v1::Approval approval = trust::Approve(view->statement_bytes(), *key, ctx.Now());
  writeback::v1::ApproveDecisionRequest req;
  req.set_decision_id(o.id);
  *req.mutable_approval() = approval;
  ctx.out() << "approving (digest " << crypto::HexEncode(approval.statement_digest()) << ", key "
            << key->key_id() << "):\n"
            << Describe(st);
  auto r =
      CallAdmin(ctx, absl::Seconds(10), &writeback::v1::AdminService::Stub::ApproveDecision, req);
  if (!r.ok()) return ctx.Fail(r.status());
  const writeback::v1::ApproveDecisionResponse& resp = *r;
  return ctx.Emit(absl::StrCat("approved: ", resp.approvals(), " of ", resp.required(),
                               " approvals; decision ", resp.decision_id(), " is ",
                               writeback::v1::DecisionState_Name(resp.state()), "\n"));
}

const bool kRegistered = RegisterCommand({
    .path = {"decision", "approve"},
    .description = "Approve a decision with your own key (signs its statement digest)",
    .group_description = "Submit and inspect decisions",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<Options>();
      app->add_option("ID", o->id, "Decision id")->required();
      app->add_option("--key", o->key_file, "Your approver private key (wbctl trust keygen)")
          ->required();
      return [o](Context& ctx) { return Run(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
