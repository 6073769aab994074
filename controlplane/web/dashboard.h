// The dashboard page (controlplane/web/dashboard.html, embedded at build
// time): one static HTML document with inline CSS and script, no external
// assets, that fetches the JSON API every few seconds.
#pragma once

#include "absl/strings/string_view.h"

namespace wb::controlplane {

absl::string_view DashboardHtml();

}  // namespace wb::controlplane
