// YAML configuration mapped onto proto messages by their descriptors.
//
// Keys are the proto field names (snake_case). Unknown keys, wrong types,
// out-of-range numbers, unknown enum names and two members of one oneof are
// errors that name the file, the field path and the reason, e.g.
//   agent.yaml: connectors[0].allowed_operations: expected a list
// Not thread-safe for the same message.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace wb::config {

// Parses YAML text into `msg` (cleared first). `source` names the input in
// error messages.
absl::Status ParseYaml(absl::string_view yaml, absl::string_view source,
                       google::protobuf::Message* msg);

// Reads and parses a YAML file.
absl::Status LoadYamlFile(const std::string& path, google::protobuf::Message* msg);

}  // namespace wb::config
