// pimapd's admin endpoint options kept apart from the main table (options.cc):
// pimapctl's Unix socket, its file mode, and the TCP listener's bearer token
// (--admin-listen itself is in the main table, beside the other listeners).
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/pimapd/option_spec.h"

namespace pimap {
namespace {

const OptionSpec kAdminOptionSpecs[] = {
    {"admin-socket", "PATH|none",
     "Unix socket of the admin endpoint for pimapctl (who, kick, sessions, "
     "stats, reload, drain) and GET /metrics. Its file mode "
     "(--admin-socket-mode) "
     "is the access control: nothing more is asked of its clients.",
     [](absl::string_view v, Options& o) {
       o.admin_socket = v == "none" ? std::string() : std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.admin_socket.empty() ? std::string("none") : o.admin_socket;
     }},
    {"admin-socket-mode", "MODE",
     "File mode of --admin-socket, octal (connecting needs write "
     "permission): 0600 lets only pimapd's user in, 0660 its group too.",
     [](absl::string_view v, Options& o) {
       uint32_t mode = 0;
       bool ok = !v.empty() && v.size() <= 4;
       for (char c : v) {
         ok = ok && c >= '0' && c <= '7';
         mode = mode * 8 + static_cast<uint32_t>(c - '0');
       }
       if (!ok || mode > 0777) {
         return absl::InvalidArgumentError(absl::StrCat(
             "invalid value \"", v, "\": expected an octal mode, e.g. 0660"));
       }
       o.admin_socket_mode = mode;
       return absl::OkStatus();
     },
     [](const Options& o) {
       return absl::StrFormat("%04o", o.admin_socket_mode);
     }},
    {"admin-token-file", "FILE|none",
     "Bearer token (FILE's content without trailing whitespace) that "
     "pimapctl's commands must send on --admin-listen (Authorization: Bearer). "
     "Without it they answer 403 there: use --admin-socket.",
     [](absl::string_view v, Options& o) {
       o.admin_token_file = v == "none" ? std::string() : std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.admin_token_file.empty() ? std::string("none")
                                         : o.admin_token_file;
     }},
};

}  // namespace

absl::Span<const OptionSpec> AdminOptionSpecs() { return kAdminOptionSpecs; }

}  // namespace pimap
