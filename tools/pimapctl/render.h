// pimapctl's human output: pimapd's JSON answers (tools/pimapd/admin_report.h)
// as aligned columns, and the Prometheus text of /metrics as name/value lines.
// Pure functions of their input: unit-tested alone.
#ifndef PIMAP_TOOLS_PIMAPCTL_RENDER_H_
#define PIMAP_TOOLS_PIMAPCTL_RENDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::ctl {

// Rows as columns, each as wide as its widest cell, two spaces apart; the
// first row is the header.
std::string AlignColumns(const std::vector<std::vector<std::string>>& rows);

// "850ms", "12s", "5m03s", "2h10m", "3d04h".
std::string HumanDuration(int64_t ms);

// The human form of each answer; InvalidArgument when the JSON is not what
// pimapd answers.
absl::StatusOr<std::string> RenderWho(absl::string_view json);
absl::StatusOr<std::string> RenderSessions(absl::string_view json);
absl::StatusOr<std::string> RenderKick(absl::string_view json);
absl::StatusOr<std::string> RenderDrain(absl::string_view json);
// The "error" of an error answer, or the body itself.
std::string ErrorMessage(absl::string_view body);

// /metrics: the samples without labels (the sums over shards), one per line,
// aligned; with `json`, one object {"name": value, ...}.
std::string RenderStats(absl::string_view prometheus, bool json);

}  // namespace pimap::ctl

#endif  // PIMAP_TOOLS_PIMAPCTL_RENDER_H_
