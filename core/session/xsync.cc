// XSYNC's syntax and plan (xsync.h).
#include "core/session/xsync.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/imap/writer.h"

namespace pimap::session {

namespace {

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("XSYNC: ", why));
}

// A header field name (RFC 5322 ftext: printable ASCII but ':'), as an atom
// the store takes inside HEADER.FIELDS: no list or quoting characters.
bool IsFieldName(absl::string_view name) {
  if (name.empty() || name.size() > 76) return false;
  for (char c : name) {
    if (c <= ' ' || c >= 0x7f || c == ':' || c == '(' || c == ')' || c == '{' ||
        c == '"' || c == '\\' || c == '%' || c == '*' || c == ']' || c == '[') {
      return false;
    }
  }
  return true;
}

template <typename T>
bool ParseNumber(const imap::Arg& arg, T* out) {
  if (arg.type != imap::Arg::Type::kAtom || arg.value.empty() ||
      arg.value.size() > 20) {
    return false;
  }
  for (char c : arg.value) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(arg.value, out);
}

}  // namespace

absl::StatusOr<XsyncRequest> ParseXsync(const std::vector<imap::Arg>& args) {
  if (args.size() != 4 && args.size() != 5) {
    return Bad(
        "expected mailbox uidvalidity modseq last-uid [(HEADERS (field ...))]");
  }
  XsyncRequest r;
  if (!args[0].is_astring() || args[0].value.empty()) {
    return Bad("the mailbox must be an astring");
  }
  r.mailbox = args[0].value;
  // The steps are single lines (no literal): a mailbox name must be quotable.
  if (r.mailbox.size() > 1024) return Bad("mailbox name too long");
  for (char c : r.mailbox) {
    if (c == '\r' || c == '\n' || c == '\0' ||
        static_cast<unsigned char>(c) >= 0x80) {
      return Bad("mailbox name must be 7-bit (modified UTF-7) text");
    }
  }
  if (!ParseNumber(args[1], &r.uidvalidity)) {
    return Bad("uidvalidity must be a number (0: nothing known)");
  }
  if (!ParseNumber(args[2], &r.modseq)) {
    return Bad("modseq must be a number");
  }
  if (!ParseNumber(args[3], &r.last_uid)) {
    return Bad("last-uid must be a number");
  }
  if (r.uidvalidity != 0 && r.modseq == 0) {
    return Bad("a known folder needs its HIGHESTMODSEQ (modseq > 0)");
  }
  if (args.size() == 5) {
    const imap::Arg& params = args[4];
    if (params.type != imap::Arg::Type::kList) {
      return Bad("parameters must be a parenthesised list");
    }
    const std::vector<imap::Arg>& p = params.children;
    for (size_t i = 0; i < p.size(); i += 2) {
      if (p[i].type != imap::Arg::Type::kAtom || i + 1 >= p.size()) {
        return Bad("parameters come as name value pairs");
      }
      if (!absl::EqualsIgnoreCase(p[i].value, "HEADERS") ||
          !r.headers.empty()) {
        return Bad(absl::StrCat("unknown or repeated parameter ", p[i].value));
      }
      const imap::Arg& fields = p[i + 1];
      if (fields.type != imap::Arg::Type::kList || fields.children.empty() ||
          fields.children.size() > kMaxXsyncHeaderFields) {
        return Bad(absl::StrCat("HEADERS takes a list of 1 to ",
                                kMaxXsyncHeaderFields, " field names"));
      }
      for (const imap::Arg& f : fields.children) {
        if (!f.is_astring() || !IsFieldName(f.value)) {
          return Bad("a header field name is not valid");
        }
        r.headers.push_back(f.value);
      }
    }
  }
  if (r.headers.empty()) {
    r.headers = {"From", "To", "Cc", "Subject", "Date", "Message-ID"};
  }
  return r;
}

std::vector<XsyncStep> PlanXsync(const XsyncRequest& request,
                                 absl::string_view tag, bool qresync) {
  std::vector<XsyncStep> plan;
  auto add = [&](absl::string_view name, absl::string_view command) {
    XsyncStep step;
    step.name = std::string(name);
    step.tag = absl::StrCat(tag, ".", plan.size() + 1);
    step.line = absl::StrCat(step.tag, " ", command);
    plan.push_back(std::move(step));
  };
  std::string mailbox;
  imap::AppendAstring(&mailbox, request.mailbox);
  const bool known = request.uidvalidity != 0;
  if (known && qresync) {
    // RFC 7162 section 3.2.5: the changed flags and VANISHED (EARLIER) for
    // the known UIDs come with the SELECT itself.
    add("SELECT", absl::StrCat("SELECT ", mailbox, " (QRESYNC (",
                               request.uidvalidity, " ", request.modseq,
                               request.last_uid > 0
                                   ? absl::StrCat(" 1:", request.last_uid)
                                   : std::string(),
                               "))"));
  } else {
    add("SELECT", absl::StrCat("SELECT ", mailbox, " (CONDSTORE)"));
  }
  if (known && !qresync && request.last_uid > 0) {
    add("FETCH CHANGED",
        absl::StrCat("UID FETCH 1:", request.last_uid,
                     " (UID FLAGS) (CHANGEDSINCE ", request.modseq, ")"));
    add("SEARCH KNOWN", absl::StrCat("UID SEARCH UID 1:", request.last_uid));
  }
  // New mail: "n:*" with n past the last UID still names the last message
  // (RFC 3501 section 6.4.8); the client skips UIDs it has, as it would for
  // the same FETCH sent alone.
  // No UID comes after the largest (4294967295): no new mail to ask for,
  // and "+ 1" would wrap to 0, which is no UID.
  if (known && request.last_uid == UINT32_MAX) return plan;
  const uint32_t first_new = known ? request.last_uid + 1 : 1;
  add("FETCH NEW",
      absl::StrCat("UID FETCH ", first_new,
                   ":* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (",
                   absl::StrJoin(request.headers, " "), ")])"));
  return plan;
}

uint32_t UidValidityIn(absl::string_view responses) {
  constexpr absl::string_view kCode = "* OK [UIDVALIDITY ";
  size_t at = responses.find(kCode);
  // Only at a line start. (A SELECT's responses carry no literal.)
  while (at != absl::string_view::npos && at != 0 &&
         (at < 2 || responses.substr(at - 2, 2) != "\r\n")) {
    at = responses.find(kCode, at + 1);
  }
  if (at == absl::string_view::npos) return 0;
  const absl::string_view rest = responses.substr(at + kCode.size());
  uint32_t n = 0;
  return absl::SimpleAtoi(rest.substr(0, rest.find(']')), &n) ? n : 0;
}

std::string XsyncOk(absl::string_view tag, size_t steps) {
  std::string out;
  imap::AppendTaggedStatus(&out, tag, "OK", absl::StrCat("XSYNC ", steps),
                           "XSYNC completed");
  return out;
}

std::string XsyncFailed(absl::string_view tag, size_t index,
                        const XsyncStep& step, absl::string_view status,
                        absl::string_view rest) {
  // The step's own code and text follow ours, so nothing the store said is
  // lost: "y NO [XSYNC 1 SELECT] [NONEXISTENT] Mailbox doesn't exist: X".
  std::string out;
  imap::AppendTaggedStatus(
      &out, tag, status == "BAD" ? "BAD" : "NO",
      absl::StrCat("XSYNC ", index + 1, " ", step.name),
      rest.empty() ? std::string(status) : std::string(rest));
  return out;
}

std::string XsyncUidValidityChanged(absl::string_view tag,
                                    uint32_t uidvalidity) {
  std::string out;
  imap::AppendTaggedStatus(
      &out, tag, "NO", absl::StrCat("UIDVALIDITY ", uidvalidity),
      "XSYNC: UIDVALIDITY changed; discard the folder and sync it in full");
  return out;
}

}  // namespace pimap::session
