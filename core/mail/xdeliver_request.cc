// XDELIVER's arguments (xdeliver_request.h).
#include "core/mail/xdeliver_request.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace pimap::mail {

namespace {

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(why);
}

}  // namespace

absl::StatusOr<XdeliverRequest> ParseXdeliver(const imap::Command& command) {
  const std::vector<imap::Arg>& args = command.args;
  if (args.size() < 2 || args.back().type != imap::Arg::Type::kLiteral) {
    return Bad("XDELIVER needs N, R or F and the message as a literal");
  }
  XdeliverRequest r;
  r.message = args.back().value;
  size_t end = args.size() - 1;  // the arguments before the literal
  // SAVETO=mailbox, or SAVETO= then a string.
  for (size_t i = 1; i < end; ++i) {
    const imap::Arg& a = args[i];
    if (a.type != imap::Arg::Type::kAtom ||
        !absl::StartsWithIgnoreCase(a.value, "SAVETO=")) {
      continue;
    }
    if (a.value.size() > 7) {
      if (i + 1 != end)
        return Bad("SAVETO= must come last, before the literal");
      r.save_to = a.value.substr(7);
      end = i;
    } else {
      if (i + 2 != end || !args[i + 1].is_astring()) {
        return Bad("SAVETO= needs a mailbox");
      }
      r.save_to = args[i + 1].value;
      end = i;
    }
    break;
  }
  const imap::Arg& kind = args[0];
  if (kind.type != imap::Arg::Type::kAtom || kind.value.size() != 1) {
    return Bad("XDELIVER's first argument is N, R or F");
  }
  const char k = absl::ascii_toupper(static_cast<unsigned char>(kind.value[0]));
  if (k == 'N') {
    if (end != 1) return Bad("XDELIVER N takes no original");
    return r;
  }
  if (k != 'R' && k != 'F')
    return Bad("XDELIVER's first argument is N, R or F");
  r.kind = k == 'R' ? DeliverKind::kReply : DeliverKind::kForward;
  // [mailbox] uid Y|N
  size_t at = 1;
  if (end == 4) {
    if (!args[1].is_astring()) return Bad("Invalid mailbox");
    r.mailbox = args[1].value;
    at = 2;
  } else if (end != 3) {
    return Bad("XDELIVER R|F needs [mailbox] uid Y|N");
  }
  if (args[at].type != imap::Arg::Type::kAtom ||
      !absl::SimpleAtoi(args[at].value, &r.uid) || r.uid == 0) {
    return Bad("Invalid UID");
  }
  const imap::Arg& yn = args[at + 1];
  if (yn.type != imap::Arg::Type::kAtom ||
      (!absl::EqualsIgnoreCase(yn.value, "Y") &&
       !absl::EqualsIgnoreCase(yn.value, "N"))) {
    return Bad("XDELIVER R|F needs Y or N (attach the original's parts)");
  }
  r.attach = absl::EqualsIgnoreCase(yn.value, "Y");
  return r;
}

}  // namespace pimap::mail
