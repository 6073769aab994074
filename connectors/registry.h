// Explicit registry of connector types: no static-initializer magic. The
// agent calls RegisterBuiltinConnectors() once and then Create() for each
// configured instance.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "connectors/connector.h"
#include "writeback/v1/config.pb.h"

namespace wb::connectors {

using Factory = std::function<absl::StatusOr<std::unique_ptr<Connector>>(
    const writeback::v1::ConnectorInstanceConfig&)>;

// Not thread-safe while registering; Create is safe to call concurrently.
class Registry {
 public:
  absl::Status Register(const std::string& type, Factory factory);
  // Validates the instance config (name, type, allowed operations against the
  // type's catalogue, typed settings) and builds the connector. Errors name
  // the field.
  absl::StatusOr<std::unique_ptr<Connector>> Create(
      const writeback::v1::ConnectorInstanceConfig& cfg) const;
  bool Has(const std::string& type) const { return factories_.count(type) > 0; }

 private:
  std::map<std::string, Factory> factories_;
};

// Registers every connector type built into this binary.
void RegisterBuiltinConnectors(Registry& registry);

}  // namespace wb::connectors
