// wbctl instance list | bind | unbind | approve: which agent serves each
// connector instance (docs/security.md "Instance bindings"). A binding is an
// operator's act, recorded in the audit chain; an agent that offers an
// instance it is not bound to is refused for that instance. In root mode a
// rebind to another agent waits for approvers, who sign its statement with
// `wbctl instance approve` (wbctl parses the statement's exact bytes
// itself and shows what it signs).
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/command.h"
#include "cli/commands/view_format.h"
#include "common/crypto/crypto.h"
#include "common/envelope/envelope.h"
#include "common/trust/approvals.h"
#include "writeback/v1/admin_service.grpc.pb.h"

namespace wb::cli {
namespace {

namespace v1 = writeback::v1;

std::string Dash(absl::string_view s) { return s.empty() ? "-" : Printable(s); }

std::string InstanceText(const v1::InstanceView& i, absl::Time now) {
  std::string out = absl::StrCat(
      "instance ", Printable(i.instance()), ": ",
      i.agent_id().empty() ? "not bound" : absl::StrCat("bound to ", Printable(i.agent_id())),
      i.agent_id().empty() ? "" : (i.served() ? " (served)" : " (not offered by it yet)"), "\n");
  if (!i.bound_by().empty()) {
    absl::StrAppend(
        &out, "  by ", Printable(i.bound_by()), " ", FormatTimeAndAge(i.bound_at_unix_ms(), now),
        i.previous_agent_id().empty() ? ""
                                      : absl::StrCat(", was ", Printable(i.previous_agent_id())),
        i.reason().empty() ? "" : absl::StrCat(": ", Printable(i.reason())), "\n");
  }
  if (i.refused_agents_size() > 0) {
    std::vector<std::string> ids;
    for (const auto& a : i.refused_agents()) ids.push_back(ShortId(a));
    absl::StrAppend(&out, "  offered by agents it is not bound to (refused): ",
                    Printable(absl::StrJoin(ids, ", ")), "\n");
  }
  if (!i.pending_statement_bytes().empty()) {
    const auto& st = i.pending_statement();
    uint32_t counted = 0;
    for (const auto& a : i.pending_approvals()) counted += a.counts() ? 1 : 0;
    absl::StrAppend(&out, "  rebind ", Printable(st.rebind_id()), " to ", Printable(st.agent_id()),
                    " requested by ", Printable(st.requester()), " waits for approvals: ", counted,
                    " of ", i.approvals_required(), " (expires ",
                    FormatTimeAndAge(st.expires_at_unix_ms(), now), ")\n");
  }
  return out;
}

std::string ListTable(const v1::ListInstancesResponse& r, absl::Time now) {
  Table t({"INSTANCE", "TYPE", "BOUND-TO", "SERVED", "BOUND-BY", "BOUND", "REFUSED-OFFERS",
           "PENDING-REBIND"});
  for (const auto& i : r.instances()) {
    std::vector<std::string> refused;
    for (const auto& a : i.refused_agents()) refused.push_back(ShortId(a));
    t.AddRow({i.instance(), Dash(i.type()), i.agent_id().empty() ? "-" : ShortId(i.agent_id()),
              i.agent_id().empty() ? "-" : (i.served() ? "yes" : "no"), Dash(i.bound_by()),
              FormatAge(i.bound_at_unix_ms(), now),
              refused.empty() ? "-" : absl::StrJoin(refused, ","),
              i.pending_statement_bytes().empty()
                  ? "-"
                  : absl::StrCat("to ", ShortId(i.pending_statement().agent_id()))});
  }
  return t.Render();
}

// Every instance, page after page; with --limit or --page-token, one page
// and the next page's token on stderr.
int List(Context& ctx, uint32_t limit, const std::string& page_token) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  v1::ListInstancesRequest req;
  req.set_page_size(limit);
  req.set_page_token(page_token);
  v1::ListInstancesResponse r;
  std::string next;
  if (limit != 0 || !page_token.empty()) {
    auto page = CallAdmin(ctx, absl::Seconds(10), &v1::AdminService::Stub::ListInstances, req);
    if (!page.ok()) return ctx.Fail(page.status());
    r = *std::move(page);
    next = r.next_page_token();
    r.clear_next_page_token();
  } else {
    auto s = CallAdminPages(ctx, absl::Seconds(10), &v1::AdminService::Stub::ListInstances, req,
                            [&r](v1::ListInstancesResponse&& page) {
                              for (auto& i : *page.mutable_instances()) {
                                *r.add_instances() = std::move(i);
                              }
                            });
    if (!s.ok()) return ctx.Fail(s);
  }
  const int code = *format != OutputFormat::kTable ? ctx.Emit(RenderMessage(r, *format))
                                                   : ctx.Emit(ListTable(r, ctx.Now()));
  PrintNextPageToken(ctx, next);
  return code;
}

int EmitBinding(Context& ctx, const v1::BindInstanceResponse& r) {
  auto format = ctx.format();
  if (!format.ok()) return ctx.Fail(format.status());
  if (*format != OutputFormat::kTable) return ctx.Emit(RenderMessage(r, *format));
  std::string out = InstanceText(r.instance(), ctx.Now());
  if (r.pending_approval()) {
    absl::StrAppend(&out, "nothing changed yet: approvers run `wbctl instance approve ",
                    Printable(r.instance().instance()), " --key FILE`\n");
  }
  return ctx.Emit(out);
}

struct BindOptions {
  std::string instance;
  std::string agent;
  std::string reason;
};

int Bind(const BindOptions& o, Context& ctx) {
  v1::BindInstanceRequest req;
  req.set_instance(o.instance);
  req.set_agent_id(o.agent);
  req.set_reason(o.reason);
  auto r = CallAdmin(ctx, absl::Seconds(10), &v1::AdminService::Stub::BindInstance, req);
  if (!r.ok()) return ctx.Fail(r.status());
  return EmitBinding(ctx, *r);
}

int Unbind(const BindOptions& o, Context& ctx) {
  v1::UnbindInstanceRequest req;
  req.set_instance(o.instance);
  req.set_reason(o.reason);
  auto r = CallAdmin(ctx, absl::Seconds(10), &v1::AdminService::Stub::UnbindInstance, req);
  if (!r.ok()) return ctx.Fail(r.status());
  return EmitBinding(ctx, *r);
}

struct ApproveOptions {
  std::string instance;
  std::string key_file;
};

int Approve(const ApproveOptions& o, Context& ctx) {
  auto key = crypto::Ed25519PrivateKey::LoadFile(o.key_file);
  if (!key.ok()) {
    return ctx.Fail(absl::InvalidArgumentError(absl::StrCat("--key: ", key.status().message())));
  }
  auto list = CallAdmin(ctx, absl::Seconds(10), &v1::AdminService::Stub::ListInstances,
                        v1::ListInstancesRequest());
  if (!list.ok()) return ctx.Fail(list.status());
  const v1::InstanceView* found = nullptr;
  for (const auto& i : list->instances()) {
    if (i.instance() == o.instance) found = &i;
  }
  if (found == nullptr || found->pending_statement_bytes().empty()) {
    return ctx.Fail(absl::FailedPreconditionError(
        absl::StrCat("instance ", o.instance, ": no rebind is waiting for approvals")));
  }
  // Sign what this wbctl parsed from the exact bytes, not what the server says.
  v1::BindingStatement st;
  if (!st.ParseFromString(found->pending_statement_bytes()) || envelope::HasUnknownFields(st) ||
      st.instance() != o.instance) {
    return ctx.Fail(absl::DataLossError(
        "the control plane did not return the rebind statement in a form this wbctl can read: "
        "refusing to sign what cannot be shown"));
  }
  const v1::Approval approval =
      trust::ApproveRebind(found->pending_statement_bytes(), *key, ctx.Now());
  ctx.out() << "approving (digest " << crypto::HexEncode(approval.statement_digest()) << ", key "
            << key->key_id() << "):\n"
            << "rebind " << Printable(st.rebind_id()) << "\n"
            << "  instance:  " << Printable(st.instance()) << "\n"
            << "  from:      " << Printable(st.previous_agent_id()) << "\n"
            << "  to:        " << Printable(st.agent_id()) << "\n"
            << "  requester: " << Printable(st.requester()) << "\n"
            << "  reason:    " << Printable(st.reason()) << "\n";
  v1::ApproveRebindRequest req;
  req.set_instance(o.instance);
  *req.mutable_approval() = approval;
  auto r = CallAdmin(ctx, absl::Seconds(10), &v1::AdminService::Stub::ApproveRebind, req);
  if (!r.ok()) return ctx.Fail(r.status());
  return EmitBinding(ctx, *r);
}

const bool kList = RegisterCommand({
    .path = {"instance", "list"},
    .description = "Connector instances: which agent each is bound to, refused offers",
    .group_description = "Instance bindings (which agent serves each connector instance)",
    .setup = [](CLI::App* app) -> Action {
      struct ListOptions {
        uint32_t limit = 0;
        std::string page_token;
      };
      auto o = std::make_shared<ListOptions>();
      AddPageOptions(app, &o->limit, &o->page_token, "instances");
      return [o](Context& ctx) { return List(ctx, o->limit, o->page_token); };
    },
});

const bool kBind = RegisterCommand({
    .path = {"instance", "bind"},
    .description = "Bind a connector instance to an agent (a rebind needs approvals in root mode)",
    .group_description = "Instance bindings (which agent serves each connector instance)",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<BindOptions>();
      app->add_option("INSTANCE", o->instance, "Connector instance name")->required();
      app->add_option("--agent", o->agent, "Agent id (e.g. edge-7) or SPIFFE ID")->required();
      app->add_option("--reason", o->reason, "Why (kept in the binding and the audit chain)");
      return [o](Context& ctx) { return Bind(*o, ctx); };
    },
});

const bool kUnbind = RegisterCommand({
    .path = {"instance", "unbind"},
    .description = "Unbind a connector instance: decisions are no longer routed to its agent",
    .group_description = "Instance bindings (which agent serves each connector instance)",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<BindOptions>();
      app->add_option("INSTANCE", o->instance, "Connector instance name")->required();
      app->add_option("--reason", o->reason, "Why (kept in the binding and the audit chain)");
      return [o](Context& ctx) { return Unbind(*o, ctx); };
    },
});

const bool kApprove = RegisterCommand({
    .path = {"instance", "approve"},
    .description = "Approve a pending rebind with your own key (signs its statement digest)",
    .group_description = "Instance bindings (which agent serves each connector instance)",
    .setup = [](CLI::App* app) -> Action {
      auto o = std::make_shared<ApproveOptions>();
      app->add_option("INSTANCE", o->instance, "Connector instance name")->required();
      app->add_option("--key", o->key_file, "Your approver private key (wbctl trust keygen)")
          ->required();
      return [o](Context& ctx) { return Approve(*o, ctx); };
    },
});

}  // namespace
}  // namespace wb::cli
