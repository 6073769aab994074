// Server settings shared by the control plane and relays (docs/security.md,
// resource limits): message size limits, the keepalive settings of
// tls::DefaultChannelArgs, pings from clients accepted every
// `min_client_ping_interval_ms` without data and never counted as strikes,
// and no SO_REUSEPORT (a second server on a busy port fails instead of
// silently sharing it). Each server adds its own stream and thread limits.
#pragma once

#include <grpcpp/server_builder.h>

namespace wb::tls {

void ApplyServerDefaults(grpc::ServerBuilder& builder, int min_client_ping_interval_ms);

}  // namespace wb::tls
