// Test support: writes a config message as a file that the config loader
// (common/config) reads. The loader reads YAML; JSON is YAML, and proto
// field names are its keys.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/fs/fs.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"

namespace wb::testing {

inline absl::Status WriteConfigFile(const google::protobuf::Message& m, const std::string& path) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  std::string json;
  auto s = google::protobuf::util::MessageToJsonString(m, &json, o);
  if (!s.ok()) return absl::InternalError(s.ToString());
  return fs::WriteFileAtomic(path, json);
}

}  // namespace wb::testing
