#include "common/config/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/fs/fs.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace wb::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

class Mapper {
 public:
  explicit Mapper(absl::string_view source) : source_(source) {}

  absl::Status Error(const std::string& path, absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": ", path.empty() ? "(top level)" : path, ": ", why));
  }

  absl::Status MapMessage(const YAML::Node& node, const std::string& path, Message* msg) {
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) return Error(path, "expected a mapping of keys to values");
    const Descriptor* d = msg->GetDescriptor();
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) return Error(path, "keys must be plain strings");
      const std::string key = kv.first.Scalar();
      const std::string fpath = path.empty() ? key : absl::StrCat(path, ".", key);
      const FieldDescriptor* f = d->FindFieldByName(key);
      if (f == nullptr) return Error(fpath, "unknown key");
      const Reflection* r = msg->GetReflection();
      if (f->containing_oneof() != nullptr) {
        const FieldDescriptor* set = r->GetOneofFieldDescriptor(*msg, f->containing_oneof());
        if (set != nullptr && set != f) {
          return Error(fpath,
                       absl::StrCat("only one of '", set->name(), "' and '", key, "' may be set"));
        }
      }
      if (f->is_map()) {
        if (auto s = MapMap(kv.second, fpath, msg, f); !s.ok()) return s;
      } else if (f->is_repeated()) {
        if (kv.second.IsNull()) continue;
        if (!kv.second.IsSequence()) return Error(fpath, "expected a list");
        int i = 0;
        for (const auto& item : kv.second) {
          if (auto s = SetValue(item, absl::StrCat(fpath, "[", i++, "]"), msg, f); !s.ok()) {
            return s;
          }
        }
      } else {
        if (auto s = SetValue(kv.second, fpath, msg, f); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status MapMap(const YAML::Node& node, const std::string& path, Message* msg,
                      const FieldDescriptor* f) {
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) return Error(path, "expected a mapping");
    const Reflection* r = msg->GetReflection();
    const FieldDescriptor* kf = f->message_type()->map_key();
    const FieldDescriptor* vf = f->message_type()->map_value();
    for (const auto& kv : node) {
      const std::string epath = absl::StrCat(path, ".", kv.first.Scalar());
      Message* entry = r->AddMessage(msg, f);
      if (auto s = SetValue(kv.first, epath, entry, kf); !s.ok()) return s;
      if (auto s = SetValue(kv.second, epath, entry, vf); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::StatusOr<T> ParseInt(const YAML::Node& n, const std::string& path) {
    if (!n.IsScalar()) return Error(path, "expected a number");
    const std::string& s = n.Scalar();
    T v{};
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range) return Error(path, "number out of range");
    if (ec != std::errc() || ptr != s.data() + s.size()) {
      return Error(path, absl::StrCat("expected a whole number, got '", s, "'"));
    }
    return v;
  }

  absl::Status SetValue(const YAML::Node& n, const std::string& path, Message* msg,
                        const FieldDescriptor* f) {
    const Reflection* r = msg->GetReflection();
    const bool rep = f->is_repeated();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* sub = rep ? r->AddMessage(msg, f) : r->MutableMessage(msg, f);
      return MapMessage(n, path, sub);
    }
    if (!n.IsScalar()) return Error(path, "expected a single value");
    const std::string& s = n.Scalar();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        rep ? r->AddString(msg, f, s) : r->SetString(msg, f, s);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool v;
        if (s == "true") {
          v = true;
        } else if (s == "false") {
          v = false;
        } else {
          return Error(path, absl::StrCat("expected true or false, got '", s, "'"));
        }
        rep ? r->AddBool(msg, f, v) : r->SetBool(msg, f, v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT32: {
        auto v = ParseInt<int32_t>(n, path);
        if (!v.ok()) return v.status();
        rep ? r->AddInt32(msg, f, *v) : r->SetInt32(msg, f, *v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        auto v = ParseInt<int64_t>(n, path);
        if (!v.ok()) return v.status();
        rep ? r->AddInt64(msg, f, *v) : r->SetInt64(msg, f, *v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        auto v = ParseInt<uint32_t>(n, path);
        if (!v.ok()) return v.status();
        rep ? r->AddUInt32(msg, f, *v) : r->SetUInt32(msg, f, *v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        auto v = ParseInt<uint64_t>(n, path);
        if (!v.ok()) return v.status();
        rep ? r->AddUInt64(msg, f, *v) : r->SetUInt64(msg, f, *v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double v;
        if (!absl::SimpleAtod(s, &v))
          return Error(path, absl::StrCat("expected a number, got '", s, "'"));
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          rep ? r->AddDouble(msg, f, v) : r->SetDouble(msg, f, v);
        } else {
          rep ? r->AddFloat(msg, f, static_cast<float>(v))
              : r->SetFloat(msg, f, static_cast<float>(v));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* ev = f->enum_type()->FindValueByName(s);
        if (ev == nullptr) {
          std::string names;
          for (int i = 0; i < f->enum_type()->value_count(); ++i) {
            absl::StrAppend(&names, i ? ", " : "", f->enum_type()->value(i)->name());
          }
          return Error(path, absl::StrCat("unknown value '", s, "' (one of: ", names, ")"));
        }
        rep ? r->AddEnum(msg, f, ev) : r->SetEnum(msg, f, ev);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    return Error(path, "unsupported field type");
  }

  std::string source_;
};

}  // namespace

absl::Status ParseYaml(absl::string_view yaml, absl::string_view source, Message* msg) {
  msg->Clear();
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid YAML: ", e.what()));
  }
  try {
    return Mapper(source).MapMessage(root, "", msg);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
}

absl::Status LoadYamlFile(const std::string& path, Message* msg) {
  auto text = fs::ReadFile(path, 8 << 20);
  if (!text.ok()) return text.status();
  return ParseYaml(*text, path, msg);
}

}  // namespace wb::config
